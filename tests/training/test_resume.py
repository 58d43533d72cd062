"""Resuming is invisible, for every registered model: 2 epochs into a run directory, resumed to 4, end with
the same weights, bit for bit, and the same history as 4 epochs in one go.

The resumed run restores the weights, every optimizer's state, the random streams (shuffling, noise,
sampling, dropout) and the model's own schedules (KL warm-up, the stacked phases, the GAN's moving
average) from its checkpoint: any of them forgotten shows up here as a different bit.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

import hourglass
from hourglass.models import list_models

pytestmark = pytest.mark.usefixtures("one_thread")

QUICK = {"latent_dim": 3, "hidden": (16,), "batch_size": 32, "threads": 1, "progress": False, "figures": False,
         "checkpoint_interval": 0}
# What a model needs beyond QUICK to train 2 epochs: the stacked schedule (2 layers x 1 pretraining epoch,
# then fine-tuning) must fit into the first part, and the resumed part then changes phase.
PER_MODEL = {"stacked": {"pretrain_epochs": 1, "finetune_epochs": 0}}


@pytest.fixture(scope="module")
def digits_npz(tmp_path_factory):
    """160 of the embedded digits (flat, in [0, 1]) with their labels, as a file: a resumed run reads its
    data again from where it says they came from, and the conditional models need the labels."""
    from sklearn.datasets import load_digits

    d = load_digits()
    path = tmp_path_factory.mktemp("data") / "digits160.npz"
    np.savez(path, x=(d.data[:160] / 16.0).astype(np.float32), y=d.target[:160].astype(np.int64))
    return path


def _history(run) -> list[dict]:
    return [{k: v for k, v in row.items() if k != "seconds"} for row in run.history]  # timings differ


@pytest.mark.parametrize("name", list_models())
def test_resumed_training_is_bit_identical_to_one_long_run(name, digits_npz, tmp_path):
    opts = {**QUICK, **PER_MODEL.get(name, {})}
    hourglass.train(name, str(digits_npz), out=tmp_path / "whole", epochs=4, **opts)
    hourglass.train(name, str(digits_npz), out=tmp_path / "part", epochs=2, **opts)
    first = hourglass.load(tmp_path / "part")
    hourglass.resume(tmp_path / "part", epochs=4, progress=False, figures=False, threads=1)
    # compared as stored on disk: what a later `hourglass evaluate` or `encode` would read
    whole, resumed = hourglass.load(tmp_path / "whole"), hourglass.load(tmp_path / "part")

    a, b = whole.model.state_dict(), resumed.model.state_dict()
    assert a.keys() == b.keys()
    for key in a:
        assert a[key].dtype == b[key].dtype and torch.equal(a[key], b[key]), f"{name}: {key} differs"
    # the resumed part trained: its weights moved on from the 2-epoch checkpoint
    before = first.model.state_dict()
    assert any(not torch.equal(before[k], a[k]) for k in a if a[k].is_floating_point())
    assert len(whole.history) == 4 and _history(resumed) == _history(whole)
    assert resumed.metrics["epochs"] == whole.metrics["epochs"] == 4
