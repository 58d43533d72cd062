import sys
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).parent))

from helpers import MNIST10K, SMALL_RUN  # noqa: E402


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


@pytest.fixture(scope="session")
def small_run(tmp_path_factory):
    """``small_run(model, epochs)``: a finished run on the embedded digits, trained once per session (copy it
    with ``copied`` before changing it)."""
    import hourglass

    made: dict = {}

    def get(model: str, epochs: int) -> Path:
        if (model, epochs) not in made:
            out = tmp_path_factory.mktemp(f"{model}-{epochs}") / "run"
            hourglass.train(model, "digits", out=out, epochs=epochs, **SMALL_RUN)
            made[model, epochs] = out
        return made[model, epochs]

    return get
