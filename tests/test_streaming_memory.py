"""Training on data several times larger than a memory budget keeps the memory the data take under that
budget.

Each measurement runs in a fresh Python process (so nothing else the test session holds counts). It
imports everything and trains once, streamed, on a small file of the same width and batch size, large
enough that its evaluation works on subsamples as large as the big file's (imports, library buffers and
first allocations are then behind it; a smaller file left the big run to touch them first, and CI saw
24 MiB of them). The allocator gives large buffers back when they are freed (a fixed mmap threshold),
so the peak is what was live at once. Then, twice, it resets its peak resident set to the current
one (``/proc/self/clear_refs``), trains, and reads how far the peak (``VmHWM``) rose: once on the small
file again (what the model, the optimizer and a batch's working memory cost, whatever the data's size)
and once on a ``.npy`` file of 78 MiB with ``memory_budget=16`` (MiB). The difference is what the data
cost: it must stay under the budget. The same run with ``in_memory="always"`` is the control: it holds
the data afterwards, so the measurement does see data held in memory.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np

BUDGET_MIB = 16
ROWS, WIDTH = 20_000, 1024  # 78 MiB of float32, ~4.9 times the budget
SMALL_ROWS = 4096  # enough that the evaluation subsamples (an eighth of the budget each) are as large as on
# the big file: both runs then take the same code paths on arrays of the same size, and differ in the data only

SCRIPT = """
import sys
import hourglass

def status(key):  # MiB from /proc/self/status
    for line in open("/proc/self/status"):
        if line.startswith(key + ":"):
            return int(line.split()[1]) / 1024

def rise(data, mode):  # how far the peak resident set rises over a run, and the resident set it leaves
    with open("/proc/self/clear_refs", "w") as f:  # reset the peak (VmHWM) to the resident set now
        f.write("5")
    before = status("VmRSS")
    run = hourglass.train("ae", data, in_memory=mode, memory_budget=budget, **opts)
    return run, status("VmHWM") - before, status("VmRSS") - before

path, small, mode, budget = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
opts = dict(epochs=1, batch_size=256, progress=False, figures=False, hidden=(16,), latent_dim=4, threads=1)
hourglass.train("ae", small, in_memory="never", memory_budget=budget, **opts)  # warm-up
_, rise_small, _ = rise(small, "never")
run, rise_big, held = rise(path, mode)
print(run.streamed, run.info["data"]["n_train"], rise_small, rise_big, held)
"""


def _peak_rise(path: Path, mode: str) -> tuple[bool, int, float, float, str]:
    """(streamed?, training examples, how much higher the peak resident set rose on ``path`` than on the
    small file, the resident set the run on ``path`` left held, a line of the numbers), in MiB."""
    src = Path(__file__).resolve().parents[1] / "src"
    small = path.with_name("small.npy")
    np.save(small, np.random.default_rng(1).random((SMALL_ROWS, WIDTH), dtype=np.float32))
    out = subprocess.run([sys.executable, "-c", SCRIPT, str(path), str(small), mode, str(BUDGET_MIB)],
                         capture_output=True,
                         text=True, timeout=600, env={"PYTHONPATH": str(src), "PATH": "/usr/bin:/bin",
                                                      "OMP_NUM_THREADS": "1", "MALLOC_ARENA_MAX": "1",
                                                      # a fixed threshold: every large buffer is mapped and
                                                      # given back when freed, so the peak is what was live
                                                      # at once, not what the allocator kept from before
                                                      "MALLOC_MMAP_THRESHOLD_": "131072",
                                                      "MALLOC_TRIM_THRESHOLD_": "131072"})
    assert out.returncode == 0, out.stderr
    streamed, n_train, small, big, held = out.stdout.split()
    line = (f"peak rose {float(small):.1f} MiB on the small file, {float(big):.1f} MiB on the large one; "
            f"held {float(held):.1f}")
    return streamed == "True", int(n_train), float(big) - float(small), float(held), line


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
    streamed, n_train, rise, _, line = _peak_rise(path, "auto")
    assert streamed and n_train == 14_400
    assert rise < BUDGET_MIB, f"the data took {rise:.1f} MiB, over the {BUDGET_MIB} MiB budget ({line})"
    streamed, _, _, held, line = _peak_rise(path, "always")
    assert not streamed and held > data_mib / 2, line  # the measurement does see data held in memory
