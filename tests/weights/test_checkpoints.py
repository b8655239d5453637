"""Checkpoint layouts, conversion, config inference, saving and network interpolation."""

from __future__ import annotations

import json
import math
import os
import re
from pathlib import Path

import pytest
import torch
from safetensors import safe_open

import esrgan_lab as lab
from esrgan_lab.errors import CheckpointError, ConfigError
from esrgan_lab.model.rrdbnet import RRDBNet
from esrgan_lab.model.spec import ModelSpec
from esrgan_lab.weights.checkpoints import (
    convert_state_dict,
    detect_layout,
    detect_spec,
    interpolate,
    load_checkpoint,
    read_checkpoint,
    save_checkpoint,
)
from esrgan_lab.weights.loading import load_model
from tests.helpers import make_tiny

#: Two blocks of a wider tiny model: block indices and growth channels show in the keys.
TWO_BLOCKS = dict(num_feat=16, num_block=2, num_grow_ch=8)


def tiny(**kw) -> RRDBNet:
    return make_tiny(**{**TWO_BLOCKS, **kw})


class NotATensor:
    """A pickled custom object: torch.load(weights_only=True) must refuse it."""


@pytest.fixture(scope="module")
def model_and_output() -> tuple[RRDBNet, torch.Tensor, torch.Tensor]:
    torch.manual_seed(1)
    model = tiny()
    x = torch.rand(1, 3, 8, 8)
    with torch.no_grad():
        return model, x, model(x)


# ----------------------------------------------------------------------------- key layouts


def test_exported_from_package() -> None:
    for name in ("load_checkpoint", "load_model", "interpolate", "REGISTRY", "fetch_weights"):
        module = lab.weights.registry if name in ("REGISTRY", "fetch_weights") else None
        module = module or (
            lab.weights.loading if name == "load_model" else lab.weights.checkpoints
        )
        assert getattr(lab, name) is getattr(module, name)


def test_layout_names_match_the_published_keys(model_and_output) -> None:
    sd = model_and_output[0].state_dict()
    esr = convert_state_dict(sd, "esrgan")
    old = convert_state_dict(sd, "old")
    # official ESRGAN repo names
    for key in (
        "conv_first.weight",
        "RRDB_trunk.1.RDB3.conv5.bias",
        "trunk_conv.weight",
        "upconv1.weight",
        "upconv2.bias",
        "HRconv.weight",
        "conv_last.bias",
    ):
        assert key in esr, key
    # old (2018) architecture: flattened sequential, trunk conv at model.1.sub.<nb>
    for key in (
        "model.0.weight",
        "model.1.sub.0.RDB1.conv1.0.weight",
        "model.1.sub.1.RDB2.conv4.0.bias",
        "model.1.sub.2.weight",
        "model.3.weight",
        "model.6.bias",
        "model.8.weight",
        "model.10.bias",
    ):
        assert key in old, key
    assert torch.equal(old["model.1.sub.2.weight"], sd["conv_body.weight"])
    assert torch.equal(old["model.8.weight"], sd["conv_hr.weight"])
    assert torch.equal(esr["RRDB_trunk.1.RDB3.conv5.bias"], sd["body.1.rdb3.conv5.bias"])
    assert [detect_layout(d) for d in (sd, esr, old)] == ["basicsr", "esrgan", "old"]


def test_x8_old_layout_indices() -> None:
    sd = tiny(scale=8).state_dict()
    old = convert_state_dict(sd, "old")
    # three [Upsample, Conv, LReLU] stages: convs at 3, 6, 9; HR conv at 11, last at 13
    assert torch.equal(old["model.9.weight"], sd["conv_up3.weight"])
    assert torch.equal(old["model.11.weight"], sd["conv_hr.weight"])
    assert torch.equal(old["model.13.weight"], sd["conv_last.weight"])
    back = convert_state_dict(old, "basicsr")
    assert list(back) == list(sd)


def _variants(sd: dict) -> list[tuple[str, object, str]]:
    """(id, object to save, suffix) for every layout, wrapper and prefix."""
    other = {k: torch.randn_like(v) for k, v in sd.items()}  # a decoy 'params'
    out = []
    for layout in ("basicsr", "esrgan", "old"):
        conv = convert_state_dict(sd, layout)
        out.append((f"{layout}-plain", conv, ".pth"))
        out.append((f"{layout}-plain", conv, ".safetensors"))
        out.append(
            (f"{layout}-module", {f"module.{k}": v for k, v in conv.items()}, ".safetensors")
        )
        out.append((f"{layout}-ema", {"params": other, "params_ema": conv, "iter": 7}, ".pth"))
    gen = {f"generator.{k}": v for k, v in convert_state_dict(sd, "esrgan").items()}
    out.append(("esrgan-state_dict-generator", {"state_dict": gen, "epoch": 3}, ".pth"))
    out.append(("basicsr-params", {"params": {f"module.{k}": v for k, v in sd.items()}}, ".pth"))
    return out


