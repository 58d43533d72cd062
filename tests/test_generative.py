"""The generative family's own claims: cvae, aae, gan, the priors and code-space interpolation.

Every test trains small nets on CPU with fixed seeds (one torch thread, so runs repeat exactly):
8 Gaussians on a circle made here for mode coverage, and scikit-learn's 8x8 digits (embedded in
scikit-learn, scaled to [0, 1] by /16) for the labelled claims.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from sklearn.datasets import load_digits
from sklearn.linear_model import LogisticRegression

import hourglass
from helpers import fixed_batch, small_model
from hourglass.config import ConfigError
from hourglass.evaluate.interpolate import interpolate
from hourglass.models.base import Autoencoder
from hourglass.priors import create_prior, list_priors
from hourglass.training.trainer import TrainConfig, Trainer, TrainingError

RING_MODES, RING_RADIUS, RING_STD = 8, 2.0, 0.1


pytestmark = pytest.mark.usefixtures("one_thread")


def fit(model, x, y=None, epochs=10, batch_size=100, **train):
    cfg = TrainConfig(epochs=epochs, batch_size=batch_size, progress=False, val_fraction=0.0, **train)
    return Trainer(model, cfg).fit(x, y)


def ring_means() -> torch.Tensor:
    a = 2 * math.pi * torch.arange(RING_MODES) / RING_MODES
    return RING_RADIUS * torch.stack([a.cos(), a.sin()], 1)


def ring_data(n=4000, seed=0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    mode = torch.randint(0, RING_MODES, (n,), generator=g)
    return ring_means()[mode] + RING_STD * torch.randn(n, 2, generator=g)


def mode_counts(samples: torch.Tensor) -> tuple[torch.Tensor, float]:
    """Samples per mode (a sample belongs to its nearest mode if within 3 std of it), and the share that do."""
    d, nearest = torch.cdist(samples, ring_means()).min(1)
    near = d < 3 * RING_STD
    return torch.bincount(nearest[near], minlength=RING_MODES), near.float().mean().item()


@pytest.fixture(scope="module")
def digits():
    d = load_digits()
    x = torch.tensor(d.data / 16.0, dtype=torch.float32)
    y = torch.tensor(d.target, dtype=torch.long)
    perm = torch.randperm(len(x), generator=torch.Generator().manual_seed(0))
    tr, te = perm[:1400], perm[1400:]
    return x[tr], y[tr], x[te], y[te]


# -- mode coverage on 8 Gaussians ------------------------------------------------------------------
def assert_covers_ring(samples: torch.Tensor, who: str) -> None:
    counts, share = mode_counts(samples)
    covered = int((counts >= 0.02 * len(samples)).sum())  # a mode holds >= 2% of samples (uniform: 12.5%)
    assert covered >= 6, f"{who} covers {covered} of 8 modes: {counts.tolist()}"
    assert share > 0.3, f"only {share:.0%} of {who}'s samples lie within 3 std of a mode"


def test_gan_samples_cover_the_modes_of_8_gaussians():
    torch.manual_seed(0)
    gan = hourglass.create("gan", input_shape=(2,), latent_dim=2, hidden=(64, 64), recon_loss="mse")
    hist = fit(gan, ring_data(), epochs=20)
    assert {"train_disc/loss", "train_gen/loss", "train_disc/d_real"} <= set(hist[-1])
    torch.manual_seed(1)
    assert_covers_ring(gan.sample(1000), "the GAN")


def test_aae_decoder_samples_cover_the_modes_of_8_gaussians():
    # An 8-component mixture prior: each data mode gets a prior component, and decoding prior
    # samples lands on the modes (a unimodal prior would need a decoder tearing it into 8 pieces).
    torch.manual_seed(0)
    aae = hourglass.create("aae", input_shape=(2,), latent_dim=2, hidden=(64, 64), recon_loss="mse",
                           prior="mixture", prior_components=8, disc_hidden=(64, 64))
    fit(aae, ring_data(), epochs=20)
    torch.manual_seed(1)
    assert_covers_ring(aae.sample(1000), "the AAE")


# -- the AAE's codes follow its prior ------------------------------------------------------------------
def mmd2(a: torch.Tensor, b: torch.Tensor, bandwidth: float) -> float:
    """Unbiased squared MMD with a Gaussian kernel (Gretton et al. 2012); 0 when a and b share a law."""
    def k(u, v):
        return torch.exp(-torch.cdist(u, v).pow(2) / (2 * bandwidth**2))

    n, m = len(a), len(b)
    kaa, kbb = k(a, a), k(b, b)
    return float((kaa.sum() - kaa.trace()) / (n * (n - 1)) + (kbb.sum() - kbb.trace()) / (m * (m - 1))
                 - 2 * k(a, b).mean())


def moment_matched(z: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """z affinely mapped to the target's mean and covariance: the AE's best case before any shape."""
    lz = torch.linalg.cholesky(torch.cov((z - z.mean(0)).T))
    lt = torch.linalg.cholesky(torch.cov((target - target.mean(0)).T))
    return (z - z.mean(0)) @ torch.linalg.inv(lz).T @ lt.T + target.mean(0)


def test_aae_codes_match_the_prior_far_better_than_a_plain_autoencoders(digits):
    """Statistic: squared MMD (Gaussian kernel, bandwidth 1) between test codes and prior samples.
    The plain AE is given every chance: its codes are also compared after an affine map onto the
    prior's mean and covariance. With labels, class k must also land in component k (occupancy)."""
    x, y, xt, yt = digits
    common = dict(input_shape=(64,), latent_dim=2, hidden=(128, 64), lr=2e-3)
    torch.manual_seed(0)
    aae = hourglass.create("aae", **common, prior="mixture", use_labels=True, num_classes=10, disc_hidden=(64, 64))
    fit(aae, x, y, epochs=50)
    torch.manual_seed(0)
    ae = hourglass.create("ae", **common)
    fit(ae, x, epochs=50)
    with torch.no_grad():
        torch.manual_seed(1)
        z_prior = aae.prior.sample(len(xt))
        z_aae, z_ae = aae.encode(xt), ae.encode(xt)
    aae_mmd = mmd2(z_aae, z_prior, 1.0)
    ae_mmd = mmd2(z_ae, z_prior, 1.0)
    ae_matched = mmd2(moment_matched(z_ae, z_prior), z_prior, 1.0)
    assert aae_mmd < 0.5 * min(ae_mmd, ae_matched), (aae_mmd, ae_mmd, ae_matched)
    occupancy = (torch.cdist(z_aae, aae.prior.means()).argmin(1) == yt).float().mean().item()
    assert occupancy > 0.6, f"only {occupancy:.0%} of test codes sit in their class's component (chance 10%)"


