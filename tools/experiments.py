"""``make experiments [NAME=...]``: run the stored experiments and write their artifacts.

Each experiment is one study of the notebook layer run at the size its notebook's params
file sets (``notebooks/params/<notebook>.yaml``, key ``study``), into
``runs/experiments/<name>`` (resumable: rerunning continues the unfinished training runs),
then written to ``data/experiments/<name>`` with provenance
(:mod:`esrgan_lab.lab.experiments`).

    python tools/experiments.py run [NAME ...]     # default: all, in order
    python tools/experiments.py run --size quick NAME   # the params file's `quick` overrides
    python tools/experiments.py archive NAME       # finished runs -> data/runs/NAME (commit)
    python tools/experiments.py status NAME        # finished, in progress, left (projection)
    python tools/experiments.py list
    python tools/experiments.py readme [--check]  # README section from the stored results
"""

from __future__ import annotations

import argparse
import importlib
import sys
import time
from pathlib import Path

import torch

from esrgan_lab.lab import findings
from esrgan_lab.lab.experiments import EXPERIMENTS_DIR, notebook_params, save
from esrgan_lab.settings import REPO_ROOT, provenance

#: name -> (notebook whose params file sets the size, "module:function" of the study)
EXPERIMENTS: dict[str, tuple[str, str]] = {
    "architecture": ("01_architecture", "esrgan_lab.lab.arch_study:run_experiment"),
    "bn_removal": ("02_bn_removal_ablation", "esrgan_lab.lab.bn_study:run_experiment"),
    "losses": ("03_losses", "esrgan_lab.lab.loss_study:run_experiment"),
    "interpolation": ("04_inference", "esrgan_lab.lab.interp_study:run_experiment"),
    # Issue 28's redesigned studies (registered in the params files' `registration_v2` /
    # `registration_deep_v2` sections before any run; sizes in `study_v2` / `study_deep_v2`).
    "architecture_v2": ("01_architecture", "esrgan_lab.lab.arch_study:run_experiment_v2"),
    "deep_trunk_v2": ("01_architecture", "esrgan_lab.lab.arch_study:run_deep_experiment"),
    "bn_removal_v2": ("02_bn_removal_ablation", "esrgan_lab.lab.bn_study_v2:run_experiment_v2"),
    "losses_v2": ("03_losses", "esrgan_lab.lab.loss_study_v2:run_matched"),
}

#: What each redesigned study's runner still lacks before its registered design can run
#: (issue 28; `run` refuses these studies until the entry is removed with the code).
NOT_READY: dict[str, str] = {}

#: Finished runs of studies in progress, committed so that a study of several hours resumes
#: in another session or on another machine (``tools/experiments.py archive NAME``).
ARCHIVE_DIR = REPO_ROOT / "data" / "runs"

#: Studies whose runs may be scored on the test images as soon as each finishes (no rule
#: waits on the other runs), so that their archive needs no weights.
SCORE_AS_FINISHED: dict[str, str] = {
    "deep_trunk_v2": "esrgan_lab.lab.arch_study:score_finished",
}

#: Where each experiment's sizes are in its notebook's params file (default ``study``).
CONFIG_SECTION: dict[str, str] = {
    name: section for name, (_nb, section, _reg) in findings.REDESIGNED.items()
}


def study_params(notebook: str, size: str, section: str = "study") -> dict:
    """The study's parameters at ``size``: ``section`` (``study``), or ``study`` updated by
    ``quick`` (the redesigned studies have no quick size yet)."""
    params = notebook_params(notebook)
    out = dict(params[section])
    if size == "quick":
        if section != "study":
            raise SystemExit(f"{section} of {notebook} has no quick size")
        out.update(params.get("quick", {}))
    return out


def training_seconds(folder: Path) -> float:
    """Training time of every run under ``folder``, summed over the trainer's stage
    records (``<run>/<stage>/metrics.json``, cumulative over resumes): the compute an
    experiment took even when this invocation resumed runs finished by an earlier one."""
    import json

    total = 0.0
    for path in folder.rglob("metrics.json"):
        record = json.loads(path.read_text())
        total += float(record.get("train_seconds_total") or 0.0)
    return total


