"""Typed configs: --set parsing, unknown keys and wrong types are errors that name the key."""

import pytest

import hourglass
from hourglass.config import ConfigError, build_config, parse_set_options
from hourglass.models.ae import AEConfig
from hourglass.models.vae import VAEConfig


def test_strings_convert_to_field_types():
    cfg = build_config(VAEConfig, {"latent_dim": "4", "beta": "2.5", "hidden": "64,32", "activation": "tanh"},
                       from_string=True)
    assert cfg.latent_dim == 4 and cfg.beta == 2.5 and cfg.hidden == (64, 32) and cfg.activation == "tanh"


@pytest.mark.parametrize(
    "values, message",
    [
        ({"latnt_dim": "3"}, "unknown config key 'latnt_dim'"),
        ({"latent_dim": "three"}, "config key 'latent_dim'"),
        ({"latent_dim": "1.5"}, "config key 'latent_dim'"),
        ({"hidden": "64,x"}, "config key 'hidden'"),
        ({"recon_loss": "l1"}, "config key 'recon_loss'.*'bce', 'mse'"),
        ({"latent_dim": "0"}, "latent_dim"),
        ({"lr": "-1"}, "lr"),
    ],
)
def test_bad_values_name_the_key(values, message):
    with pytest.raises(ConfigError, match=message):
        build_config(AEConfig, values, from_string=True)


def test_bool_is_not_an_int():
    with pytest.raises(ConfigError, match="latent_dim"):
        build_config(AEConfig, {"latent_dim": True})


def test_parse_set_options():
    assert parse_set_options(["a=1", "b = x,y"]) == {"a": "1", "b": "x,y"}
    with pytest.raises(ConfigError, match="key=value"):
        parse_set_options(["novalue"])


def test_presets_apply_and_explicit_values_win():
    cfg = hourglass.make_config("ae", "keras-dense", latent_dim=8, input_shape=(784,))
    assert cfg.hidden == () and cfg.code_activation == "relu" and cfg.latent_dim == 8 and cfg.adam_eps == 1e-7


def test_preset_for_another_model_is_refused():
    with pytest.raises(ConfigError, match="preset 'vae-mnist' is for model 'vae'"):
        hourglass.make_config("ae", "vae-mnist")


def test_conv_map_code_size_follows_the_input():
    cfg = hourglass.make_config("ae", "keras-conv", input_shape=(1, 28, 28))
    assert cfg.latent_dim == 4 * 4 * 8
    cfg = hourglass.make_config("ae", "keras-conv", input_shape=(1, 8, 8))
    assert cfg.latent_dim == 1 * 1 * 8
    with pytest.raises(ConfigError, match="conv_code='map'.*128"):
        hourglass.make_config("ae", "keras-conv", input_shape=(1, 28, 28), latent_dim=10)


def test_vae_refuses_mean_reduction():
    with pytest.raises(ConfigError, match="reduction"):
        hourglass.make_config("vae", reduction="mean")


def test_model_needs_input_shape():
    with pytest.raises(ValueError, match="input_shape"):
        hourglass.create("ae")


def test_conv_needs_images():
    with pytest.raises(ValueError, match=r"\(C, H, W\)"):
        hourglass.create("ae", input_shape=(64,), architecture="conv")
