"""Novelty detection on tables scikit-learn ships: hourglass' detector against IsolationForest and LOF.

    python benchmarks/outlier_detection.py --seeds 0,1,2,3,4,5,6,7,8,9
    python benchmarks/outlier_detection.py --data digits

Every detector is fitted on examples of one class only and scores held-out examples of that class
(inliers) and every example of the others (the novelties); the table gives the ROC-AUC of telling
them apart (1: perfect, 0.5: chance), mean and standard deviation over the seeds, each seed a new
split, and the median fit time. No network setting was chosen by looking at these numbers.

* ``breast_cancer`` (569 tumours, 30 features): fit on 70% of the benign tumours (250), score the
  other 107 benign ones and the 212 malignant ones.
* ``digits`` (1,797 8x8 images as 64 columns): seed s fits on 70% of digit s mod 10 and scores the rest
  of that digit against every other digit.

Detectors: IsolationForest (its defaults), LocalOutlierFactor(novelty=True) after a StandardScaler
(distances need comparable features), hourglass' ``AutoencoderOutlierDetector`` with its defaults
(an ae, 2-D code, 256-128 MLP, 30 epochs), and ae, vae and dae with one fixed smaller setting
(``SETTING``). All on one CPU thread.

The threshold table: the detectors set ``offset_`` for ``contamination=0.05`` from the scores of the
data given to ``fit`` (``calibration="fit"``) or of the validation split held out of it
(``calibration="validation"``, 20%); it shows the share of held-out inliers flagged (asked: 5%) and of
novelties caught.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch
from sklearn.datasets import load_breast_cancer, load_digits
from sklearn.ensemble import IsolationForest
from sklearn.metrics import roc_auc_score
from sklearn.neighbors import LocalOutlierFactor
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from threadpoolctl import threadpool_limits

from hourglass.sklearn import AutoencoderOutlierDetector

SETTING = dict(latent_dim=4, hidden=(64, 32), epochs=100, batch_size=32)
RESULTS = Path(__file__).resolve().parent / "results"


def split(data: str, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(x_fit, x_test, novel): fit on one class, test on its held-out part and the other classes."""
    if data == "breast_cancer":
        x, y = load_breast_cancer(return_X_y=True)
        inlier = 1  # benign
    else:
        x, y = load_digits(return_X_y=True)
        inlier = seed % 10
    rng = np.random.default_rng(seed)
    own = rng.permutation(np.flatnonzero(y == inlier))
    n_fit = int(round(0.7 * len(own)))
    x_test = np.concatenate([x[own[n_fit:]], x[y != inlier]])
    novel = np.r_[np.zeros(len(own) - n_fit, bool), np.ones(int((y != inlier).sum()), bool)]
    return x[own[:n_fit]], x_test, novel


def detectors(seed: int) -> dict:
    common = dict(random_state=seed, threads=1, device="cpu")
    return {
        "IsolationForest": IsolationForest(random_state=seed),
        "LocalOutlierFactor (novelty, standardised)": make_pipeline(StandardScaler(),
                                                                    LocalOutlierFactor(novelty=True)),
        "hourglass ae, defaults": AutoencoderOutlierDetector(**common),
        "hourglass ae": AutoencoderOutlierDetector("ae", **SETTING, **common),
        "hourglass vae": AutoencoderOutlierDetector("vae", **SETTING, **common),
        "hourglass dae (masking 0.2)": AutoencoderOutlierDetector("dae", **SETTING, **common,
                                                                 model_params={"noise": "masking",
                                                                               "noise_level": 0.2}),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", choices=("breast_cancer", "digits"), default="breast_cancer")
    ap.add_argument("--seeds", default="0,1,2,3,4,5,6,7,8,9", help="comma-separated seeds (default 0..9)")
    args = ap.parse_args()
    seeds = [int(s) for s in args.seeds.split(",")]
    torch.set_num_threads(1)
    auc: dict[str, list[float]] = {}
    seconds: dict[str, list[float]] = {}
    flagged: dict[str, list[tuple[float, float]]] = {}
    with threadpool_limits(1):
        for seed in seeds:
            x_fit, x_test, novel = split(args.data, seed)
            for name, det in detectors(seed).items():
                t0 = time.perf_counter()
                det.fit(x_fit)
                seconds.setdefault(name, []).append(time.perf_counter() - t0)
                auc.setdefault(name, []).append(roc_auc_score(novel, -det.score_samples(x_test)))
            for calibration in ("fit", "validation"):
                det = AutoencoderOutlierDetector("ae", **SETTING, random_state=seed, threads=1, device="cpu",
                                                 contamination=0.05, calibration=calibration, val_fraction=0.2)
                outlier = det.fit(x_fit).predict(x_test) == -1
                flagged.setdefault(calibration, []).append((outlier[~novel].mean(), outlier[novel].mean()))
            print(f"seed {seed}: " + ", ".join(f"{k} {v[-1]:.3f}" for k, v in auc.items()), flush=True)

    x_fit, x_test, novel = split(args.data, seeds[0])
    print(f"\n{args.data}: fit on {len(x_fit)} inliers, test on {int((~novel).sum())} inliers and "
          f"{int(novel.sum())} novelties, {len(seeds)} seeds\n")
    print("| detector | ROC-AUC (mean +- std) | fit s (median) |\n|---|---:|---:|")
    for name in auc:
        print(f"| {name} | {np.mean(auc[name]):.3f} +- {np.std(auc[name]):.3f} | {np.median(seconds[name]):.2f} |")
    print("\n| hourglass ae, contamination=0.05, calibration | held-out inliers flagged | novelties caught |\n"
          "|---|---:|---:|")
    for calibration, rows in flagged.items():
        fp, tp = np.mean(rows, axis=0)
        print(f"| {calibration} | {fp:.1%} | {tp:.1%} |")
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / f"outlier_detection_{args.data}.json"
    out.write_text(json.dumps({"seeds": seeds, "auc": auc, "fit_seconds": seconds, "flagged": flagged}, indent=2))
    print(f"\nwrote {out}")


if __name__ == "__main__":
    main()