def _function(target: str):
    module, func = target.split(":")
    return getattr(importlib.import_module(module), func)


def run_folder(name: str, size: str) -> Path:
    return REPO_ROOT / "runs" / "experiments" / (name if size == "full" else f"{name}_{size}")


def archive_meta(name: str, size: str) -> dict:
    """What an archive's runs were trained under: the registration's hash and the sizes."""
    notebook, _ = EXPERIMENTS[name]
    reg = findings.registration(name) if name in findings.REDESIGNED else None
    return {
        "experiment": name,
        "size": size,
        "registration_sha256": reg and findings.registration_hash(reg),
        "params": study_params(notebook, size, CONFIG_SECTION.get(name, "study")),
    }


def archive(name: str, size: str = "full") -> None:
    """Copy the finished runs of ``name`` into ``data/runs/<name>`` (commit it)."""
    from esrgan_lab.lab.runs import archive_runs

    folder = run_folder(name, size)
    meta = archive_meta(name, size)
    if name in SCORE_AS_FINISHED:
        _function(SCORE_AS_FINISHED[name])(meta["params"], folder)
    dest = ARCHIVE_DIR / folder.name
    done = archive_runs(folder, dest, meta)
    runs = "run" if len(done) == 1 else "runs"
    print(f"{name}: {len(done)} finished {runs} in {dest.relative_to(REPO_ROOT)}")


def status(name: str, size: str = "full") -> str:
    """Where a study stands: its finished runs (here or archived), the runs in progress with
    their last logged iteration, and a projection of the time left at the median finished
    run's training wall time (which includes any pauses; a projection, not a measurement)."""
    import json
    import statistics

    from esrgan_lab.lab.runs import finished_stages, read_log

    notebook, _ = EXPERIMENTS[name]
    params = study_params(notebook, size, CONFIG_SECTION.get(name, "study"))
    folder = run_folder(name, size)
    finished: dict[str, dict] = {}
    for root in (ARCHIVE_DIR / folder.name, folder):
        for stage in finished_stages(root) if root.is_dir() else []:
            record = json.loads((stage / "metrics.json").read_text())
            finished.setdefault(str(stage.relative_to(root)), record)
    first = sorted(r for r in finished if not r.startswith("repeat_"))
    lines = []
    if name in findings.REDESIGNED:
        arms = {a for c in findings.registered_claims(name) for a in c.arms}
        planned = len(arms) * len(params["seeds"])
        lines.append(f"{name}: {len(first)} of {planned} runs finished")
    else:
        planned = None
        lines.append(f"{name}: {len(first)} runs finished")
    if len(finished) > len(first):
        lines[-1] += f" (+ {len(finished) - len(first)} at the stopping rule's repeat length)"
    for rel, rec in sorted(finished.items()):
        amp = "bf16" if rec.get("amp") == "bf16" else "fp32"
        seconds = float(rec.get("train_seconds_total") or 0.0)
        val = float(rec.get("val_psnr_y") or float("nan"))
        lines.append(f"  {rel:<28} {seconds:8,.0f} s  {amp}  val {val:.2f} dB")
    for log in sorted(folder.glob("**/log.csv")) if folder.is_dir() else []:
        if (log.parent / "metrics.json").is_file():
            continue
        iters = read_log(log).get("iter", [])
        at = int(iters[-1]) if len(iters) else 0
        rel = str(log.parent.relative_to(folder))
        lines.append(f"  {rel:<28} in progress: iteration {at:,} of {params['iterations']:,}")
    if planned is not None and first and planned > len(first):
        median = statistics.median(
            float(finished[r].get("train_seconds_total") or 0.0) for r in first
        )
        left = planned - len(first)
        lines.append(
            f"projection: {left} runs left x {median:,.0f} s (median finished run, pauses "
            f"included) = {left * median / 3600:.1f} h, before any repeat a stopping rule asks"
        )
    return "\n".join(lines)