# -- the CVAE -----------------------------------------------------------------------------------------------
def test_cvae_class_conditional_samples_are_recognised_as_their_class(digits):
    x, y, xt, yt = digits
    torch.manual_seed(0)
    cvae = hourglass.create("cvae", input_shape=(64,), latent_dim=4, hidden=(128,), num_classes=10)
    fit(cvae, x, y, epochs=12, batch_size=64)
    clf = LogisticRegression(max_iter=2000).fit(x.numpy(), y.numpy())
    assert clf.score(xt.numpy(), yt.numpy()) > 0.9  # the judge itself is good
    torch.manual_seed(2)
    asked = torch.arange(10).repeat_interleave(30)
    samples = cvae.sample(len(asked), asked)
    assert samples.shape == (300, 64) and 0 <= samples.min() and samples.max() <= 1
    acc = clf.score(samples.numpy(), asked.numpy())
    assert acc > 0.7, f"only {acc:.0%} of class-conditional samples are classified as the asked class (chance 10%)"
    assert cvae.sample(5, 3).shape == (5, 64)  # an int label: five samples of class 3


def test_semi_supervised_cvae_classifier_beats_chance_with_10_percent_of_labels(digits):
    x, y, xt, yt = digits
    partial = y.clone()
    partial[torch.rand(len(y), generator=torch.Generator().manual_seed(1)) >= 0.1] = -1  # ~140 labels kept
    torch.manual_seed(0)
    cvae = hourglass.create("cvae", input_shape=(64,), latent_dim=4, hidden=(128,), num_classes=10,
                            semi_supervised=True)
    hist = fit(cvae, x, partial, epochs=15, batch_size=64)
    assert {"train_class_ce", "train_entropy", "train_bound"} <= set(hist[-1])
    acc = (cvae.classify(xt) == yt).float().mean().item()
    assert acc > 0.6, f"classifier test accuracy {acc:.0%} with 10% of labels (chance 10%)"
    metrics = cvae.metrics_batch(xt, yt)
    assert metrics["classifier_accuracy"].mean().item() == pytest.approx(acc)
    # unknown labels are filled in by the classifier wherever the model needs one
    assert cvae.encode(xt[:4], torch.full((4,), -1)).shape == (4, 4)


