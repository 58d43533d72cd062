"""Generic behaviour every registered model must have (run over the whole registry)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

import hourglass
from helpers import fixed_batch, small_model
from hourglass.data.scaling import Scaler
from hourglass.models.base import Autoencoder, Generator
from hourglass.run import Run, load

MODELS = hourglass.list_models()
SHAPES = [(12,), (1, 12, 10)]


def test_registry_lists_the_foundation_models():
    assert {"ae", "vae"} <= set(MODELS)


def test_registry_refuses_duplicate_names():
    cls = hourglass.models.get_model_class("ae")

    class Other(cls):
        pass

    with pytest.raises(ValueError, match="already registered"):
        hourglass.register_model("ae")(Other)


def test_unknown_model_names_the_choices():
    with pytest.raises(ValueError, match="unknown model 'nope'.*ae"):
        hourglass.create("nope", input_shape=(4,))


@pytest.mark.parametrize("name", MODELS)
def test_model_has_summary_and_documented_fields(name):
    cls = hourglass.models.get_model_class(name)
    assert cls.summary, f"{name} needs a one-line summary for `hourglass list`"
    for f in dataclasses.fields(cls.config_cls):
        assert f.metadata.get("help"), f"{name}: config field {f.name!r} has no help text"


@pytest.mark.parametrize("shape", SHAPES, ids=["flat", "image"])
@pytest.mark.parametrize("name", MODELS)
def test_forward_shapes(name, shape):
    torch.manual_seed(0)
    model = small_model(name, shape)
    x, y = fixed_batch(shape, n=5)
    assert isinstance(model, Generator)
    if isinstance(model, Autoencoder):
        z = model.encode(x, y)
        assert z.shape == (5, model.latent_dim)
        out = model.reconstruct(x, y)
    else:  # a pure generator (GAN): no encode/reconstruct, decode noise instead
        assert model.generative and not hasattr(model, "encode")
        out = model.decode(torch.randn(5, model.latent_dim), y if model.conditional else None)
    assert out.shape == x.shape
    assert torch.isfinite(out).all()
    if model.config.recon_loss == "bce":
        assert out.min() >= 0 and out.max() <= 1
    if model.generative:
        s = model.sample(4, y[:4] if model.conditional else None)
        assert s.shape == (4, *shape)


@pytest.mark.parametrize("name", MODELS)
def test_training_step_returns_named_losses_per_optimizer(name):
    model = small_model(name)
    opts = model.configure_optimizers()
    assert opts and all(isinstance(o, torch.optim.Optimizer) for o in opts.values())
    batch = fixed_batch()
    for phase in opts:
        out = model.training_step(batch, phase)
        assert "loss" in out and out["loss"].ndim == 0 and torch.isfinite(out["loss"])
        assert out["loss"].requires_grad


@pytest.mark.parametrize("name", MODELS)
def test_one_step_lowers_the_loss_on_a_fixed_batch(name):
    torch.manual_seed(0)
    model = small_model(name)
    batch = fixed_batch()
    for phase, opt in model.configure_optimizers().items():
        torch.manual_seed(1)
        before = model.training_step(batch, phase)["loss"]
        opt.zero_grad()
        before.backward()
        opt.step()
        torch.manual_seed(1)
        after = model.training_step(batch, phase)["loss"]
        assert after.item() < before.item(), f"{name}/{phase}: {before.item()} -> {after.item()}"


@pytest.mark.parametrize("shape", SHAPES, ids=["flat", "image"])
@pytest.mark.parametrize("name", MODELS)
def test_save_load_round_trip_gives_identical_outputs(name, shape, tmp_path):
    torch.manual_seed(0)
    model = small_model(name, shape).eval()
    scaler = Scaler("range", lo=0.0, hi=1.0).fit(np.zeros((1, *shape), dtype=np.float32))
    info = {
        "format": 1,
        "model": name,
        "config": hourglass.config.config_to_dict(model.config),
        "train": hourglass.config.config_to_dict(hourglass.TrainConfig()),
        "data": {"name": "test", "scaling": scaler.to_dict(), "kind": "image" if len(shape) == 3 else "tabular"},
    }
    Run(model, scaler, info).save(tmp_path / "run")
    run = load(tmp_path / "run")
    assert type(run.model) is type(model)
    x, y = fixed_batch(shape, n=6)
    with torch.no_grad():
        if not isinstance(model, Autoencoder):  # compare what a generator has: decode and sample
            yc = y if model.conditional else None
            z = torch.randn(6, model.latent_dim)
            assert torch.equal(model.decode(z, yc), run.model.decode(z, yc))
            torch.manual_seed(1)
            a = model.sample(6, yc)
            torch.manual_seed(1)
            assert torch.equal(a, run.model.sample(6, yc))
            return
        a = model.encode(x, y)
        b = run.model.encode(x, y)
        assert torch.equal(a, b)
        assert torch.equal(model.reconstruct(x, y), run.model.reconstruct(x, y))
