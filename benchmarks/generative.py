#!/usr/bin/env python
"""The generative family on MNIST: cvae, aae and gan, with the figures that show what each learnt.

Trains on the 10,000-digit MNIST sample (``../shared/data/mnist10k`` beside the repo: 8,000 train /
2,000 test), each model through ``hourglass.train`` for ``--epochs`` epochs:

  cvae        MLP 784-512-256-(8)-256-512-784 conditioned on the one-hot label (a small code leaves
              the class to the label)
  aae         MLP with a 2-D code; prior: a mixture of 10 Gaussians on a circle; use_labels, so
              class k is pushed into component k
  gan         DCGAN-style conv pair, 32-64 channels, batch-normalised generator (``--gan-arch conv``,
              the default), or an MLP pair
  cvae-semi   the CVAE with the M2 classifier q(y|x), trained on the same images with only
              ``--labels`` of their labels kept (default 100 and 1000; ``keep_labels`` of
              hourglass.train), reporting the classifier's test accuracy

Figures (``--out``, default ``benchmarks/results/generative``, git-ignored):

  cvae_samples.png        class-conditional samples, row k = class k
  aae_codes.png           the AAE's test codes coloured by label, over samples of its prior (grey)
  aae_samples.png         decoded prior samples, row k = drawn from component k
  gan_samples.png         an 8x8 grid of GAN samples
  cvae_interpolation.png  / aae_interpolation.png: rows of [x_a, decoded path through code space, x_b]
                          for four test pairs (``hourglass.evaluate.interpolate``); the CVAE's label
                          switches from y_a to y_b half-way

and ``metrics.json``: fit seconds, each run's test metrics, the share of class-conditional CVAE
samples that a logistic regression trained on real digits assigns to the asked class, and the
semi-supervised classifier's test accuracy. Usage (venv active, from the repository root):

    python benchmarks/generative.py --epochs 1 --threads 2        # a quick check
    python benchmarks/generative.py                               # 10 epochs
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch

from hourglass import Run, train
from hourglass.data import load_data
from hourglass.evaluate.interpolate import interpolate
from hourglass.report import figures

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DATA = ROOT.parent / "shared" / "data" / "mnist10k"

CVAE = dict(hidden=(512, 256), latent_dim=8)
AAE = dict(hidden=(512, 256), latent_dim=2, prior="mixture", prior_components=10, use_labels=True,
           disc_hidden=(256, 256))
GAN = {"conv": dict(architecture="conv", conv_channels=(32, 64), latent_dim=64, lr=2e-4),
       "mlp": dict(hidden=(512, 256), latent_dim=64, lr=2e-4)}


def test_images(run: Run, bundle, n: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    x = run.prepare(bundle.x_test if n is None else bundle.x_test[:n])
    return x, torch.from_numpy(bundle.y_test[: len(x)].astype(np.int64))


def pairs(y: torch.Tensor, k: int = 4) -> list[tuple[int, int]]:
    """k pairs of test indices with different labels (first example of class 2i and 2i+1)."""
    out = []
    for c in range(k):
        a = int((y == (2 * c) % 10).nonzero()[0])
        b = int((y == (2 * c + 1) % 10).nonzero()[0])
        out.append((a, b))
    return out


@torch.no_grad()
def interpolation_figure(path: Path, model, x: torch.Tensor, y: torch.Tensor, steps: int = 10) -> Path:
    rows = []
    for a, b in pairs(y):
        ya, yb = (y[a], y[b]) if model.conditional else (None, None)
        strip = interpolate(model, x[a], x[b], steps, y_a=ya, y_b=yb).cpu()
        rows.append(torch.cat([x[a : a + 1], strip, x[b : b + 1]]).numpy())
    return figures.save_grid(path, np.concatenate(rows), nrow=steps + 2)


def code_map(path: Path, model, x: torch.Tensor, y: torch.Tensor) -> Path:
    """The AAE's 2-D codes coloured by label, over samples of its prior in grey."""
    import matplotlib.pyplot as plt

    with torch.no_grad():
        z = torch.cat([model.encode(x[i : i + 1000]) for i in range(0, len(x), 1000)]).numpy()
        torch.manual_seed(0)
        zp = model.prior.sample(5000).numpy()
    fig, ax = plt.subplots(figsize=(6.5, 5.5))
    ax.scatter(zp[:, 0], zp[:, 1], s=2, c="0.85", label="prior samples")
    sc = ax.scatter(z[:, 0], z[:, 1], s=3, c=y.numpy(), cmap="tab10", vmin=-0.5, vmax=9.5)
    fig.colorbar(sc, ax=ax, label="label", ticks=range(10))
    ax.set_aspect("equal")
    ax.set_title(f"AAE test codes on its prior ({model.config.prior}, {model.prior.num_components} components)")
    ax.legend(loc="upper right", markerscale=4)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def conditional_accuracy(model, bundle, run: Run, per_class: int = 50) -> float:
    """Share of class-conditional samples a logistic regression on real training digits calls the asked class."""
    from sklearn.linear_model import LogisticRegression

    n_fit = min(3000, len(bundle.x_train))
    xr = run.prepare(bundle.x_train[:n_fit]).reshape(n_fit, -1).numpy()
    clf = LogisticRegression(max_iter=300).fit(xr, bundle.y_train[:n_fit])
    asked = torch.arange(10).repeat_interleave(per_class)
    torch.manual_seed(1)
    s = model.sample(len(asked), asked).reshape(len(asked), -1).numpy()
    return float(clf.score(s, asked.numpy()))


