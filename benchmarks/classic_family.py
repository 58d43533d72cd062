"""The classic autoencoder family side by side on the MNIST sample, with PCA as the baseline.

    python benchmarks/classic_family.py --epochs 10

Every model is the same MLP, 784-256-32-256-784 (PCA: 32 components), trained with the same
optimiser (Adam, lr 1e-3), batch size and number of epochs by the generic trainer on the 8,000
training images scaled to [0, 1]; every number is measured on the 2,000 test images. Columns:

* test recon BCE: mean per-pixel binary cross-entropy of the reconstruction (lower is better);
* denoising BCE: the same, reconstructing ``gaussian:0.5``-corrupted test images (clipped to [0, 1],
  fixed noise) and comparing with the clean ones;
* mean |code| and fraction near-zero (|z_j| <= 0.1 max_j |z_j| within each code): sparsity;
* Jacobian ||dz/dx||_F: mean Frobenius norm of the encoder's Jacobian (exact, torch.func; PCA's is
  sqrt(32), its rows being orthonormal);
* probe accuracy: a logistic regression from train codes to train labels, scored on test codes;
* fit seconds: training time (for the stacked model, pretraining included), one CPU thread by default.

The per-model settings that differ are the point of each model and are printed under the table.
Numbers on this 10k sample are comparable with each other, not with published full-MNIST figures.
"""

from __future__ import annotations

import argparse
import math
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.decomposition import PCA
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from threadpoolctl import threadpool_limits

import hourglass
from hourglass.data import load_data
from hourglass.models.contractive import jacobian_frobenius
from hourglass.models.noise import corrupt, parse_noise_spec
from hourglass.models.sparse import code_stats
from hourglass.training.trainer import TrainConfig, Trainer

DEFAULT_DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "mnist10k"
NOISE = "gaussian:0.5"
SIZE = dict(architecture="mlp", hidden=(256,), latent_dim=32, recon_loss="bce", lr=1e-3)


