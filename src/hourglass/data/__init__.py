"""Data: named data sets, IDX and table files, and the scaling stored with each run."""

from .datasets import DataBundle, list_datasets, load_data, register_dataset
from .errors import DataError
from .idx import read_idx, write_idx
from .scaling import Scaler
from .tabular import read_examples, read_table

__all__ = [
    "DataBundle", "DataError", "Scaler", "list_datasets", "load_data", "read_examples", "read_idx", "read_table",
    "register_dataset", "write_idx",
]
