"""The ESRGAN losses, measured (Wang et al. 2018, Sec. 3.2-3.3): reusable code of 03_losses.

* Perceptual features *before* activation (paper Sec. 3.3, Fig. 6): :func:`active_fraction`
  (the share of positive pre-activations, i.e. of neurons a ReLU lets through, per VGG19
  conv layer) and :func:`before_after` (feature maps before and after the ReLU).
* Relativistic average GAN versus the standard GAN (paper Sec. 3.2, Eq. 1-2):
  :func:`gan_loss_terms` evaluates both losses on the same discriminator logits and the
  generator's gradient with respect to the fake logits, split into the RaGAN's real and
  fake terms; :func:`gradient_sweep` shows how each behaves as the fakes improve.
* The generator objective ``L_G = L_percep + lambda L_G^Ra + eta L_1`` (paper Eq. 3) and
  the stage-2 ablation (:func:`train_stage2`, :data:`STAGE2_VARIANTS`): every variant
  trains through the project's trainer from the same PSNR-oriented generator, and is
  scored by PSNR and NIQE (:func:`score`).

The redesigned study ``losses_v2`` (issue 28) is in :mod:`.loss_study_v2`; it trains and
scores with the pieces above.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..data.images import array_to_tensor
from ..data.paired import PairedImageSet
from ..evaluation.evaluate import score_pairs
from ..losses.backbones import VGG19_LAYERS, VGGFeatureExtractor
from ..losses.gan import GANLoss
from ..training.config import TrainConfig
from ..training.steps import StepResult
from .runs import Run, make_config, run_config

#: Loss weights of the paper's GAN stage (Eq. 3): perceptual 1, lambda = 5e-3, eta = 1e-2.
PAPER_WEIGHTS: dict[str, float] = {"perceptual": 1.0, "gan": 5e-3, "pixel": 1e-2}

#: The 16 conv layers of VGG19 (outputs before activation).
VGG19_CONVS: tuple[str, ...] = tuple(n for n in VGG19_LAYERS if n.startswith("conv"))

# --------------------------------------------------------------------------- VGG features


def study_vgg(backbone: str, layers: Sequence[str] = VGG19_CONVS) -> VGGFeatureExtractor:
    """A frozen feature network returning ``layers`` (VGG19 names; see
    :class:`~esrgan_lab.losses.backbones.VGGFeatureExtractor`). No fallback: a backbone
    that cannot be had raises."""
    return VGGFeatureExtractor(list(layers), backbone)


def weights_label(vgg: VGGFeatureExtractor) -> str:
    """What a figure says about the feature network it shows."""
    names = {
        "vgg19-imagenet": "ImageNet VGG19 (the paper's)",
        "vgg16-hed": "VGG16 trunk of HED (ImageNet, fine-tuned on BSDS500 edges)",
        "random": "RANDOM-init VGG19 (untrained: not the paper's network)",
    }
    return names.get(vgg.backbone, f"VGG19 from {vgg.backbone}")


@torch.no_grad()
def active_fraction(vgg: VGGFeatureExtractor, images: torch.Tensor) -> dict[str, float]:
    """Fraction of positive pre-activation values per conv layer (``convB_K`` names).

    A ReLU passes exactly the positive values, so this is the fraction of *active*
    neurons after activation. The paper's observation (Sec. 3.3, Fig. 6) for an
    ImageNet-trained VGG19: it falls with depth, the deep features after activation
    are very sparse - hence the perceptual loss on ``conv5_4`` *before* activation.

    Args:
        vgg: Extractor returning (at least) the wanted ``convB_K`` layers.
        images: ``(N, 3, H, W)`` RGB on [0, 1].

    Returns:
        ``{layer: fraction in [0, 1]}`` for every conv layer of the backbone the extractor
        computes (its own names: a VGG16 trunk has ``conv5_3``, not ``conv5_4``).
    """
    feats = vgg(images)
    out = {}
    for requested, actual in vgg.layer_map.items():
        if requested.startswith("conv") and actual not in out:
            out[actual] = float((feats[requested] > 0).float().mean())
    return out


@torch.no_grad()
def before_after(
    vgg: VGGFeatureExtractor, image: torch.Tensor, layer: str, channels: Sequence[int]
) -> tuple[np.ndarray, np.ndarray]:
    """Feature maps of ``layer`` (a ``convB_K``) before and after its ReLU.

    Args:
        vgg: Extractor that returns ``layer``.
        image: ``(1, 3, H, W)`` RGB on [0, 1].
        layer: A conv layer name, e.g. ``"conv5_4"``.
        channels: Channel indices to return.

    Returns:
        ``(before, after)``, each ``(len(channels), h, w)`` float32; ``after = max(before, 0)``.
    """
    if not layer.startswith("conv"):
        raise ValueError(f"layer must be a convB_K name, got {layer!r}")
    before = vgg(image)[layer][0, list(channels)].float()
    return before.numpy(), F.relu(before).numpy()


@torch.no_grad()
def brightness_response(
    vgg: VGGFeatureExtractor, images: torch.Tensor, layer: str, deltas: Sequence[float]
) -> dict[str, np.ndarray]:
    """How much a perceptual loss on ``layer`` sees a global brightness shift, before and
    after the ReLU, relative to how much it sees lost detail.

    The paper's second reason for features before activation (Sec. 3.3): a loss on the
    sparse activated features "causes inconsistent reconstructed brightness compared with
    the ground-truth image". A loss that barely changes when the whole image is brightened
    cannot hold the generator to the right brightness. For each ``delta`` the image
    ``clamp(x + delta, 0, 1)`` is compared with ``x`` by the L1 distance of the features;
    the distance is divided by that of the same feature space between ``x`` and ``x``
    without its detail (bicubic x4 down and up, the loss of fine texture an SR network
    must put back), so both feature spaces are on one scale: 1 means the shift costs as
    much as losing the detail.

    Args:
        vgg: Extractor that returns ``layer``.
        images: ``(N, 3, H, W)`` RGB on [0, 1], ``H`` and ``W`` multiples of 4.
        layer: A conv layer name, e.g. ``"conv5_4"``.
        deltas: Brightness offsets on the [0, 1] scale.

    Returns:
        ``{"before": (len(deltas),), "after": (len(deltas),)}`` relative distances.
    """
    if not layer.startswith("conv"):
        raise ValueError(f"layer must be a convB_K name, got {layer!r}")

    def feats(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        f = vgg(x)[layer].float()
        return f, F.relu(f)

    ref = feats(images)
    size = images.shape[-2:]
    small = F.interpolate(images, scale_factor=0.25, mode="bicubic", antialias=True)
    smooth = F.interpolate(small, size=size, mode="bicubic").clamp(0, 1)
    detail = [float(F.l1_loss(a, b)) for a, b in zip(feats(smooth), ref)]
    out = np.zeros((2, len(deltas)))
    for k, delta in enumerate(deltas):
        shifted = feats((images + delta).clamp(0, 1))
        for side in range(2):
            out[side, k] = float(F.l1_loss(shifted[side], ref[side])) / detail[side]
    return {"before": out[0], "after": out[1]}


# --------------------------------------------------------------------------- GAN losses


@dataclass
class GanTerms:
    """Both adversarial losses on one pair of logit batches, and the generator's gradient.

    Attributes:
        d_ragan, g_ragan: :class:`~esrgan_lab.losses.basic.GANLoss` ``"ragan"`` values.
        d_vanilla, g_vanilla: The standard GAN's values.
        grad_vanilla: ``dL_G/dC(x_f)`` of the standard GAN, per fake sample ``(N,)``.
        grad_ragan: ``dL_G^Ra/dC(x_f)``, per fake sample ``(N,)``.
        grad_ragan_real_term: The part of ``grad_ragan`` that comes from the *real*
            term ``-E[log(1 - D_Ra(x_r, x_f))]`` (through ``E[C(x_f)]``).
        grad_ragan_fake_term: The part from the fake term ``-E[log D_Ra(x_f, x_r)]``.
    """

    d_ragan: float
    g_ragan: float
    d_vanilla: float
    g_vanilla: float
    grad_vanilla: np.ndarray
    grad_ragan: np.ndarray
    grad_ragan_real_term: np.ndarray
    grad_ragan_fake_term: np.ndarray


def _grad(loss_fn, fake: torch.Tensor) -> np.ndarray:
    x = fake.detach().clone().requires_grad_(True)
    (g,) = torch.autograd.grad(loss_fn(x), x)
    return g.double().numpy().reshape(-1)


def gan_loss_terms(real_logits: torch.Tensor, fake_logits: torch.Tensor) -> GanTerms:
    """Evaluate RaGAN and standard GAN losses (weight 1) on the same logits.

    The RaGAN generator loss is split as the paper writes it (Eq. 2, halved as in
    :class:`~esrgan_lab.losses.basic.GANLoss`): ``L_G^Ra = (BCE(C(x_r) - E C(x_f), 0) +
    BCE(C(x_f) - E C(x_r), 1)) / 2``. The first (real) term depends on the generator
    only through ``E[C(x_f)]``: it is the gradient that real data contribute, absent in
    the standard GAN.

    Args:
        real_logits: ``(N, ...)`` discriminator logits ``C(x_r)`` on real images.
        fake_logits: ``(M, ...)`` logits on generated images.
    """
    real = real_logits.detach().float().reshape(-1)
    fake = fake_logits.detach().float().reshape(-1)
    ra, va = GANLoss("ragan"), GANLoss("vanilla")

    def bce(x: torch.Tensor, t: float) -> torch.Tensor:
        return F.binary_cross_entropy_with_logits(x, torch.full_like(x, t))

    return GanTerms(
        d_ragan=float(ra.discriminator_loss(real, fake)),
        g_ragan=float(ra.generator_loss(real, fake)),
        d_vanilla=float(va.discriminator_loss(real, fake)),
        g_vanilla=float(va.generator_loss(real, fake)),
        grad_vanilla=_grad(lambda f: va.generator_loss(real, f), fake),
        grad_ragan=_grad(lambda f: ra.generator_loss(real, f), fake),
        grad_ragan_real_term=_grad(lambda f: bce(real - f.mean(), 0.0) / 2, fake),
        grad_ragan_fake_term=_grad(lambda f: bce(f - real.mean(), 1.0) / 2, fake),
    )


def gradient_sweep(real_logits: torch.Tensor, offsets: Sequence[float]) -> dict[str, np.ndarray]:
    """Mean ``|dL_G/dC(x_f)|`` when the fake logits are ``real_logits + offset``.

    Negative offsets: D finds the fakes clearly less real; 0: indistinguishable;
    positive: the fakes look *more* real than the reals.

    Returns:
        ``{"offset", "vanilla", "ragan", "ragan_real_term", "ragan_fake_term"}`` arrays.
    """
    rows = {k: [] for k in ("vanilla", "ragan", "ragan_real_term", "ragan_fake_term")}
    real = real_logits.detach().float().reshape(-1)
    for off in offsets:
        t = gan_loss_terms(real, real + off)
        rows["vanilla"].append(np.abs(t.grad_vanilla).mean())
        rows["ragan"].append(np.abs(t.grad_ragan).mean())
        rows["ragan_real_term"].append(np.abs(t.grad_ragan_real_term).mean())
        rows["ragan_fake_term"].append(np.abs(t.grad_ragan_fake_term).mean())
    out = {k: np.asarray(v) for k, v in rows.items()}
    out["offset"] = np.asarray(list(offsets), dtype=np.float64)
    return out


# --------------------------------------------------------------------------- stage 2


@dataclass(frozen=True)
class Stage2Variant:
    """Which loss terms one GAN-stage run uses; the weights come from the base config.

    Attributes:
        name: Label in tables and plots.
        perceptual: Use the base config's perceptual term.
        gan_type: ``"ragan"`` (ESRGAN), ``"vanilla"`` (SRGAN's standard GAN) or ``None``
            (no adversarial term, no discriminator).
        layer: Perceptual layer instead of the base config's, e.g. ``"relu5_4"`` (after
            activation, SRGAN's choice) against ``"conv5_4"`` (before, ESRGAN's).
    """

    name: str
    perceptual: bool = True
    gan_type: str | None = "ragan"
    layer: str | None = None

    def overrides(self, base: TrainConfig) -> dict[str, object]:
        """Config keys that turn ``base``'s GAN stage into this variant."""
        pc = base.gan.perceptual
        out: dict[str, object] = {
            "gan.perceptual.weight": pc.weight if self.perceptual else 0.0,
            "gan.gan_weight": base.gan.gan_weight if self.gan_type else 0.0,
            "gan.gan_type": self.gan_type or base.gan.gan_type,
        }
        if self.layer:
            out["gan.perceptual.layers"] = {self.layer: 1.0}
        return out

    @property
    def after_activation(self) -> bool:
        """The perceptual term reads features after their ReLU (SRGAN's choice)."""
        return bool(self.layer) and str(self.layer).startswith("relu")

    def at_layer(self, before: str) -> Stage2Variant:
        """This variant with its perceptual term on ``before`` (a ``convB_K`` name, the
        features before activation), or on that layer's ReLU output (``reluB_K``) when the
        variant is an after-activation one."""
        return replace(self, layer=relu_of(before) if self.after_activation else before)


