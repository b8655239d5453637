"""Loss study helpers: active fractions, RaGAN vs standard GAN terms, short stage 2, scores."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from esrgan_lab.data.datasets import NamedImage, PairedImageSet, PairedPatchDataset
from esrgan_lab.lab import bn_study as ab
from esrgan_lab.lab import loss_study as ls
from esrgan_lab.losses.backbones import IMAGENET_MEAN, IMAGENET_STD, RANDOM_INIT
from esrgan_lab.losses.basic import PerceptualLoss
from esrgan_lab.model.discriminators import build_discriminator

pytestmark = pytest.mark.filterwarnings("ignore:VGG19 perceptual loss uses a RANDOM")


def test_paper_weights() -> None:
    # Eq. 3 of Wang et al. 2018: L_G = L_percep + 5e-3 L_G^Ra + 1e-2 L_1.
    assert ls.PAPER_WEIGHTS == {"perceptual": 1.0, "gan": 5e-3, "pixel": 1e-2}
    full = ls.STAGE2_VARIANTS[-1]
    assert (full.perceptual, full.gan, full.pixel) == (1.0, 5e-3, 1e-2)
    assert [v.gan for v in ls.STAGE2_VARIANTS] == [0.0, 0.0, 5e-3]


def test_active_fraction_and_before_after() -> None:
    vgg = ls.study_vgg(weights=None, layers=["conv1_1", "relu1_1", "conv2_1"])
    assert vgg.weights_source == RANDOM_INIT and "RANDOM" in ls.weights_label(vgg)
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


def _data() -> tuple[PairedPatchDataset, PairedImageSet]:
    rng = np.random.default_rng(0)
    img = np.kron(rng.integers(0, 256, (6, 6, 3)), np.ones((8, 8, 1))).astype(np.uint8)
    return PairedPatchDataset([NamedImage("a", img)], 4, 16, seed=0), PairedImageSet(
        [NamedImage("a", img)], 4
    )


def test_train_stage2_variants() -> None:
    ds, _ = _data()
    g = ab.build_generator(ab.BN_VARIANTS[0], num_feat=8, num_block=1, num_grow_ch=4)
    start = {k: v.clone() for k, v in g.state_dict().items()}
    percep = PerceptualLoss({"conv1_2": 1.0}, weights=None)
    torch.manual_seed(0)
    disc = build_discriminator("unet", num_feat=4)
    d_start = {k: v.clone() for k, v in disc.state_dict().items()}
    results = [
        ls.train_stage2(v, g, ds, iterations=3, batch_size=2, perceptual=percep, discriminator=disc)
        for v in ls.STAGE2_VARIANTS
    ]
    for k, v in g.state_dict().items():
        assert torch.equal(v, start[k]), k
    for k, v in disc.state_dict().items():
        assert torch.equal(v, d_start[k]), k
    l1, lp, full = results
    assert all(len(r.log["l_pix"]) == 3 for r in results)
    assert np.isnan(l1.log["l_percep"]).all() and np.isfinite(lp.log["l_percep"]).all()
    assert not l1.gan_terms and len(full.gan_terms) == 3 and full.last_logits is not None
    assert np.isfinite(full.log["l_d"]).all()
    # The first step starts from the same weights and batch: same pixel loss.
    assert l1.log["l_pix"][0] == pytest.approx(full.log["l_pix"][0])
    # The logged GAN loss is lambda * L_G^Ra.
    assert full.log["l_gan"][0] == pytest.approx(5e-3 * 0.6931, rel=0.05)
    changed = any(not torch.equal(v, start[k]) for k, v in l1.model.state_dict().items())
    assert changed
    with pytest.raises(ValueError):
        ls.train_stage2(ls.STAGE2_VARIANTS[2], g, ds, iterations=1, batch_size=1)


def test_score_sr_without_niqe_model(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ESRGAN_LAB_DATA", raising=False)
    monkeypatch.delenv("ESRGAN_LAB_NIQE_PARAMS", raising=False)
    rng = np.random.default_rng(1)
    img = rng.integers(0, 256, (112, 112, 3)).astype(np.uint8)
    pairs = PairedImageSet([NamedImage("n", img)], 4)
    score = ls.score_sr(None, pairs)
    assert score.niqe is None and "not available" in score.niqe_note
    assert score.psnr == pytest.approx(ab.mean_psnr(None, pairs))
    small = PairedImageSet([NamedImage("s", img[:48, :48])], 4)
    assert ls.score_sr(None, small, niqe=False).niqe_note == "not requested"


def test_score_sr_with_niqe_model() -> None:
    from esrgan_lab.settings import niqe_params_path

    if niqe_params_path() is None:
        pytest.skip("NIQE pristine model not available (ESRGAN_LAB_DATA unset)")
    from skimage.data import astronaut

    from esrgan_lab.data.degrade import bicubic_upscale
    from esrgan_lab.metrics.niqe import calculate_niqe

    pairs = PairedImageSet([NamedImage("astronaut", astronaut()[:256, :256])], 4)
    score = ls.score_sr(None, pairs)
    _, gt, lq = next(iter(pairs))
    ref = calculate_niqe(bicubic_upscale(lq, 4)[..., ::-1], crop_border=4)
    assert score.niqe == pytest.approx(ref) and score.niqe_note == ""


def test_image_batch_centre_crops() -> None:
    a = np.arange(10 * 12 * 3, dtype=np.uint8).reshape(10, 12, 3)
    b = np.zeros((20, 20, 3), np.uint8)
    batch = ls.image_batch([NamedImage("a", a), b], 16)
    assert batch.shape == (2, 3, 10, 10)  # limited by the smaller image
    torch.testing.assert_close(
        batch[0], torch.from_numpy(a[:, 1:11].transpose(2, 0, 1)).float() / 255
    )
