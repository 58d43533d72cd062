"""hourglass: the autoencoder family on PyTorch, with one API, one trainer and one CLI."""

from .registry import create, list_models, list_presets, make_config, register_model, register_preset

__version__ = "0.1.0"

__all__ = ["create", "list_models", "list_presets", "make_config", "register_model", "register_preset", "__version__"]
