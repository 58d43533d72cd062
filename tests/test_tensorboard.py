"""Optional TensorBoard logging: what a run writes, and a clear refusal when the package is missing."""

from __future__ import annotations

import sys

import pytest

import hourglass
from hourglass.cli import main
from hourglass.training.loggers import scalar_tag


def test_history_keys_become_grouped_tags():
    assert scalar_tag("train_loss") == "train/loss"
    assert scalar_tag("val_recon") == "val/recon"
    assert scalar_tag("train_disc/loss") == "train/disc/loss"
    assert scalar_tag("seconds") == "time/epoch_seconds"


def _events(log_dir):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(log_dir), size_guidance={"images": 0, "scalars": 0})
    acc.Reload()
    return acc


def test_cli_run_logs_losses_and_images_every_epoch(tmp_path):
    pytest.importorskip("tensorboard", reason="the tensorboard extra is not installed")
    out = tmp_path / "vae"
    assert main(["train", "vae", "--epochs", "3", "--latent-dim", "2", "--out", str(out), "--no-progress",
                 "--tensorboard"]) == 0
    acc = _events(out / "tensorboard")
    tags = acc.Tags()
    assert {"train/loss", "train/recon", "train/kl", "val/loss"} <= set(tags["scalars"])
    assert [e.step for e in acc.Scalars("train/loss")] == [1, 2, 3]
    assert {"reconstructions", "samples"} <= set(tags["images"])
    assert len(acc.Images("samples")) == 3
    assert acc.Images("reconstructions")[0].width > 0
    assert "metrics_test/neg_elbo" in tags["scalars"]


def test_adversarial_run_logs_each_optimizer(tmp_path):
    pytest.importorskip("tensorboard", reason="the tensorboard extra is not installed")
    out = tmp_path / "gan"
    hourglass.train("gan", out=out, epochs=1, progress=False, figures=False, tensorboard=True)
    scalars = set(_events(out / "tensorboard").Tags()["scalars"])
    assert {"train/gen/loss", "train/disc/loss"} <= scalars, scalars


def test_missing_package_is_refused_before_anything_is_written(tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", None)  # makes the import fail
    out = tmp_path / "ae"
    with pytest.raises(ValueError, match=r"hourglass-ae\[tensorboard\]"):
        hourglass.train("ae", out=out, epochs=1, progress=False, tensorboard=True)
    assert not out.exists()
    assert main(["train", "ae", "--epochs", "1", "--out", str(out), "--tensorboard"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "pip install 'hourglass-ae[tensorboard]'" in err
    assert not out.exists()


def test_tensorboard_needs_a_run_directory():
    with pytest.raises(ValueError, match="run directory"):
        hourglass.train("ae", epochs=1, progress=False, tensorboard=True)
