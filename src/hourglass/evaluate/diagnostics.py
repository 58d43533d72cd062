"""Is the model doing its job? Posterior collapse, mode collapse and adversarial imbalance, measured.

A model can train without error and still be useless: a VAE whose encoder gives up (every q(z|x) equal
to the prior, every reconstruction the same blur), a conditional model that ignores z, a GAN whose
generator draws one shape. :func:`diagnose` measures what can reveal each of these on a run's test
data, and :func:`warnings_for` turns the measurements into plain warnings that name the usual cures.

Measured (keys of ``metrics.json``'s ``test`` dict, and ``diagnostics`` for the per-dimension list):

* ``active_units`` (VAE-type models): the number of code dimensions u whose posterior mean moves with
  the data, ``Var_x(E_q(z|x)[z_u]) > 0.01`` (Burda, Grosse & Salakhutdinov 2016, "Importance Weighted
  Autoencoders", Sec. 5.2); an inactive unit has q(z_u|x) = p(z_u) for every x and carries nothing.
  ``kl_per_dim``: the mean over the data of KL(q(z_u|x) || N(0, 1)) for each u, in nats (their sum is
  the ``kl`` of the bound), and ``kl_max_dim`` its largest entry.
* ``recon_spread`` (models with an encoder): the mean Euclidean distance between two reconstructions
  divided by that between the two test examples they reconstruct; near 0 when every reconstruction is
  the same blur, whatever went in.
* ``sample_spread`` (generative models): the mean Euclidean distance between two samples divided by
  that between two real test examples (scaled units). About 1 when samples vary as the data do; near 0
  when every sample is nearly the same image (mode collapse, or a decoder that ignores z).
* ``sample_spread_within_class`` (conditional models): the same ratio for samples of one class
  (drawn with different z at a fixed y) against the real examples of that class, averaged over the
  classes: does z still change the output once the label is fixed?
* ``d_real`` / ``d_fake`` (adversarial models: the GAN, the AAE's code discriminator): the
  discriminator's mean probability of "real" on real inputs (data, or prior samples for the AAE)
  and on generated ones (samples, or codes); ``disc_loss`` = -E log D(real) - E log(1 - D(fake)) and
  ``gen_loss`` = -E log D(fake), whose balance point is log 4 = 1.386 and log 2 = 0.693 nats.

Thresholds (module constants) and the cures the warnings name come from the usual practice: KL warm-up
(Bowman et al. 2016), free bits (Kingma et al. 2016), a smaller beta, a lower learning rate; for GANs
one-sided label smoothing (Salimans et al. 2016), spectral normalisation (Miyato et al. 2018), a
slower discriminator.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from ..models.base import Autoencoder
from ..seeding import seeded

ACTIVE_VARIANCE = 0.01  # Burda et al.'s threshold on Var_x E_q[z_u]
COLLAPSED_KL = 0.5  # nats per example: a code this cheap tells the decoder (almost) nothing
SPREAD_COLLAPSED = 0.35  # samples closer together than this share of the data's spread: mode collapse
WITHIN_CLASS_COLLAPSED = 0.35  # the same, within a class, for conditional models
BALANCE_MIN = 0.5  # sample_class_balance below this: most samples fall in a few classes
D_WINS = 0.95  # D(real) above and D(fake) below 1 - this: the generator gets almost no signal
N_SAMPLES = 500
N_POINTS = 2000

VAE_CURES = ("KL warm-up (--set kl_warmup_epochs=10), free bits (--set free_bits=0.5), a smaller beta, "
             "a lower learning rate (--lr)")
GAN_CURES = ("one-sided label smoothing (--set label_smoothing=0.1), spectral normalisation "
             "(--set spectral_norm=true), a slower discriminator (--set disc_lr=...), more epochs")


def mean_pairwise_distance(x: torch.Tensor) -> float:
    """Mean Euclidean distance between two different rows of ``x`` (flattened)."""
    f = x.reshape(len(x), -1).double()
    n = len(f)
    if n < 2:
        return 0.0
    d = torch.cdist(f, f)
    return float(d.sum() / (n * (n - 1)))


@torch.no_grad()
def diagnose(model, x_test: torch.Tensor, y_test: torch.Tensor | None = None, *, seed: int = 0,
             batch_size: int = 1024) -> tuple[dict[str, float], dict[str, Any]]:
    """``(scalars, details)``: the measurements above on test data (scaled tensors). ``scalars`` go
    into the test metrics; ``details`` (``kl_per_dim``) into ``metrics.json``'s ``diagnostics``."""
    model.eval()
    dev = model.device
    x = x_test[:N_POINTS]
    y = y_test[:N_POINTS] if y_test is not None else None
    scalars: dict[str, float] = {}
    details: dict[str, Any] = {}
    with seeded(seed):
        if hasattr(model, "code_posterior"):
            mus, kls = [], []
            for s in range(0, len(x), batch_size):
                yb = y[s:s + batch_size].to(dev) if y is not None else None
                mu, logvar = model.code_posterior(x[s:s + batch_size].to(dev), yb)
                mus.append(mu.double().cpu())
                kls.append((-0.5 * (1 + logvar - mu.pow(2) - logvar.exp())).double().cpu())
            mu, kl = torch.cat(mus), torch.cat(kls)
            variance = mu.var(0) if len(mu) > 1 else torch.zeros(mu.shape[1], dtype=mu.dtype)
            scalars["active_units"] = int((variance > ACTIVE_VARIANCE).sum())
            per_dim = kl.mean(0)
            scalars["kl_max_dim"] = float(per_dim.max())
            details["kl_per_dim"] = [round(float(v), 4) for v in per_dim]
            details["posterior_mean_variance"] = [round(float(v), 4) for v in variance]
        if isinstance(model, Autoencoder):
            n = min(N_SAMPLES, len(x))
            real = x[:n]
            yr = y[:n].to(dev) if (y is not None and model.conditional) else None
            if model.conditional and yr is not None and bool((yr < 0).any()):
                yr = None if not getattr(model, "accepts_unknown_labels", False) else yr
            real_spread = mean_pairwise_distance(real)
            if real_spread > 0 and (yr is not None or not model.conditional):
                recon = model.reconstruct(real.to(dev), yr).cpu()
                scalars["recon_spread"] = mean_pairwise_distance(recon) / real_spread
        if model.generative:
            n = min(N_SAMPLES, max(len(x), 2))
            real = x[:n]
            ys = None
            if model.conditional:
                k = model.num_classes
                ys = (torch.arange(n) % k).to(dev)
            samples = model.sample(n, ys).cpu()
            real_spread = mean_pairwise_distance(real)
            if real_spread > 0:
                scalars["sample_spread"] = mean_pairwise_distance(samples) / real_spread
            if model.conditional and y is not None:
                ratios = []
                for c in range(model.num_classes):
                    real_c = x[y == c][:200]
                    mine = samples[(ys == c).cpu()]
                    if len(real_c) >= 2 and len(mine) >= 2:
                        ref = mean_pairwise_distance(real_c)
                        if ref > 0:
                            ratios.append(mean_pairwise_distance(mine) / ref)
                if ratios:
                    scalars["sample_spread_within_class"] = float(np.mean(ratios))
        if hasattr(model, "adversarial_balance"):
            bal = model.adversarial_balance(x.to(dev), y.to(dev) if y is not None else None)
            d_real, d_fake = (bal[k].double().clamp(1e-7, 1 - 1e-7) for k in ("d_real", "d_fake"))
            scalars["d_real"] = float(d_real.mean())
            scalars["d_fake"] = float(d_fake.mean())
            scalars["disc_loss"] = float(-(d_real.log().mean() + (1 - d_fake).log().mean()))
            scalars["gen_loss"] = float(-d_fake.log().mean())
    return scalars, details


