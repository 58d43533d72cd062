"""A linear undercomplete autoencoder trained with SGD learns PCA's subspace (3-D data -> 2-D codes)."""

import numpy as np

import hourglass
from hourglass.evaluate.subspace import pca_subspace_angles


def plane_data(n=2000, seed=0):
    rng = np.random.default_rng(seed)
    latent = rng.normal(size=(n, 3)) * np.array([3.0, 1.0, 0.1])  # a clear gap: 3, 1 | 0.1
    rotation, _ = np.linalg.qr(rng.normal(size=(3, 3)))
    return (latent @ rotation.T + np.array([5.0, -2.0, 1.0])).astype(np.float32)


def test_linear_pca_preset_recovers_the_principal_subspace(tmp_path):
    path = tmp_path / "plane.npy"
    np.save(path, plane_data())
    run = hourglass.train("ae", str(path), preset="linear-pca", epochs=30, progress=False)  # standardised
    angles = pca_subspace_angles(run, np.load(path))
    assert angles.shape == (2,)
    assert angles.max() < 1.0, angles
    # and a nonlinear or mis-sized model is not silently "PCA": a random linear decoder is far off
    fresh = hourglass.create("ae", preset="linear-pca", input_shape=(3,))
    assert pca_subspace_angles(fresh, run.prepare(np.load(path))).max() > 1.0