def relu_of(layer: str) -> str:
    """``"conv5_3"`` -> ``"relu5_3"``: the same features after their activation."""
    if not layer.startswith("conv"):
        raise ValueError(f"expected a convB_K layer (before activation), got {layer!r}")
    return "relu" + layer[len("conv") :]


#: The stage-2 ablation (paper Sec. 3.2-3.3, Fig. 7 and the supplement).
STAGE2_VARIANTS: tuple[Stage2Variant, ...] = (
    Stage2Variant("L1 only", perceptual=False, gan_type=None),
    Stage2Variant("L1 + perceptual", gan_type=None),
    Stage2Variant("L1 + perceptual (after ReLU)", gan_type=None, layer="relu5_4"),
    Stage2Variant("L1 + perceptual + standard GAN", gan_type="vanilla"),
    Stage2Variant("L1 + perceptual + RaGAN (ESRGAN)", gan_type="ragan"),
)


#: The arms of the redesigned study ``losses_v2`` (03_losses.yaml ``registration_v2``), in
#: the paper's VGG19 names; :func:`matched_variants` puts each on the registered layer
#: (``conv5_3`` of ``vgg16-hed``, or its ReLU for the after-activation arm).
MATCHED_ARMS: tuple[Stage2Variant, ...] = (
    Stage2Variant("L1 + perceptual", gan_type=None, layer="conv5_4"),
    Stage2Variant("L1 + perceptual + RaGAN (ESRGAN)", gan_type="ragan", layer="conv5_4"),
    Stage2Variant("L1 + perceptual + standard GAN", gan_type="vanilla", layer="conv5_4"),
    Stage2Variant("L1 + perceptual (after ReLU) + RaGAN", gan_type="ragan", layer="relu5_4"),
)


