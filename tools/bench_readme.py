"""Render the README's CPU benchmark section from ``benchmarks/results/*.json``.

``make bench`` runs the benchmarks, each writing its JSON, then this script: the text between
``<!-- bench:begin -->`` and ``<!-- bench:end -->`` in README.md is replaced by tables made
from those files, each headed by the machine it was measured on (from its provenance). No
number in that section is typed by hand.

Speed depends on the CPU's instruction set (int8 gains come from VNNI, bf16 from
AVX512-BF16), so an earlier ``bench_int8`` run on another machine can be kept beside the
latest as ``bench_int8.<tag>.json`` (e.g. ``bench_int8.avx512.json``): its speed table is
rendered after the latest one, under its own machine line.

Usage::

    python tools/bench_readme.py            # rewrite README.md
    python tools/bench_readme.py --check    # exit 1 if README.md is not up to date
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from esrgan_lab.errors import ConfigError
from esrgan_lab.fileio import replace_section

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results"
BEGIN, END = "<!-- bench:begin -->", "<!-- bench:end -->"


def delta_cell(row: dict | None) -> str:
    """``+0.012`` (Y-PSNR change) or ``+0.012 / -0.30`` with the NIQE change."""
    if row is None:
        return "-"
    text = f"{row['delta_db']:+.3f}"
    if row.get("delta_niqe") is not None:
        text += f" / {row['delta_niqe']:+.2f}"
    return text


def _load(name: str) -> dict[str, Any] | None:
    path = RESULTS / f"{name}.json"
    return json.loads(path.read_text()) if path.is_file() else None


def _machine(prov: dict[str, Any]) -> str:
    cpu = prov.get("cpu") or prov.get("machine") or "unknown CPU"
    bits = [str(cpu) + (f" ({prov['cpu_count']} cores)" if prov.get("cpu_count") else "")]
    if prov.get("cpu_capability"):
        bits.append(str(prov["cpu_capability"]))
    if prov.get("threads"):
        bits.append(f"{prov['threads']} threads")
    if prov.get("torch"):
        bits.append(f"torch {prov['torch']}")
    when = str(prov.get("date", ""))[:10]
    commit = str(prov.get("commit") or "")[:8]
    return (
        ", ".join(bits)
        + (f"; measured {when}" if when else "")
        + (f" at commit `{commit}`" if commit else "")
    )


def stale_weights(cell: dict, models: list[str], datasets: list[str]) -> list[str]:
    """A line per shipped model whose fp32 score in the benchmark differs from its model
    card's (``data/weights/runs/eval_<name>.json``): the rows were measured on earlier weights."""
    out = []
    for m in models:
        card = ROOT / "data" / "weights" / "runs" / f"eval_{m}.json"
        if not card.is_file():
            continue
        shipped = json.loads(card.read_text())["mean"]
        pairs = [
            (d, cell[(m, d, "ORT fp32")]["psnr_y"], shipped[d]["psnr"])
            for d in datasets
            if (m, d, "ORT fp32") in cell and d in shipped
        ]
        if any(abs(bench - now) > 5e-4 for _, bench, now in pairs):
            scores = ", ".join(
                f"{d} {bench:.3f} here, {now:.3f} shipped" for d, bench, now in pairs
            )
            out.append(
                f"* The `{m}` rows were measured on earlier weights ({scores}): `make bench` "
                "refreshes them."
            )
    return out


