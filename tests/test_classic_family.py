"""The classic family's own claims (dae, sparse, contractive, stacked), each shown on sklearn's 8x8 digits
scaled to [0, 1]: small MLPs, fixed seeds, a few seconds per model, the file well under a minute."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from sklearn.datasets import load_digits
from sklearn.linear_model import LogisticRegression
from threadpoolctl import threadpool_limits

import hourglass
from hourglass.config import ConfigError
from hourglass.models.contractive import (
    hutchinson_jacobian_sq,
    jacobian_frobenius,
    jacobian_sq,
    sigmoid_layer_jacobian_sq,
)
from hourglass.models.noise import corrupt, parse_noise_spec
from hourglass.models.sparse import code_stats
from hourglass.training.trainer import TrainConfig, Trainer

EPOCHS = 40
BASE = dict(input_shape=(64,), hidden=(64,), latent_dim=16, lr=3e-3)


@pytest.fixture(scope="module", autouse=True)
def one_blas_thread(one_thread):
    """One torch thread (conftest's ``one_thread``), and one for numpy's and scikit-learn's BLAS /
    OpenMP pools too: these nets and probes are tiny."""
    with threadpool_limits(1):
        yield


@pytest.fixture(scope="module")
def digits():
    d = load_digits()
    x = torch.tensor(d.data / 16.0, dtype=torch.float32)
    y = torch.tensor(d.target)
    perm = torch.randperm(len(x), generator=torch.Generator().manual_seed(0))
    tr, te = perm[:1400], perm[1400:]
    return x[tr], y[tr], x[te], y[te]


_cache: dict[tuple, torch.nn.Module] = {}


def fit(digits, name, epochs=EPOCHS, **cfg):
    """Train (once per configuration) model ``name`` on the digits with the generic trainer."""
    key = (name, epochs, tuple(sorted(cfg.items())))
    if key not in _cache:
        torch.manual_seed(0)
        model = hourglass.create(name, **{**BASE, **cfg})
        Trainer(model, TrainConfig(epochs=epochs, batch_size=64, seed=0, progress=False)).fit(digits[0])
        _cache[key] = model.eval()
    return _cache[key]


def denoising_bce(model, x, noise, level):
    """Mean per-value BCE of the reconstruction of a corrupted x (fixed noise) against the clean x."""
    x_noisy = corrupt(x, noise, level, torch.Generator().manual_seed(1), clip=(0.0, 1.0))
    with torch.no_grad():
        return F.binary_cross_entropy_with_logits(model.decode_raw(model.encode(x_noisy)), x).item()


def recon_bce(model, x):
    with torch.no_grad():
        return F.binary_cross_entropy_with_logits(model.decode_raw(model.encode(x)), x).item()


def test_the_family_is_registered():
    assert {"dae", "sparse", "contractive", "stacked"} <= set(hourglass.list_models())


# -- denoising ------------------------------------------------------------------------------------
@pytest.mark.parametrize("noise,level", [("gaussian", 0.3), ("masking", 0.3), ("salt_pepper", 0.2)])
def test_dae_denoises_better_than_a_plain_ae(digits, noise, level):
    x_test = digits[2]
    ae = fit(digits, "ae")
    dae = fit(digits, "dae", noise=noise, noise_level=level)
    a, d = denoising_bce(ae, x_test, noise, level), denoising_bce(dae, x_test, noise, level)
    assert d < 0.93 * a, f"{noise}: DAE {d:.4f} vs AE {a:.4f}"


def test_dae_corrupts_in_training_only():
    torch.manual_seed(0)
    model = hourglass.create("dae", input_shape=(12,), latent_dim=3, hidden=(8,), noise="masking",
                             noise_level=0.5)
    x = torch.rand(16, 12)
    assert torch.equal(model.encode(x), model.encode(x))  # encode sees the clean input
    assert torch.equal(model.code_act(model.encoder(x)), model.encode(x))
    x_in = model.corrupt(x)
    assert x_in.shape == x.shape and (x_in == 0).float().mean() > 0.3  # training input is masked
    # The loss compares with the clean x: the same recon as reconstructing x_in against x.
    torch.manual_seed(5)
    out = model.training_step((x, None))
    torch.manual_seed(5)
    raw = model.decode_raw(model.encode(model.corrupt(x)))
    assert torch.allclose(out["recon"], model.recon_loss(raw, x).mean())


def test_corrupt_function():
    x = torch.rand(200, 50)
    g = lambda: torch.Generator().manual_seed(3)  # noqa: E731
    assert torch.equal(corrupt(x, "gaussian", 0.5, g()), corrupt(x, "gaussian", 0.5, g()))
    noisy = corrupt(x, "gaussian", 0.5, g())
    assert noisy.min() < 0 and noisy.max() > 1  # not clipped without a range (real-valued data)
    clipped = corrupt(x, "gaussian", 0.5, g(), clip=(0.0, 1.0))
    assert clipped.min() >= 0 and clipped.max() <= 1
    assert (corrupt(x, "gaussian", 0.5, g()) - x).std().item() == pytest.approx(0.5, rel=0.05)
    masked = corrupt(x, "masking", 0.3, g())
    assert (masked == 0).float().mean().item() == pytest.approx(0.3, abs=0.02)
    sp = corrupt(x, "salt_pepper", 0.2, g(), clip=(0.0, 1.0))
    changed = sp != x
    assert changed.float().mean().item() == pytest.approx(0.2, abs=0.02)
    assert set(sp[changed].unique().tolist()) == {0.0, 1.0}
    assert torch.equal(corrupt(x, "masking", 0.0), x)
    with pytest.raises(ValueError, match="noise_level: got 1.5"):
        corrupt(x, "masking", 1.5)


def test_parse_noise_spec():
    assert parse_noise_spec("gaussian:0.5") == ("gaussian", 0.5)
    assert parse_noise_spec("salt-pepper:0.1") == ("salt_pepper", 0.1)
    for bad, msg in [("gaussian", "'gaussian'"), ("blur:0.2", "'blur:0.2'"), ("masking:lots", "'lots'"),
                     ("masking:2", "'masking:2'")]:
        with pytest.raises(ValueError, match=msg):
            parse_noise_spec(bad)


def test_config_errors_name_the_key():
    with pytest.raises(ConfigError, match="noise_level"):
        hourglass.create("dae", input_shape=(4,), noise_level=-0.1)
    with pytest.raises(ConfigError, match="code_activation.*'relu'"):
        hourglass.create("sparse", input_shape=(4,), sparsity="kl", code_activation="relu")
    assert hourglass.create("sparse", input_shape=(4,), sparsity="kl").config.code_activation == "sigmoid"
    with pytest.raises(ConfigError, match="'k'.*latent_dim=4.*k=5"):
        hourglass.create("sparse", input_shape=(8,), latent_dim=4, sparsity="ksparse", k=5)
    with pytest.raises(ConfigError, match="rho"):
        hourglass.create("sparse", input_shape=(4,), sparsity="kl", rho=1.5)
    with pytest.raises(ConfigError, match="projections"):
        hourglass.create("contractive", input_shape=(4,), projections=0)
    with pytest.raises(ConfigError, match="layer_noise_level"):
        hourglass.create("stacked", input_shape=(4,), layer_noise="masking", layer_noise_level=2.0)


# -- sparse ---------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "sparse_cfg,ae_cfg",
    [
        ({"sparsity": "l1", "code_activation": "relu"}, {"code_activation": "relu"}),
        ({"sparsity": "kl", "sparsity_weight": 1.0, "hidden": ()},
         {"code_activation": "sigmoid", "hidden": ()}),
    ],
    ids=["l1", "kl"],
)
def test_sparse_codes_are_sparser_than_the_plain_ae(digits, sparse_cfg, ae_cfg):
    x_test = digits[2]
    plain_model, sparse_model = fit(digits, "ae", **ae_cfg), fit(digits, "sparse", **sparse_cfg)
    with torch.no_grad():
        plain, sparse = code_stats(plain_model.encode(x_test)), code_stats(sparse_model.encode(x_test))
    assert sparse["mean_abs"] < 0.6 * plain["mean_abs"], (sparse, plain)
    assert sparse["near_zero"] > plain["near_zero"] + 0.1, (sparse, plain)


def test_ksparse_codes_have_exactly_k_nonzeros(digits):
    model = fit(digits, "sparse", sparsity="ksparse", k=4)
    with torch.no_grad():
        z = model.encode(digits[2])
    assert ((z != 0).sum(1) == 4).all()
    assert code_stats(z)["nonzero_per_code"] == 4.0


# -- contractive ----------------------------------------------------------------------------------
def test_contractive_encoder_is_flatter_than_the_plain_ae(digits):
    x_test = digits[2]
    one_layer = {"hidden": (), "code_activation": "sigmoid"}
    cae = fit(digits, "contractive", **one_layer)
    assert cae.method == "closed_form"
    j_cae = jacobian_frobenius(cae, x_test).mean().item()
    j_ae = jacobian_frobenius(fit(digits, "ae", **one_layer), x_test).mean().item()
    assert j_cae < 0.8 * j_ae, (j_cae, j_ae)


def test_closed_form_equals_torch_func_jacobian():
    torch.manual_seed(0)
    model = hourglass.create("contractive", input_shape=(20,), hidden=(), latent_dim=7,
                             code_activation="sigmoid")
    with torch.no_grad():
        model.encoder.head[0].weight.mul_(3.0)  # away from the linear regime of the sigmoid
    x = torch.randn(32, 20)
    closed = sigmoid_layer_jacobian_sq(model.encode(x), model.encoder.head[0].weight)
    exact = jacobian_frobenius(model, x, squared=True)
    assert torch.allclose(closed, exact, rtol=1e-5, atol=1e-7)
    assert torch.allclose(jacobian_frobenius(model, x), exact.sqrt())
    # "auto" (closed form) and "exact" (torch.func) give the same training penalty
    z = model.encode(x)
    auto = model.contraction_sq(x, z)
    model.config.jacobian = "exact"
    assert torch.allclose(auto, model.contraction_sq(x, z), rtol=1e-5, atol=1e-7)


def test_estimators_agree_with_the_exact_jacobian_on_a_deep_encoder():
    torch.manual_seed(0)
    model = hourglass.create("contractive", input_shape=(10,), hidden=(16,), latent_dim=4, activation="tanh")
    x = torch.randn(64, 10)
    exact = jacobian_sq(model.encode, x).detach()
    x_in = x.clone().requires_grad_(True)
    est = hutchinson_jacobian_sq(x_in, model.encode(x_in), projections=400).detach()
    assert torch.allclose(est, exact, rtol=0.2)  # unbiased: per example within 20% with 400 draws
    model.config.contraction, model.config.noise_std = "stochastic", 1e-3
    stoch = torch.stack([model.contraction_sq(x, model.encode(x)).detach() for _ in range(50)]).mean(0)
    assert stoch.mean().item() == pytest.approx(exact.mean().item(), rel=0.05)
    model.config.contraction = "analytic"
    model.config.jacobian = "estimate"
    out = model.training_step((x, None))
    out["loss"].backward()  # the estimate is differentiable: it trains the encoder
    assert model.encoder.head[0].weight.grad.abs().sum() > 0


# -- stacked --------------------------------------------------------------------------------------
def test_stacked_pretraining_matches_end_to_end_training(digits):
    deep = {"hidden": (64, 32)}
    stacked = hourglass.create("stacked", **{**BASE, **deep}, pretrain_epochs=5, finetune_epochs=25)
    assert stacked.required_epochs == 3 * 5 + 25 == EPOCHS
    torch.manual_seed(0)
    hist = Trainer(stacked, TrainConfig(epochs=EPOCHS, batch_size=64, seed=0, progress=False)).fit(digits[0])
    phases = [rec["phases"] for rec in hist]
    assert phases == ["layer1"] * 5 + ["layer2"] * 5 + ["layer3"] * 5 + ["finetune"] * 25
    assert phases == stacked.schedule()
    assert "train_layer2/loss" in hist[7] and "train_finetune/loss" in hist[-1]
    e2e = recon_bce(fit(digits, "ae", **deep), digits[2])
    greedy = recon_bce(stacked.eval(), digits[2])
    assert greedy <= 1.05 * e2e, (greedy, e2e)
    _cache[("stacked",)] = stacked


def test_stacked_freezes_lower_layers_and_checks_epochs():
    torch.manual_seed(0)
    model = hourglass.create("stacked", input_shape=(12,), hidden=(8, 6), latent_dim=3, pretrain_epochs=2,
                             finetune_epochs=3, layer_noise="gaussian", layer_noise_level=0.1)
    assert model.required_epochs == 9
    model.training_step((torch.rand(4, 12), None), "layer2")["loss"].backward()
    assert all(p.grad is None for p in model.encoders[0].parameters())  # layer 1 is frozen
    assert all(p.grad is not None for p in [*model.encoders[1].parameters(), *model.decoders[1].parameters()])
    with pytest.raises(ValueError, match=r"epochs=5 .*3 layers x pretrain_epochs=2 \+ finetune_epochs=3 = 9"):
        model.check_epochs(5)
    model.check_epochs(9)
    with pytest.raises(ValueError, match=r"epochs=5 is too few"):  # refused before any training
        Trainer(model, TrainConfig(epochs=5, batch_size=4, progress=False)).fit(torch.rand(8, 12))
    model.active_phases(4)  # as if early stopping had ended training after 5 epochs
    with pytest.warns(UserWarning, match="after 5 training epochs.*needs 9"):
        model.metrics_batch(torch.rand(2, 12))


def test_through_run_train():
    """The library path: hourglass.train on the embedded digits, metrics and history included."""
    from hourglass import train

    small = dict(epochs=1, progress=False, figures=False, hidden=(16,), latent_dim=4)
    run = train("stacked", "digits", **{**small, "epochs": 4}, pretrain_epochs=1, finetune_epochs=2)
    assert [rec["phases"] for rec in run.history] == ["layer1", "layer2", "finetune", "finetune"]
    assert np.isfinite(run.metrics["test"]["recon_bce"])
    dae = train("dae", "digits", **small, noise="salt_pepper", noise_level=0.2).metrics["test"]
    cae = train("contractive", "digits", **small).metrics["test"]
    assert dae["denoise_bce"] > 0 and cae["jacobian_frobenius"] > 0


@pytest.mark.parametrize("model, stem, caption", [
    ("dae", "denoising", "denoised by the model"),
    ("sparse", "code_histogram", "a sparse code piles up at zero"),
])
def test_runs_draw_the_figure_that_shows_the_models_point(tmp_path, model, stem, caption):
    from hourglass import train

    out = tmp_path / model
    train(model, "digits", out=out, epochs=1, progress=False, hidden=(16,), latent_dim=4)
    png = out / f"{stem}.png"
    assert png.is_file() and png.stat().st_size > 1000
    page = (out / "report.html").read_text()
    assert f'alt="{stem}"' in page and caption in page


def test_plain_ae_runs_draw_no_variant_figures(tmp_path):
    from hourglass import train

    out = tmp_path / "ae"
    train("ae", "digits", out=out, epochs=1, progress=False, hidden=(16,), latent_dim=4)
    assert not (out / "denoising.png").exists() and not (out / "code_histogram.png").exists()


# -- the codes carry the digit's identity ---------------------------------------------------------
PROBED = {
    "ae": ("ae", {}),
    "dae": ("dae", {"noise": "gaussian", "noise_level": 0.3}),
    "sparse-l1": ("sparse", {"sparsity": "l1", "code_activation": "relu"}),
    "sparse-kl": ("sparse", {"sparsity": "kl", "sparsity_weight": 1.0, "hidden": ()}),
    "ksparse": ("sparse", {"sparsity": "ksparse", "k": 4}),
    "contractive": ("contractive", {"hidden": (), "code_activation": "sigmoid"}),
    "stacked": ("stacked", {"hidden": (64, 32), "pretrain_epochs": 5, "finetune_epochs": 25}),
}


@pytest.mark.parametrize("label", list(PROBED))
def test_logistic_probe_on_codes_beats_chance(digits, label):
    x_tr, y_tr, x_te, y_te = digits
    name, cfg = PROBED[label]
    model = _cache.get(("stacked",)) if label == "stacked" else None
    model = model or fit(digits, name, **cfg)
    with torch.no_grad():
        z_tr, z_te = model.encode(x_tr).numpy(), model.encode(x_te).numpy()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # lbfgs may stop at max_iter; the accuracy is what counts
        acc = LogisticRegression(max_iter=300).fit(z_tr, y_tr.numpy()).score(z_te, y_te.numpy())
    assert acc > 0.7, f"{label}: probe accuracy {acc:.3f} (chance 0.1)"
    assert np.isfinite(z_te).all()
