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
    from esrgan_lab.metrics.evaluate import run_model
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


def choose_alpha(psnr_path: Path, gan_path: Path, val_sources: list[str]) -> dict:
    """Score the interpolation sweep on the validation images; apply the rule."""
    from esrgan_lab.data.paired import degrade_all
    from esrgan_lab.data.sources import load_source
    from esrgan_lab.metrics.evaluate import score_pairs
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
    for alpha in ALPHAS:
        model = model_from_state_dict(interpolate(psnr_sd, gan_sd, alpha))
        sweep.append({"alpha": alpha, **mean(model)})
        print(f"alpha {alpha:.1f}: {sweep[-1]}", flush=True)
    allowed = [s for s in sweep if s["psnr"] >= bicubic["psnr"] - PSNR_MARGIN_DB]
    chosen = max(allowed, key=lambda s: s["alpha"]) if allowed else sweep[0]
    return {
        "rule": f"largest alpha with validation Y-PSNR >= bicubic - {PSNR_MARGIN_DB} dB",
        "validation": val_sources,
        "bicubic": bicubic,
        "sweep": sweep,
        "alpha": chosen["alpha"],
    }


def evaluate(model_name: str) -> dict:
    from esrgan_lab.metrics.evaluate import evaluate_model

    report = evaluate_model(model_name, list(TEST_SETS), niqe=True, progress=False)
    return report.to_dict()


def comparison_figure(target: Path) -> None:
    """Set14 baboon (fur) and comic (hair): bicubic, lab-psnr-x4, lab-gan-x4, ground truth."""
    from esrgan_lab.data.sources import resolve_dataset
    from esrgan_lab.lab.viz import comparison_grid, savefig
    from esrgan_lab.metrics.evaluate import protocol_pairs, run_model
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
            f"| config | `configs/{run}.yaml` |",
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


def main(argv: list[str] | None = None) -> int:
    import yaml

    from esrgan_lab.weights.checkpoints import interpolate, load_checkpoint, save_checkpoint
    from esrgan_lab.weights.loading import load_model

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--skip-training", action="store_true", help="use the runs on disk")
    parser.add_argument(
        "--readme-only", action="store_true", help="only re-render the README's weights table"
    )
    args = parser.parse_args(argv)
    if args.readme_only:
        update_readme()
        return 0
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