@dataclass
class Stage2Result:
    """A finished stage-2 run and the adversarial terms seen along the way.

    Attributes:
        variant: What was trained.
        run: The trainer's record (log, metrics, exported generator).
        gan_terms: :func:`gan_loss_terms` on every D step's logits (GAN variants).
        last_logits: ``(real, fake)`` logits of the last D step.
    """

    variant: Stage2Variant
    run: Run
    gan_terms: list[GanTerms] = field(default_factory=list)
    last_logits: tuple[torch.Tensor, torch.Tensor] | None = None


def train_stage2(
    variants: Sequence[Stage2Variant],
    base: TrainConfig,
    pretrained_g: str | Path,
    out: str | Path,
    *,
    seed: int | None = None,
    record_terms: bool = True,
) -> dict[str, Stage2Result]:
    """Train every variant's GAN stage from the same PSNR-oriented generator.

    Args:
        variants: Loss-term choices.
        base: A config whose ``gan`` section holds the weights, discriminator and data.
        pretrained_g: The PSNR-oriented generator all variants start from.
        out: Output folder (one subfolder per variant).
        seed: Overrides ``base.seed``.
        record_terms: Collect :func:`gan_loss_terms` after every D step (a trainer
            callback).
    """
    out = Path(out)
    results: dict[str, Stage2Result] = {}
    for i, v in enumerate(variants):
        overrides = v.overrides(base)
        overrides["gan.pretrained_g"] = str(pretrained_g)
        if seed is not None:
            overrides["seed"] = seed
        cfg = make_config(base, stages=["gan"], **overrides)
        recorder = _TermRecorder(record_terms)
        run = run_config(v.name, cfg, out / f"{i}", callbacks=[recorder])["gan"]
        results[v.name] = Stage2Result(v, run, recorder.terms, recorder.last)
    return results