def test_every_layout_and_wrapper_loads_to_identical_outputs(tmp_path, model_and_output) -> None:
    from safetensors.torch import save_file

    model, x, expected = model_and_output
    sd = model.state_dict()
    for name, obj, suffix in _variants(sd):
        path = tmp_path / f"{name}{suffix}"
        if suffix == ".pth":
            torch.save(obj, path)
        else:
            save_file({k: v.contiguous() for k, v in obj.items()}, str(path))
        loaded = load_checkpoint(path)
        assert list(loaded) == list(sd), name
        assert all(torch.equal(loaded[k], sd[k]) for k in sd), name
        restored = load_model(path)
        assert not restored.training
        # Equal tensors under strict=True imply equal outputs; run the forward pass on a
        # sample of the variants only (it dominates the time on a busy 2-core machine).
        if name.endswith(("-module", "-generator")):
            with torch.no_grad():
                assert torch.equal(restored(x), expected), name


def test_convert_round_trips_and_rejects_bad_target(model_and_output) -> None:
    sd = model_and_output[0].state_dict()
    for a in ("basicsr", "esrgan", "old"):
        for b in ("basicsr", "esrgan", "old"):
            there = convert_state_dict(convert_state_dict(sd, a), b)
            back = convert_state_dict(there, "basicsr")
            assert list(back) == list(sd)
            assert all(back[k] is sd[k] for k in sd)  # renaming only: the same tensors
    with pytest.raises(ConfigError, match="unknown layout 'caffe'"):
        convert_state_dict(sd, "caffe")


def test_full_size_default_round_trips_through_all_layouts() -> None:
    sd = RRDBNet().state_dict()  # 23 blocks x 3 RDBs x 5 convs x 2 + 12 = 702 tensors
    assert len(sd) == 23 * 3 * 5 * 2 + 12 == 702
    esr = convert_state_dict(sd, "esrgan")
    old = convert_state_dict(sd, "old")
    assert len(esr) == len(old) == 702
    assert "RRDB_trunk.22.RDB3.conv5.weight" in esr and "model.1.sub.23.weight" in old
    assert detect_spec(old) == ModelSpec()  # the paper's x4 generator
    for other in (esr, old, convert_state_dict(esr, "old"), convert_state_dict(old, "esrgan")):
        back = convert_state_dict(other, "basicsr")
        assert list(back) == list(sd)
        assert all(back[k] is sd[k] for k in sd)


# ----------------------------------------------------------------------------- config inference


@pytest.mark.parametrize("scale", [1, 2, 4, 8])
@pytest.mark.parametrize("channels", [1, 3, 4])
def test_detect_spec_scales_and_channels(scale: int, channels: int) -> None:
    kw = dict(
        num_in_ch=channels, num_out_ch=channels, scale=scale, num_feat=8, num_block=3, num_grow_ch=4
    )
    sd = RRDBNet(**kw).state_dict()
    for layout in ("basicsr", "esrgan", "old"):
        assert detect_spec(convert_state_dict(sd, layout)) == ModelSpec(**kw)


def test_detect_spec_gray_in_color_out_and_batchnorm() -> None:
    kw = dict(num_in_ch=1, num_out_ch=3, scale=4, num_feat=8, num_block=1, num_grow_ch=4)
    assert detect_spec(RRDBNet(**kw).state_dict()) == ModelSpec(**kw)
    for norm in ("batch", "batch_hr"):
        sd = RRDBNet(num_feat=8, num_block=1, num_grow_ch=4, norm=norm).state_dict()
        assert detect_spec(sd).norm == norm
        model = lab.weights.loading.model_from_state_dict(sd)
        assert model.norm == norm


def test_batchnorm_keys_cannot_go_to_other_layouts() -> None:
    sd = RRDBNet(num_feat=8, num_block=1, num_grow_ch=4, norm="batch").state_dict()
    with pytest.raises(CheckpointError, match=r"key 'body\.0\.rdb1\.bn1\.weight' has no"):
        convert_state_dict(sd, "esrgan")


