"""Trainer: configs, both stages end to end, exact resume, time budget, exports, CLI."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from safetensors.torch import load_file

from esrgan_lab.errors import ConfigError
from esrgan_lab.training.config import load_config, parse_overrides
from esrgan_lab.training.runtime import resolve_amp
from esrgan_lab.training.trainer import train as run_training
from tests.helpers import make_tiny

REPO = Path(__file__).resolve().parents[2]


def _val_folder(tmp_path: Path) -> Path:
    """One small held-out validation image (a crop of scikit-image's validation sample)."""
    import cv2

    from esrgan_lab.data.sources import sample_hr_images

    folder = tmp_path / "val"
    if not folder.is_dir():
        folder.mkdir()
        img = sample_hr_images("val")[0].image[100:196, 200:296]
        cv2.imwrite(str(folder / "crop.png"), img)
    return folder


def tiny_config(tmp_path: Path, **sections) -> Path:
    """A tiny both-stage config on scikit-image samples, written to a YAML file."""
    data = {
        "name": "tiny",
        "seed": 0,
        "scale": 4,
        "stages": ["psnr", "gan"],
        "model": {"num_feat": 8, "num_block": 1, "num_grow_ch": 4},
        "data": {
            "train": ["sample:train[:2]"],
            "val": [str(_val_folder(tmp_path))],
            "gt_size": 32,
            "batch_size": 2,
            "num_workers": 0,
        },
        "psnr": {"total_iter": 4, "milestones": [2, 3], "gamma": 0.5},
        "gan": {
            "total_iter": 4,
            "ema_decay": 0.9,
            "milestones": [2],
            "perceptual": {"layers": {"conv2_2": 1.0}, "backbone": "random"},
            "discriminator": {"type": "unet", "num_feat": 4, "milestones": [2]},
        },
        "logging": {"log_every": 1, "val_every": 2, "save_every": 100, "progress": False},
        # one thread: tiny convs gain nothing from more, and lose a lot on a busy machine
        "runtime": {"device": "cpu", "num_threads": 1},
    }
    for key, value in sections.items():
        if isinstance(value, dict) and isinstance(data.get(key), dict):
            data[key] = {**data[key], **value}
        else:
            data[key] = value
    path = tmp_path / "cfg.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def read_log(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as f:
        return list(csv.DictReader(f))


# --------------------------------------------------------------------------- config


@pytest.mark.parametrize("path", sorted((REPO / "configs").glob("*.yaml")), ids=lambda p: p.name)
def test_shipped_configs_validate(path: Path) -> None:
    cfg = load_config(path)
    assert cfg.stages


def test_paper_recipe_values() -> None:
    psnr = load_config(REPO / "configs" / "paper_psnr.yaml")
    gan = load_config(REPO / "configs" / "paper_gan.yaml")
    assert (psnr.model.num_feat, psnr.model.num_block, psnr.model.num_grow_ch) == (64, 23, 32)
    assert (psnr.data.gt_size, psnr.data.batch_size) == (128, 16)
    assert psnr.psnr.learning_rate == 2e-4 and psnr.psnr.betas == [0.9, 0.99]
    assert psnr.psnr.milestones == [200000, 400000, 600000, 800000] and psnr.psnr.gamma == 0.5
    g = gan.gan
    assert g.learning_rate == 1e-4 and g.discriminator.learning_rate == 1e-4
    assert g.milestones == [50000, 100000, 200000, 300000]
    assert (g.pixel_weight, g.gan_weight, g.gan_type) == (1e-2, 5e-3, "ragan")
    assert g.perceptual.layers == {"conv5_4": 1.0} and g.perceptual.criterion == "l1"
    assert g.discriminator.type == "vgg"


def test_bad_config_keys_and_values(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="unknown config key 'psnr.learnig_rate'"):
        load_config(tiny_config(tmp_path, psnr={"learnig_rate": 1.0}))
    with pytest.raises(ConfigError, match="'data.batch_size' must be an integer"):
        load_config(tiny_config(tmp_path, data={"batch_size": "many"}))
    with pytest.raises(ConfigError, match="gan.gan_type"):
        load_config(tiny_config(tmp_path), [("gan.gan_type", "wgan")])
    with pytest.raises(ConfigError, match="vgg"):
        load_config(tiny_config(tmp_path), [("gan.discriminator.type", "vgg")])
    with pytest.raises(ConfigError, match="no such config file"):
        load_config(tmp_path / "missing.yaml")
    cfg = load_config(tiny_config(tmp_path), parse_overrides(["psnr.learning_rate=2e-4"]))
    assert cfg.psnr.learning_rate == 2e-4
    # a partial gan section keeps the paper defaults it does not mention
    assert cfg.gan.gan_weight == 5e-3 and cfg.gan.discriminator.learning_rate == 1e-4


# --------------------------------------------------------------------------- training


def test_both_stages_end_to_end(tmp_path: Path) -> None:
    from esrgan_lab.weights.loading import load_model

    cfg = load_config(tiny_config(tmp_path))
    out = tmp_path / "run"
    results = run_training(cfg, out)
    assert set(results) == {"psnr", "gan"}
    for stage in ("psnr", "gan"):
        rows = read_log(out / stage / "log.csv")
        assert [int(r["iter"]) for r in rows] == [1, 2, 3, 4]
        assert rows[1]["val_psnr"] and not rows[0]["val_psnr"]
        m = json.loads((out / stage / "metrics.json").read_text())
        assert m["iterations"] == 4 and m["val_psnr_y"] > 0
    psnr_rows = read_log(out / "psnr" / "log.csv")
    # the learning rate each iteration used: halved after 2 and after 3 iterations
    assert [float(r["learning_rate"]) for r in psnr_rows] == [2e-4, 2e-4, 1e-4, 5e-5]
    gan_rows = read_log(out / "gan" / "log.csv")
    assert {"l_percep", "l_gan", "l_d", "d_real", "d_fake"} <= set(gan_rows[0])
    assert [float(r["learning_rate_d"]) for r in gan_rows] == [1e-4, 1e-4, 5e-5, 5e-5]
    gm = json.loads((out / "gan" / "metrics.json").read_text())
    assert gm["perceptual_backbone"] == "random" and gm["perceptual_weights"] == "random (seed 0)"
    # amp: auto records what it resolved to on this CPU (bf16 where native, else fp32)
    expected_amp = "none" if resolve_amp("auto", torch.device("cpu")) is None else "bf16"
    assert gm["provenance"]["commit"] and gm["amp"] == expected_amp and gm["diverged_at"] is None
    # exports: BasicSR layout, loadable by esrgan_lab.weights.loading.load_model
    for fname in ("net_g.safetensors", "net_g_ema.safetensors"):
        model = load_model(out / fname)
        assert model.num_feat == 8 and model.num_block == 1 and model.scale == 4
        ref = load_file(str(out / "gan" / fname))
        for k, v in model.state_dict().items():
            assert torch.equal(v, ref[k]), k
    assert not torch.equal(
        load_file(str(out / "net_g.safetensors"))["conv_last.weight"],
        load_file(str(out / "net_g_ema.safetensors"))["conv_last.weight"],
    )
    state = torch.load(
        next((out / "gan" / "checkpoints").iterdir()) / "state.pt", weights_only=True
    )
    assert state["iteration"] == 4 and "opt_d" in state and "sched_d" in state


def _tensors(path: Path) -> dict[str, torch.Tensor]:
    return load_file(str(path))


def _assert_same(a: Path, b: Path) -> None:
    ta, tb = _tensors(a), _tensors(b)
    assert ta.keys() == tb.keys()
    for k in ta:
        assert torch.equal(ta[k], tb[k]), f"{a.name}: {k} differs"


@pytest.mark.parametrize("stage", ["psnr", "gan"])
def test_resume_continues_from_the_exact_step(tmp_path: Path, stage: str) -> None:
    """N steps straight == N/2 steps, then --resume for the other N/2 (CPU, bitwise)."""
    from esrgan_lab.weights.checkpoints import save_checkpoint

    torch.manual_seed(11)
    init = tmp_path / "init.safetensors"
    save_checkpoint(make_tiny(), init)
    extra = {"stages": [stage]}
    if stage == "gan":
        extra["gan"] = {"pretrained_g": str(init)}
    else:
        extra["psnr"] = {"ema_decay": 0.9}
    path = tiny_config(tmp_path, **extra)
    n = 6
    straight = tmp_path / "straight"
    run_training(load_config(path, [(f"{stage}.total_iter", n)]), straight)
    split = tmp_path / "split"
    run_training(load_config(path, [(f"{stage}.total_iter", n // 2)]), split)
    with pytest.raises(ConfigError, match="--resume"):
        run_training(load_config(path, [(f"{stage}.total_iter", n)]), split)
    run_training(load_config(path, [(f"{stage}.total_iter", n)]), split, resume=True)
    files = ["net_g.safetensors", "net_g_ema.safetensors"]
    for fname in files:
        _assert_same(straight / stage / fname, split / stage / fname)
    if stage == "gan":
        _assert_same(
            straight / "gan" / "checkpoints" / f"iter_{n:08d}" / "net_d.safetensors",
            split / "gan" / "checkpoints" / f"iter_{n:08d}" / "net_d.safetensors",
        )
    log_a, log_b = read_log(straight / stage / "log.csv"), read_log(split / stage / "log.csv")
    assert [r["iter"] for r in log_b] == [r["iter"] for r in log_a]
    drop = {"time_s", "val_psnr"}  # the first leg also validates at its last step
    assert [{k: v for k, v in r.items() if k not in drop} for r in log_a] == [
        {k: v for k, v in r.items() if k not in drop} for r in log_b
    ]
    # resuming a finished stage is a no-op
    again = run_training(load_config(path, [(f"{stage}.total_iter", n)]), split, resume=True)
    assert again[stage]["iterations"] == n


def test_time_budget_stops_saves_and_exports(tmp_path: Path) -> None:
    path = tiny_config(
        tmp_path,
        stages=["psnr"],
        psnr={"total_iter": 1000, "max_minutes": 1e-6},
        logging={"export_dtype": "float16", "progress": False},
    )
    out = tmp_path / "budget"
    m = run_training(load_config(path), out)["psnr"]
    assert m["stopped_by_time_budget"] and m["iterations"] == 1
    assert (out / "psnr" / "checkpoints" / "iter_00000001" / "state.pt").is_file()
    exported = load_file(str(out / "net_g.safetensors"))
    assert all(v.dtype == torch.float16 for v in exported.values())
    m2 = run_training(load_config(path), out, resume=True)["psnr"]
    assert m2["iterations"] == 2


def test_mixed_precision_and_channels_last_path(tmp_path: Path) -> None:
    """The GPU settings (bf16 autocast, channels_last) exercised on the CPU."""
    from esrgan_lab.training.trainer import Trainer

    overrides = [("psnr.total_iter", 2), ("gan.total_iter", 2), ("runtime.amp", "none")]
    cfg = load_config(tiny_config(tmp_path), overrides)
    runs = {}
    for name, amp, fmt in (
        ("fp32", None, torch.contiguous_format),
        ("amp", torch.bfloat16, torch.channels_last),
    ):
        trainer = Trainer(cfg, tmp_path / name)
        trainer.amp_dtype, trainer.memory_format = amp, fmt
        runs[name] = (trainer.run(), tmp_path / name)
    results, out = runs["amp"]
    rows = read_log(out / "gan" / "log.csv")
    assert all(float(r["l_g_total"]) > 0 and float(r["l_d"]) > 0 for r in rows)
    assert results["gan"]["val_psnr_y"] > 0
    state = load_file(str(out / "net_g.safetensors"))
    assert all(v.dtype == torch.float32 and torch.isfinite(v).all() for v in state.values())
    # bf16 autocast is really used (the losses differ from the same run in fp32, whose
    # first step sees the same weights and batch) and stays close (bf16 keeps 8 bits).
    for stage, key in (("psnr", "l_pix"), ("gan", "l_g_total")):
        ref = read_log(runs["fp32"][1] / stage / "log.csv")
        got = read_log(out / stage / "log.csv")
        a, b = float(ref[0][key]), float(got[0][key])
        assert a != b, f"{stage}.{key}: identical to fp32, bf16 autocast not applied"
        assert abs(a - b) < 0.05 * abs(a), (stage, key, a, b)


def test_gan_stage_needs_a_generator(tmp_path: Path) -> None:
    path = tiny_config(tmp_path, stages=["gan"])
    with pytest.raises(ConfigError, match="pretrained_g"):
        run_training(load_config(path), tmp_path / "nog")


def test_cli_train_and_error_line(tmp_path: Path, capsys) -> None:
    from esrgan_lab.cli import main

    path = tiny_config(tmp_path, stages=["psnr"])
    out = tmp_path / "cli"
    assert (
        main(["train", "--config", str(path), "--out", str(out), "--set", "psnr.total_iter=2"]) == 0
    )
    assert "[psnr] 2 iterations" in capsys.readouterr().out
    assert (out / "net_g.safetensors").is_file()
    assert main(["train", "--config", str(path), "--out", str(out), "--set", "psnr.nope=1"]) == 1
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "unknown config key 'psnr.nope'" in err


def test_trainer_builds_the_batchnorm_ablation_generators(tmp_path: Path) -> None:
    from esrgan_lab.cli import main
    from esrgan_lab.weights.loading import load_model

    for norm in ("batch", "batch_hr"):
        (tmp_path / norm).mkdir()
        path = tiny_config(tmp_path / norm, stages=["psnr"], model={"norm": norm})
        out = tmp_path / norm / "run"
        assert main(["train", "--config", str(path), "--out", str(out)]) == 0
        model = load_model(str(out / "net_g.safetensors"))
        assert model.norm == norm
        assert any(isinstance(m, torch.nn.BatchNorm2d) for m in model.modules())
    (tmp_path / "bad").mkdir()
    bad = tiny_config(tmp_path / "bad", model={"norm": "layer"})
    with pytest.raises(ConfigError, match="model.norm"):
        load_config(bad)


def test_gan_stage_starts_from_the_psnr_stage_weights(tmp_path: Path) -> None:
    """With a zero generator learning rate the GAN stage's export is the PSNR export."""
    path = tiny_config(tmp_path, psnr={"ema_decay": 0.5}, gan={"learning_rate": 0.0})
    out = tmp_path / "run"
    run_training(load_config(path), out)
    # BasicSR's choice: the GAN generator starts from the PSNR stage's EMA weights
    _assert_same(out / "psnr" / "net_g_ema.safetensors", out / "gan" / "net_g.safetensors")
    psnr_g = _tensors(out / "psnr" / "net_g.safetensors")
    assert not all(
        torch.equal(v, psnr_g[k]) for k, v in _tensors(out / "gan" / "net_g.safetensors").items()
    )


def test_paper_discriminator_at_128_and_optional_terms(tmp_path: Path) -> None:
    """The VGG-style D (the paper's, 128 px) trains inside the trainer; terms drop out."""
    from esrgan_lab.weights.checkpoints import save_checkpoint

    init = tmp_path / "init.safetensors"
    save_checkpoint(make_tiny(), init)
    seen: list[tuple[str, int, set[str]]] = []
    path = tiny_config(
        tmp_path,
        stages=["gan"],
        data={"gt_size": 128, "batch_size": 2},
        gan={
            "total_iter": 2,
            "pretrained_g": str(init),
            "discriminator": {"type": "vgg", "num_feat": 4},
        },
        logging={"val_every": 100},
    )
    out = tmp_path / "vgg"
    metrics = run_training(
        load_config(path), out, callbacks=[lambda st, it, r: seen.append((st, it, set(r.losses)))]
    )["gan"]
    assert metrics["discriminator"] == "vgg" and metrics["gan_type"] == "ragan"
    assert [it for _, it, _ in seen] == [1, 2]
    assert {"l_pix", "l_percep", "l_gan", "l_d", "d_real", "d_fake"} <= seen[0][2]
    # no adversarial term: no discriminator step; no perceptual term: no VGG
    seen.clear()
    no_gan = load_config(path, [("gan.gan_weight", 0.0), ("gan.perceptual.weight", 0.0)])
    m = run_training(no_gan, tmp_path / "l1only", callbacks=[lambda *a: seen.append(a)])["gan"]
    assert m["discriminator"] is None and m["perceptual_backbone"] is None
    assert all(r.logits is None and set(r.losses) == {"l_pix", "l_g_total"} for *_, r in seen)


def test_divergence_stops_the_stage(tmp_path: Path) -> None:
    path = tiny_config(
        tmp_path,
        stages=["psnr"],
        psnr={"total_iter": 50, "learning_rate": 1e6},
        model={"init_scale": 100.0, "res_scale": 1.0},
    )
    m = run_training(load_config(path), tmp_path / "boom")["psnr"]
    assert m["diverged_at"] is not None and m["iterations"] == m["diverged_at"] < 50
    assert not m["stopped_by_time_budget"]


def test_validation_at_start_and_cli_resume(tmp_path: Path, capsys) -> None:
    from esrgan_lab.cli import main

    path = tiny_config(tmp_path, stages=["psnr"], logging={"val_at_start": True, "val_every": 2})
    out = tmp_path / "cli"
    args = ["train", "--config", str(path), "--out", str(out)]
    assert main([*args, "--set", "psnr.total_iter=2"]) == 0
    rows = read_log(out / "psnr" / "log.csv")
    assert rows[0]["iter"] == "0" and rows[0]["val_psnr"] and not rows[0]["l_pix"]
    assert main([*args, "--set", "psnr.total_iter=4"]) == 1
    assert "--resume" in capsys.readouterr().err
    assert main([*args, "--set", "psnr.total_iter=4", "--resume"]) == 0
    assert "resumed from" in capsys.readouterr().out
    rows = read_log(out / "psnr" / "log.csv")
    assert [r["iter"] for r in rows] == ["0", "1", "2", "3", "4"]


@pytest.mark.parametrize(
    ("section", "key"),
    [
        ({"model": {"num_feat": -3}}, "model.num_feat"),
        ({"model": {"num_block": 0}}, "model.num_block"),
        ({"model": {"num_grow_ch": -1}}, "model.num_grow_ch"),
        ({"model": {"num_feat": 2.5}}, "model.num_feat"),
        ({"data": {"gt_size": -32}}, "data.gt_size"),
        ({"data": {"num_workers": -1}}, "data.num_workers"),
        ({"gan": {"discriminator": {"num_feat": 0}}}, "gan.discriminator.num_feat"),
        ({"model": {"num_feats": 8}}, "model.num_feats"),
    ],
)
def test_bad_model_sizes_and_keys_are_config_errors_naming_the_key(
    tmp_path: Path, capsys, section: dict, key: str
) -> None:
    """Issue 31: `model: {num_feat: -3}` was a torch traceback ("negative dimension")."""
    from esrgan_lab.cli import main

    ((name, value),) = section.items()
    path = tiny_config(tmp_path, **{name: value})
    with pytest.raises(ConfigError, match=repr(key).replace(".", r"\.")):
        load_config(path)
    out = tmp_path / "run"
    assert main(["train", "--config", str(path), "--out", str(out)]) == 1
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and key in err and not out.exists()


def test_pretrained_of_another_scale_or_size_names_the_key(tmp_path: Path) -> None:
    from esrgan_lab.weights.checkpoints import save_checkpoint

    x2 = save_checkpoint(make_tiny(scale=2), tmp_path / "x2.safetensors")
    path = tiny_config(tmp_path, stages=["gan"], gan={"pretrained_g": str(x2)})
    with pytest.raises(ConfigError, match=r"'gan.pretrained_g'.*x2 model.*'scale' is 4"):
        run_training(load_config(path), tmp_path / "a")
    wide = save_checkpoint(make_tiny(num_feat=16), tmp_path / "wide.safetensors")
    path = tiny_config(tmp_path, stages=["psnr"], psnr={"pretrained_g": str(wide)})
    with pytest.raises(ConfigError, match=r"'psnr.pretrained_g'.*num_feat 16.*'model.num_feat'"):
        run_training(load_config(path), tmp_path / "b")


def test_val_crop_validates_on_the_central_square(tmp_path: Path) -> None:
    """``data.val_crop``: the validation PSNR is that of the central HR crop, scored by
    the standard protocol on its own (the crop is taken before degradation)."""
    from esrgan_lab.data.degrade import center_crop
    from esrgan_lab.data.paired import degrade_all
    from esrgan_lab.data.sources import NamedImage, load_source
    from esrgan_lab.evaluation.evaluate import score_pairs
    from esrgan_lab.training.trainer import Trainer

    path = tiny_config(tmp_path, stages=["psnr"], data={"val_crop": 48})
    trainer = Trainer(load_config(path), tmp_path / "run")
    (pair,) = trainer.val_set()
    assert pair.gt.shape[:2] == (48, 48) and pair.lq.shape[:2] == (12, 12)
    full = load_source(str(_val_folder(tmp_path)))[0].image  # 96 x 96
    assert np.array_equal(pair.gt, full[24:72, 24:72])
    model = trainer.build_generator().eval()
    (expected,) = degrade_all([NamedImage("crop", center_crop(full, 48))], 4)
    assert trainer.validate(model) == pytest.approx(
        score_pairs(model, [expected], 4).scores[0].psnr
    )
    with pytest.raises(ConfigError, match="'data.val_crop' must be a positive multiple"):
        load_config(tiny_config(tmp_path, data={"val_crop": 50}))
