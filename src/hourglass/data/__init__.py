"""Data: named data sets, IDX and table files, in-memory arrays, and the scaling stored with each run.

The train/validation/test tensors a run trains on come from :mod:`hourglass.data.splits` (it imports
torch, so it is not imported here).
"""

from ..errors import DataError
from .datasets import DataBundle, list_datasets, load_data, register_dataset
from .idx import read_idx, write_idx
from .scaling import Scaler
from .sources import as_bundle
from .tabular import read_examples, read_table

__all__ = [
    "DataBundle", "DataError", "Scaler", "as_bundle", "list_datasets", "load_data", "read_examples", "read_idx",
    "read_table", "register_dataset", "write_idx",
]