class _TermRecorder:
    """Trainer callback: the logits of every D step, as :func:`gan_loss_terms`."""

    def __init__(self, record_terms: bool) -> None:
        self.record_terms = record_terms
        self.terms: list[GanTerms] = []
        self.last: tuple[torch.Tensor, torch.Tensor] | None = None

    def __call__(self, stage: str, iteration: int, result: StepResult) -> None:
        if result.logits is None:
            return
        real, fake = (t.detach().cpu().clone() for t in result.logits)
        self.last = (real, fake)
        if self.record_terms:
            self.terms.append(gan_loss_terms(real, fake))


@dataclass
class SrScore:
    """Mean Y-PSNR, and mean and median NIQE (``None`` with a reason when unavailable)."""

    psnr: float
    niqe: float | None
    niqe_median: float | None
    niqe_note: str = ""


def score(model: nn.Module | None, pairs: PairedImageSet, niqe: bool = True) -> SrScore:
    """PSNR (Y, crop_border = scale) and NIQE (lower = more natural) of ``model``'s outputs.

    ``model=None`` scores bicubic upsampling. Uses the project's one scoring loop
    (:func:`esrgan_lab.evaluation.evaluate.score_pairs`); NIQE needs the pristine model
    file (:func:`esrgan_lab.settings.niqe_params_path`) and images larger than one
    96x96 block.
    """
    if model is not None:
        model.eval()
    report = score_pairs("bicubic" if model is None else model, pairs, pairs.scale, niqe=niqe)
    m = report.means()
    key = "all" if "all" in m else next(iter(m))
    note = "" if report.niqe_status == "computed" else report.niqe_status
    return SrScore(m[key]["psnr"], m[key]["niqe"], m[key]["niqe_median"], note)