def semi_supervised(common: dict, n_labels: int, alpha: float) -> dict:
    """The M2 CVAE trained with only ``n_labels`` of the training labels (balanced over the classes)."""
    run = train("cvae", "mnist", **common, **CVAE, semi_supervised=True, keep_labels=n_labels, alpha=alpha)
    return {"labels_kept": n_labels, "alpha": alpha, "fit_seconds": run.metrics["fit_seconds"],
            "classifier_test_accuracy": round(run.metrics["test"]["classifier_accuracy"], 4)}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "generative"))
    ap.add_argument("--data-dir", default=str(DEFAULT_DATA))
    ap.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--gan-arch", choices=("conv", "mlp"), default="conv")
    ap.add_argument("--labels", default="100,1000",
                    help="comma-separated numbers of training labels kept for the semi-supervised CVAE")
    ap.add_argument("--alpha", type=float, default=None,
                    help="the semi-supervised CVAE's classification weight (default: the model's)")
    ap.add_argument("--models", default="cvae,aae,gan,cvae-semi")
    args = ap.parse_args(argv)
    if not (Path(args.data_dir) / "train-images-idx3-ubyte.gz").is_file():
        print(f"no MNIST IDX files in {args.data_dir}", file=sys.stderr)
        return 2
    if args.threads:
        torch.set_num_threads(args.threads)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    wanted = set(args.models.split(","))
    bundle = load_data("mnist", args.data_dir, seed=args.seed)
    common = dict(data_dir=args.data_dir, epochs=args.epochs, progress=False, val_fraction=0.0, seed=args.seed,
                  figures=False, batch_size=100)
    results: dict = {"epochs": args.epochs, "threads": torch.get_num_threads(), "torch": torch.__version__}
    written: list[Path] = []

    def record(name: str, run: Run) -> None:
        test = {k: round(v, 4) if isinstance(v, float) else v for k, v in run.metrics["test"].items()}
        results[name] = {"fit_seconds": run.metrics["fit_seconds"], "test": test}
        print(f"{name}: fit {run.metrics['fit_seconds']} s, test {results[name]['test']}", flush=True)

    if "cvae" in wanted:
        run = train("cvae", "mnist", **common, **CVAE)
        record("cvae", run)
        model = run.model.eval()
        torch.manual_seed(0)
        grid = model.sample(100, torch.arange(10).repeat_interleave(10)).numpy()  # row k: class k
        written.append(figures.save_grid(out / "cvae_samples.png", grid, nrow=10))
        x, y = test_images(run, bundle, 500)
        written.append(interpolation_figure(out / "cvae_interpolation.png", model, x, y))
        results["cvae"]["sample_class_accuracy"] = round(conditional_accuracy(model, bundle, run), 4)
    if "aae" in wanted:
        run = train("aae", "mnist", **common, **AAE)
        record("aae", run)
        model = run.model.eval()
        x, y = test_images(run, bundle)
        written.append(code_map(out / "aae_codes.png", model, x, y))
        torch.manual_seed(0)
        grid = model.sample(100, torch.arange(10).repeat_interleave(10)).numpy()  # row k: component k
        written.append(figures.save_grid(out / "aae_samples.png", grid, nrow=10))
        written.append(interpolation_figure(out / "aae_interpolation.png", model, x[:500], y[:500]))
        with torch.no_grad():
            comp = torch.cdist(model.encode(x), model.prior.means()).argmin(1)
        results["aae"]["codes_in_their_class_component"] = round(float((comp == y).float().mean()), 4)
    if "gan" in wanted:
        run = train("gan", "mnist", **common, **GAN[args.gan_arch])
        record("gan", run)
        torch.manual_seed(0)
        written.append(figures.save_grid(out / "gan_samples.png", run.model.eval().sample(64).numpy(), nrow=8))
    if "cvae-semi" in wanted:
        from hourglass.models.cvae import CVAEConfig

        alpha = CVAEConfig.alpha if args.alpha is None else args.alpha
        results["cvae-semi"] = [semi_supervised(common, int(n), alpha) for n in args.labels.split(",") if n.strip()]
        print(f"cvae-semi: {results['cvae-semi']}", flush=True)
    (out / "metrics.json").write_text(json.dumps(results, indent=2) + "\n")
    for p in written:
        print("wrote", p)
    print("wrote", out / "metrics.json")
    return 0


if __name__ == "__main__":
    sys.exit(main())
