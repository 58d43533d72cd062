"""Data-parallel training through torchrun: two CPU processes (gloo) train what one process trains with
the same global batch, only rank 0 writes, adversarial models work, and a run resumes with another
number of processes. Plus the pieces: how a batch is shared out, the torchrun variables, the threads."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
import weakref
from pathlib import Path

import numpy as np
import pytest
import torch

from helpers import subprocess_env
from hourglass.data.batches import TensorBatches, contiguous_share, shard_positions
from hourglass.errors import ConfigError
from hourglass.training import distributed

# Loss agreement of 2 ranks with 1 process, relative: the gradients are the same sums in another order
# (float32, gloo's all-reduce), so the curves drift apart by rounding only; measured 4e-5 after 4 epochs.
RTOL = 1e-3


def _history(run: Path) -> list[dict[str, str]]:
    with open(run / "history.csv") as f:
        return list(csv.DictReader(f))


def _hourglass(*args, nproc: int = 1, timeout: int = 300) -> subprocess.CompletedProcess:
    launcher = ([sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={nproc}"]
                if nproc > 1 else [sys.executable])
    cmd = launcher + ["-m", "hourglass", *map(str, args)]
    done = subprocess.run(cmd, capture_output=True, text=True, env=subprocess_env(), timeout=timeout)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-4000:]
    return done


@pytest.fixture(scope="module")
def table(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("dist") / "x.npy"
    rng = np.random.default_rng(0)
    np.save(path, rng.random((960, 20), dtype=np.float32))
    return path


def test_two_processes_train_what_one_process_trains(table, tmp_path):
    common = ["train", "ae", "--data", table, "--epochs", 4, "--batch-size", 64, "--threads", 1, "--no-progress"]
    _hourglass(*common, "--out", tmp_path / "one")
    two = _hourglass(*common, "--out", tmp_path / "two", nproc=2)
    h1, h2 = _history(tmp_path / "one"), _history(tmp_path / "two")
    assert len(h1) == len(h2) == 4
    for a, b in zip(h1, h2):
        for key in ("train_loss", "val_loss"):
            assert float(b[key]) == pytest.approx(float(a[key]), rel=RTOL), (key, a, b)
    assert float(h2[-1]["train_loss"]) < float(h2[0]["train_loss"])  # it trained
    metrics = [json.loads((tmp_path / name / "metrics.json").read_text()) for name in ("one", "two")]
    assert metrics[1]["world_size"] == 2 and "world_size" not in metrics[0]
    assert two.stdout.count("run written to") == 1  # rank 0 reports, rank 1 stays quiet

    # Resumed with one process (the checkpoint is the same on every rank), it goes on from epoch 4.
    _hourglass("train", "--resume", tmp_path / "two", "--epochs", 5, "--no-progress")
    h = _history(tmp_path / "two")
    assert [r["epoch"] for r in h] == ["1", "2", "3", "4", "5"] and h[:4] == h2


def test_adversarial_phases_train_on_two_processes(tmp_path):
    _hourglass("train", "aae", "--epochs", 2, "--threads", 1, "--no-progress", "--out", tmp_path / "aae", nproc=2)
    h = _history(tmp_path / "aae")
    assert len(h) == 2 and all(np.isfinite(float(v)) for r in h for k, v in r.items() if k.startswith("train_"))


@pytest.mark.slow
def test_streamed_data_train_on_two_processes_as_in_memory(table, tmp_path):
    common = ["train", "ae", "--data", table, "--epochs", 3, "--batch-size", 64, "--threads", 1, "--no-progress"]
    _hourglass(*common, "--out", tmp_path / "mem", nproc=2)
    _hourglass(*common, "--in-memory", "never", "--out", tmp_path / "stream", nproc=2)
    assert _history(tmp_path / "mem")[-1]["train_loss"] == _history(tmp_path / "stream")[-1]["train_loss"]


# -- the pieces --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("n", [1, 2, 3, 7, 64])
@pytest.mark.parametrize("world", [2, 3, 4])
def test_a_batch_is_shared_out_whole_and_every_rank_gets_an_example(n, world):
    batch = np.arange(n)
    parts = [batch[shard_positions(n, r, world)] for r in range(world)]
    assert all(len(p) >= 1 for p in parts)
    if n >= world:
        assert sorted(np.concatenate(parts).tolist()) == batch.tolist()  # each example once
    shares = [contiguous_share(n, r, world) for r in range(world)]
    assert shares[0][0] == 0 and shares[-1][1] == n and all(a[1] == b[0] for a, b in zip(shares, shares[1:]))


def test_sharded_batches_together_are_the_global_batches():
    x, y = torch.arange(50.0).reshape(25, 2), torch.arange(25)
    whole = list(TensorBatches(x, y).shuffled(8, torch.Generator().manual_seed(3)))
    ranks = [list(TensorBatches(x, y).shard(r, 2).shuffled(8, torch.Generator().manual_seed(3))) for r in range(2)]
    assert len(ranks[0]) == len(ranks[1]) == len(whole) == 4  # every rank takes every step
    for (xb, yb), (x0, y0), (x1, y1) in zip(whole, *ranks):
        assert torch.equal(x0, xb[0::2]) and torch.equal(y0, yb[0::2])
        if len(xb) > 1:
            assert torch.equal(x1, xb[1::2]) and torch.equal(y1, yb[1::2])
        else:  # the last global batch holds one example (25 = 3 x 8 + 1): rank 1 takes it too
            assert torch.equal(x1, xb) and torch.equal(y1, yb)
    ordered = [torch.cat([b[0] for b in TensorBatches(x, y).shard(r, 2).ordered(4)]) for r in range(2)]
    assert torch.equal(torch.cat(ordered), x)  # validation: each example scored once


def test_the_tensor_handed_to_all_reduce_outlives_the_call(monkeypatch):
    # The backend's worker thread lets go of a collective's tensor after the caller goes on; if its reference
    # were the last, it would free a Python tensor without the interpreter lock and abort the process at exit.
    handed = []

    def all_reduce(t, op=None):
        handed.append(t)
        t.mul_(2)  # two ranks holding the same values

    monkeypatch.setattr(distributed, "_context", distributed.Context(0, 2))
    monkeypatch.setattr(distributed, "_reduced", {})
    monkeypatch.setattr(torch.distributed, "all_reduce", all_reduce)
    a = distributed.all_reduce_sum(torch.tensor([1.0, 2.0]))
    b = distributed.all_reduce_sum(torch.tensor([3.0, 4.0]))
    assert a.tolist() == [2.0, 4.0] and b.tolist() == [6.0, 8.0]  # the second call leaves the first result alone
    assert handed[0] is handed[1] and all(h is not r for h in handed for r in (a, b))
    kept = weakref.ref(handed[0])
    handed.clear()
    del a, b
    assert kept() is not None  # the module still holds it: the worker thread never drops the last reference


def test_torchrun_variables_are_read_and_checked(monkeypatch):
    for k in distributed.ENV:
        monkeypatch.delenv(k, raising=False)
    assert not distributed.from_env().active and distributed.setup().world_size == 1
    monkeypatch.setenv("WORLD_SIZE", "4")
    monkeypatch.setenv("RANK", "2")
    monkeypatch.setenv("LOCAL_RANK", "0")
    monkeypatch.setenv("LOCAL_WORLD_SIZE", "2")
    ctx = distributed.from_env()
    assert (ctx.rank, ctx.world_size, ctx.local_rank, ctx.active, ctx.is_main) == (2, 4, 0, True, False)
    with pytest.raises(ConfigError, match="MASTER_ADDR, MASTER_PORT not set"):
        distributed.setup("cpu")
    monkeypatch.setenv("RANK", "7")
    with pytest.raises(ConfigError, match="RANK=7, WORLD_SIZE=4"):
        distributed.from_env()
    monkeypatch.setenv("RANK", "x")
    with pytest.raises(ConfigError, match="RANK='x'"):
        distributed.from_env()


def test_processes_on_one_machine_share_its_cores(monkeypatch):
    from hourglass import threads

    monkeypatch.setattr(threads, "usable_cores", lambda: 16)
    monkeypatch.setattr(threads, "_busy_seconds", lambda: None)  # no /proc/stat: the ceiling itself
    torch_threads = torch.get_num_threads()
    torch.set_num_threads(16)
    try:
        monkeypatch.setenv("LOCAL_WORLD_SIZE", "4")
        gov = threads.ThreadGovernor(None)
        assert gov.start() == 4
        gov.stop()
        monkeypatch.delenv("LOCAL_WORLD_SIZE")
        gov = threads.ThreadGovernor(None)
        assert gov.start() == 16
        gov.stop()
    finally:
        torch.set_num_threads(torch_threads)
