"""Registered claims and their verdicts: one typed finding, one renderer.

Each stored study lists, in its notebook's params file (``notebooks/params/<nb>.yaml``,
section ``registration``), every claim it tests: what is claimed and by whom (the paper,
arXiv 1809.00219v2, or the project's own question), the paper's sentence it rests on and
where it is, the two arms, the primary endpoint (metric, test images, aggregate), the
direction the claim predicts, and the decision rule (:mod:`esrgan_lab.lab.stats`: paired
over seeds, 95 % t interval, reproduced / contradicted / inconclusive).

The registration's hash (:func:`registration_hash`) is stored in the study's provenance.
``tools/experiments.py run`` stores it at the start of a run (``registered: before the
run``); rendering refuses results whose stored hash differs from the current
registration (:class:`RegistrationChanged`: rerun the study), so a rule cannot change
after the results are seen without the change showing.

The four studies stored before this machinery existed carry the hash of a registration
written **after** their runs (``registered: after the run``): their verdicts are rendered
as *exploratory*, never as pre-registered.

No run is dropped: every seed of both arms enters the paired statistics; margins over
bicubic, collapses and colour casts are reported in :attr:`Finding.notes` beside the
verdict.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from .stats import (
    Direction,
    McNemar,
    Outcome,
    PairedEffect,
    mcnemar_exact,
    outcome,
    paired_effect,
    rate_outcome,
)

#: Stored study name -> the notebook whose params file registers its claims.
STUDIES: dict[str, str] = {
    "architecture": "01_architecture",
    "bn_removal": "02_bn_removal_ablation",
    "losses": "03_losses",
    "interpolation": "04_inference",
}

#: Studies redesigned by issue 28, registered before any of their runs: name -> (notebook
#: whose params file holds it, its config section, its registration section). They render
#: like the stored ones once ``make experiments NAME=<name>`` has stored them.
REDESIGNED: dict[str, tuple[str, str, str]] = {
    "architecture_v2": ("01_architecture", "study_v2", "registration_v2"),
    "deep_trunk_v2": ("01_architecture", "study_deep_v2", "registration_deep_v2"),
    "bn_removal_v2": ("02_bn_removal_ablation", "study_v2", "registration_v2"),
    "losses_v2": ("03_losses", "study_v2", "registration_v2"),
}

PAPER = "arXiv 1809.00219v2"


def _source(study: str) -> tuple[str, str]:
    """``(notebook, registration section)`` of a stored or redesigned study."""
    if study in REDESIGNED:
        notebook, _config, section = REDESIGNED[study]
        return notebook, section
    return STUDIES[study], "registration"


class RegistrationChanged(RuntimeError):
    """The stored results were made under another registration than the current one."""


@dataclass(frozen=True)
class Endpoint:
    """The primary endpoint of a claim, as registered."""

    metric: str
    images: str
    aggregate: str
    unit: str
    shift: str | None = None


@dataclass(frozen=True)
class RegisteredClaim:
    """One claim as the params file registers it (see the module docstring)."""

    id: str
    source: str
    claim: str
    where: str
    paper_text: str
    arms: tuple[str, str]
    endpoint: Endpoint
    direction: Direction
    rule: str

    @classmethod
    def of(cls, d: Mapping[str, Any]) -> RegisteredClaim:
        ep = d["endpoint"]
        arms = tuple(d["arms"])
        if len(arms) != 2:
            raise ValueError(f"claim {d['id']}: two arms (A, B), not {arms}")
        return cls(
            id=str(d["id"]),
            source=str(d["source"]),
            claim=str(d["claim"]),
            where=str(d["where"]),
            paper_text=str(d["paper_text"]).strip(),
            arms=(str(arms[0]), str(arms[1])),
            endpoint=Endpoint(
                metric=str(ep["metric"]),
                images=str(ep["images"]),
                aggregate=str(ep["aggregate"]),
                unit=str(ep.get("unit", "")),
                shift=ep.get("shift"),
            ),
            direction=d["direction"],
            rule=str(d["rule"]),
        )


@dataclass(frozen=True)
class Finding:
    """A registered claim with its effect, interval and outcome on stored results.

    Attributes:
        study: The stored study's name.
        claim: The registered claim.
        effect: The paired effect ``A - B`` of the endpoint over the seeds.
        outcome: ``reproduced``, ``contradicted`` or ``inconclusive``.
        registered: ``"before the run"`` or ``"after the run"`` (then exploratory).
        notes: What else the runs show, reported and never used to drop a run (margins over
            bicubic, runs below it, collapses, colour casts, protocol caveats).
        rate_test: For an event-rate endpoint (:data:`RATE_ENDPOINTS`), the exact McNemar
            test the outcome comes from; :attr:`effect` (the paired event indicators'
            t interval) is then descriptive only.
        labels: What the registration says the verdict must carry, printed with it even
            where the notes are not (e.g. "validation curve not flat at 12,000 iterations",
            an arm "still rising").

    A claim on an optional arm that was not trained has no effect (``None``) and the
    outcome ``"not run"``.
    """

    study: str
    claim: RegisteredClaim
    effect: PairedEffect | None
    outcome: Outcome | Literal["not run"]
    registered: str
    notes: tuple[str, ...] = ()
    rate_test: McNemar | None = None
    labels: tuple[str, ...] = ()

    @property
    def exploratory(self) -> bool:
        return self.registered != "before the run"


# --------------------------------------------------------------------------- registration


def registration(study: str) -> dict[str, Any]:
    """The ``registration`` section of ``study``'s params file."""
    from .experiments import notebook_params

    notebook, section = _source(study)
    reg = notebook_params(notebook).get(section)
    if not reg or not reg.get("claims"):
        raise KeyError(f"notebooks/params/{notebook}.yaml section {section} registers no claims")
    return reg