def int8_tables(r: dict[str, Any], speed_only: bool = False) -> list[str]:
    out = [
        f"**Full 23-block x4 model on the CPU** (`bench_int8.py`, {r['threads']} threads; "
        f"128 px: best of 3, 512 px: tiled as `upscale` tiles it by default, one run; ratios "
        "against ONNX Runtime fp32 in the same run):",
        "",
        "| path | 128x128 | 512x512 (tiled) |",
        "| --- | --- | --- |",
    ]
    by = {(row["path"], row["size"]): row for row in r["speed"]}
    paths = list(dict.fromkeys(row["path"] for row in r["speed"]))
    sizes = sorted({row["size"] for row in r["speed"]})
    for path in paths:
        cells = []
        for size in (128, 512):
            row = by.get((path, size))
            cells.append(f"{row['seconds']:.2f} s, {row['vs_ort_fp32']:.2f}x" if row else "-")
        out.append(f"| {path} | " + " | ".join(cells) + " |")
    if not r.get("native_bf16"):
        bf16_scored = "bf16 (numerics)" in r.get("paths", ["bf16 (numerics)"])
        out += [
            "",
            "bf16 is not timed: this CPU computes bf16 by emulation (hundreds of times "
            "slower than fp32)"
            + ("; its accuracy is measured below with the same rounding." if bf16_scored else "."),
        ]
    built = r.get("paths")
    if built:
        out += ["", f"Paths built in this run: {', '.join(built)}."]
    if 512 not in sizes:
        out += ["", "(512 px not timed in this run: `--quick` or `--sizes 128`.)"]
    if speed_only:
        return out
    acc = r.get("accuracy", [])
    if acc:
        models = list(dict.fromkeys(a["model"] for a in acc))
        datasets = list(dict.fromkeys(a["dataset"] for a in acc))
        cols = [p for p in dict.fromkeys(a["path"] for a in acc) if p != "ORT fp32"]
        out += [
            "",
            "**Accuracy of each path** (Y-PSNR, standard protocol, change from fp32 in dB; "
            "where measured, the change in NIQE after the slash, lower is more natural; "
            f"bicubic: {', '.join(f'{d} {v:.3f}' for d, v in r['bicubic'].items())}; int8 "
            f"calibrated on {len(r['calibration']['images'])} training images, "
            f"{r['calibration']['patch']} px crops):",
            "",
            "| model | set | fp32 | " + " | ".join(cols) + " |",
            "| --- | --- | --- | " + " | ".join("---" for _ in cols) + " |",
        ]
        cell = {(a["model"], a["dataset"], a["path"]): a for a in acc}
        for m in models:
            for d in datasets:
                ref = cell.get((m, d, "ORT fp32"))
                if ref is None:
                    continue
                deltas = [delta_cell(cell.get((m, d, c))) for c in cols]
                fp32 = f"{ref['psnr_y']:.3f}"
                if ref.get("niqe") is not None:
                    fp32 += f" / {ref['niqe']:.3f}"
                out.append(f"| {m} | {d} | {fp32} | " + " | ".join(deltas) + " |")
        trained = not str(r["full_model"]).startswith("random")
        if not trained:
            source = ""
        elif "paper_cpu" in str(r["full_model"]):
            source = " (trained by `configs/paper_cpu.yaml`, not shipped)"
        else:
            source = f" (model card: `data/weights/{r['full_model']}.md`)"
        out += ["", f"The 23-block model: `{r['full_model']}`{source}."]
        out += stale_weights(cell, models, datasets)
    for q in r.get("quantize_cli", []):
        delta = ", ".join(f"{d} {v:+.3f} dB" for d, v in q.get("delta_db", {}).items())
        change = f" (int8 change {delta})" if delta else ""
        out.append(
            f"* `esrgan-lab quantize` of the 23-block model, {q['patch']} px calibration crops: "
            f"{q['seconds']:.0f} s in a fresh process{change}."
        )
    mem = r.get("memory")
    if mem:
        out.append(
            f"* `esrgan-lab upscale` of a {mem['input']} photograph by the 23-block int8 model, "
            f"no tiling flag: {mem['seconds']:.0f} s, peak RSS {mem['peak_rss_gb']:.2f} GB, "
            f"output {mem['output_shape'][1]}x{mem['output_shape'][0]}."
        )
    return out


def upscale_table(r: dict[str, Any]) -> list[str]:
    out = [
        "**`upscale` against the official `test.py` loop** (`bench_upscale.py`, random-weight "
        "23-block model; ratio to the reference loop, largest difference in 8-bit levels):",
        "",
        "| input | variant | time | vs reference | max diff |",
        "| --- | --- | --- | --- | --- |",
    ]
    for row in r["speed"]:
        out.append(
            f"| {row['size']}x{row['size']} | {row['variant']} | {row['seconds']:.2f} s | "
            f"{row['speedup_vs_reference']:.2f}x | {row['max_abs_diff_vs_reference']} |"
        )
    mem = r.get("memory")
    if mem:
        out += [
            "",
            f"Tiled memory: a {mem['size']}x{mem['size']} input, tile {mem['tile']}, "
            f"{mem['model']}: peak RSS {mem['peak_rss'] / 1e9:.2f} GB in {mem['seconds']} s, "
            f"against {mem['estimate_untiled'] / 1e9:.1f} GB estimated for the same model "
            "untiled.",
        ]
    return out


