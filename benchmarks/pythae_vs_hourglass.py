#!/usr/bin/env python
"""pythae's default VAE against hourglass' ``vae-mnist`` preset, side by side on the MNIST sample.

Both are the same network: an MLP encoder 784-512-(mu, log var: 16) and decoder 16-512-784 with
ReLU and a Bernoulli (BCE) likelihood, pythae's default architecture for 28x28 inputs. Each pair
trains on the same data (``../shared/data/mnist10k``, 8,000 train / 2,000 test, /255), for the same
epochs, batch size (100), optimiser (Adam) and learning rate (1e-3), with the same torch thread
count, in the same process, for each seed:

  pythae     ``pythae.models.VAE`` + ``pythae.trainers.BaseTrainer`` (no eval set, so
             ``keep_best_on_train=True``: pythae needs one of the two to pick its final model)
  hourglass  ``hourglass.train("vae", preset="vae-mnist", val_fraction=0)``

Reported: the test negative ELBO (one posterior sample per example) and the importance-weighted NLL
(``--nll-samples`` samples; 0 skips it), each computed by the library's own code, in nats per
example; and the training time: pythae's ``trainer.train()`` call (which also deep-copies the best
model each epoch and saves the final one) against hourglass' ``fit_seconds``.

Usage (from the repository root, with pythae installed: ``pip install 'hourglass-ae[pythae]'``; it leaves
torch==2.13.0 in place):

    python benchmarks/pythae_vs_hourglass.py --epochs 10 --threads 2 --seeds 0,1,2

Results go to ``--out`` (default ``benchmarks/results/``, git-ignored) as ``pythae_vs_hourglass.json``.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

import hourglass
from hourglass.data import load_data

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DATA = ROOT.parent / "shared" / "data" / "mnist10k"
BATCH, LR, LATENT = 100, 1e-3, 16


def run_pythae(x_train: torch.Tensor, x_test: torch.Tensor, epochs: int, seed: int, nll_samples: int) -> dict:
    from pythae.data.datasets import BaseDataset
    from pythae.models import VAE, VAEConfig
    from pythae.trainers import BaseTrainer, BaseTrainerConfig

    for name in list(logging.root.manager.loggerDict):
        if name.startswith("pythae"):  # its trainer logs every epoch at INFO
            logging.getLogger(name).setLevel(logging.WARNING)
    torch.manual_seed(seed)
    model = VAE(VAEConfig(input_dim=(1, 28, 28), latent_dim=LATENT, reconstruction_loss="bce"))
    with tempfile.TemporaryDirectory() as tmp:
        cfg = BaseTrainerConfig(output_dir=tmp, num_epochs=epochs, learning_rate=LR,
                                per_device_train_batch_size=BATCH, per_device_eval_batch_size=BATCH,
                                keep_best_on_train=True, seed=seed, no_cuda=True)
        trainer = BaseTrainer(model, BaseDataset(x_train, torch.zeros(len(x_train))), training_config=cfg)
        t0, c0 = time.perf_counter(), time.process_time()
        trainer.train()
        seconds, cpu_seconds = time.perf_counter() - t0, time.process_time() - c0
    best = trainer._best_model.eval()
    torch.manual_seed(seed)
    with torch.no_grad():
        elbo = [best({"data": x_test[i : i + BATCH]}).loss.item() * len(x_test[i : i + BATCH])
                for i in range(0, len(x_test), BATCH)]
        out = {"neg_elbo": sum(elbo) / len(x_test), "fit_seconds": seconds, "fit_cpu_seconds": cpu_seconds}
        if nll_samples:
            # get_nll returns the mean log-likelihood estimate log p(x)
            out["nll"] = -float(best.get_nll(x_test, n_samples=nll_samples, batch_size=nll_samples))
    return out


def run_hourglass(data_dir: Path, epochs: int, seed: int, nll_samples: int) -> dict:
    run = hourglass.train("vae", "mnist", data_dir=str(data_dir), preset="vae-mnist", epochs=epochs, seed=seed,
                          val_fraction=0.0, progress=False, figures=False, iwae_samples=max(1, nll_samples))
    m = run.metrics
    out = {"neg_elbo": m["test"]["neg_elbo"], "fit_seconds": m["fit_seconds"]}
    if nll_samples:
        out["nll"] = m["test"]["nll"]
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data-dir", type=Path, default=DEFAULT_DATA)
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument("--seeds", default="0", help="comma-separated seeds, each run by both (default 0)")
    ap.add_argument("--threads", type=int, default=0, help="torch threads for both (0: torch's default)")
    ap.add_argument("--nll-samples", type=int, default=100, help="importance samples for the NLL (0: skip)")
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results")
    args = ap.parse_args(argv)
    try:
        import pythae  # noqa: F401
    except ImportError:
        print("pythae is not installed: pip install 'hourglass-ae[pythae]'", file=sys.stderr)
        return 2
    if not (args.data_dir / "train-images-idx3-ubyte.gz").is_file():
        print(f"no MNIST IDX files in {args.data_dir}", file=sys.stderr)
        return 2
    if args.threads:
        torch.set_num_threads(args.threads)
    seeds = [int(s) for s in args.seeds.split(",") if s.strip()]
    bundle = load_data("mnist", args.data_dir)
    x_train = torch.from_numpy(bundle.x_train.astype(np.float32) / 255.0)
    x_test = torch.from_numpy(bundle.x_test.astype(np.float32) / 255.0)
    rows = {"pythae": [], "hourglass": []}
    for seed in seeds:
        rows["pythae"].append(run_pythae(x_train, x_test, args.epochs, seed, args.nll_samples))
        rows["hourglass"].append(run_hourglass(args.data_dir, args.epochs, seed, args.nll_samples))
        for name in rows:
            print(f"seed {seed} {name:<9} " + ", ".join(f"{k} {v:.2f}" for k, v in rows[name][-1].items()), flush=True)

    def mean(name: str, key: str) -> float:
        return float(np.mean([r[key] for r in rows[name]])) if key in rows[name][0] else float("nan")

    print(f"\n{args.epochs} epochs, batch {BATCH}, seeds {seeds}, {torch.get_num_threads()} threads; "
          f"means over seeds (fit: median)")
    print("library   | test -ELBO | test NLL | fit s")
    for name in rows:
        fit = float(np.median([r["fit_seconds"] for r in rows[name]]))
        print(f"{name:<9} | {mean(name, 'neg_elbo'):10.2f} | {mean(name, 'nll'):8.2f} | {fit:6.2f}")
    speed = (np.median([r["fit_seconds"] for r in rows["pythae"]])
             / np.median([r["fit_seconds"] for r in rows["hourglass"]]))
    print(f"speed-up (pythae fit s / hourglass fit s): {speed:.2f}x")
    args.out.mkdir(parents=True, exist_ok=True)
    meta = {"epochs": args.epochs, "seeds": seeds, "threads": torch.get_num_threads(), "batch_size": BATCH,
            "lr": LR, "torch": torch.__version__, "pythae": _version("pythae")}
    (args.out / "pythae_vs_hourglass.json").write_text(json.dumps({"meta": meta, "runs": rows}, indent=2) + "\n")
    return 0


def _version(dist: str) -> str | None:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(dist)
    except PackageNotFoundError:
        return None


if __name__ == "__main__":
    sys.exit(main())