def test_cvae_refuses_unknown_labels_without_semi_supervision():
    model = small_model("cvae")
    x = torch.rand(4, 12)
    with pytest.raises(ValueError, match=r"labels must be in \[0, 3\).*\[-1, 2\]"):
        model.training_step((x, torch.tensor([0, -1, 2, 1])))
    with pytest.raises(ValueError, match="no classifier"):
        model.classify(x)
    with pytest.raises(ConfigError, match="num_classes"):
        hourglass.create("cvae", input_shape=(12,))


def test_hide_labels_keeps_exactly_n_balanced_over_the_classes():
    from hourglass.data.splits import hide_labels

    y = torch.arange(10).repeat_interleave(30)
    y[:25] = -1  # class 0 has only 5 known labels left
    kept = hide_labels(y, 100, seed=3)
    assert int((kept >= 0).sum()) == 100
    assert bool((kept[kept >= 0] == y[kept >= 0]).all())  # kept labels are the true ones
    counts = torch.bincount(kept[kept >= 0], minlength=10)
    assert counts[0] == 5 and counts[1:].min() >= 10 and counts.max() <= 11  # the shortfall spread over the rest
    assert torch.equal(kept, hide_labels(y, 100, seed=3)) and not torch.equal(kept, hide_labels(y, 100, seed=4))


def test_semi_supervised_run_with_keep_labels_reports_its_classifier(tmp_path, capsys):
    from hourglass.cli import main

    out = tmp_path / "semi"
    assert main(["train", "cvae", "--set", "semi_supervised=true", "--keep-labels", "100", "--epochs", "3",
                 "--latent-dim", "4", "--out", str(out), "--no-progress"]) == 0
    assert "classifier_accuracy" in capsys.readouterr().out
    run = hourglass.load(out)
    assert run.info["data"]["keep_labels"] == 100
    assert 0.0 <= run.metrics["test"]["classifier_accuracy"] <= 1.0
    assert "knn_acc" in run.metrics["test"]  # evaluation uses the true labels
    # a model that cannot use partial labels is refused before anything is written
    assert main(["train", "ae", "--keep-labels", "100", "--out", str(tmp_path / "ae")]) == 2
    assert "cannot learn from partial labels" in capsys.readouterr().err
    assert not (tmp_path / "ae").exists()
    with pytest.raises(ValueError, match="only .* labels"):
        hourglass.train("cvae", epochs=1, progress=False, semi_supervised=True, keep_labels=10**6)


def test_a_data_file_with_unknown_labels_trains_and_evaluates_on_the_known_ones(tmp_path):
    x, y = load_digits(return_X_y=True)
    y = y.copy()
    y[np.random.default_rng(0).random(len(y)) > 0.2] = -1
    np.savez(tmp_path / "partial.npz", x=x, y=y)
    run = hourglass.train("cvae", str(tmp_path / "partial.npz"), epochs=2, progress=False, figures=False,
                          semi_supervised=True, latent_dim=4)
    test = run.metrics["test"]
    assert np.isfinite(test["neg_elbo"]) and 0 <= test["knn_acc"] <= 1 and np.isfinite(test["fd_classifier"])
    with pytest.raises(ValueError, match=r"need semi_supervised=True"):
        hourglass.train("cvae", str(tmp_path / "partial.npz"), epochs=1, progress=False, figures=False)


