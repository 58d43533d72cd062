"""Collapse diagnostics: a collapsed VAE is flagged, a healthy one is not; warnings reach metrics.json,
the command line and the report; evaluation and training show their progress as plain lines off a
terminal."""

from __future__ import annotations

import io
import json

import numpy as np
import pytest
import torch

import hourglass
from helpers import run_cli
from hourglass.evaluate.diagnostics import diagnose, warnings_for

pytestmark = pytest.mark.usefixtures("one_thread")


def manifold_data(n: int = 1200, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """12 values in [0, 1] driven by 2 hidden factors, labelled by the quadrant of the factors."""
    rng = np.random.default_rng(seed)
    z = rng.normal(size=(n, 2))
    a = rng.normal(size=(2, 12)) * 2.5
    x = 1 / (1 + np.exp(-(z @ a)))
    y = (z[:, 0] > 0).astype(int) + 2 * (z[:, 1] > 0).astype(int)
    return x.astype(np.float32), y


@pytest.fixture(scope="module")
def healthy_and_collapsed():
    data = manifold_data(800)
    common = dict(latent_dim=2, hidden=(32,), epochs=12, progress=False, threads=1, iwae_samples=4, batch_size=32)
    healthy = hourglass.train("vae", data, kl_warmup_epochs=3.0, **common)
    collapsed = hourglass.train("vae", data, beta=60.0, **common)  # the KL term outweighs any use of the code
    return healthy, collapsed


def test_a_collapsed_vae_is_flagged_with_its_cures(healthy_and_collapsed):
    """beta = 60: every dimension stays below the 0.2 free nats it is given, and the reconstructions
    are all nearly the same (free bits keep the posterior means moving a little, so Burda's count alone
    may call the units active)."""
    _, run = healthy_and_collapsed
    test = run.metrics["test"]
    assert test["kl"] < 0.5 and test["kl_max_dim"] < 0.3
    assert test["recon_spread"] < 0.35
    codes = [w["code"] for w in run.metrics["warnings"]]
    assert codes == ["posterior_collapse"]
    message = run.metrics["warnings"][0]["message"]
    assert "of 2 code units" in message and "reconstructions are" in message
    for cure in ("KL warm-up", "free bits", "smaller beta", "lower learning rate"):
        assert cure in message
    assert len(run.metrics["diagnostics"]["kl_per_dim"]) == 2


def test_a_healthy_vae_is_not_flagged(healthy_and_collapsed):
    run, _ = healthy_and_collapsed
    test = run.metrics["test"]
    assert test["active_units"] == 2
    assert test["kl"] > 1.0
    assert 0.5 < test["sample_spread"] < 1.5 and 0.5 < test["recon_spread"] < 1.5
    assert run.metrics["warnings"] == []


def test_diagnose_measures_units_and_spread_of_a_model_by_hand():
    """A VAE whose encoder outputs the prior for every x: no active unit, zero KL per dimension."""
    model = hourglass.create("vae", input_shape=(6,), latent_dim=3, hidden=(8,))
    last = [m for m in model.encoder.modules() if isinstance(m, torch.nn.Linear)][-1]
    with torch.no_grad():
        last.weight.zero_()
        last.bias.zero_()  # mu = 0, log sigma^2 = 0: q(z|x) = N(0, I) whatever x
    x = torch.rand(200, 6)
    scalars, details = diagnose(model, x)
    assert scalars["active_units"] == 0
    assert details["kl_per_dim"] == [0.0, 0.0, 0.0]
    assert "sample_spread" in scalars
    assert scalars["recon_spread"] < 0.35  # the decoder sees the same code for every x
    assert [w["code"] for w in warnings_for(model, {**scalars, "kl": 0.0})] == ["posterior_collapse"]


def test_gan_warnings_name_mode_collapse_and_a_winning_discriminator():
    gan = hourglass.create("gan", input_shape=(6,), latent_dim=2, hidden=(8,))
    found = warnings_for(gan, {"sample_spread": 0.05, "d_real": 0.99, "d_fake": 0.01, "disc_loss": 0.02,
                               "gen_loss": 4.6})
    assert [w["code"] for w in found] == ["mode_collapse", "discriminator_wins"]
    assert all("label smoothing" in w["message"] for w in found)
    assert warnings_for(gan, {"sample_spread": 0.9, "d_real": 0.6, "d_fake": 0.4}) == []
    scalars, _ = diagnose(gan, torch.rand(64, 6))
    assert 0 < scalars["d_real"] < 1 and 0 < scalars["d_fake"] < 1
    assert scalars["disc_loss"] > 0 and scalars["gen_loss"] > 0


def test_conditional_samples_that_ignore_z_are_flagged():
    cvae = hourglass.create("cvae", input_shape=(6,), latent_dim=2, hidden=(8,), num_classes=3)
    found = warnings_for(cvae, {"active_units": 2, "kl": 5.0, "sample_spread": 0.8,
                                "sample_spread_within_class": 0.05})
    assert [w["code"] for w in found] == ["ignores_z"]


def test_collapsed_training_warns_on_the_command_line_and_in_the_report(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    out = tmp_path / "run"
    assert run_cli("train", "vae", "--epochs", 2, "--set", "beta=60", "--set", "hidden=32",
                   "--set", "iwae_samples=2", "--out", out, "--no-progress") == 0
    captured = capsys.readouterr()
    lines = [line for line in captured.err.splitlines() if line.startswith("hourglass: warning:")]
    assert len(lines) == 1 and "posterior collapse" in lines[0] and "free bits" in lines[0]
    assert "active" in captured.out  # the headline names the active code units
    metrics = json.loads((out / "metrics.json").read_text())
    assert [w["code"] for w in metrics["warnings"]] == ["posterior_collapse"]
    page = (out / "report.html").read_text()
    assert '<div class="warnings">' in page and "posterior collapse" in page


def test_progress_is_plain_lines_off_a_terminal():
    from hourglass.options import TrainConfig
    from hourglass.training.callbacks import EvaluationProgress, ProgressBar
    from hourglass.training.trainer import Trainer

    buf = io.StringIO()
    model = hourglass.create("ae", input_shape=(6,), latent_dim=2, hidden=(8,))
    trainer = Trainer(model, TrainConfig(epochs=45, progress=False, val_fraction=0.0, threads=1),
                      callbacks=[ProgressBar(stream=buf)])
    trainer.fit(torch.rand(64, 6))
    lines = buf.getvalue().splitlines()
    assert "\r" not in buf.getvalue()
    assert lines[0] == "training 45 epochs"
    epochs = [line for line in lines if line.startswith("epoch ")]
    assert 15 <= len(epochs) <= 25  # about 20 lines over a long run, not one per epoch
    assert epochs[-1].startswith("epoch 45/45 (100%): train_loss ")

    buf = io.StringIO()
    from hourglass.evaluate.metrics import evaluate_splits

    run = hourglass.train("vae", manifold_data(300), latent_dim=2, hidden=(8,), epochs=1, progress=False,
                          threads=1, iwae_samples=2)
    evaluate_splits(run.model, run.splits(), data_name="x", progress=EvaluationProgress(stream=buf))
    lines = buf.getvalue().splitlines()
    assert lines[0] == "evaluating 1/5: training-set metrics and importance-weighted NLL"
    assert lines[4] == "evaluating 5/5: collapse diagnostics"
    assert lines[-1].startswith("evaluated in ")