def image_batch(images: Sequence, size: int) -> torch.Tensor:
    """Centre ``size x size`` crops of uint8 BGR images (``NamedImage`` or arrays).

    Returns:
        ``(N, 3, size, size)`` RGB float32 on [0, 1]; images smaller than ``size`` are
        cropped to their smaller side and all crops to the smallest.
    """
    arrays = [np.asarray(getattr(im, "image", im)) for im in images]
    size = min([size] + [min(a.shape[:2]) for a in arrays])
    crops = []
    for a in arrays:
        top, left = (a.shape[0] - size) // 2, (a.shape[1] - size) // 2
        crops.append(array_to_tensor(a[top : top + size, left : left + size, :3]))
    return torch.cat(crops)


# --------------------------------------------------------------------------- experiment


def stage2_config(params: dict) -> TrainConfig:
    """The GAN-stage config of the stored stage-2 study (the lab recipe, shortened)."""
    iterations = int(params["iterations"])
    return make_config(
        {
            "scale": params["scale"],
            "stages": ["gan"],
            "model": {
                "num_feat": params["num_feat"],
                "num_block": params["num_block"],
                "num_grow_ch": params["num_grow_ch"],
            },
            "data": {
                "train": list(params["train"]),
                "val": list(params["val"]),
                "gt_size": params["gt_size"],
                "batch_size": params["batch_size"],
                "num_workers": 0,
            },
            "gan": {
                "total_iter": iterations,
                "learning_rate": params["learning_rate"],
                "pixel_weight": params["pixel_weight"],
                "gan_weight": params["gan_weight"],
                "perceptual": {
                    "layers": {"conv5_4": 1.0},
                    "weight": params["perceptual_weight"],
                    "backbone": params["backbone"],
                },
                "discriminator": {
                    "type": params["discriminator"],
                    "num_feat": params["disc_num_feat"],
                    "learning_rate": params["learning_rate"],
                },
            },
            "logging": {
                "log_every": max(1, iterations // 50),
                "val_every": iterations,
                "save_every": max(1, iterations // 3),
                "keep_checkpoints": 1,
                "progress": False,
            },
            "runtime": {
                "device": "cpu",
                "num_threads": params.get("threads", 2),
                "amp": params.get("amp", "auto"),
            },
        }
    )


def _term_summary(terms: Sequence[GanTerms]) -> dict[str, list[float]]:
    """Per iteration: the adversarial losses and the generator's gradient magnitudes."""
    keys = ("d_ragan", "g_ragan", "d_vanilla", "g_vanilla")
    out = {k: [getattr(t, k) for t in terms] for k in keys}
    for k in ("grad_vanilla", "grad_ragan", "grad_ragan_real_term", "grad_ragan_fake_term"):
        out[k] = [float(np.abs(getattr(t, k)).sum()) for t in terms]
    return out


def run_experiment(
    params: dict, out: str | Path, *, progress: bool = False
) -> tuple[dict, dict[str, np.ndarray]]:
    """The stage-2 ablation (:data:`STAGE2_VARIANTS`) from the same PSNR-oriented model,
    with every seed, scored by PSNR and NIQE (mean and per image) on the test sets and on
    the validation images (``params["val"]``, held out from training and from the test
    sets; :func:`validation_margins` reports them).

    The redesigned ``losses_v2`` is :func:`esrgan_lab.lab.loss_study_v2.run_matched`.

    Returns:
        ``(results, images)`` for :func:`esrgan_lab.lab.experiments.save`.
    """
    from ..evaluation.evaluate import score_pairs
    from ..weights.loading import load_model
    from .experiments import gallery, pooled_score, study_weights, test_sets
    from .runs import run_record

    out = Path(out)
    start = study_weights(str(params["pretrained"]))
    base = stage2_config(params)
    names = list(params.get("variants") or [v.name for v in STAGE2_VARIANTS])
    variants = [v for v in STAGE2_VARIANTS if v.name in names]
    test = test_sets(params)
    val = test_sets({"test": params["val"], "scale": params["scale"]}) if params["val"] else {}

    def scores(model, sets: dict = test) -> dict:
        per_set = {}
        for name, pairs in sets.items():
            report = score_pairs(model, pairs, pairs.scale, niqe=True)
            per_set[name] = {
                "psnr": [s.psnr for s in report.scores],
                "niqe": [s.niqe for s in report.scores],
            }
        return per_set

    results: dict = {
        "seeds": list(params["seeds"]),
        "variants": [v.name for v in variants],
        "images": {n: p.names for n, p in test.items()},
        "bicubic": scores("bicubic"),
        "start": scores(load_model(start)) | {"weights": str(params["pretrained"])},
        "val": {"images": {n: p.names for n, p in val.items()}, "bicubic": scores("bicubic", val)},
        "runs": {},
        "terms": {},
    }
    models = {}
    for seed in params["seeds"]:
        trained = train_stage2(variants, base, start, out / f"seed{seed}", seed=seed)
        for v in variants:
            res = trained[v.name]
            rec = run_record(res.run, seed, keys=("l_pix", "l_percep", "l_gan", "l_d"))
            model = res.run.model()
            rec["test"] = scores(model)
            rec["val"] = scores(model, val)
            results["runs"].setdefault(v.name, []).append(rec)
            models.setdefault(v.name, model)
            if res.gan_terms and seed == params["seeds"][0]:
                results["terms"][v.name] = _term_summary(res.gan_terms)
            if progress:
                niqe = pooled_score(rec["test"], "niqe")
                print(f"{v.name:<34} seed {seed}: {res.run.seconds:7.1f} s  NIQE {niqe:.3f}")
    results["gallery"], images = gallery(params, test, models)
    return results, images


# --------------------------------------------------------------------------- reading


def seed_scores(results: dict, variant: str, metric: str, reduce=np.mean) -> list[float]:
    """Per seed: ``reduce`` (mean or median) of ``metric`` over every test image."""
    from .experiments import pooled_score

    return [pooled_score(rec["test"], metric, reduce) for rec in results["runs"][variant]]


def validation_margins(results: dict) -> str:
    """Every run's margins over bicubic on the validation images (dB of Y-PSNR, NIQE
    points; positive is better), per variant over the seeds: reported, never used to
    leave a run out of a comparison."""
    from .experiments import MARGIN_CONVENTION, Spread, margins_over_bicubic, pooled_score

    val = results.get("val") or {}
    if not val.get("images"):
        return "The study scored no validation images."
    margins = {
        n: [margins_over_bicubic(r["val"], val["bicubic"]) for r in results["runs"][n]]
        for n in results["variants"]
    }
    n_images = sum(len(v) for v in val["images"].values())
    return (
        f"Against bicubic on the {n_images} validation image{'s' if n_images != 1 else ''} "
        f"({', '.join(val['images'])}; bicubic {pooled_score(val['bicubic'], 'psnr'):.2f} dB, "
        f"NIQE {pooled_score(val['bicubic'], 'niqe'):.3f}; {MARGIN_CONVENTION}): "
        + "; ".join(
            f"{n}: {Spread.of([p for p, _ in m])} dB, NIQE {Spread.of([q for _, q in m])}"
            for n, m in margins.items()
        )
        + "."
    )


def reference_score(results: dict, key: str, metric: str, reduce=np.mean) -> float:
    """Bicubic's or the starting PSNR model's ``metric`` over every test image."""
    from .experiments import pooled_score

    per_set = {n: s for n, s in results[key].items() if n != "weights"}
    return pooled_score(per_set, metric, reduce)


def description(results: dict) -> dict[str, str]:
    """The stage-2 study as descriptive sentences, every number computed from ``results``,
    every run included; the verdicts on the registered claims come from
    :mod:`esrgan_lab.lab.findings`."""
    from .experiments import Spread, compare

    names = results["variants"]
    start_psnr = reference_score(results, "start", "psnr")
    start_niqe = reference_score(results, "start", "niqe")
    lines = {
        "start": (
            f"All variants start from `{results['start']['weights']}`: test Y-PSNR "
            f"{start_psnr:.2f} dB and NIQE {start_niqe:.3f} (bicubic "
            f"{reference_score(results, 'bicubic', 'psnr'):.2f} dB, NIQE "
            f"{reference_score(results, 'bicubic', 'niqe'):.3f})."
        ),
        "bicubic": validation_margins(results),
    }
    for name in names:
        psnr, niqe = seed_scores(results, name, "psnr"), seed_scores(results, name, "niqe")
        med = seed_scores(results, name, "niqe", np.median)
        lines[f"scores {name}"] = (
            f"'{name}': Y-PSNR {Spread.of(psnr)} dB, NIQE mean {Spread.of(niqe)}, "
            f"median {Spread.of(med)}."
        )
    # (one variant, the other, what changes between them)
    pairs = [
        ("L1 + perceptual", "L1 only", "adding the perceptual term"),
        ("L1 + perceptual", "L1 + perceptual (after ReLU)", "features before vs after ReLU"),
        ("L1 + perceptual + RaGAN (ESRGAN)", "L1 + perceptual", "adding RaGAN"),
        (
            "L1 + perceptual + RaGAN (ESRGAN)",
            "L1 + perceptual + standard GAN",
            "RaGAN vs the standard GAN",
        ),
    ]
    for a, b, what in pairs:
        if a not in names or b not in names:
            continue
        lines[f"psnr {what}"] = compare(
            seed_scores(results, a, "psnr"), seed_scores(results, b, "psnr"), f"{what}, Y-PSNR"
        )
        lines[f"niqe {what}"] = compare(
            seed_scores(results, a, "niqe"),
            seed_scores(results, b, "niqe"),
            f"{what}, NIQE (lower is better)",
            unit="",
        )
    return lines