# -- stability and failure -------------------------------------------------------------------------------------
@pytest.mark.parametrize("name,opts,phase", [("gan", {"optimizer": "sgd"}, "(disc|gen)"), ("aae", {}, "recon")])
def test_a_diverging_adversarial_run_stops_with_a_training_error(name, opts, phase):
    # (Adam at lr 1e6 makes a GAN's losses absurd, ~1e18, but finite: only SGD makes them overflow.)
    torch.manual_seed(0)
    extra = {"disc_hidden": (16,)} if name == "aae" else {}
    model = hourglass.create(name, input_shape=(2,), latent_dim=2, hidden=(16,), recon_loss="mse", lr=1e6,
                             **opts, **extra)
    with pytest.raises(TrainingError, match=rf"the {phase} loss became (nan|inf|-inf) at epoch 1, step \d+"):
        fit(model, torch.randn(512, 2), epochs=3, batch_size=64)


def test_gan_options_minimax_label_smoothing_and_spectral_norm():
    torch.manual_seed(0)
    gan = small_model("gan", gen_loss="minimax", label_smoothing=0.1, spectral_norm=True)
    x = torch.rand(64, 12)
    fit(gan, x, epochs=2, batch_size=32)
    assert gan.training_step((x, None), "gen")["loss"] < 0  # log(1 - D(G(z))) is negative
    for layer in gan.discriminator.modules():
        if isinstance(layer, torch.nn.Linear):  # each weight divided by its top singular value
            assert torch.linalg.matrix_norm(layer.weight.detach(), 2) == pytest.approx(1.0, abs=0.05)
    with pytest.raises(ConfigError, match="label_smoothing"):
        small_model("gan", label_smoothing=1.0)
    assert not isinstance(gan, Autoencoder) and not hasattr(gan, "encode")  # a generator, not an autoencoder


def test_aae_config_errors_name_the_key():
    with pytest.raises(ConfigError, match="use_labels.*'gaussian'"):
        small_model("aae", use_labels=True)
    with pytest.raises(ConfigError, match="prior_components"):
        small_model("aae", prior="mixture", prior_components=2, use_labels=True)
    with pytest.raises(ConfigError, match="prior.*no parameter 'radius'"):
        small_model("aae", prior="gaussian", prior_radius=3.0)


# -- priors ------------------------------------------------------------------------------------------------------
def test_priors_sample_and_labelled_priors_place_each_label_in_its_region():
    g = torch.Generator().manual_seed(0)
    assert set(list_priors()) == {"gaussian", "mixture", "swiss_roll", "uniform"}
    for name in list_priors():
        assert create_prior(name, 3).sample(7, generator=g).shape == (7, 3)
    assert create_prior("uniform", 2, radius=2.0).sample(1000, generator=g).abs().max() <= 2.0
    mix = create_prior("mixture", 2, components=10, radius=4.0, std=0.5)
    y = torch.arange(10).repeat(50)
    z = mix.sample_for_labels(y, generator=g)
    assert (torch.cdist(z, mix.means()).argmin(1) == y).float().mean() > 0.9
    roll = create_prior("swiss_roll", 2, components=5)
    r = roll.sample_for_labels(y % 5, generator=g).norm(dim=1)
    seg_radius = torch.stack([r[y % 5 == k].mean() for k in range(5)])
    assert (seg_radius.diff() > 0).all()  # segment k lies further along the spiral than k - 1
    with pytest.raises(NotImplementedError, match="no per-label regions"):
        create_prior("gaussian", 2).sample_for_labels(y)
    with pytest.raises(ValueError, match=r"labels must be in \[0, 10\)"):
        mix.sample_for_labels(torch.tensor([10]))
    with pytest.raises(ValueError, match="unknown prior 'cauchy'"):
        create_prior("cauchy", 2)


