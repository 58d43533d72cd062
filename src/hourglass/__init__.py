"""hourglass: the autoencoder family on PyTorch, with one API, one trainer and one CLI."""

__version__ = "0.1.0"

from .data import list_datasets, load_data  # noqa: E402
from .evaluate.subspace import pca_subspace_angles  # noqa: E402
from .registry import create, list_models, list_presets, make_config, register_model, register_preset  # noqa: E402
from .run import Run, load, resume, train  # noqa: E402

__all__ = [
    "Run", "create", "list_datasets", "list_models", "list_presets", "load", "load_data", "make_config",
    "pca_subspace_angles", "register_model", "register_preset", "resume", "train", "__version__",
]
