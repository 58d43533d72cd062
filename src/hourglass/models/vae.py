"""The variational autoencoder (Kingma & Welling 2014, "Auto-Encoding Variational Bayes").

The encoder outputs a Gaussian q(z|x) = N(mu(x), diag(sigma^2(x))); the decoder a likelihood
p(x|z) (Bernoulli for data in [0, 1], Gaussian with fixed std ``obs_std`` otherwise). Training
maximises the evidence lower bound

    ELBO(x) = E_q[log p(x|z)] - KL(q(z|x) || N(0, I))  <=  log p(x)

with one reparameterised sample z = mu + sigma * eps, eps ~ N(0, I), so gradients flow through mu
and sigma. The KL term is analytic:

    KL = -0.5 * sum(1 + log(sigma^2) - mu^2 - sigma^2)

``beta`` weighs the KL term (beta-VAE, Higgins et al. 2017); ``kl_warmup_epochs`` ramps that weight
from 0 (Bowman et al. 2016), and ``kl_schedule="cyclical"`` repeats the ramp (Fu et al. 2019).
``free_bits`` (lambda, Kingma et al. 2016, "Improved Variational Inference with Inverse
Autoregressive Flow", Sec. C.8) lets each code dimension keep lambda nats for free: training minimises

    E_q[-log p(x|z)] + beta * sum_j max(lambda, E_batch KL_j),    KL_j = KL(q(z_j|x) || N(0, 1)),

so a dimension whose mean KL over the batch is below lambda feels no pull towards the prior. Both
keep the encoder from giving up on the code early in training, before the decoder can use it (the
"posterior collapse" every run's diagnostics report on: ``active_units``, ``kl_per_dim``). The
bound that evaluation reports is always the plain ELBO.
Evaluation reports the negative ELBO and an importance-weighted estimate of -log p(x)
(the IWAE bound of Burda et al. 2016 with k samples, tighter as k grows), in nats per example.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import torch

from ..config import ConfigError, option
from ..registry import register_model, register_preset
from .base import Autoencoder, BaseConfig, Batch, bce_per_value, gaussian_nll, per_example
from .blocks import Decoder, Encoder

# log-variance is clamped to keep exp() finite early in training: sigma in [exp(-15), exp(10)].
LOGVAR_MIN, LOGVAR_MAX = -30.0, 20.0
# Posterior draws behind the anomaly score's ELBO estimate (the same draws for every example).
ANOMALY_SAMPLES = 16


@dataclass
class VAEConfig(BaseConfig):
    # Defaults chosen on the embedded digits (the main job: 30 epochs, batch 64, about 600 steps) with
    # an independent CNN judging the reconstructions (benchmarks/examples.py): the former defaults
    # (256-128 MLP, lr 1e-3, no warm-up) kept 2.3 nats in the code and 64-71% of reconstructions were
    # still recognisable; one 512 layer, lr 2e-3, a 10-epoch warm-up and 0.2 free nats per dimension
    # keep about 4 nats, >= 90% recognisable, and a lower test NLL (about 24.5 against 25.1 nats).
    hidden: tuple[int, ...] = option((512,), "MLP hidden widths, encoder order (the decoder mirrors them)")
    lr: float = option(2e-3, "learning rate")
    beta: float = option(1.0, "weight of the KL term (1: the ELBO; >1: beta-VAE)")
    kl_warmup_epochs: float = option(10.0, "epochs over which the KL weight ramps from 0 to beta (0: none)")
    kl_schedule: Literal["constant", "cyclical"] = option(
        "constant", "constant: ramp once; cyclical: repeat the ramp every kl_cycle_epochs"
    )
    kl_cycle_epochs: float = option(10.0, "cycle length of the cyclical KL schedule (ramp over its first half)")
    free_bits: float = option(0.2, "nats per code dimension the KL term does not charge for (0: off)")
    obs_std: float = option(1.0, "std of the Gaussian likelihood (recon_loss='mse')")
    iwae_samples: int = option(100, "importance samples k for the NLL estimate in evaluation")

    def validate(self) -> None:
        super().validate()
        if self.reduction != "sum":
            raise ConfigError("config key 'reduction': a VAE's ELBO sums over values; use reduction='sum'")
        if (self.beta < 0 or self.kl_warmup_epochs < 0 or self.free_bits < 0 or self.kl_cycle_epochs <= 0
                or self.obs_std <= 0):
            raise ConfigError(
                "config keys 'beta', 'kl_warmup_epochs', 'free_bits' must be >= 0; 'kl_cycle_epochs', 'obs_std' > 0 "
                f"(got beta={self.beta}, kl_warmup_epochs={self.kl_warmup_epochs}, free_bits={self.free_bits}, "
                f"kl_cycle_epochs={self.kl_cycle_epochs}, obs_std={self.obs_std})"
            )
        if self.iwae_samples < 1:
            raise ConfigError(f"config key 'iwae_samples': must be >= 1, got {self.iwae_samples}")
        if self.conv_code != "dense":
            raise ConfigError("config key 'conv_code': a VAE needs conv_code='dense' (mean and variance heads)")


def kl_per_dim(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """``(N, d)``: KL(N(mu_j, sigma_j^2) || N(0, 1)) = -0.5 (1 + log sigma_j^2 - mu_j^2 - sigma_j^2) per dimension."""
    return -0.5 * (1 + logvar - mu.pow(2) - logvar.exp())


def kl_to_standard_normal(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """Per-example KL(N(mu, sigma^2) || N(0, I)) = -0.5 * sum(1 + log sigma^2 - mu^2 - sigma^2)."""
    return kl_per_dim(mu, logvar).sum(1)


def free_bits_kl(kl_dims: torch.Tensor, free_bits: float) -> torch.Tensor:
    """Per-example KL charge whose batch mean is sum_j max(lambda, mean_i KL_ij) (Kingma et al. 2016):
    a dimension whose batch-mean KL is below lambda is charged the constant lambda (no gradient)."""
    if free_bits <= 0:
        return kl_dims.sum(1)
    below = kl_dims.mean(0) < free_bits  # (d,)
    return torch.where(below, torch.full_like(kl_dims, free_bits), kl_dims).sum(1)


def log_normal(z: torch.Tensor, mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """log N(z; mu, diag(exp(logvar))), summed over the last dimension."""
    return -0.5 * (math.log(2 * math.pi) + logvar + (z - mu).pow(2) / logvar.exp()).sum(-1)


@register_model("vae")
class VAE(Autoencoder):
    """Variational autoencoder with analytic KL, beta weight and KL warm-up."""

    config_cls = VAEConfig
    generative = True
    summary = "variational autoencoder: ELBO = reconstruction + beta * KL(q(z|x) || N(0, I)); sample(n)"

    def __init__(self, config: VAEConfig):
        super().__init__(config)
        self.encoder = Encoder(config, 2 * config.latent_dim, extra_dim=self.label_dim)
        self.decoder = Decoder(config, config.latent_dim, extra_dim=self.label_dim)
        self._init()

    # Conditional subclasses feed a one-hot label to both networks; the VAE feeds nothing.
    label_dim = 0

    def condition(self, y: torch.Tensor | None) -> torch.Tensor | None:
        return None

    def posterior(self, x: torch.Tensor, y: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """mu and log sigma^2 of q(z|x)."""
        h = self.encoder(x, self.condition(y))
        mu, logvar = h.chunk(2, dim=1)
        return mu, logvar.clamp(LOGVAR_MIN, LOGVAR_MAX)

    def encode(self, x: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        """The posterior mean: the deterministic code."""
        return self.posterior(x, y)[0]

    def decode_raw(self, z: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        return self.decoder(z, self.condition(y))

    def sample(self, n: int, y: torch.Tensor | None = None) -> torch.Tensor:
        z = torch.randn(n, self.latent_dim, device=self.device)
        with torch.no_grad():
            return self.decode(z, y)

    def nll_given_z(self, raw: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """Per-example -log p(x|z) from the decoder output."""
        if self.config.recon_loss == "bce":
            return per_example(bce_per_value(raw, x), "sum")
        return gaussian_nll(raw, x, self.config.obs_std)

    def kl_weight(self) -> float:
        """beta times the warm-up ramp at the current training progress (in epochs)."""
        c = self.config
        t = self.progress
        if c.kl_schedule == "cyclical":
            # Fu et al. 2019: within each cycle, ramp linearly over the first half, then hold.
            frac = (t % c.kl_cycle_epochs) / c.kl_cycle_epochs
            return c.beta * min(1.0, 2.0 * frac)
        if c.kl_warmup_epochs > 0:
            return c.beta * min(1.0, t / c.kl_warmup_epochs)
        return c.beta

    def elbo_terms(self, x: torch.Tensor, y: torch.Tensor | None = None,
                   charged: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
        """Per-example (-E_q log p(x|z) with one sample, KL(q || p)); with ``charged``, the KL term as
        training charges it (free bits, if any: :func:`free_bits_kl`) in place of the KL."""
        mu, logvar = self.posterior(x, y)
        z = mu + torch.randn_like(mu) * (0.5 * logvar).exp()  # reparameterisation trick
        recon = self.nll_given_z(self.decode_raw(z, y), x)
        kl_dims = kl_per_dim(mu, logvar)
        return recon, (free_bits_kl(kl_dims, self.config.free_bits) if charged else kl_dims.sum(1))

    def training_step(self, batch: Batch, phase: str = "model") -> dict[str, torch.Tensor]:
        x, y = batch
        mu, logvar = self.posterior(x, y)
        z = mu + torch.randn_like(mu) * (0.5 * logvar).exp()  # reparameterisation trick
        recon = self.nll_given_z(self.decode_raw(z, y), x).mean()
        kl_dims = kl_per_dim(mu, logvar)
        kl = kl_dims.sum(1).mean()
        charged = free_bits_kl(kl_dims, self.config.free_bits).mean()
        return {"loss": recon + self.kl_weight() * charged, "recon": recon, "kl": kl}

    @torch.no_grad()
    def code_posterior(self, x: torch.Tensor, y: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """mu and log sigma^2 of q(z|x) as ``encode`` sees them (diagnostics: active units, KL per dimension)."""
        return self.posterior(x, y)

    @torch.no_grad()
    def validation_step(self, batch: Batch) -> dict[str, torch.Tensor]:
        x, y = batch
        recon, kl = self.elbo_terms(x, y)
        return {"loss": (recon + kl).mean(), "recon": recon.mean(), "kl": kl.mean()}

    @property
    def anomaly_score_name(self) -> str:
        return "neg_elbo"

    @torch.no_grad()
    def anomaly_score(self, x: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        """The negative ELBO per example, -E_q log p(x|z) + KL(q(z|x) || N(0, I)), in nats.

        The expectation is estimated from ``ANOMALY_SAMPLES`` standard-normal draws eps_s that are the
        same for every example (common random numbers), z_s = mu(x) + sigma(x) * eps_s: the score is
        deterministic, and an example's score does not depend on the batch it is scored in (a fresh
        draw per row, as in training, would make both false)."""
        mu, logvar = self.posterior(x, y)
        eps = torch.randn(ANOMALY_SAMPLES, self.latent_dim, generator=torch.Generator().manual_seed(0))
        eps = eps.to(device=mu.device, dtype=mu.dtype)
        std = (0.5 * logvar).exp()
        recon = sum(self.nll_given_z(self.decode_raw(mu + e * std, y), x) for e in eps) / ANOMALY_SAMPLES
        return recon + kl_to_standard_normal(mu, logvar)

    @torch.no_grad()
    def iwae_nll(self, x: torch.Tensor, y: torch.Tensor | None = None, k: int | None = None) -> torch.Tensor:
        """Per-example estimate of -log p(x) with k importance samples (Burda et al. 2016):

        log p(x) >= log (1/k) sum_i p(x|z_i) p(z_i) / q(z_i|x),   z_i ~ q(z|x).
        """
        k = k or self.config.iwae_samples
        mu, logvar = self.posterior(x, y)
        n, d = mu.shape
        # Chunk the k samples so memory stays ~ 16 x batch whatever k is.
        chunk = max(1, min(k, 16))
        log_w = []
        cond_rep = None
        for start in range(0, k, chunk):
            m = min(chunk, k - start)
            eps = torch.randn(m, n, d, device=mu.device, dtype=mu.dtype)
            z = mu + eps * (0.5 * logvar).exp()
            xs = x.unsqueeze(0).expand(m, *x.shape).reshape(m * n, *x.shape[1:])
            if y is not None:
                cond_rep = y.unsqueeze(0).expand(m, *y.shape).reshape(m * n, *y.shape[1:])
            raw = self.decode_raw(z.reshape(m * n, d), cond_rep)
            log_px_z = -self.nll_given_z(raw, xs).reshape(m, n)
            log_pz = log_normal(z, torch.zeros_like(mu), torch.zeros_like(logvar))
            log_qz = log_normal(z, mu, logvar)
            log_w.append(log_px_z + log_pz - log_qz)
        log_w_all = torch.cat(log_w, 0)
        return -(torch.logsumexp(log_w_all, 0) - math.log(k))

    @torch.no_grad()
    def metrics_batch(self, x: torch.Tensor, y: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        out = super().metrics_batch(x, y)
        recon, kl = self.elbo_terms(x, y)
        out["neg_elbo"] = recon + kl
        out["kl"] = kl
        out["nll"] = self.iwae_nll(x, y)
        return out


register_preset(
    "vae-mnist",
    "vae",
    "MLP VAE 784-512-16-512-784 with a Bernoulli likelihood (the shape of pythae's default VAE)",
    train={"epochs": 20, "batch_size": 100},
    architecture="mlp",
    hidden=(512,),
    latent_dim=16,
    recon_loss="bce",
    optimizer="adam",
    lr=1e-3,
    kl_warmup_epochs=0.0,  # the plain ELBO from the first step, as the Keras and pythae VAEs train
    free_bits=0.0,
)

register_preset(
    "beta-vae",
    "vae",
    "beta-VAE (beta=4) with a 10-epoch KL warm-up: more disentangled, blurrier codes",
    beta=4.0,
    kl_warmup_epochs=10.0,
)
