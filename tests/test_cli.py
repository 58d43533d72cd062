"""The command line end to end: train, evaluate, encode, reconstruct, sample, resume, errors."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest

from helpers import run_cli


@pytest.fixture(scope="module")
def vae_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("runs") / "vae"
    assert run_cli("train", "vae", "--epochs", 3, "--latent-dim", 2, "--out", out, "--no-progress") == 0
    return out


def test_train_writes_the_whole_run_directory(vae_run):
    for name in ("model.safetensors", "config.json", "history.csv", "metrics.json",
                 "reconstructions.png", "samples.png", "latent.png", "losses.png"):
        assert (vae_run / name).is_file(), name
    info = json.loads((vae_run / "config.json").read_text())
    assert info["model"] == "vae" and info["data"]["name"] == "digits"
    assert info["data"]["scaling"]["kind"] == "range" and info["config"]["latent_dim"] == 2
    assert {"torch", "hourglass"} <= set(info["versions"])
    metrics = json.loads((vae_run / "metrics.json").read_text())
    assert metrics["epochs"] == 3 and metrics["fit_seconds"] > 0
    for split in ("train", "test"):
        for key in ("recon_bce", "recon_mse", "neg_elbo", "nll"):
            assert np.isfinite(metrics[split][key]), (split, key)
        # the importance-weighted bound is tighter than the ELBO
        assert metrics[split]["nll"] <= metrics[split]["neg_elbo"] + 1e-6
    with open(vae_run / "history.csv") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 3 and float(rows[-1]["train_loss"]) < float(rows[0]["train_loss"])


def test_encode_reconstruct_sample(vae_run, tmp_path, capsys):
    x = np.random.default_rng(0).uniform(0, 16, size=(7, 64)).astype(np.float32)
    np.save(tmp_path / "x.npy", x)
    assert run_cli("encode", vae_run, "--input", tmp_path / "x.npy", "--output", tmp_path / "z.npy") == 0
    assert np.load(tmp_path / "z.npy").shape == (7, 2)
    assert run_cli("reconstruct", vae_run, "--input", tmp_path / "x.npy", "--output", tmp_path / "r.npy") == 0
    r = np.load(tmp_path / "r.npy")
    assert r.shape == (7, 1, 8, 8) and r.min() >= 0 and r.max() <= 16  # back in the data's units
    assert run_cli("reconstruct", vae_run, "--output", tmp_path / "r.png", "--limit", 8) == 0
    assert (tmp_path / "r.png").stat().st_size > 0
    assert run_cli("sample", vae_run, "-n", 10, "--output", tmp_path / "s.npy") == 0
    assert np.load(tmp_path / "s.npy").shape == (10, 1, 8, 8)
    assert run_cli("sample", vae_run, "-n", 16, "--output", tmp_path / "s.png") == 0
    assert run_cli("evaluate", vae_run, "--output", tmp_path / "m.json") == 0
    m = json.loads((tmp_path / "m.json").read_text())
    stored = json.loads((vae_run / "metrics.json").read_text())
    assert m["test"]["recon_bce"] == pytest.approx(stored["test"]["recon_bce"], rel=1e-6)


def test_resume_continues_to_the_same_weights_as_one_long_run(tmp_path):
    from hourglass.run import load

    a, b = tmp_path / "a", tmp_path / "b"
    common = ["--latent-dim", 3, "--no-progress", "--set", "hidden=32"]
    assert run_cli("train", "ae", "--epochs", 4, "--out", a, *common) == 0
    assert run_cli("train", "ae", "--epochs", 2, "--out", b, *common) == 0
    assert run_cli("train", "--resume", b, "--epochs", 4, "--no-progress") == 0
    ra, rb = load(a), load(b)
    for (k, va), (_, vb) in zip(ra.model.state_dict().items(), rb.model.state_dict().items()):
        assert np.array_equal(va.numpy(), vb.numpy()), k
    assert len(rb.history) == 4 and rb.metrics["epochs"] == 4


@pytest.mark.parametrize(
    "args, message",
    [
        (["train", "nope"], "unknown model 'nope'"),
        (["train", "ae", "--set", "latnt_dim=2"], "unknown option 'latnt_dim'"),
        (["train", "ae", "--set", "latent_dim=two"], "config key 'latent_dim'"),
        (["train", "ae", "--set", "beta=2"], "unknown option 'beta'"),
        (["train", "ae", "--epochs", "-1"], "epochs"),
        (["train", "ae", "--preset", "vae-mnist"], "preset 'vae-mnist' is for model 'vae'"),
        (["train", "ae", "--data", "no-such-data"], "no-such-data"),
        (["train", "ae", "--data", "mnist", "--data-dir", "/nonexistent/dir", "--epochs", "1"], "train-images"),
        (["sample", "/nonexistent/run", "--output", "x.png"], "not found"),
        (["train"], "needs a MODEL"),
    ],
)
def test_errors_are_one_line_and_exit_2(args, message, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HOURGLASS_NO_DOWNLOAD", "1")
    assert run_cli(*args) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("hourglass: error:") and "\n" not in err
    assert message in err


def test_sample_refuses_a_non_generative_model(tmp_path, capsys):
    out = tmp_path / "ae"
    assert run_cli("train", "ae", "--epochs", 1, "--out", out, "--no-progress") == 0
    assert run_cli("sample", out, "--output", tmp_path / "s.png") == 2
    assert "not generative" in capsys.readouterr().err


def test_bad_input_file_is_a_clear_error(vae_run, tmp_path, capsys):
    np.save(tmp_path / "bad.npy", np.zeros((3, 5), dtype=np.float32))
    assert run_cli("encode", vae_run, "--input", tmp_path / "bad.npy", "--output", tmp_path / "z.npy") == 2
    assert "expected examples of shape (1, 8, 8), found (5,)" in capsys.readouterr().err


def test_list_names_models_presets_and_datasets(capsys):
    assert run_cli("list", "--fields", "vae") == 0
    out = capsys.readouterr().out
    for word in ("ae", "vae", "keras-dense", "keras-conv", "linear-pca", "vae-mnist", "digits", "mnist", "beta"):
        assert word in out


def test_mnist_sample_end_to_end(mnist10k_dir, tmp_path):
    out = tmp_path / "dense"
    assert run_cli("train", "ae", "--preset", "keras-dense", "--data", "mnist", "--data-dir", mnist10k_dir,
                   "--epochs", 3, "--out", out, "--no-progress") == 0
    metrics = json.loads((out / "metrics.json").read_text())
    info = json.loads((out / "config.json").read_text())
    assert info["data"]["n_train"] == 7200 and info["data"]["n_val"] == 800 and info["config"]["latent_dim"] == 32
    assert metrics["train"]["n"] == 5000 and metrics["test"]["n"] == 2000
    assert metrics["test"]["recon_bce"] < 0.3  # an untrained net gives ~0.69
    assert (out / "latent.png").is_file()


def test_denoise_and_interpolate(vae_run, tmp_path, capsys):
    assert run_cli("denoise", vae_run, "--noise", "masking:0.3", "--limit", 8, "--output", tmp_path / "d.png") == 0
    assert "MSE to the clean data" in capsys.readouterr().out and (tmp_path / "d.png").is_file()
    assert run_cli("denoise", vae_run, "--output", tmp_path / "d.npy") == 0
    assert np.load(tmp_path / "d.npy").shape == (16, 1, 8, 8)
    assert run_cli("interpolate", vae_run, "--from", 3, "--to", 5, "--steps", 7, "--output", tmp_path / "i.npy") == 0
    strip = np.load(tmp_path / "i.npy")
    assert strip.shape == (7, 1, 8, 8)
    assert run_cli("interpolate", vae_run, "--to", 100000, "--output", tmp_path / "i.png") == 2
    assert "index 100000: the input has examples 0..358" in capsys.readouterr().err
    assert run_cli("denoise", vae_run, "--noise", "gaussian", "--output", tmp_path / "x.png") == 2
    assert "noise spec 'gaussian'" in capsys.readouterr().err