# -- interpolation, and the VAE's beta / cyclical schedule ---------------------------------------------
def test_interpolate_runs_from_one_reconstruction_to_the_other():
    torch.manual_seed(0)
    x = torch.rand(2, 12)
    for name in ("ae", "aae", "cvae"):
        model = small_model(name).eval()
        ya, yb = (torch.tensor([0]), torch.tensor([2])) if model.conditional else (None, None)
        strip = interpolate(model, x[0], x[1], steps=5, y_a=ya, y_b=yb)
        assert strip.shape == (5, 12)
        with torch.no_grad():
            assert torch.allclose(strip[0], model.reconstruct(x[:1], ya)[0], atol=1e-6)
            assert torch.allclose(strip[-1], model.reconstruct(x[1:], yb)[0], atol=1e-6)
    with pytest.raises(ConfigError, match="no encoder"):
        interpolate(small_model("gan"), x[0], x[1])
    with pytest.raises(ValueError, match="steps"):
        interpolate(small_model("ae"), x[0], x[1], steps=1)


def test_beta_vae_preset_and_cyclical_kl_schedule(digits):
    vae = hourglass.create("vae", preset="beta-vae", input_shape=(64,))
    assert vae.config.beta == 4.0
    weights = []
    for t in (0.0, 5.0, 10.0):
        vae.progress = t
        weights.append(vae.kl_weight())
    assert weights == [0.0, 2.0, 4.0]  # warm-up ramp to beta
    cyc = hourglass.create("vae", input_shape=(64,), kl_schedule="cyclical", kl_cycle_epochs=4.0)
    seen = []
    for t in (0.0, 1.0, 2.0, 3.0, 4.0, 5.0):
        cyc.progress = t
        seen.append(cyc.kl_weight())
    assert seen == [0.0, 0.5, 1.0, 1.0, 0.0, 0.5]  # ramp over half a cycle, hold, restart
    x = digits[0]
    kl = {}
    for beta in (1.0, 4.0):
        torch.manual_seed(0)
        model = hourglass.create("vae", input_shape=(64,), latent_dim=4, hidden=(64,), beta=beta)
        kl[beta] = fit(model, x, epochs=5)[-1]["train_kl"]
    assert kl[4.0] < kl[1.0]  # a heavier KL weight buys a code closer to the prior


def test_semi_supervised_cvae_replays_each_labelled_example_it_has_seen():
    """With 2 labels in a batch of 32, the labelled terms come from a memory of labelled examples
    (each kept once), so the classifier learns from them in every step, not once an epoch."""
    cvae = small_model("cvae", semi_supervised=True, labelled_replay=8)
    x, y = fixed_batch()
    partial = torch.full_like(y, -1)
    partial[:2] = y[:2]
    out = cvae.training_step((x, partial))
    assert "replay_ce" in out and torch.isfinite(out["loss"])
    cvae.training_step((x, partial))  # the same two examples again: remembered once
    assert len(cvae._replay_y) == 2 and cvae._replay_y.tolist() == y[:2].tolist()
    off = small_model("cvae", semi_supervised=True, labelled_replay=0)
    assert "replay_ce" not in off.training_step((x, partial))


def test_semi_supervised_cvae_on_images_classifies_with_a_conv_net():
    cvae = small_model("cvae", input_shape=(1, 8, 8), semi_supervised=True)
    assert any(isinstance(m, torch.nn.Conv2d) for m in cvae.classifier.modules())
    mlp = small_model("cvae", input_shape=(1, 8, 8), semi_supervised=True, classifier_architecture="mlp")
    assert not any(isinstance(m, torch.nn.Conv2d) for m in mlp.classifier.modules())
    with pytest.raises(hourglass.ConfigError, match="classifier_architecture"):
        small_model("cvae", semi_supervised=True, classifier_architecture="conv")