def training_table(r: dict[str, Any]) -> list[str]:
    out = [
        "**Training step speed** (`bench_training.py`: one PSNR-stage step, 128 px GT):",
        "",
        "| model | batch | path | it/s | vs fp32 eager | max rel. loss difference |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for label, m in r["models"].items():
        for name, row in m["paths"].items():
            out.append(
                f"| {label} | {m['batch']} | {name} | {row['it_per_s']:.3f} | "
                f"{row['speedup']:.2f}x | {row['max_rel_loss_diff']:.1e} |"
            )
    if r.get("skipped"):
        out += ["", f"Not measured: {r['skipped']}."]
    return out


def ddp_table(r: dict[str, Any]) -> list[str]:
    p = r["prepare"]
    out = [
        f"**Training memory per DDP rank** (`bench_ddp_data.py`: {p['photos']} synthetic "
        f"2040x1356 photographs cut into {p['subimages']} sub-images of 480x480 by "
        f"`prepare-data` in {p['seconds']:.0f} s; two CPU ranks, 2 DataLoader workers each):",
        "",
        "| data | peak RSS per rank | per worker | rank + workers (PSS) | time |",
        "| --- | --- | --- | --- | --- |",
    ]
    for row in r["train"]:
        label = "read from disk (`data.lazy`)" if row["lazy"] else "held in memory"
        out.append(
            f"| {label} | {row['peak_rank_rss_gb']:.2f} GB | {row['peak_worker_rss_gb']:.2f} GB | "
            f"{row['peak_rank_plus_workers_pss_gb']:.2f} GB | {row['seconds']:.0f} s |"
        )
    return out


def precision_table(r: dict[str, Any]) -> list[str]:
    rows = r.get("cpu") or r.get("rows") or []
    if not rows:
        return []
    out = [
        "**Every precision variant** (`bench_precision.py`, random-weight 23-block model, "
        "batch 1, 3x128x128; the variants of notebook 06):",
        "",
        "| variant | ms | vs fp32 torch | MB |",
        "| --- | --- | --- | --- |",
    ]
    for row in rows:
        out.append(
            f"| {row['variant']} | {row['latency_ms']:.0f} | "
            f"{row['speedup_vs_fp32_eager']:.2f}x | {row['size_mb']:.1f} |"
        )
    return out


def _machine_key(prov: dict[str, Any] | None) -> tuple:
    prov = prov or {}
    return (prov.get("cpu"), prov.get("cpu_capability"), prov.get("threads"), prov.get("torch"))


def render() -> str:
    parts: list[list[str]] = []
    head_prov = None
    for name, fn in (
        ("bench_int8", int8_tables),
        ("bench_upscale", upscale_table),
        ("bench_precision", precision_table),
        ("bench_training", training_table),
        ("bench_ddp_data", ddp_table),
    ):
        data = _load(name)
        if data is None:
            parts.append([f"(`{name}.py` has not been run: no `benchmarks/results/{name}.json`.)"])
            continue
        prov = data.get("provenance")
        head_prov = head_prov or prov
        lines = fn(data)
        if prov and _machine_key(prov) != _machine_key(head_prov):
            lines = [f"Measured on another machine: {_machine(prov)}.", "", *lines]
        parts.append(lines)
        if name == "bench_int8":
            for other in sorted(RESULTS.glob("bench_int8.*.json")):
                earlier = json.loads(other.read_text())
                parts.append(
                    [
                        f"The same benchmark on another machine (`{other.name}`): "
                        f"{_machine(earlier.get('provenance') or {})}.",
                        "",
                        *int8_tables(earlier, speed_only=True),
                    ]
                )
    head = [f"Machine: {_machine(head_prov)}." if head_prov else "Machine: unknown."]
    body = "\n\n".join("\n".join(p) for p in parts if p)
    return "\n".join([*head, "", body])


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--check", action="store_true", help="only check that README.md is current")
    args = p.parse_args(argv)
    try:
        stale = replace_section(ROOT / "README.md", BEGIN, END, render(), check=args.check)
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        return 1
    if args.check:
        return 1 if stale else 0
    print("README.md benchmark section rendered from benchmarks/results/")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
