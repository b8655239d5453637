"""Loss study: active fractions, RaGAN vs standard GAN terms, stage-2 variants, scores."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from esrgan_lab.data.images import array_to_tensor
from esrgan_lab.data.paired import PairedImageSet
from esrgan_lab.data.sources import NamedImage
from esrgan_lab.lab import bn_study as ab
from esrgan_lab.lab import loss_study as ls
from esrgan_lab.lab.runs import make_config
from esrgan_lab.losses.backbones import IMAGENET_MEAN, IMAGENET_STD
from esrgan_lab.weights.checkpoints import save_checkpoint
from tests.helpers import TINY, make_tiny


def test_variants_switch_the_terms_of_the_paper_objective() -> None:
    # Eq. 3 of Wang et al. 2018: L_G = L_percep + 5e-3 L_G^Ra + 1e-2 L_1; the weights come
    # from the base config, the variants only switch terms on and off.
    base = make_config({"gan": {"perceptual": {"weight": 0.25}}})
    assert (base.gan.gan_weight, base.gan.pixel_weight) == (5e-3, 1e-2)
    by_name = {v.name: v.overrides(base) for v in ls.STAGE2_VARIANTS}
    full = by_name["L1 + perceptual + RaGAN (ESRGAN)"]
    assert full["gan.perceptual.weight"] == 0.25 and full["gan.gan_weight"] == 5e-3
    assert full["gan.gan_type"] == "ragan"
    assert by_name["L1 only"]["gan.perceptual.weight"] == 0 == by_name["L1 only"]["gan.gan_weight"]
    assert by_name["L1 + perceptual + standard GAN"]["gan.gan_type"] == "vanilla"
    assert by_name["L1 + perceptual (after ReLU)"]["gan.perceptual.layers"] == {"relu5_4": 1.0}


def test_active_fraction_and_before_after() -> None:
    vgg = ls.study_vgg("random", layers=["conv1_1", "relu1_1", "conv2_1"])
    assert vgg.weights_source == "random (seed 0)" and "RANDOM" in ls.weights_label(vgg)
    x = torch.rand(2, 3, 16, 16)
    frac = ls.active_fraction(vgg, x)
    assert list(frac) == ["conv1_1", "conv2_1"]
    norm = (x - torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)) / torch.tensor(IMAGENET_STD).view(
        1, 3, 1, 1
    )
    with torch.no_grad():
        ref = (vgg.features[0](norm) > 0).float().mean().item()
    assert frac["conv1_1"] == pytest.approx(ref)
    before, after = ls.before_after(vgg, x[:1], "conv1_1", [0, 5])
    assert before.shape == (2, 16, 16)
    np.testing.assert_array_equal(after, np.maximum(before, 0))
    with pytest.raises(ValueError):
        ls.before_after(vgg, x[:1], "relu1_1", [0])


def test_gan_loss_terms_against_formulas() -> None:
    gen = torch.Generator().manual_seed(0)
    real = torch.randn(6, generator=gen) + 1.0
    fake = torch.randn(4, generator=gen) - 1.0
    t = ls.gan_loss_terms(real, fake)
    sig = torch.sigmoid
    r, f = real.double(), fake.double()
    # Paper Eq. 1-2 with D_Ra(a, b) = sigmoid(C(a) - E[C(b)]), each term halved.
    d_ra = -(torch.log(sig(r - f.mean())).mean() + torch.log(1 - sig(f - r.mean())).mean()) / 2
    g_ra = -(torch.log(1 - sig(r - f.mean())).mean() + torch.log(sig(f - r.mean())).mean()) / 2
    assert t.d_ragan == pytest.approx(d_ra.item(), rel=1e-5)
    assert t.g_ragan == pytest.approx(g_ra.item(), rel=1e-5)
    assert t.g_vanilla == pytest.approx(-torch.log(sig(f)).mean().item(), rel=1e-5)
    n = len(fake)
    # Analytic gradients w.r.t. each fake logit.
    np.testing.assert_allclose(t.grad_vanilla, (-(1 - sig(f)) / n).numpy(), rtol=1e-5)
    np.testing.assert_allclose(
        t.grad_ragan_fake_term, (-(1 - sig(f - r.mean())) / (2 * n)).numpy(), rtol=1e-5
    )
    real_term = -sig(r - f.mean()).mean() / (2 * n)
    np.testing.assert_allclose(t.grad_ragan_real_term, np.full(n, real_term.item()), rtol=1e-5)
    np.testing.assert_allclose(
        t.grad_ragan, t.grad_ragan_real_term + t.grad_ragan_fake_term, rtol=1e-5
    )


def test_gradient_sweep() -> None:
    real = torch.linspace(-1, 1, 8)
    sweep = ls.gradient_sweep(real, [-10.0, 0.0, 10.0])
    assert sweep["offset"].tolist() == [-10.0, 0.0, 10.0]
    # Fakes far worse than reals: the non-saturating vanilla gradient is ~1/N.
    assert sweep["vanilla"][0] == pytest.approx(1 / 8, rel=1e-3)
    # Fakes judged far more real: both fake-side gradients vanish.
    assert sweep["vanilla"][2] < 1e-3 and sweep["ragan_fake_term"][2] < 1e-3
    t0 = ls.gan_loss_terms(real, real)
    assert sweep["ragan"][1] == pytest.approx(np.abs(t0.grad_ragan).mean())


def _stage2_base(tmp_path):
    import cv2

    rng = np.random.default_rng(0)
    img = np.kron(rng.integers(0, 256, (6, 6, 3)), np.ones((8, 8, 1))).astype(np.uint8)
    folder = tmp_path / "imgs"
    folder.mkdir()
    cv2.imwrite(str(folder / "a.png"), img)
    return make_config(
        {
            "model": dict(TINY),
            "data": {"train": [str(folder)], "val": [], "gt_size": 16, "batch_size": 2},
            "gan": {
                "total_iter": 3,
                "perceptual": {"layers": {"conv1_2": 1.0}, "backbone": "random"},
                "discriminator": {"type": "unet", "num_feat": 4},
            },
            "logging": {"log_every": 1, "save_every": 100, "progress": False},
            "runtime": {"device": "cpu", "num_threads": 1},
        }
    )


def test_stage2_variants_train_through_the_trainer(tmp_path) -> None:
    base = _stage2_base(tmp_path)
    start = tmp_path / "psnr.safetensors"
    save_checkpoint(make_tiny(), start)
    variants = [ls.STAGE2_VARIANTS[0], ls.STAGE2_VARIANTS[1], ls.STAGE2_VARIANTS[-1]]
    results = ls.train_stage2(variants, base, start, tmp_path / "out")
    l1, lp, full = (results[v.name] for v in variants)
    assert all(len(r.run.curve("l_pix")[1]) == 3 for r in results.values())
    assert len(l1.run.curve("l_percep")[1]) == 0 and len(lp.run.curve("l_percep")[1]) == 3
    assert not l1.gan_terms and len(full.gan_terms) == 3 and full.last_logits is not None
    assert len(full.run.curve("l_d")[1]) == 3
    # every variant starts from the same weights and batch: the same first pixel loss
    assert l1.run.log["l_pix"][0] == pytest.approx(full.run.log["l_pix"][0])
    # the logged GAN term is lambda * L_G^Ra (about lambda log 2 at the start)
    assert full.run.log["l_gan"][0] == pytest.approx(5e-3 * 0.6931, rel=0.05)
    start_sd = make_tiny().state_dict()
    trained = l1.run.model().state_dict()
    assert any(not torch.equal(v, start_sd[k]) for k, v in trained.items())
    assert full.run.metrics["gan_type"] == "ragan" and l1.run.metrics["discriminator"] is None


def test_score_sr_without_niqe_model(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ESRGAN_LAB_DATA", raising=False)
    monkeypatch.delenv("ESRGAN_LAB_NIQE_PARAMS", raising=False)
    rng = np.random.default_rng(1)
    img = rng.integers(0, 256, (112, 112, 3)).astype(np.uint8)
    pairs = PairedImageSet([NamedImage("n", img)], 4)
    score = ls.score(None, pairs)
    assert score.niqe is None and "not available" in score.niqe_note
    assert score.psnr == pytest.approx(ab.mean_psnr(None, pairs))
    assert ls.score(None, pairs, niqe=False).niqe is None


def test_score_with_niqe_model(niqe_params) -> None:
    from skimage.data import astronaut

    from esrgan_lab.data.degrade import bicubic_upscale
    from esrgan_lab.metrics.niqe import calculate_niqe

    bgr = astronaut()[:256, :256, ::-1].copy()
    pairs = PairedImageSet([NamedImage("a", bgr), NamedImage("b", bgr[::-1].copy())], 4)
    score = ls.score(None, pairs)
    refs = [calculate_niqe(bicubic_upscale(p.lq, 4), crop_border=4) for p in pairs]
    assert score.niqe == pytest.approx(np.mean(refs)) and score.niqe_note == ""
    assert score.niqe_median == pytest.approx(np.median(refs))


def test_image_batch_centre_crops() -> None:
    a = np.arange(10 * 12 * 3, dtype=np.uint8).reshape(10, 12, 3)
    b = np.zeros((20, 20, 3), np.uint8)
    batch = ls.image_batch([NamedImage("a", a), b], 16)
    assert batch.shape == (2, 3, 10, 10)  # limited by the smaller image
    torch.testing.assert_close(batch[:1], array_to_tensor(a[:, 1:11]))
    assert torch.allclose(batch[0, 0], torch.from_numpy(a[:, 1:11, 2]).float() / 255)  # RGB


def test_stored_study_start_weights_reproduce_its_start_scores(data_root) -> None:
    """The stored losses study keeps its start generator beside its results: scoring that file
    again gives the Set5 PSNR the study recorded for its start (a stored reference output)."""
    import yaml

    from esrgan_lab.evaluation.evaluate import evaluate_model
    from esrgan_lab.lab.experiments import EXPERIMENTS_DIR, PARAMS_DIR
    from esrgan_lab.settings import REPO_ROOT

    params = yaml.safe_load((PARAMS_DIR / "03_losses.yaml").read_text())["study"]
    stored = EXPERIMENTS_DIR / "losses"
    results = json.loads((stored / "results.json").read_text())
    assert results["start"]["weights"] == params["pretrained"]
    path = REPO_ROOT / params["pretrained"]
    report = evaluate_model(str(path), ["Set5"], niqe=False, progress=False)
    assert [s.psnr for s in report.scores] == pytest.approx(
        results["start"]["Set5"]["psnr"], abs=1e-3
    )


def _gate_results(val_scores: dict[str, list[tuple[float, float]]], with_val: bool = True) -> dict:
    """Synthetic stored results: per variant, per seed, (val PSNR, val NIQE) on one image,
    and test NIQE that separates the variants (so only the gate decides the verdict)."""
    names = list(val_scores)
    runs = {
        n: [
            {
                "seed": s,
                "val": {"V": {"psnr": [p], "niqe": [q]}},
                "test": {"T": {"psnr": [25.0], "niqe": [5.0 + i + 0.01 * s]}},
            }
            for s, (p, q) in enumerate(val_scores[n])
        ]
        for i, n in enumerate(names)
    }
    results = {
        "variants": names,
        "runs": runs,
        "bicubic": {"T": {"psnr": [24.0], "niqe": [8.0]}},
        "start": {"T": {"psnr": [26.0], "niqe": [8.0]}, "weights": "w"},
    }
    if with_val:
        results["val"] = {"images": {"V": ["a"]}, "bicubic": {"V": {"psnr": [25.0], "niqe": [7.0]}}}
    return results


def test_validation_margins_are_reported_and_no_run_is_left_out() -> None:
    """A run worse than bicubic on both axes is named with its margins and still compared."""
    perc, ragan = "L1 + perceptual", "L1 + perceptual + RaGAN (ESRGAN)"
    gan, after = "L1 + perceptual + standard GAN", "L1 + perceptual (after ReLU)"
    results = _gate_results(
        {
            perc: [(24.0, 6.0), (24.5, 7.5)],
            after: [(24.0, 6.5), (24.0, 6.9)],
            ragan: [(26.0, 7.5), (24.0, 6.0)],
            gan: [(24.0, 6.0), (24.0, 6.0)],
        }
    )
    line = ls.validation_margins(results)
    assert line.startswith("Against bicubic on the 1 validation image ")
    lines = ls.description(results)
    assert "niqe features before vs after ReLU" in lines
    assert not any("claim" in k for k in lines)
    assert ls.validation_margins(_gate_results({perc: [(26.0, 6.0)]}, with_val=False)).startswith(
        "The study scored no validation"
    )