def warning(code: str, message: str) -> dict[str, str]:
    return {"code": code, "message": message}


def warnings_for(model, test: dict[str, Any]) -> list[dict[str, str]]:
    """Plain warnings (``{"code", "message"}``) about what ``test`` metrics say went wrong, each naming
    the usual cures; empty for a healthy run."""
    out = []
    d = model.latent_dim
    if "active_units" in test:
        kl = test.get("kl")
        au = test["active_units"]
        # With free bits every dimension may keep lambda nats whether it helps or not, so the unit count
        # and the KL can look alive while the decoder ignores the code: the reconstructions then all
        # look alike, which is what a collapsed posterior means to a user.
        spread = test.get("recon_spread")
        alike = spread is not None and spread < SPREAD_COLLAPSED
        if au == 0 or (kl is not None and kl < COLLAPSED_KL) or alike:
            carries = f" and the code carries {kl:.3g} nats per example" if kl is not None else ""
            look = f" (reconstructions are {spread:.2f} times as far apart as the data)" if spread is not None else ""
            out.append(warning("posterior_collapse", (
                f"posterior collapse: {au} of {d} code units are active{carries}, so the decoder ignores it"
                f"{look}. Usual cures: {VAE_CURES}.")))
    if out:  # a collapsed posterior explains samples that look alike: one warning, not three
        return out
    spread = test.get("sample_spread")
    if spread is not None and spread < SPREAD_COLLAPSED:
        cures = GAN_CURES if not isinstance(model, Autoencoder) else VAE_CURES
        out.append(warning("mode_collapse", (
            f"mode collapse: samples are {spread:.2f} times as far apart as real examples "
            f"(1 = as varied as the data), so they are nearly all the same. Usual cures: {cures}.")))
    within = test.get("sample_spread_within_class")
    if within is not None and within < WITHIN_CLASS_COLLAPSED:
        cures = VAE_CURES if isinstance(model, Autoencoder) else GAN_CURES  # a conditional GAN's mode collapse
        out.append(warning("ignores_z", (
            f"samples of one class barely change with z: they are {within:.2f} times as far apart as real "
            f"examples of that class. Usual cures: {cures}.")))
    balance = test.get("sample_class_balance")
    if balance is not None and balance < BALANCE_MIN and model.generative:
        cures = VAE_CURES if isinstance(model, Autoencoder) else GAN_CURES
        asked = "asked for every class in turn, " if model.conditional else ""
        out.append(warning("class_imbalance", (
            f"samples cover few classes: {asked}the data's classifier sees a class balance of {balance:.2f} "
            f"(1 = every class equally often). Usual cures: {cures}.")))
    if "d_real" in test and "d_fake" in test and not isinstance(model, Autoencoder):
        if test["d_real"] > D_WINS and test["d_fake"] < 1 - D_WINS:
            out.append(warning("discriminator_wins", (
                f"the discriminator wins outright (D(real) {test['d_real']:.3f}, D(fake) {test['d_fake']:.3f}; "
                f"losses D {test.get('disc_loss', float('nan')):.2f}, G {test.get('gen_loss', float('nan')):.2f} "
                f"nats against log 4 = 1.39 and log 2 = 0.69 at balance): the generator learns little. "
                f"Usual cures: {GAN_CURES}.")))
    return out
