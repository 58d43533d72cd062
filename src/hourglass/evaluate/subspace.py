"""How close an autoencoder's code subspace is to PCA's (Baldi & Hornik 1989).

A linear autoencoder x -> W_d (W_e x + b_e) + b_d trained on squared error spans, at its optimum,
the subspace of the leading principal components, though its code axes need not be the
components themselves (any invertible mixing of them is as good). The comparison is therefore
between subspaces: the principal angles between the decoder's column space and the span of the
top-k PCA components, all 0 degrees when they coincide.
"""

from __future__ import annotations

import numpy as np
import torch
from scipy.linalg import subspace_angles
from sklearn.decomposition import PCA

from ..errors import DataError


@torch.no_grad()
def decoder_directions(model) -> np.ndarray:
    """``(D, k)`` matrix whose columns are decode(e_i) - decode(0): the decoder's directions at z = 0.

    Exact for a linear decoder; for a nonlinear one, a linearisation around the origin of the code.
    """
    model.eval()
    k = model.latent_dim
    z = torch.cat([torch.zeros(1, k), torch.eye(k)]).to(model.device)
    out = model.decode_raw(z).reshape(k + 1, -1).double().cpu().numpy()
    return (out[1:] - out[0]).T


def pca_subspace_angles(model, x) -> np.ndarray:
    """Principal angles in degrees (ascending) between the model's code subspace and PCA's on ``x``.

    ``model`` is a model or a ``Run`` (then ``x`` is raw data and the run's scaling is applied);
    ``x`` is ``(N, D)`` data as the model sees it.
    """
    if hasattr(model, "prepare"):  # a Run
        x = model.prepare(x)
        model = model.model
    x = torch.as_tensor(x).reshape(len(x), -1).double().cpu().numpy()
    k = model.latent_dim
    if k >= x.shape[1]:
        raise DataError(f"the code ({k}-D) is not smaller than the data ({x.shape[1]}-D): no subspace to compare")
    pcs = PCA(n_components=k).fit(x).components_.T
    return np.degrees(subspace_angles(decoder_directions(model), pcs))[::-1]
