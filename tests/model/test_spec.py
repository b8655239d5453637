"""ModelSpec: the one description of a generator, and its round trips."""

from __future__ import annotations

import dataclasses

import pytest
import torch

import esrgan_lab as lab
from esrgan_lab.errors import ConfigError
from esrgan_lab.model.spec import ModelSpec
from esrgan_lab.training.config import ModelConfig, TrainConfig
from esrgan_lab.weights.checkpoints import detect_spec, save_checkpoint
from esrgan_lab.weights.loading import load_model

SPECS = [
    ModelSpec(num_feat=8, num_block=2, num_grow_ch=4),
    ModelSpec(num_feat=8, num_block=1, num_grow_ch=4, scale=2, num_in_ch=1, num_out_ch=3),
    ModelSpec(num_feat=8, num_block=1, num_grow_ch=4, scale=8, res_scale=1.0),
    ModelSpec(num_feat=8, num_block=1, num_grow_ch=4, norm="batch_hr", init_scale=1.0),
    ModelSpec(arch="srresnet", num_feat=8, num_block=3, res_scale=1.0),
]


@pytest.mark.parametrize("spec", SPECS, ids=lambda s: s.describe())
def test_build_then_of_round_trips(spec):
    model = spec.build()
    assert ModelSpec.of(model) == spec
    x = torch.rand(1, spec.num_in_ch, 8, 8)
    assert model(x).shape == (1, spec.num_out_ch, 8 * spec.scale, 8 * spec.scale)


@pytest.mark.parametrize("spec", SPECS, ids=lambda s: s.describe())
def test_checkpoint_file_round_trips_the_spec(spec, tmp_path):
    # init_scale says nothing about trained weights: it is not recorded
    path = save_checkpoint(spec.build(), tmp_path / "g.safetensors")
    assert ModelSpec.of(load_model(path)) == spec.replace(init_scale=ModelSpec().init_scale)
    assert ModelSpec.from_config(spec.to_config()) == spec.replace(
        init_scale=ModelSpec().init_scale
    )


def test_detection_reads_shapes_and_takes_beta_from_the_hint():
    spec = ModelSpec(num_feat=8, num_block=2, num_grow_ch=4, res_scale=1.0)
    state = spec.build().state_dict()
    assert detect_spec(state) == spec.replace(res_scale=0.2)  # beta is not in the shapes
    assert detect_spec(state, hint={"res_scale": 1}) == spec


def test_paper_defaults_and_description():
    spec = ModelSpec()
    assert lab.count_parameters(spec.build()) == 16_697_987
    assert spec.describe() == "RRDBNet x4, num_block=23, num_feat=64, num_grow_ch=32"
    assert "beta=1" in spec.replace(res_scale=1.0).describe()
    assert spec.unshuffle == 1 and ModelSpec(scale=1).unshuffle == 4
    assert ModelSpec(scale=8).num_up == 3 and spec.num_up == 2
    with pytest.raises(dataclasses.FrozenInstanceError):
        spec.scale = 2  # type: ignore[misc]


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        (dict(scale=3), "scale must be"),
        (dict(norm="layer"), "norm must be"),
        (dict(num_feat=0), "num_feat must be"),
        (dict(num_block=-1), "num_block must be"),
        (dict(arch="swinir"), "arch must be"),
        (dict(arch="srresnet", norm="batch"), "no BatchNorm"),
    ],
)
def test_invalid_specs_are_one_line_config_errors(kwargs, match):
    with pytest.raises(ConfigError, match=match) as info:
        ModelSpec(**kwargs)
    assert "\n" not in str(info.value)


def test_unknown_recorded_key_is_refused():
    with pytest.raises(ConfigError, match="unknown model config key 'nf'"):
        ModelSpec.from_config({"nf": 64})


def test_not_a_generator_has_no_spec():
    with pytest.raises(ConfigError, match="not an RRDBNet"):
        ModelSpec.of(torch.nn.Conv2d(3, 3, 3))


def test_training_config_section_mirrors_the_spec():
    # The YAML `model:` section is the spec less what a config sets elsewhere (scale at
    # the top level, 3 image channels); same names, same defaults.
    section = {f.name: f.default for f in dataclasses.fields(ModelConfig)}
    spec = {f.name: f.default for f in dataclasses.fields(ModelSpec)}
    assert section == {
        k: v for k, v in spec.items() if k not in ("num_in_ch", "num_out_ch", "scale")
    }
    cfg = TrainConfig(scale=2)
    assert cfg.spec == ModelSpec(scale=2)