def test_safetensors_metadata_settles_ambiguous_scale_and_res_scale(tmp_path) -> None:
    # x2 with 1 input and 3 output channels: conv_first sees 1 * 2**2 = 4 channels, which
    # the shapes alone read as an x4 model with 4 input channels.
    model = RRDBNet(num_in_ch=1, num_out_ch=3, scale=2, res_scale=1.0, **TWO_BLOCKS).eval()
    assert detect_spec(model.state_dict()).scale == 4
    path = save_checkpoint(model, tmp_path / "m.safetensors")
    restored = load_model(path)
    assert (restored.scale, restored.num_in_ch) == (2, 1)
    assert restored.body[0].res_scale == 1.0
    x = torch.rand(1, 1, 8, 8)
    with torch.no_grad():
        assert torch.equal(restored(x), model(x))


# ----------------------------------------------------------------------------- saving


@pytest.mark.parametrize("layout", ["basicsr", "esrgan", "old"])
def test_save_checkpoint_formats(tmp_path, model_and_output, layout) -> None:
    model = model_and_output[0]
    sd = model.state_dict()
    pth = save_checkpoint(model, tmp_path / "m.pth", layout=layout)
    plain = torch.load(pth, weights_only=True)
    assert set(plain) == set(convert_state_dict(sd, layout))
    st = save_checkpoint(sd, tmp_path / "m.safetensors", layout=layout)
    with safe_open(str(st), framework="pt") as f:
        meta = f.metadata()
        assert set(f.keys()) == set(plain)
    assert meta["esrgan_lab.layout"] == layout
    assert json.loads(meta["esrgan_lab.config"])["num_grow_ch"] == 8
    assert sorted(os.listdir(tmp_path)) == ["m.pth", "m.safetensors"]  # no temp files left
    for path in (pth, st):
        loaded = load_checkpoint(path)
        assert all(torch.equal(loaded[k], sd[k]) for k in sd)


def test_save_rejects_unknown_suffix(tmp_path, model_and_output) -> None:
    with pytest.raises(CheckpointError, match=r"m\.npz"):
        save_checkpoint(model_and_output[0], tmp_path / "m.npz")
    assert not list(tmp_path.iterdir())


# ----------------------------------------------------------------------------- errors


def test_unknown_layout_names_first_key() -> None:
    with pytest.raises(CheckpointError, match="first key 'encoder.weight'"):
        detect_layout({"encoder.weight": torch.zeros(1), "head.bias": torch.zeros(1)})


def test_unexpected_and_missing_keys_are_named(tmp_path, model_and_output) -> None:
    sd = dict(model_and_output[0].state_dict())
    extra = {**sd, "body.0.rdb1.attn.weight": torch.zeros(1)}
    with pytest.raises(CheckpointError, match=r"'body\.0\.rdb1\.attn\.weight'"):
        convert_state_dict(extra, "esrgan")
    old = convert_state_dict(sd, "old")
    old["model.1.sub.7.weight"] = torch.zeros(1)
    with pytest.raises(CheckpointError, match=r"'model\.1\.sub\.7\.weight'"):
        convert_state_dict(old)
    missing = {k: v for k, v in sd.items() if k != "body.1.rdb2.conv4.bias"}
    path = tmp_path / "missing.pth"
    torch.save(missing, path)
    with pytest.raises(
        CheckpointError, match=r"missing\.pth: missing key 'body\.1\.rdb2\.conv4\.bias'"
    ):
        load_model(path)


def test_shape_mismatch_is_named(model_and_output) -> None:
    sd = dict(model_and_output[0].state_dict())
    sd["body.1.rdb2.conv3.weight"] = torch.zeros(8, 20, 3, 3)
    with pytest.raises(
        CheckpointError, match=r"shape mismatch at key 'body\.1\.rdb2\.conv3\.weight'"
    ):
        lab.weights.loading.model_from_state_dict(sd)