def study_precision(name: str, finished: str | None, requested: str | None, here: str) -> str:
    """The precision a study's next runs train in: that of its finished runs, else the
    requested one (``--amp``), else what ``amp: auto`` picks on this host (``here``).

    Raises:
        SystemExit: ``requested`` contradicts the finished runs, or asks for bf16 on a host
            without it.
    """
    if requested is not None and finished is not None and requested != finished:
        raise SystemExit(
            f"{name}: its finished runs trained with amp {finished!r}, not {requested!r}; "
            "a study's runs share one precision (runs.study_amp)"
        )
    if (finished or requested) == "bf16" and here != "bf16":
        raise SystemExit(f"{name}: its runs train in bf16, which this CPU lacks natively")
    return finished or requested or here


def run(
    name: str, size: str = "full", *, skip_optional: bool = False, amp: str | None = None
) -> None:
    if name in NOT_READY:
        raise SystemExit(
            f"{name} is registered (issue 28) but its runner is not ready: {NOT_READY[name]}"
        )
    from esrgan_lab.lab.runs import restore_runs, study_amp
    from esrgan_lab.training.runtime import resolve_amp

    notebook, target = EXPERIMENTS[name]
    study = _function(target)
    params = study_params(notebook, size, CONFIG_SECTION.get(name, "study"))
    folder = run_folder(name, size)
    # Runs finished in earlier sessions (committed by `archive`) are read, not retrained.
    archived = ARCHIVE_DIR / folder.name
    restored = restore_runs(archived, folder, archive_meta(name, size))
    if restored:
        print(f"== {name}: {len(restored)} finished runs restored from {archived}", flush=True)
    # Optional arms (architecture_v2's residual blocks at beta 0.2, trained last): their
    # claims read "not run" when left out.
    extra = {"optional": False} if skip_optional and params.get("optional_arms") else {}
    # One precision for all of a study's runs, since its arms are compared per seed: that of
    # the runs already finished (here or restored), else what `amp: auto` picks on this host.
    # `amp` (``--amp``) fixes it for a study's first run, so that a study started on a host
    # with native bf16 can still be finished on one without (fp32: "none"); it must agree
    # with the finished runs' precision.
    here = "bf16" if resolve_amp("auto", torch.device("cpu")) is not None else "none"
    params = {**params, "amp": study_precision(name, study_amp(folder), amp, here)}
    torch.set_num_threads(int(params.get("threads", 2)))
    print(f"== {name}: {notebook} study, params {params}", flush=True)
    # Provenance is taken before the run: the commit (and whether the tree was clean) of
    # the code that runs, even when commits land while a long study trains.
    prov = provenance()
    # The registration the study runs under, hashed before it starts: rendering refuses
    # these results once the registration changes (esrgan_lab.lab.findings).
    if name in findings.STUDIES or name in findings.REDESIGNED:
        prov["registration"] = {
            "sha256": findings.registration_hash(findings.registration(name)),
            "registered": "before the run",
        }
    start = time.time()
    results, images = study(params, folder, progress=True, **extra)
    prov.update(
        {
            "experiment": name,
            "notebook": notebook,
            "wall_seconds": round(time.time() - start, 1),
            "train_seconds": round(training_seconds(folder), 1),
            "precision": ("bf16 autocast" if amp == "bf16" else "fp32") + " (channels_last)",
            "size": size,
            # Runs trained in earlier sessions; each one's own metrics.json names its
            # commit, machine and dates.
            "restored_runs": restored,
            "command": f"make experiments NAME={name}"
            + ("" if size == "full" else f" SIZE={size}")
            + (" (optional arms skipped: --skip-optional)" if extra else ""),
        }
    )
    art = save(EXPERIMENTS_DIR / name, params, results, prov, images)
    print(f"== {name}: {prov['wall_seconds'] / 60:.1f} min -> {art.folder}", flush=True)


README = REPO_ROOT / "README.md"
BEGIN, END = "<!-- experiments:begin -->", "<!-- experiments:end -->"


