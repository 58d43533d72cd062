"""Training on data several times larger than a memory budget keeps the process under that budget.

Each measurement runs in a fresh Python process (so nothing else the test session holds counts):
it imports everything and trains once, streamed, on a small file of the same width with the same
batch size (imports, the model's and optimizer's memory and the batches' first allocations are then
behind it, and no data are held), reads its peak resident set (``resource.getrusage``,
``ru_maxrss``), trains an epoch on a ``.npy`` file of 78 MiB with ``memory_budget=16`` (MiB), and
reports how far the peak rose. The same run with ``in_memory="always"`` is the control: it shows
the measurement sees the data when they are held.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np

BUDGET_MIB = 16
ROWS, WIDTH = 20_000, 1024  # 78 MiB of float32, ~4.9 times the budget

SCRIPT = """
import resource, sys
import numpy as np
import hourglass

path, small, mode, budget = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
opts = dict(epochs=1, batch_size=256, progress=False, figures=False, hidden=(16,), latent_dim=4, threads=1)
hourglass.train("ae", small, in_memory="never", memory_budget=budget, **opts)  # warm-up
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
run = hourglass.train("ae", path, in_memory=mode, memory_budget=budget, **opts)
after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(run.streamed, run.info["data"]["n_train"], (after - before) / 1024)
"""


def _peak_rise(path: Path, mode: str) -> tuple[bool, int, float]:
    src = Path(__file__).resolve().parents[1] / "src"
    small = path.with_name("small.npy")
    np.save(small, np.random.default_rng(1).random((2048, WIDTH), dtype=np.float32))
    out = subprocess.run([sys.executable, "-c", SCRIPT, str(path), str(small), mode, str(BUDGET_MIB)],
                         capture_output=True,
                         text=True, timeout=600, env={"PYTHONPATH": str(src), "PATH": "/usr/bin:/bin",
                                                      "OMP_NUM_THREADS": "1"})
    assert out.returncode == 0, out.stderr
    streamed, n_train, rise = out.stdout.split()
    return streamed == "True", int(n_train), float(rise)


def test_an_epoch_on_data_five_times_the_budget_stays_under_it(tmp_path):
    path = tmp_path / "big.npy"
    mm = np.lib.format.open_memmap(path, mode="w+", dtype=np.float32, shape=(ROWS, WIDTH))
    rng = np.random.default_rng(0)
    for s in range(0, ROWS, 2000):
        mm[s : s + 2000] = rng.random((2000, WIDTH), dtype=np.float32)
    mm.flush()
    del mm
    data_mib = ROWS * WIDTH * 4 / 2**20
    assert data_mib > 4.5 * BUDGET_MIB
    streamed, n_train, rise = _peak_rise(path, "auto")
    assert streamed and n_train == 14_400
    assert rise < BUDGET_MIB, f"peak resident memory rose by {rise:.1f} MiB, over the {BUDGET_MIB} MiB budget"
    held, _, rise_held = _peak_rise(path, "always")
    assert not held and rise_held > data_mib / 2  # the measurement does see data held in memory
