"""The figures every training run writes into its directory."""

from __future__ import annotations

import numpy as np
import torch

from . import figures


@torch.no_grad()
def write_run_figures(run, prepared, n_show: int = 16, n_map: int = 2000) -> list[str]:
    """losses.png; reconstructions.png (test originals over their reconstructions); samples.png for
    generative models; latent.png (2-D codes of test data coloured by label, or their top-2 PCs)."""
    out = run.path
    model = run.model.eval()
    dev = model.device
    written = []
    if run.history:
        written.append(figures.save_loss_curves(out / "losses.png", run.history))
    x = prepared.x_test[:n_show].to(dev)
    y = prepared.y_test[:n_show].to(dev) if prepared.y_test is not None else None
    recon = model.reconstruct(x, y).cpu().numpy()
    image = run.info["data"]["kind"] == "image"
    if image:
        written.append(figures.save_rows(out / "reconstructions.png", [x.cpu().numpy(), recon]))
    else:
        written.append(figures.save_table_rows(out / "reconstructions.png", [x.cpu().numpy(), recon],
                                               ["test data (scaled)", "reconstruction"]))
    if model.generative:
        n = 64
        ys = None
        if model.conditional and prepared.y_test is not None:
            k = int(model.config.num_classes)
            ys = torch.arange(k, device=dev).repeat_interleave(max(1, n // k))
            n = len(ys)
        samples = model.sample(n, ys).cpu().numpy()
        if image:
            nrow = max(1, n // int(model.config.num_classes)) if ys is not None else 8
            written.append(figures.save_grid(out / "samples.png", samples, nrow=nrow))
        else:
            written.append(figures.save_latent_map(out / "samples.png", samples.reshape(n, -1)[:, :3], None,
                                                   "samples (first features)"))
    xm = prepared.x_test[:n_map]
    ym = prepared.y_test[:n_map] if prepared.y_test is not None else None
    codes = torch.cat([model.encode(xm[i:i + 1024].to(dev), ym[i:i + 1024].to(dev) if ym is not None else None).cpu()
                       for i in range(0, len(xm), 1024)]).numpy()
    labels = ym.numpy() if ym is not None else None
    written.append(figures.save_latent_map(out / "latent.png", codes, labels,
                                           f"{run.model_name}: test codes ({codes.shape[1]}-D)"))
    return [str(p) for p in written]


