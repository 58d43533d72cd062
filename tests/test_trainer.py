"""The generic trainer: phases, early stopping, non-finite losses, checkpoints and resume."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from helpers import fixed_batch, small_model
from hourglass.models.base import Autoencoder, BaseConfig
from hourglass.training import checkpoint as ckpt
from hourglass.training.callbacks import Checkpoint
from hourglass.training.trainer import Callback, TrainConfig, Trainer, TrainingError


class TwoPhase(Autoencoder):
    """A toy model with two optimizers, recording the order in which phases are called."""

    def __init__(self):
        super().__init__(BaseConfig(input_shape=(4,)))
        self.a = nn.Linear(4, 4)
        self.b = nn.Linear(4, 4)
        self.calls: list[str] = []

    def configure_optimizers(self):
        return {"first": torch.optim.SGD(self.a.parameters(), lr=0.1),
                "second": torch.optim.SGD(self.b.parameters(), lr=0.1)}

    def active_phases(self, epoch):
        return ["first"] if epoch == 0 else None

    def training_step(self, batch, phase="model"):
        x, _ = batch
        self.calls.append(phase)
        layer = self.a if phase == "first" else self.b
        return {"loss": ((layer(x) - x) ** 2).mean()}

    def validation_step(self, batch):
        x, _ = batch
        return {"loss": ((self.b(self.a(x)) - x) ** 2).mean()}


def test_phases_run_in_declared_order_and_active_phases_is_honoured():
    model = TwoPhase()
    b_before = model.b.weight.detach().clone()
    x = torch.rand(8, 4)
    hist = Trainer(model, TrainConfig(epochs=1, batch_size=4, progress=False)).fit(x)
    assert model.calls == ["first", "first"]
    assert torch.equal(model.b.weight, b_before)  # "second" did not train in epoch 0
    assert hist[0]["phases"] == "first" and "train_first/loss" in hist[0]
    model.calls.clear()
    Trainer(model, TrainConfig(epochs=2, batch_size=8, progress=False)).fit(x)
    assert model.calls == ["first", "first", "second"]


def test_history_has_train_and_validation_losses_per_epoch():
    model = small_model("ae")
    x, _ = fixed_batch(n=40)
    hist = Trainer(model, TrainConfig(epochs=3, batch_size=8, progress=False)).fit(x, None, x[:10], None)
    assert [h["epoch"] for h in hist] == [1, 2, 3]
    assert all(math.isfinite(h["train_loss"]) and math.isfinite(h["val_loss"]) for h in hist)
    assert hist[-1]["train_loss"] < hist[0]["train_loss"]


def test_early_stopping_stops_after_patience_and_restores_the_best_weights():
    model = small_model("ae", lr=1e-9)  # cannot improve by min_delta
    x, _ = fixed_batch(n=16)
    trainer = Trainer(model, TrainConfig(epochs=50, batch_size=8, patience=2, min_delta=1.0, progress=False))
    hist = trainer.fit(x, None, x, None)
    assert len(hist) == 3 and hist[-1].get("early_stop") is True
    assert trainer.state.stopped_early


def test_non_finite_loss_stops_with_the_step_named():
    model = small_model("ae")
    x, _ = fixed_batch(n=16)
    x[9, 0] = float("nan")  # in the second batch of 8 (no shuffling can hide it: check the message)
    with pytest.raises(TrainingError, match=r"became nan at epoch 1, step \d"):
        Trainer(model, TrainConfig(epochs=2, batch_size=8, progress=False)).fit(x)


def test_last_good_checkpoint_survives_a_diverging_epoch(tmp_path):
    model = small_model("ae")
    x, _ = fixed_batch(n=16)
    class Poison(Callback):
        def on_epoch_end(self, t, record):
            with torch.no_grad():  # poison the weights: the next epoch diverges
                next(model.parameters()).fill_(float("inf"))

    trainer = Trainer(model, TrainConfig(epochs=3, batch_size=8, progress=False),
                      callbacks=[Checkpoint(tmp_path), Poison()])
    with pytest.raises(TrainingError, match="epoch 2"):
        trainer.fit(x)
    saved = ckpt.load_tensors(tmp_path / "model.safetensors")
    assert all(torch.isfinite(v).all() for v in saved.values())
    assert ckpt.load_state(ckpt.latest_checkpoint(tmp_path))["trainer"]["epoch"] == 1


def test_trainer_state_round_trips_through_safetensors_and_json(tmp_path):
    model = small_model("vae")
    x, _ = fixed_batch(n=16)
    trainer = Trainer(model, TrainConfig(epochs=1, batch_size=8, progress=False))
    trainer.fit(x)
    ckpt.save_state(tmp_path, trainer.state_dict())
    state = ckpt.load_state(tmp_path)
    other = Trainer(small_model("vae"), TrainConfig(epochs=1, progress=False))
    other.load_state_dict(state)
    a = trainer.optimizers["model"].state_dict()["state"]
    b = other.optimizers["model"].state_dict()["state"]
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k]["exp_avg"], b[k]["exp_avg"])
    assert other.state.epoch == 1 and other.state.history == trainer.state.history


def test_bad_training_options_are_refused():
    with pytest.raises(ValueError, match="batch_size"):
        Trainer(small_model("ae"), TrainConfig(batch_size=0))
    with pytest.raises(ValueError, match="device.*'tpu'"):
        Trainer(small_model("ae"), TrainConfig(device="tpu"))


def test_the_trainer_names_data_it_cannot_batch():
    import numpy as np

    from hourglass import DataError
    with pytest.raises(DataError, match="numpy.ndarray"):
        Trainer(small_model("ae"), TrainConfig(epochs=1, batch_size=4, progress=False)).fit(np.zeros((8, 4), "f"))


def test_shuffled_batches_are_a_permutation_of_the_rows_with_their_labels():
    from hourglass.data.batches import TensorBatches
    x = torch.arange(10.0).reshape(10, 1).repeat(1, 3)
    y = torch.arange(10) * 7
    batches = list(TensorBatches(x, y).shuffled(4, torch.Generator().manual_seed(0)))
    assert [len(b[0]) for b in batches] == [4, 4, 2]
    rows = torch.cat([b[0] for b in batches])
    labels = torch.cat([b[1] for b in batches])
    assert sorted(rows[:, 0].tolist()) == list(range(10)) and rows[:, 0].tolist() != list(range(10))
    assert torch.equal(labels, rows[:, 0].long() * 7)