def readme_section() -> str:
    """The README's stored-experiment section: per study, where and how long it ran, and
    each registered claim it tests with effect, interval and outcome
    (:func:`esrgan_lab.lab.findings.render`), all from ``data/experiments``."""
    from esrgan_lab.lab.experiments import load_artifact

    out = [
        "| study | notebook | made by | wall time (training) | machine |",
        "| --- | --- | --- | --- | --- |",
    ]
    claims: list[str] = []
    for name, (notebook, _target) in EXPERIMENTS.items():
        folder = EXPERIMENTS_DIR / name
        if not (folder / "results.json").is_file():
            continue
        art = load_artifact(folder)
        p = art.provenance
        train = ""
        if p.get("train_seconds"):
            train = f" ({p['train_seconds'] / 60:.0f} min)"
            if p["train_seconds"] > p["wall_seconds"]:  # runs trained by earlier invocations
                train = f" (reuses runs trained for {p['train_seconds'] / 60:.0f} min)"
        out.append(
            f"| {name} | `{notebook}` | `{p['command']}` ({p['size']} size) | "
            f"{p['wall_seconds'] / 60:.0f} min{train} | {p['cpu']} ({p['cpu_count']} cores, "
            f"{p['cpu_capability']}), {p['date'][:10]}, commit `{p['commit'][:8]}`"
            + (
                " (not the commit the run started from: see its provenance's commit_note)"
                if p.get("commit_note")
                else ""
            )
            + " |"
        )
        # Every verdict comes from the one renderer, from the registration and the stored
        # results (refused when the registration changed since the run).
        from esrgan_lab.lab.findings import render, study_findings

        claims += [f"* **{name}**: {render(f, notes=False)}" for f in study_findings(name)]
    return "\n".join([*out, "", *claims])


def render_readme(check: bool = False) -> int:
    """Rewrite the README between the markers (``check``: only compare); 1 if stale."""
    from esrgan_lab.fileio import replace_section

    stale = replace_section(README, BEGIN, END, readme_section(), check=check)
    if check and stale:
        print("README.md's experiments section is stale: run tools/experiments.py readme")
        return 1
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="cmd", required=True)
    run_p = sub.add_parser("run", help="run experiments and write their artifacts")
    run_p.add_argument("names", nargs="*", choices=[[], *EXPERIMENTS], default=[])
    run_p.add_argument(
        "--size",
        choices=("full", "quick"),
        default="full",
        help="full: the params file's `study`; quick: with its `quick` overrides (minutes)",
    )
    run_p.add_argument(
        "--skip-optional",
        action="store_true",
        help="leave out a study's optional arms (architecture_v2; their claims read 'not run')",
    )
    run_p.add_argument(
        "--amp",
        choices=("none", "bf16"),
        default=None,
        help="a new study's precision (none: fp32, which every host can continue); default: "
        "that of its finished runs, else bf16 where the CPU has it natively",
    )
    arch_p = sub.add_parser(
        "archive", help="copy a study's finished runs into data/runs/<name> (to commit)"
    )
    arch_p.add_argument("name", choices=list(EXPERIMENTS))
    arch_p.add_argument("--size", choices=("full", "quick"), default="full")
    status_p = sub.add_parser("status", help="a study's finished and running runs, time left")
    status_p.add_argument("name", choices=list(EXPERIMENTS))
    status_p.add_argument("--size", choices=("full", "quick"), default="full")
    sub.add_parser("list", help="list the experiments")
    readme_p = sub.add_parser("readme", help="render README.md's stored-experiment section")
    readme_p.add_argument("--check", action="store_true", help="exit 1 if it is stale")
    args = parser.parse_args(argv)
    if args.cmd == "readme":
        return render_readme(args.check)
    if args.cmd == "archive":
        archive(args.name, args.size)
        return 0
    if args.cmd == "status":
        print(status(args.name, args.size))
        return 0
    if args.cmd == "list":
        for name, (notebook, target) in EXPERIMENTS.items():
            print(f"{name:<14} {notebook:<26} {target}")
        return 0
    for name in args.names or [n for n in EXPERIMENTS if n not in findings.REDESIGNED]:
        run(name, args.size, skip_optional=args.skip_optional, amp=args.amp)
    return render_readme()


if __name__ == "__main__":
    sys.exit(main())
