import sys
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).parent))

from helpers import MNIST10K  # noqa: E402


@pytest.fixture
def mnist10k_dir():
    if not (MNIST10K / "train-images-idx3-ubyte.gz").is_file():
        pytest.skip(f"the MNIST sample is not at {MNIST10K} (it lives in ../shared/data/mnist10k beside the repo)")
    return MNIST10K


@pytest.fixture(scope="module")
def one_thread():
    """The models in most tests are tiny: one torch thread is faster, and on a busy shared CPU far
    faster than two spinning OpenMP threads. Modules opt in with
    ``pytestmark = pytest.mark.usefixtures("one_thread")``; restored afterwards for the others."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
