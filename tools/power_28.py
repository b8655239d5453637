"""Power calculation for issue 28's registered studies, from the stored studies' seed spread.

For every claim registered on a stored study (``data/experiments/<study>``, issue 27's
registrations), the per-seed paired differences of its endpoint
(:func:`esrgan_lab.lab.findings.study_findings`) give the seed-to-seed standard deviation
``sd``; :mod:`esrgan_lab.lab.power` turns it into the smallest effect the paired t test
finds with 80 % probability at 5, 8 and 10 seeds, and the seeds the stored effect needs.
Also the BN arms' validation Y-PSNR with the running statistics (``val_final_trainer``),
the endpoint a user of the trained model sees, which the stored findings do not use.

    python tools/power_28.py            # writes notebooks/params/power_28.json
    python tools/power_28.py --check    # exit 1 if that file is stale
"""

from __future__ import annotations

import argparse
import json
import sys

import numpy as np

from esrgan_lab.lab import power as P
from esrgan_lab.lab.experiments import EXPERIMENTS_DIR, PARAMS_DIR, load_artifact
from esrgan_lab.lab.findings import STUDIES, study_findings

OUT = PARAMS_DIR / "power_28.json"
SEEDS = (5, 8, 10)


def _row(differences: list[float], source: str, what: str) -> dict:
    d = np.asarray(differences, dtype=np.float64)
    n, mean, sd = len(d), float(d.mean()), float(d.std(ddof=1))
    up = P.sd_upper(sd, n)
    return {
        "source": source,
        "endpoint": what,
        "stored_seeds": n,
        "differences": [round(float(x), 4) for x in d],
        "effect": round(mean, 4),
        "sd": round(sd, 4),
        "sd_upper80": round(up, 4),
        "detectable_80pct": {str(k): round(P.detectable(sd, k), 4) for k in SEEDS},
        "detectable_80pct_at_sd_upper80": {str(k): round(P.detectable(up, k), 4) for k in SEEDS},
        "seeds_for_stored_effect": P.seeds_needed(mean, sd),
        "seeds_for_stored_effect_at_sd_upper80": P.seeds_needed(mean, up),
    }


def compute() -> dict:
    rows: dict[str, dict] = {}
    for study in STUDIES:
        for f in study_findings(study):
            c = f.claim
            rows[f"{study}/{c.id}"] = _row(
                list(f.effect.differences),
                f"data/experiments/{study}/results.json",
                f"{c.endpoint.metric} ({c.endpoint.aggregate}, {c.endpoint.images}): "
                f"'{c.arms[0]}' - '{c.arms[1]}'",
            )
    bn = load_artifact(EXPERIMENTS_DIR / "bn_removal").results
    base = {r["seed"]: r["val_final_trainer"] for r in bn["runs"]["no BN (ESRGAN)"]}
    for arm in ("BN in LR trunk (SRGAN)", "BN also in HR (Exp_BNinHR)"):
        other = {r["seed"]: r["val_final_trainer"] for r in bn["runs"][arm]}
        rows[f"bn_removal/running_stats_val_psnr/{arm}"] = _row(
            [base[s] - other[s] for s in sorted(base)],
            "data/experiments/bn_removal/results.json (val_final_trainer)",
            "validation Y-PSNR with running BN statistics (BSD68[-4:]): "
            f"'no BN (ESRGAN)' - '{arm}'",
        )
    return {
        "what": (
            "Seed-to-seed spread of the paired per-seed differences in the stored studies "
            "(issue 27's registered endpoints), and the smallest true effect the registered "
            "paired t test (two-sided 95 %) finds with 80 % probability at 5, 8 and 10 seeds, "
            "at the stored sd and at its one-sided 80 % upper limit (3 seeds estimate sd "
            "poorly); made by tools/power_28.py"
        ),
        "test": "paired Student t over seeds, alpha 0.05 two-sided, power 0.8",
        "claims": rows,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true")
    args = parser.parse_args(argv)
    text = json.dumps(compute(), indent=1) + "\n"
    if args.check:
        if not OUT.is_file() or OUT.read_text() != text:
            print(f"{OUT} is stale: run tools/power_28.py")
            return 1
        return 0
    OUT.write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
