#!/usr/bin/env python
"""One preset's training step against the machine's matmul peak, measured side by side.

``run_all.py`` divides a whole fit's FLOPs by its wall-clock time and the peak it measured at the
start and the end of a half-hour run. On a shared machine the speed of the core drifts within that
half hour (other tenants' use of the shared cache and memory slows a step that streams its weights
and optimizer state, while a cache-resident matrix product keeps its speed), so this script
alternates the two in one process: a block of training steps through hourglass' ``Trainer`` (CPU
seconds, one thread unless ``--threads``), then the float32 peak (a 2048 x 2048 product), ``--blocks``
times (an epoch of ``Trainer.fit`` per block, the peak from a callback between epochs), and reports
each block's share of the peak measured next to it and their median.

    python benchmarks/step_share.py                          # vae-mnist, batch 100, 8 blocks
    python benchmarks/step_share.py --preset keras-dense --batch 256
    python benchmarks/step_share.py --model ae --preset keras-conv --batch 256 --blocks 4

The data are random numbers in [0, 1] shaped like MNIST: the step's time does not depend on them.
FLOPs are counted from the layer shapes as in ``run_all.py``.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import torch  # noqa: E402
from run_all import matmul_gflops, model_flops  # noqa: E402

import hourglass  # noqa: E402
from hourglass.options import TrainConfig  # noqa: E402
from hourglass.training.callbacks import Callback  # noqa: E402
from hourglass.training.speed import keep_freed_memory  # noqa: E402
from hourglass.training.trainer import Trainer  # noqa: E402


class BesideThePeak(Callback):
    """After every epoch (a block of steps): the epoch's CPU seconds, then the peak, timed apart."""

    def __init__(self, flop: float, steps: int):
        self.flop, self.steps, self.rows = flop, steps, []

    def on_fit_start(self, trainer) -> None:
        self.t0 = time.process_time()

    def on_epoch_end(self, trainer, record) -> None:
        ms = (time.process_time() - self.t0) / self.steps * 1e3
        peak = matmul_gflops(torch.float32)["gflops"]
        rate = self.flop / ms / 1e6
        self.rows.append(rate / peak)
        print(f"block {len(self.rows)}: step {ms:.2f} ms CPU, {rate:.1f} GFLOP/s; peak {peak:.1f} GFLOP/s; "
              f"share {rate / peak:.0%}" + (" (warm-up, not counted)" if len(self.rows) == 1 else ""), flush=True)
        self.t0 = time.process_time()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default="vae", help="model name (default vae)")
    ap.add_argument("--preset", default="vae-mnist", help="preset (default vae-mnist)")
    ap.add_argument("--batch", type=int, default=100, help="batch size (default 100)")
    ap.add_argument("--steps", type=int, default=80, help="steps per block (default 80: an epoch of 8,000)")
    ap.add_argument("--blocks", type=int, default=8, help="blocks of steps, each beside a peak measurement")
    ap.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    keep_freed_memory()  # as hourglass.train does for data in memory
    x = torch.rand(args.steps * args.batch, 1, 28, 28, generator=torch.Generator().manual_seed(0))
    flop = model_flops(args.model, args.preset) * args.batch
    model = hourglass.create(args.model, args.preset, input_shape=(1, 28, 28))
    # One epoch per block; the first is a warm-up (the optimizer's state and the step's memory appear).
    trainer = Trainer(model, TrainConfig(epochs=args.blocks + 1, batch_size=args.batch, seed=0,
                                         threads=args.threads, progress=False, val_fraction=0.0, device="cpu"))
    beside = BesideThePeak(flop, args.steps)
    trainer.callbacks.append(beside)
    print(f"{args.model} {args.preset}, batch {args.batch}, {flop / 1e6:.1f} MFLOP per step, "
          f"{args.threads} thread(s)")
    trainer.fit(x)
    shares = beside.rows[1:]
    print(f"median share of the fp32 peak: {statistics.median(shares):.0%} "
          f"(blocks {min(shares):.0%} to {max(shares):.0%})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
