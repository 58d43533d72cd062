"""Data: named data sets, file formats, in-memory arrays, and the scaling stored with each run.

Every input (a name, a path, a folder, arrays, a DataFrame) goes through one dispatcher,
:mod:`hourglass.data.sources`; each file format is one registered reader in :mod:`hourglass.data.formats`
(``@register_format``, the twin of ``@register_dataset``). The train/validation/test tensors a run
trains on come from :mod:`hourglass.data.splits` (it imports torch, so it is not imported here).
"""

from ..errors import DataError
from .datasets import DataBundle, list_datasets, load_data, register_dataset
from .formats import Format, register_format, registered_formats
from .formats.idx import read_idx, write_idx
from .scaling import Scaler
from .sources import as_bundle, read_examples, read_table

__all__ = [
    "DataBundle", "DataError", "Format", "Scaler", "as_bundle", "list_datasets", "load_data", "read_examples",
    "read_idx", "read_table", "register_dataset", "register_format", "registered_formats", "write_idx",
]
