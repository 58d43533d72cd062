"""Metrics of a trained model on a data split, averaged per example.

Each model reports per-example numbers from ``metrics_batch``: every model the mean per-value
binary cross-entropy (``recon_bce``, the Keras convention, meaningful for data in [0, 1]) and mean
squared error (``recon_mse``); VAE-type models add the negative ELBO (``neg_elbo``) and the
importance-sampled negative log-likelihood (``nll``), both in nats per example.
"""

from __future__ import annotations

import math

import torch


@torch.no_grad()
def evaluate(
    model,
    x: torch.Tensor,
    y: torch.Tensor | None = None,
    batch_size: int = 1024,
    max_examples: int | None = None,
    seed: int = 0,
) -> dict[str, float]:
    """Mean of each per-example metric over ``x`` (a seeded random subset of ``max_examples`` if given).

    ``recon_bce`` is left out when the data are not in [0, 1] (it is not a likelihood there).
    """
    model.eval()
    n = x.shape[0]
    if n == 0:
        raise ValueError("cannot evaluate on an empty data set")
    if max_examples is not None and n > max_examples:
        idx = torch.randperm(n, generator=torch.Generator().manual_seed(seed))[:max_examples]
        x = x[idx]
        y = y[idx] if y is not None else None
        n = max_examples
    dev = model.device
    state = torch.get_rng_state()
    torch.manual_seed(seed)  # the ELBO and IWAE estimates sample: make them repeatable
    sums: dict[str, float] = {}
    try:
        for start in range(0, n, batch_size):
            xb = x[start : start + batch_size].to(dev)
            yb = y[start : start + batch_size].to(dev) if y is not None else None
            for k, v in model.metrics_batch(xb, yb).items():
                sums[k] = sums.get(k, 0.0) + float(v.double().sum())
    finally:
        torch.set_rng_state(state)
    out = {k: v / n for k, v in sums.items()}
    if float(x.min()) < 0 or float(x.max()) > 1:
        out.pop("recon_bce", None)
    if "recon_mse" in out and out["recon_mse"] > 0:
        # PSNR for data in [0, 1]: 10 log10(1 / MSE)
        if "recon_bce" in out:
            out["psnr"] = 10 * math.log10(1.0 / out["recon_mse"])
    out["n"] = n
    return out