def load_mnist(data_dir: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(x_train, y_train, x_test, y_test): images flattened to 784 values, scaled to [0, 1] by their range."""
    b = load_data("mnist", data_dir=str(data_dir))
    lo, hi = b.value_range if b.value_range is not None else (0.0, 255.0)

    def scale(x: np.ndarray) -> np.ndarray:
        return ((x.reshape(len(x), -1).astype(np.float32) - lo) / (hi - lo)).clip(0, 1)

    return scale(b.x_train), np.asarray(b.y_train), scale(b.x_test), np.asarray(b.y_test)


def stacked_schedule(epochs: int, layers: int) -> dict[str, int]:
    """Pretraining gets at most half the epochs (none if there is no room for it and a fine-tune)."""
    pre = max(1, epochs // (2 * layers)) if epochs > layers else 0
    return {"pretrain_epochs": pre, "finetune_epochs": epochs - layers * pre}


def variants(epochs: int) -> dict[str, tuple[str, dict]]:
    kind, level = parse_noise_spec(NOISE)
    return {
        "ae": ("ae", {}),
        f"dae ({NOISE})": ("dae", {"noise": kind, "noise_level": level}),
        "sparse l1 (relu code)": ("sparse", {"sparsity": "l1", "code_activation": "relu",
                                             "sparsity_weight": 0.1}),
        "sparse kl (rho 0.05)": ("sparse", {"sparsity": "kl", "sparsity_weight": 1.0}),
        "sparse ksparse (k 8)": ("sparse", {"sparsity": "ksparse", "k": 8}),
        "contractive (exact J)": ("contractive", {"contraction_weight": 0.1}),
        "contractive (estimate, 1 proj.)": ("contractive", {"contraction_weight": 0.1,
                                                            "jacobian": "estimate"}),
        "stacked": ("stacked", stacked_schedule(epochs, layers=2)),
    }


def row(name, secs, recon, x_train, y_train, x_test, y_test, x_noisy, encode, jac) -> dict:
    z_tr, z_te = encode(x_train), encode(x_test)
    stats = code_stats(torch.as_tensor(z_te))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # lbfgs convergence warnings: the accuracy is what is reported
        probe = make_pipeline(StandardScaler(), LogisticRegression(max_iter=500))
        acc = probe.fit(z_tr, y_train).score(z_te, y_test)
    return {
        "model": name,
        "recon": recon(x_test),
        "denoise": recon(x_noisy, target=x_test),
        "abs": stats["mean_abs"],
        "zero": stats["near_zero"],
        "jac": jac,
        "acc": acc,
        "secs": secs,
    }


def bce(p: np.ndarray | torch.Tensor, target: np.ndarray | torch.Tensor) -> float:
    p = torch.as_tensor(p).clamp(1e-7, 1 - 1e-7)
    return F.binary_cross_entropy(p, torch.as_tensor(target)).item()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--epochs", type=int, default=10, help="training epochs for every model (default 10)")
    ap.add_argument("--data-dir", type=Path, default=DEFAULT_DATA, help="the mnist10k IDX directory")
    ap.add_argument("--batch-size", type=int, default=128)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--device", default="auto")
    ap.add_argument("--threads", type=int, default=1,
                    help="CPU threads (default 1: steadier timings on a shared CPU; 0: library default)")
    args = ap.parse_args(argv)
    if args.threads > 0:  # torch's threads and the BLAS / OpenMP pools under numpy and scikit-learn
        torch.set_num_threads(args.threads)
        threadpool_limits(args.threads)
    if not (args.data_dir / "train-images-idx3-ubyte.gz").is_file():
        print(f"no MNIST sample in {args.data_dir} (expected ../shared/data/mnist10k beside the repo)",
              file=sys.stderr)
        return 2

    x_tr, y_tr, x_te, y_te = load_mnist(args.data_dir)
    kind, level = parse_noise_spec(NOISE)
    xt_tr, xt_te = torch.from_numpy(np.ascontiguousarray(x_tr)), torch.from_numpy(np.ascontiguousarray(x_te))
    xt_noisy = corrupt(xt_te, kind, level, torch.Generator().manual_seed(args.seed + 1), clip=(0.0, 1.0))
    rows, notes = [], []

    # PCA baseline: z = V^T (x - mean), x_hat = V z + mean, clipped into (0, 1) for the BCE.
    t0 = time.perf_counter()
    pca = PCA(n_components=SIZE["latent_dim"], random_state=args.seed).fit(x_tr)
    secs = time.perf_counter() - t0
    def pca_recon(x, target=None):
        x = np.asarray(x)
        return bce(pca.inverse_transform(pca.transform(x)), x if target is None else target)

    rows.append(row("pca", secs, pca_recon, x_tr, y_tr, x_te, y_te, xt_noisy.numpy(),
                    lambda x: pca.transform(np.asarray(x)), float(np.linalg.norm(pca.components_))))

    for label, (name, cfg) in variants(args.epochs).items():
        torch.manual_seed(args.seed)
        model = hourglass.create(name, input_shape=(784,), **{**SIZE, **cfg})
        trainer = Trainer(model, TrainConfig(epochs=args.epochs, batch_size=args.batch_size, seed=args.seed,
                                             device=args.device, progress=False))
        t0 = time.perf_counter()
        trainer.fit(xt_tr)
        secs = time.perf_counter() - t0
        model.eval()
        dev = model.device

        @torch.no_grad()
        def encode(x, model=model):
            return torch.cat([model.encode(c.to(dev)).cpu() for c in torch.as_tensor(x).split(1024)]).numpy()

        @torch.no_grad()
        def recon(x, target=None, model=model):
            x = torch.as_tensor(x)
            target = x if target is None else torch.as_tensor(target)
            out = torch.cat([model.decode_raw(model.encode(c.to(dev))).cpu() for c in x.split(1024)])
            return F.binary_cross_entropy_with_logits(out, target).item()

        jac = jacobian_frobenius(model, xt_te.to(dev)).mean().item()
        rows.append(row(label, secs, recon, xt_tr, y_tr, xt_te, y_te, xt_noisy, encode, jac))
        if name == "stacked":
            notes.append(f"stacked: {model.num_layers} layers x {cfg['pretrain_epochs']} pretraining epochs "
                         f"+ {cfg['finetune_epochs']} fine-tuning epochs = {args.epochs}; "
                         f"schedule {model.schedule()}")

    print(f"classic family on {args.data_dir.name}: {len(x_tr)} train / {len(x_te)} test, MLP 784-256-32, "
          f"{args.epochs} epochs, batch {args.batch_size}, seed {args.seed}, device {trainer.device}, "
          f"torch {torch.__version__}, {torch.get_num_threads()} threads\n")
    print("| model | test recon BCE | denoising BCE (gaussian:0.5) | mean abs code | fraction near-zero "
          "| Jacobian Frobenius norm | probe accuracy | fit seconds |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        print(f"| {r['model']} | {r['recon']:.4f} | {r['denoise']:.4f} | {r['abs']:.3f} | {r['zero']:.3f} "
              f"| {r['jac']:.2f} | {r['acc']:.3f} | {r['secs']:.1f} |")
    print()
    settings = "; ".join(f"{k}: {v[1] or 'defaults'}" for k, v in variants(args.epochs).items())
    print("\n".join([f"settings: {settings}", *notes,
                     f"chance accuracy 0.1; PCA's Jacobian norm is sqrt(32) = {math.sqrt(32):.2f}"]))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
