import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from helpers import MNIST10K  # noqa: E402


@pytest.fixture
def mnist10k_dir():
    if not (MNIST10K / "train-images-idx3-ubyte.gz").is_file():
        pytest.skip(f"the MNIST sample is not at {MNIST10K} (it lives in ../shared/data/mnist10k beside the repo)")
    return MNIST10K