def test_bad_files_raise_checkpoint_error(tmp_path) -> None:
    pickled = tmp_path / "code.pth"
    torch.save({"conv_first.weight": torch.zeros(1), "obj": NotATensor()}, pickled)
    with pytest.raises(
        CheckpointError, match=r"code\.pth: cannot load with torch\.load\(weights_only=True\)"
    ):
        load_checkpoint(pickled)
    garbage = tmp_path / "garbage.safetensors"
    garbage.write_bytes(b"not a safetensors file at all")
    with pytest.raises(CheckpointError, match="garbage.safetensors: not a readable"):
        load_checkpoint(garbage)
    with pytest.raises(CheckpointError, match="no such checkpoint file"):
        load_checkpoint(tmp_path / "absent.pth")
    (tmp_path / "w.onnx").write_bytes(b"x")
    with pytest.raises(CheckpointError, match="unknown checkpoint format '.onnx'"):
        read_checkpoint(tmp_path / "w.onnx")
    torch.save({"iter": 3, "note": "no tensors"}, tmp_path / "empty.pth")
    with pytest.raises(CheckpointError, match="no tensors found"):
        load_checkpoint(tmp_path / "empty.pth")


def test_every_message_is_one_line(tmp_path) -> None:
    torch.save({"encoder.weight": torch.zeros(1)}, tmp_path / "x.pth")
    with pytest.raises(CheckpointError) as info:
        load_checkpoint(tmp_path / "x.pth")
    assert "\n" not in str(info.value) and "x.pth" in str(info.value)


# ----------------------------------------------------------------------------- interpolation


def test_interpolate_matches_hand_computation() -> None:
    a = tiny().state_dict()
    b = tiny(seed=1).state_dict()  # a second random init of the same architecture
    for alpha in (0.0, 1.0):
        out = interpolate(a, b, alpha)
        assert all(torch.equal(out[k], (b if alpha else a)[k]) for k in a)
    half = interpolate(a, b, 0.5)
    key = "body.1.rdb3.conv5.weight"
    i = (3, 2, 1, 0)
    assert math.isclose(
        half[key][i].item(), (a[key][i].item() + b[key][i].item()) / 2, rel_tol=1e-6
    )
    # alpha is the weight of the SECOND network: theta = (1 - alpha) theta_a + alpha theta_b
    out = interpolate(a, b, 0.8)
    for k in a:
        torch.testing.assert_close(out[k], 0.2 * a[k] + 0.8 * b[k], rtol=1e-6, atol=1e-7)


def test_interpolate_across_layouts_keeps_first_layout() -> None:
    a, b = tiny().state_dict(), tiny(seed=1).state_dict()
    out = interpolate(convert_state_dict(a, "old"), b, 0.25)
    assert detect_layout(out) == "old"
    back = convert_state_dict(out)
    torch.testing.assert_close(
        back["conv_hr.weight"], 0.75 * a["conv_hr.weight"] + 0.25 * b["conv_hr.weight"]
    )


def test_interpolate_errors() -> None:
    a = tiny().state_dict()
    for alpha in (-0.1, 1.5, float("nan")):
        with pytest.raises(ConfigError, match="alpha must be in"):
            interpolate(a, a, alpha)
    fewer = {k: v for k, v in a.items() if k != "conv_up2.bias"}
    with pytest.raises(CheckpointError, match=r"key 'conv_up2\.bias' of the first network"):
        interpolate(a, fewer, 0.5)
    wider = RRDBNet(num_feat=24, num_block=2, num_grow_ch=8).state_dict()
    with pytest.raises(CheckpointError, match=r"shape mismatch at key 'conv_first\.weight'"):
        interpolate(a, wider, 0.5)


# ----------------------------------------------------------------------------- names


def test_load_model_by_local_name(tmp_path, monkeypatch, model_and_output) -> None:
    from esrgan_lab import settings

    model, x, expected = model_and_output
    monkeypatch.setattr(settings, "PACKAGE_DATA", tmp_path)
    save_checkpoint(model, tmp_path / "weights" / "lab-gan-x4.safetensors")
    with torch.no_grad():
        assert torch.equal(load_model("lab-gan-x4")(x), expected)
    with pytest.raises(
        lab.DownloadError, match=re.escape(str(tmp_path / "weights" / "lab-psnr-x4.safetensors"))
    ):
        load_model("lab-psnr-x4")
    with pytest.raises(ConfigError, match="unknown weights name 'nope'"):
        load_model("nope")
    with pytest.raises(CheckpointError, match="no such checkpoint file"):
        load_model(Path("nope.pth"))
    # An unregistered file in data/weights is listed from its metadata and loads by name.
    save_checkpoint(tiny(scale=2), tmp_path / "weights" / "my-x2.safetensors", layout="old")
    entry = lab.weights.registry.get_entry("my-x2")
    assert (entry.scale, entry.layout, entry.local) == (2, "old", True)
    assert load_model("my-x2").scale == 2
    assert "my-x2" in [e.name for e in lab.weights.registry.list_entries()]