def registration_hash(reg: Mapping[str, Any]) -> str:
    """SHA-256 of the registration as canonical JSON (key order and YAML layout do not
    count; every word, arm, endpoint, direction and rule does)."""
    text = json.dumps(reg, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return hashlib.sha256(text.encode()).hexdigest()


def registered_claims(study: str) -> list[RegisteredClaim]:
    return [RegisteredClaim.of(c) for c in registration(study)["claims"]]


def check_registration(study: str, provenance: Mapping[str, Any]) -> str:
    """``provenance``'s registration record checked against the current registration.

    Returns:
        ``"before the run"`` or ``"after the run"``, as recorded.

    Raises:
        RegistrationChanged: No record, or a hash that differs from the current one.
    """
    rec = provenance.get("registration") or {}
    cmd = f"`make experiments NAME={study}`"
    if not rec.get("sha256"):
        raise RegistrationChanged(
            f"{study}: its stored results record no registration; rerun {cmd} so that its "
            "provenance records the registration it was run under"
        )
    now = registration_hash(registration(study))
    if rec["sha256"] != now:
        raise RegistrationChanged(
            f"{study}: the registration in notebooks/params/{_source(study)[0]}.yaml "
            f"(section {_source(study)[1]}) changed "
            f"since the stored run (stored {rec['sha256'][:12]}, now {now[:12]}); rerun {cmd}, "
            "or restore the registration it was run under"
        )
    return str(rec.get("registered", "after the run"))


# --------------------------------------------------------------------------- endpoints

#: Per seed: (the endpoint's value, the per-image values or ``None``).
SeedValues = dict[int, tuple[float, list | None]]


def _per_image_psnr(rec: Mapping[str, Any]) -> list[float]:
    return [v for s in rec["test"].values() for v in s]


def _test_psnr(results: Mapping, arm: str, ep: Endpoint) -> SeedValues:
    return {
        r["seed"]: (float(np.mean(_per_image_psnr(r))), _per_image_psnr(r))
        for r in results["runs"][arm]
    }


def _deep_test_psnr(results: Mapping, arm: str, ep: Endpoint) -> SeedValues:
    """Per seed: the deep-trunk run's mean test Y-PSNR over every test image at its last
    iteration (a diverged run scored as trained); ``deep_trunk_v2`` stores its runs at the
    top level, a combined study under ``deep``."""
    return _test_psnr(results.get("deep", results), arm, ep)


def _test_niqe(results: Mapping, arm: str, ep: Endpoint) -> SeedValues:
    from .experiments import pooled_score

    return {
        r["seed"]: (
            pooled_score(r["test"], "niqe"),
            [v for s in r["test"].values() for v in s["niqe"]],
        )
        for r in results["runs"][arm]
    }


def _deep_val_psnr(results: Mapping, arm: str, ep: Endpoint) -> SeedValues:
    out: SeedValues = {}
    for r in results["deep"]["runs"][arm]:
        if r["val_final"] is None:
            raise ValueError(f"deep run '{arm}' seed {r['seed']} has no final score")
        out[r["seed"]] = (float(r["val_final"]), None)
    return out


def _late_val_drop(results: Mapping, arm: str, ep: Endpoint) -> SeedValues:
    from .bn_study import late_drop

    return {r["seed"]: (late_drop(r), None) for r in results["runs"][arm]}


def _test_psnr_running_bn(results: Mapping, arm: str, ep: Endpoint) -> SeedValues:
    """Mean test Y-PSNR per seed with BN's running statistics as training left them."""
    from .bn_study_v2 import _pooled

    return {
        r["seed"]: (float(np.mean(_pooled(r["test_running_bn"]))), _pooled(r["test_running_bn"]))
        for r in results["runs"][arm]
    }


def _shift_gain_change(
    results: Mapping, arm: str, ep: Endpoint, key: str = "shift_gain"
) -> SeedValues:
    return {r["seed"]: (r[key][ep.shift] - r[key]["original"], None) for r in results["runs"][arm]}


def _shift_gain_change_running_bn(results: Mapping, arm: str, ep: Endpoint) -> SeedValues:
    return _shift_gain_change(results, arm, ep, key="shift_gain_running_bn")


def _artefact_event(results: Mapping, arm: str, ep: Endpoint) -> SeedValues:
    """Per seed 1 when the run has an artefact event as registered
    (:func:`esrgan_lab.lab.bn_study_v2.artefact_images`), else 0."""
    from .bn_study_v2 import artefact_event

    return {r["seed"]: (float(artefact_event(results, r)), None) for r in results["runs"][arm]}


def _niqe_at_equal_psnr(results: Mapping, arm: str, ep: Endpoint) -> SeedValues:
    """Per GAN seed: the mean over the intermediate alphas of ``arm``'s NIQE, where the
    pixel blend's NIQE is read at the network curve's Y-PSNR (linear along the pixel
    curve). Both arms use the same alphas: those whose network PSNR the pixel curve spans
    for every seed."""
    from .interp_study import curve

    pairs = results["pairs"]
    reads: list[dict[float, tuple[float, float]]] = []
    for k in range(len(pairs)):
        net_p, net_n = curve(results, "network", pair=k)
        pix_p, pix_n = curve(results, "pixel", pair=k)
        order = np.argsort(pix_p)
        reads.append(
            {
                a: (float(n), float(np.interp(p, pix_p[order], pix_n[order])))
                for a, p, n in zip(results["alphas"], net_p, net_n)
                if 0 < a < 1 and pix_p.min() <= p <= pix_p.max()
            }
        )
    shared = [a for a in reads[0] if all(a in r for r in reads)]
    side = {"network interpolation": 0, "pixel interpolation": 1}[arm]
    return {
        p["seed"]: (float(np.mean([r[a][side] for a in shared])), None)
        for p, r in zip(pairs, reads, strict=True)
    }


def _niqe_at_matched_psnr(
    results: Mapping, arms: Sequence[str], ep: Endpoint
) -> tuple[SeedValues, SeedValues]:
    """losses_v2 (registration_v2 ``matched_distortion``), per seed: the mean over arm A's
    alphas 0.2-1.0 that B's interpolation curve spans of NIQE(A), and of NIQE(B) read at
    A's Y-PSNR (:func:`esrgan_lab.lab.loss_study_v2.matched_niqe`); their difference is the
    registered ``NIQE(A) - NIQE(B at A's Y-PSNR)``. Paired: B's value depends on A's curve.

    Raises:
        ValueError: For a seed where B's curve spans none of A's alphas (the registered
            endpoint has no value there; no run is dropped silently).
    """
    from .loss_study_v2 import matched_niqe

    runs_a = {r["seed"]: r for r in results["runs"][arms[0]]}
    runs_b = {r["seed"]: r for r in results["runs"][arms[1]]}
    out_a: SeedValues = {}
    out_b: SeedValues = {}
    for seed, rec_a in runs_a.items():
        if seed not in runs_b:
            continue  # evaluate() refuses arms that do not share their seeds
        reads = matched_niqe(results["alphas"], rec_a, runs_b[seed])
        if not reads:
            raise ValueError(
                f"seed {seed}: '{arms[1]}''s interpolation curve spans the Y-PSNR of none of "
                f"'{arms[0]}''s alphas 0.2-1.0; niqe_at_matched_psnr has no value"
            )
        out_a[seed] = (float(np.mean([a for a, _ in reads.values()])), None)
        out_b[seed] = (float(np.mean([b for _, b in reads.values()])), None)
    return out_a, out_b


def _brightness_error(results: Mapping, arm: str, ep: Endpoint) -> SeedValues:
    """losses_v2, per seed at alpha 1 (the trained arm): the mean over the test images of
    ``|mean Y(output) - mean Y(ground truth)|`` in grey levels, with the per-image values
    (:func:`esrgan_lab.lab.loss_study_v2.brightness_errors`)."""
    return _alpha1_image_mean(results, arm, "mean_y_error", np.abs)


def _alpha1_image_mean(results: Mapping, arm: str, key: str, f=lambda x: x) -> SeedValues:
    out: SeedValues = {}
    for r in results["runs"][arm]:
        values = [float(f(v)) for s in r["test"].values() for v in s[key]]
        out[r["seed"]] = (float(np.mean(values)), values)
    return out


ENDPOINTS: dict[str, Callable[..., Any]] = {
    "test_psnr": _test_psnr,
    "deep_test_psnr": _deep_test_psnr,
    "test_niqe": _test_niqe,
    "deep_val_psnr": _deep_val_psnr,
    "late_val_drop": _late_val_drop,
    "shift_gain_change": _shift_gain_change,
    "niqe_at_equal_psnr": _niqe_at_equal_psnr,
    "test_psnr_running_bn": _test_psnr_running_bn,
    "shift_gain_change_running_bn": _shift_gain_change_running_bn,
    "artefact_event": _artefact_event,
    "niqe_at_matched_psnr": _niqe_at_matched_psnr,
    "brightness_error": _brightness_error,
}
#: Endpoints whose value for arm B depends on arm A (called once with both arms, return
#: ``(A's SeedValues, B's SeedValues)``); the others are called once per arm.
PAIRWISE_ENDPOINTS: frozenset[str] = frozenset({"niqe_at_matched_psnr"})

#: Endpoints that are a 0/1 event per seed: their outcome is the exact McNemar test's
#: (:func:`esrgan_lab.lab.stats.rate_outcome`), as the registrations that use them say.
RATE_ENDPOINTS: frozenset[str] = frozenset({"artefact_event"})


# --------------------------------------------------------------------------- notes


def _validation_notes(study: str, results: Mapping, arms: Sequence[str]) -> list[str]:
    """Each arm's margin over bicubic on the study's validation images, per seed, with the
    runs below it named: reported beside the verdict, never used to drop a run."""
    from .experiments import MARGIN_CONVENTION, margins_over_bicubic

    out = []
    if study in ("architecture", "bn_removal"):
        deep = any(a in results.get("deep", {}).get("runs", {}) for a in arms)
        runs = results["deep"]["runs"] if deep else results["runs"]
        bic = results["bicubic"]["val"]
        for arm in arms:
            m = [(r["seed"], r["val_final"] - bic) for r in runs[arm]]
            text = ", ".join(f"seed {s} {x:+.2f} dB" for s, x in m)
            below = [s for s, x in m if x <= 0]
            flag = f" (below bicubic: seed {', '.join(map(str, below))})" if below else ""
            out.append(f"'{arm}' minus bicubic on validation Y-PSNR: {text}{flag}.")
        if study == "bn_removal":
            from .bn_study import _below_run

            for arm in arms:
                for r in results["runs"][arm]:
                    x = r["val_final"] - bic
                    if x <= 0 and r.get("val_images"):
                        out.append(
                            f"'{arm}' {_below_run(results, r, x)} (kept in the statistics; "
                            "BN's artefacts are what the claim is about)."
                        )
            w = results.get("worst")
            if w and w["variant"] in arms:
                cast = "; ".join(
                    f"'{n}' ({', '.join(f'{c:+.1f}' for c in bgr[::-1])})"
                    for n, bgr in w["color_shift"].items()
                )
                out.append(
                    f"Colour cast of the worst BN run ('{w['variant']}' seed {w['seed']}, image "
                    f"{w['image']}), mean output minus ground truth in R, G, B: {cast}."
                )
    elif study == "bn_removal_v2":
        out += _artefact_notes(results, arms)
    elif study == "losses":
        val = results.get("val") or {}
        for arm in arms:
            m = [
                (r["seed"], *margins_over_bicubic(r["val"], val["bicubic"]))
                for r in results["runs"][arm]
            ]
            out.append(
                f"'{arm}' against bicubic on validation ({MARGIN_CONVENTION}): "
                + ", ".join(f"seed {s} {p:+.2f} dB, NIQE {q:+.2f}" for s, p, q in m)
                + "."
            )
    elif study == "losses_v2":
        from .experiments import pooled_score

        bic = results["bicubic"]
        for arm in arms:
            m = [(r["seed"], *margins_over_bicubic(r["test"], bic)) for r in results["runs"][arm]]
            out.append(
                f"'{arm}' (alpha 1) against bicubic on the test images ({MARGIN_CONVENTION}; "
                f"bicubic {pooled_score(bic, 'psnr'):.2f} dB, NIQE "
                f"{pooled_score(bic, 'niqe'):.3f}): "
                + ", ".join(f"seed {s} {p:+.2f} dB, NIQE {q:+.2f}" for s, p, q in m)
                + "."
            )
    elif study == "interpolation":
        val = results.get("val") or {}
        ends = {f"`{results['weights']['psnr']}`": val["psnr"]} | {
            f"GAN seed {p['seed']}": p["val"] for p in results["pairs"]
        }
        out.append(
            f"Ends against bicubic on validation ({MARGIN_CONVENTION}): "
            + "; ".join(
                f"{n} {p:+.2f} dB, NIQE {q:+.2f}"
                for n, (p, q) in (
                    (n, margins_over_bicubic(s, val["bicubic"])) for n, s in ends.items()
                )
            )
            + "."
        )
    return out


def _artefact_notes(results: Mapping, arms: Sequence[str]) -> list[str]:
    """Per arm of the redesigned BN study: the margin over bicubic on the full validation
    images with running statistics, per seed, and every run with an artefact event (its
    images, margins and colour casts): reported beside the verdict, never used to drop a
    run."""
    from .bn_study_v2 import ARTEFACT_BELOW_BICUBIC_DB, COLOUR_CAST_LEVELS, artefact_images

    bic = results["bicubic"]["val"]
    out = []
    for arm in arms:
        runs = results["runs"][arm]
        margins = ", ".join(
            f"seed {r['seed']} {np.mean(r['val_images']) - bic:+.2f} dB" for r in runs
        )
        out.append(
            f"'{arm}' minus bicubic on the full validation images (Y-PSNR, running "
            f"statistics): {margins}."
        )
        events = []
        for r in runs:
            found = artefact_images(results, r)
            if found:
                shown = "; ".join(
                    f"{e['part']} {e['image']} {e['margin']:+.2f} dB, cast {e['cast']:.1f}"
                    for e in found[:3]
                )
                more = f" and {len(found) - 3} more" if len(found) > 3 else ""
                events.append(f"seed {r['seed']} ({len(found)} image(s): {shown}{more})")
        out.append(
            f"'{arm}' artefact events (below bicubic by more than "
            f"{ARTEFACT_BELOW_BICUBIC_DB:g} dB or colour cast above {COLOUR_CAST_LEVELS:g} "
            "grey levels): "
            + ("; ".join(events) if events else "none")
            + " (every run kept in the statistics)."
        )
    return out


def _v2_notes(results: Mapping, arms: Sequence[str]) -> list[str]:
    """Issue 28's studies: every arm's per-seed test Y-PSNR and its margin over bicubic on
    the same test images, and its margin on the validation crops (registered: "every arm's
    per-seed scores and margin over bicubic reported"; never used to drop a run)."""
    bic = results["bicubic"]
    test_bic = float(np.mean([v for n in results["images"] for v in bic[n]]))
    out = []
    for arm in arms:
        recs = results["runs"][arm]
        test = ", ".join(
            f"seed {r['seed']} {np.mean(_per_image_psnr(r)):.2f} dB "
            f"({np.mean(_per_image_psnr(r)) - test_bic:+.2f})"
            for r in recs
        )
        below = [r["seed"] for r in recs if r["val_final"] is None or r["val_final"] <= bic["val"]]
        val = ", ".join(
            f"seed {r['seed']} "
            + ("-" if r["val_final"] is None else f"{r['val_final'] - bic['val']:+.2f} dB")
            for r in recs
        )
        flag = f" (not above bicubic: seed {', '.join(map(str, below))})" if below else ""
        out.append(
            f"'{arm}' test Y-PSNR per seed (minus bicubic's {test_bic:.2f} dB): {test}; "
            f"validation minus bicubic: {val}{flag}."
        )
    return out


def _labels(study: str, results: Mapping, arms: Sequence[str]) -> list[str]:
    """What the registration makes the verdict carry (stopping rules, issue 28)."""
    out = []
    label = (results.get("stopping") or {}).get("label")
    if label:
        out.append(label)
    rising = results.get("rising") or {}
    lo, hi = rising.get("window", (0, 0))
    for arm in arms:
        if arm in rising.get("still_rising", ()):
            out.append(
                f"'{arm}' still rising (seed-mean validation gain {rising['gains'][arm]:+.2f} dB "
                f"over iterations {lo:,}-{hi:,})"
            )
    return out


def _interpolation_per_alpha(results: Mapping) -> str:
    """Per intermediate alpha: the paired NIQE gap (network minus pixel at equal Y-PSNR)
    over the GAN seeds, with its interval and outcome (secondary, descriptive)."""
    from .interp_study import niqe_gaps

    per_pair = [niqe_gaps(results, k) for k in range(len(results["pairs"]))]
    shared = [a for a in per_pair[0] if all(a in g for g in per_pair)]
    parts = []
    for a in shared:
        gaps = [g[a] for g in per_pair]
        eff = paired_effect(gaps, [0.0] * len(gaps))
        parts.append(f"{a:.1f}: {eff.mean:+.2f} [{eff.low:+.2f}, {eff.high:+.2f}]")
    return (
        "Secondary, per alpha (NIQE gap, network minus pixel at equal Y-PSNR, 95 % interval "
        "over the GAN seeds): " + "; ".join(parts) + "."
    )


def _matched_per_alpha(results: Mapping, arms: Sequence[str]) -> str:
    """losses_v2, per alpha of A that every seed's B curve spans: the paired NIQE gap
    (A minus B at A's Y-PSNR) over the seeds, with its interval (secondary, descriptive)."""
    from .loss_study_v2 import matched_niqe

    runs_b = {r["seed"]: r for r in results["runs"][arms[1]]}
    reads = [
        matched_niqe(results["alphas"], r, runs_b[r["seed"]])
        for r in results["runs"][arms[0]]
        if r["seed"] in runs_b
    ]
    shared = [a for a in reads[0] if all(a in r for r in reads)] if reads else []
    parts = []
    for a in shared:
        gaps = [r[a][0] - r[a][1] for r in reads]
        if len(gaps) < 2:
            parts.append(f"{a:.1f}: {gaps[0]:+.2f} (1 seed)")
            continue
        eff = paired_effect(gaps, [0.0] * len(gaps))
        parts.append(f"{a:.1f}: {eff.mean:+.2f} [{eff.low:+.2f}, {eff.high:+.2f}]")
    return (
        "Secondary, per alpha of A (NIQE of A minus B's at A's Y-PSNR, 95 % interval over "
        "the seeds): " + ("; ".join(parts) if parts else "no alpha spanned for every seed") + "."
    )


def _lowpass_note(results: Mapping, c: RegisteredClaim) -> str:
    """losses_v2's second brightness endpoint: the RMSE of Y after a Gaussian low-pass
    (sigma 4 HR px) at alpha 1, paired over the seeds by the same rule."""
    a, b = (_alpha1_image_mean(results, arm, "lowpass_rmse") for arm in c.arms)
    seeds = [s for s in a if s in b]
    eff = paired_effect([a[s][0] for s in seeds], [b[s][0] for s in seeds], seeds)
    return (
        f"Second endpoint, RMSE of Y after a Gaussian low-pass (sigma 4 HR px), A - B "
        f"{eff.mean:+.3f} grey levels, 95 % interval [{eff.low:+.3f}, {eff.high:+.3f}]: "
        f"{outcome(eff, c.direction)} by the same rule."
    )


def _active_fraction_note(results: Mapping) -> str:
    """losses_v2: the share of positive pre-activations of the perceptual layer, measured
    on training patches (the paper's reason: activated deep features are very sparse)."""
    af = results["active_fraction"]
    layer = af["layer"]
    return (
        f"Active fraction of {layer} ({af['backbone']}, share of positive pre-activation "
        f"values) on {af['patches']} training patches of {af['gt_size']} px: ground truth "
        f"{100 * af['ground_truth'][layer]:.1f} %, the start model's outputs "
        f"{100 * af['start_output'][layer]:.1f} %."
    )


# --------------------------------------------------------------------------- findings


def evaluate(
    study: str,
    results: Mapping[str, Any],
    claims: Sequence[RegisteredClaim],
    registered: str,
) -> list[Finding]:
    """Every registered claim of ``study`` on ``results``: paired effect, interval, outcome."""
    out = []
    for c in claims:
        missing = [a for a in c.arms if a in results.get("not_run", ())]
        if missing:
            out.append(
                Finding(
                    study,
                    c,
                    None,
                    "not run",
                    registered,
                    (f"Optional arm {', '.join(repr(a) for a in missing)} was not trained.",),
                )
            )
            continue
        get = ENDPOINTS[c.endpoint.metric]
        if c.endpoint.metric in PAIRWISE_ENDPOINTS:
            a, b = get(results, c.arms, c.endpoint)
        else:
            a, b = (get(results, arm, c.endpoint) for arm in c.arms)
        seeds = [s for s in a if s in b]
        if len(seeds) != len(a) or len(seeds) != len(b):
            raise ValueError(f"{study}/{c.id}: the arms do not share their seeds")
        per_image = [(a[s][1], b[s][1]) for s in seeds if a[s][1] is not None]
        eff = paired_effect(
            [a[s][0] for s in seeds], [b[s][0] for s in seeds], seeds, per_image=per_image
        )
        notes = _validation_notes(study, results, c.arms)
        if c.endpoint.metric == "niqe_at_equal_psnr":
            notes.append(_interpolation_per_alpha(results))
        if study in ("architecture_v2", "deep_trunk_v2"):
            notes += _v2_notes(results, c.arms)
        if c.endpoint.metric == "niqe_at_matched_psnr":
            notes.append(_matched_per_alpha(results, c.arms))
        if c.endpoint.metric == "brightness_error":
            notes.append(_lowpass_note(results, c))
        if study == "losses_v2" and any("after ReLU" in arm for arm in c.arms):
            notes.append(_active_fraction_note(results))
        labels = tuple(_labels(study, results, c.arms))
        if c.endpoint.metric in RATE_ENDPOINTS:
            test = mcnemar_exact([a[s][0] for s in seeds], [b[s][0] for s in seeds])
            verdict = rate_outcome(test, c.direction)
        else:
            test, verdict = None, outcome(eff, c.direction)
        out.append(
            Finding(study, c, eff, verdict, registered, tuple(notes), rate_test=test, labels=labels)
        )
    return out


def study_findings(study: str) -> list[Finding]:
    """The stored study's findings, after checking its registration (see the module
    docstring); raises :class:`RegistrationChanged` when it must be rerun. A redesigned
    study that is not stored yet gives its registered claims with the outcome "not run"."""
    from .experiments import EXPERIMENTS_DIR, load_artifact

    if study in REDESIGNED and not (EXPERIMENTS_DIR / study / "results.json").is_file():
        # Registered, not stored yet: each claim with its endpoint and rule, outcome "not run".
        note = (
            f"Registered before any run; no stored result yet (`make experiments NAME={study}`;"
            " a study in progress keeps its finished runs in `data/runs/`)."
        )
        return [
            Finding(study, c, None, "not run", "before the run", (note,))
            for c in registered_claims(study)
        ]
    art = load_artifact(EXPERIMENTS_DIR / study)
    registered = check_registration(study, art.provenance)
    return evaluate(study, art.results, registered_claims(study), registered)


def render(f: Finding, notes: bool = True) -> str:
    """One finding as Markdown: who claims what and where, the arms and endpoint, effect,
    interval and outcome (named by its metric), and whether it was registered before the
    run; then the notes."""
    c, e = f.claim, f.effect
    unit = f" {c.endpoint.unit}" if c.endpoint.unit else ""
    who = {
        "paper": f"Paper ({PAPER}, {c.where})",
        "project": f"Project's question (not a claim of the paper; nearest text: {c.where})",
    }.get(c.source, f"{c.source} ({c.where})")
    metric = c.endpoint.metric.replace("_", " ")
    head = (
        f"{who}: {c.claim}. A = '{c.arms[0]}', B = '{c.arms[1]}'; endpoint {metric} "
        f"({c.endpoint.aggregate}, {c.endpoint.images}); predicted: A {c.direction} than B. "
    )
    if e is None:  # an optional arm that was not trained, or a study not stored yet
        return (
            head
            + f"Decision rule: {c.rule}. **Not run**."
            + (" " + " ".join(f.notes) if f.notes else "")
        )
    side = e.image_above if c.direction == "higher" else e.image_below
    images = (
        f"{side} of {e.image_pairs} image-seed pairs on the predicted side, described only; "
        if e.image_pairs
        else ""
    )
    label = (
        "registered before the run"
        if not f.exploratory
        else "registered after the run: exploratory"
    )
    interval = (
        f"95 % interval [{e.low:+.3f}, {e.high:+.3f}] (paired over seeds {list(e.seeds)}: "
        + ", ".join(f"{d:+.3f}" for d in e.differences)
        + f"; {images}t, {e.n - 1} df)"
    )
    if f.rate_test is not None:
        t = f.rate_test
        text = head + (
            f"Events: A {t.a_events} of {t.n} seeds, B {t.b_events} of {t.n}; discordant "
            f"seeds {t.discordant} (A only {t.a_only}, B only {t.b_only}); exact two-sided "
            f"McNemar p = {t.p_value:.4f} (alpha {t.alpha:.2f}). Described only: mean paired "
            f"difference of the event indicators {e.mean:+.3f}, {interval}. "
            f"**{f.outcome.capitalize()}** on {metric} (exact McNemar; {label})."
        )
    else:
        text = head + (
            f"Effect A - B {e.mean:+.3f}{unit}, {interval}. "
            f"**{f.outcome.capitalize()}** on {metric} ({label})."
        )
    if f.labels:
        text += " Carried with the verdict: " + "; ".join(f"**{x}**" for x in f.labels) + "."
    if notes and f.notes:
        text += " " + " ".join(f.notes)
    return text


def render_markdown(study: str, notes: bool = True) -> str:
    """A stored study's findings as a Markdown list (the notebooks display this)."""
    return "\n".join(f"* {render(f, notes)}" for f in study_findings(study))


def render_redesigned(notebook: str) -> str:
    """Markdown for the issue-28 studies a notebook's params file registers: per study, its
    size (what it can show against the paper's 23-block generator trained for hundreds of
    thousands of iterations on DF2K), then its claims (:func:`render_markdown`: the design
    and "not run" until stored, the verdicts after)."""
    from .experiments import notebook_params

    params, out = notebook_params(notebook), []
    for study, (nb, section, _reg) in REDESIGNED.items():
        if nb != notebook:
            continue
        size = params[section]
        model = (
            f"{size['num_block']} blocks of {size['num_feat']} features"
            if "num_block" in size
            else f"stage 2 from {size['pretrained']}"
        )
        out.append(
            f"**{study}**: {model}, {size['iterations']:,} iterations of batch "
            f"{size['batch_size']} x {size['gt_size']} px, seeds {size['seeds']}; "
            f"train {' + '.join(size['train'])}, validation {' + '.join(size['val'])}, "
            f"test {' + '.join(size['test'])}."
        )
        out.append(render_markdown(study))
    return "\n\n".join(out)


def paper_references(study: str) -> str:
    """The closing note: each registered claim, where it is, and the sentence it rests on."""
    return "\n".join(
        f'* `{c.id}` ({c.source}, {c.where}): {c.claim}. Rests on: "{c.paper_text}"'
        for c in registered_claims(study)
    )
