"""A run directory has one owner: the lock (concurrent resumes, stale locks), the claim of ``--out`` (never
a folder hourglass did not make, never a file it did not write), symbolic links (never written through),
stray temporary files, damaged checkpoints (refused, naming the files) and stopping on signals."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from safetensors.torch import load_file, save_file

import hourglass
from helpers import SMALL_RUN, copied, one_line_error, run_cli, subprocess_env
from hourglass import io
from hourglass.run import rundir
from hourglass.training import checkpoint as ckpt

pytestmark = pytest.mark.usefixtures("one_thread")
SMALL = {"epochs": 2, **SMALL_RUN}
ENV = subprocess_env()


@pytest.fixture
def run_dir(small_run, tmp_path) -> Path:
    """A copy of a small finished ae run (2 epochs)."""
    return copied(small_run("ae", 2), tmp_path)


class Holder:
    """Another process holding a run directory's lock until closed."""

    def __init__(self, path: Path):
        code = ("import sys; from hourglass.run import rundir\n"
                f"with rundir.locked({str(path)!r}, 'hourglass train --resume (test)'):\n"
                "    print('locked', flush=True); sys.stdin.read()")
        self.proc = subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     text=True, env=ENV)
        assert self.proc.stdout.readline().strip() == "locked"

    def close(self) -> None:
        self.proc.stdin.close()
        assert self.proc.wait(timeout=30) == 0


# -- the lock -------------------------------------------------------------------------------------------
def test_a_second_owner_is_refused_while_the_first_runs(run_dir, tmp_path, capsys):
    holder = Holder(run_dir)
    try:
        before = (run_dir / "model.safetensors").read_bytes()
        err = one_line_error(capsys, "train", "--resume", run_dir, "--epochs", 3, "--no-progress")
        assert f"{run_dir} is in use by hourglass process {holder.proc.pid} on host {socket.gethostname()}" in err
        assert "hourglass train --resume (test)" in err
        with pytest.raises(hourglass.PathError, match="is in use"):
            hourglass.resume(run_dir, progress=False, figures=False)
        with pytest.raises(hourglass.PathError, match="is in use"):
            hourglass.load(run_dir).save()
        one_line_error(capsys, "report", run_dir)
        assert (run_dir / "model.safetensors").read_bytes() == before  # nothing was written
        empty = tmp_path / "fresh"
        empty.mkdir()
        other = Holder(empty)
        try:
            assert "is in use" in one_line_error(capsys, "train", "ae", "--epochs", 1, "--out", empty)
        finally:
            other.close()
    finally:
        holder.close()
    assert not (run_dir / rundir.LOCK_NAME).exists()  # removed by its owner
    assert run_cli("train", "--resume", run_dir, "--epochs", 3, "--no-progress") == 0


def test_a_lock_left_by_a_dead_process_is_taken_over(run_dir):
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    pid = int(dead.stdout)
    (run_dir / rundir.LOCK_NAME).write_text(json.dumps({"pid": pid, "host": socket.gethostname(),
                                                          "command": "hourglass train", "since": "earlier"}))
    with rundir.locked(run_dir, "test") as lock:
        assert lock.stale["pid"] == pid  # detected, and taken over: nobody held its flock
        assert json.loads((run_dir / rundir.LOCK_NAME).read_text())["pid"] == os.getpid()
    assert not (run_dir / rundir.LOCK_NAME).exists()


def test_a_lock_from_another_host_is_not_taken_over(run_dir, capsys):
    (run_dir / rundir.LOCK_NAME).write_text(json.dumps({"pid": 1, "host": "elsewhere.example", "since": "now"}))
    err = one_line_error(capsys, "train", "--resume", run_dir, "--no-progress")
    assert "host elsewhere.example" in err and f"delete {run_dir / rundir.LOCK_NAME}" in err


def test_concurrent_resumes_end_in_one_run_not_a_mixture(run_dir, tmp_path):
    """Two `hourglass train --resume` processes started together: each either finishes or is refused,
    and the result is exactly the run trained without interruption."""
    reference = tmp_path / "reference"
    hourglass.train("ae", "digits", out=reference, **{**SMALL, "epochs": 4})
    run = run_dir
    cmd = [sys.executable, "-m", "hourglass", "train", "--resume", str(run), "--epochs", "4", "--no-progress",
           "--threads", "1"]
    procs = [subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=ENV)
             for _ in range(2)]
    results = [(p.wait(timeout=300), p.stderr.read()) for p in procs]
    for code, err in results:
        assert code == 0 or (code == 2 and "is in use by hourglass process" in err), err
    assert any(code == 0 for code, _ in results)
    a, b = load_file(str(reference / "model.safetensors")), load_file(str(run / "model.safetensors"))
    assert a.keys() == b.keys() and all((a[k] == b[k]).all() for k in a)


# -- the claim of --out ------------------------------------------------------------------------------------
def test_out_refuses_a_folder_hourglass_did_not_make_and_touches_nothing(tmp_path, capsys):
    out = tmp_path / "mine"
    out.mkdir()
    files = {"report.html": "my report", "history.csv": "my,history\n", "losses.png": "my picture"}
    for name, text in files.items():
        (out / name).write_text(text)
    err = one_line_error(capsys, "train", "ae", "--epochs", 1, "--out", out, "--no-progress")
    assert "is not empty and is not an hourglass run (it holds history.csv, losses.png, report.html)" in err
    assert {p.name: p.read_text() for p in out.iterdir()} == files  # byte for byte, nothing added


def test_out_refuses_a_run_and_points_to_resume(run_dir, capsys):
    err = one_line_error(capsys, "train", "ae", "--epochs", 1, "--out", run_dir, "--no-progress")
    assert f"already holds a run; choose another --out or continue it with --resume {run_dir}" in err


def test_a_run_stopped_before_its_first_checkpoint_can_be_started_again(tmp_path):
    out = tmp_path / "run"
    reference = hourglass.train("ae", "digits", out=tmp_path / "reference", **SMALL)
    # what a kill during the first epoch leaves: config.json, a stale lock, a temporary file
    out.mkdir()
    shutil.copy(tmp_path / "reference" / "config.json", out / "config.json")
    (out / rundir.LOCK_NAME).write_text(json.dumps({"pid": 2 ** 22 + 1, "host": socket.gethostname()}))
    (out / f"{io.TMP_PREFIX}.config.json.x1").write_text("half")
    with pytest.raises(hourglass.CheckpointError, match="stopped before its first checkpoint.*--resume"):
        hourglass.load(out)
    again = hourglass.train("ae", "digits", out=out, **SMALL)  # restarted: nothing of it was kept
    assert sorted(p.name for p in out.iterdir() if p.name.startswith(".")) == []
    for k, v in reference.model.state_dict().items():
        assert (v == again.model.state_dict()[k]).all()


def test_save_refuses_another_runs_folder(run_dir, tmp_path):
    run = hourglass.load(run_dir)
    other = tmp_path / "other"
    shutil.copytree(run_dir, other)
    with pytest.raises(hourglass.ConfigError, match="already holds a run"):
        run.save(other)
    run.save(tmp_path / "new")  # a new folder is fine, and so is the run's own
    run.save()
    assert hourglass.load(tmp_path / "new").model_name == "ae"


@pytest.mark.parametrize("kind", ["file", "loop", "dangling"])
def test_out_paths_that_cannot_be_a_run_directory_are_one_line_errors(tmp_path, capsys, kind):
    target = tmp_path / "x"
    if kind == "file":
        target.write_text("a file")
        out, reason = target / "run", "Not a directory"
    elif kind == "loop":
        os.symlink(tmp_path / "y", target)
        os.symlink(target, tmp_path / "y")
        out, reason = target, "Too many levels of symbolic links"
    else:
        os.symlink(tmp_path / "nowhere", target)
        out, reason = target, "which does not exist"
    err = one_line_error(capsys, "train", "ae", "--epochs", 1, "--out", out, "--no-progress")
    assert str(out) in err and reason in err


def test_out_may_be_a_link_to_an_empty_folder_the_user_chose(tmp_path):
    real = tmp_path / "real"
    real.mkdir()
    os.symlink(real, tmp_path / "link")
    hourglass.train("ae", "digits", out=tmp_path / "link", **SMALL)
    assert (real / "model.safetensors").is_file() and ckpt.latest_checkpoint(real) is not None


@pytest.fixture
def read_only_dir(tmp_path):
    """A folder no process can write to: a read-only tmpfs when running as root (root ignores modes)."""
    path = tmp_path / "ro"
    path.mkdir()
    if os.geteuid() != 0:
        path.chmod(0o555)
        yield path
        path.chmod(0o755)
        return
    if shutil.which("mount") is None or subprocess.run(["mount", "-t", "tmpfs", "-o", "ro", "tmpfs", str(path)],
                                                       capture_output=True).returncode != 0:
        pytest.skip("running as root and cannot mount a read-only file system here")
    yield path
    subprocess.run(["umount", str(path)], check=True)


def test_out_on_a_read_only_folder_is_a_one_line_error(read_only_dir, capsys):
    err = one_line_error(capsys, "train", "ae", "--epochs", 1, "--out", read_only_dir / "run", "--no-progress")
    assert str(read_only_dir / "run") in err and ("Read-only file system" in err or "Permission denied" in err)


# -- symbolic links --------------------------------------------------------------------------------------
def test_report_never_writes_through_a_planted_link(run_dir, tmp_path, capsys):
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    os.symlink(victim, run_dir / "report.html")
    err = one_line_error(capsys, "report", run_dir)
    assert f"{run_dir / 'report.html'} is a symbolic link (to {victim})" in err
    assert victim.read_text() == "precious"
    (run_dir / "report.html").unlink()
    os.symlink(victim, run_dir / "losses.png")  # a figure's place: the report draws its own copies
    assert run_cli("report", run_dir) == 0 and (run_dir / "report.html").is_file()
    with pytest.raises(hourglass.PathError, match="losses.png is a symbolic link"):
        hourglass.load(run_dir).write_figures()
    with pytest.raises(hourglass.PathError, match="losses.png is a symbolic link"):
        hourglass.resume(run_dir, epochs=3, progress=False)
    assert victim.read_text() == "precious"


def test_resume_refuses_linked_run_files(run_dir, tmp_path):
    outside = tmp_path / "elsewhere"
    shutil.move(run_dir / "checkpoints", outside)
    os.symlink(outside, run_dir / "checkpoints")
    with pytest.raises(hourglass.PathError, match="checkpoints is a symbolic link"):
        hourglass.resume(run_dir, epochs=3, progress=False, figures=False)


def test_an_explicit_output_elsewhere_is_written_as_asked(run_dir, tmp_path):
    out = hourglass.load(run_dir).write_report(output=tmp_path / "page.html")
    assert out.read_text().startswith("<!DOCTYPE html>")


# -- stray files and damaged checkpoints -------------------------------------------------------------------
def test_stray_temporary_files_are_removed_by_the_next_owner(run_dir):
    stray = [run_dir / f"{io.TMP_PREFIX}.model.safetensors.abc", run_dir / "checkpoints" /
             f"{io.TMP_PREFIX}.epoch-000003.xyz"]
    stray[0].write_bytes(b"half a file")
    stray[1].mkdir()
    (stray[1] / "model.safetensors").write_bytes(b"half")
    hourglass.resume(run_dir, epochs=3, progress=False, figures=False)
    assert not any(p.exists() for p in stray)
    assert [p.name for p in (run_dir / "checkpoints").iterdir()] == ["epoch-000003"]


def _rewrite_part(folder: Path, part: str, data: bytes) -> None:
    """Replace a checkpoint part and update the manifest to match: a consistent but wrong checkpoint."""
    import hashlib

    (folder / part).write_bytes(data)
    manifest = json.loads((folder / "manifest.json").read_text())
    manifest["files"][part] = {"bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()}
    (folder / "manifest.json").write_text(json.dumps(manifest))


@pytest.mark.parametrize("damage, message", [
    ("flip", r"does not match its manifest: model.safetensors \(checksum differs from the manifest\)"),
    ("truncate", r"trainer_state.safetensors \(\d[\d,]* bytes, the manifest says \d+\)"),
    ("delete", r"trainer_state.json \(missing\)"),
    ("config", r"was written for another config than .*config.json names"),
    ("epoch", r"manifest.json names epoch 7, step 0, but the folder is epoch-000002"),
    ("state-epoch", r"trainer_state.json is at epoch 1, step 0, but .*manifest.json names epoch 2"),
    ("state-section", r"the trainer state is damaged or belongs to another model: it has no entry 'optimizers'"),
    ("old-format", r"format of an earlier hourglass .* cannot be resumed safely"),
])
def test_a_damaged_checkpoint_is_refused_naming_the_files(run_dir, capsys, damage, message):
    folder = ckpt.latest_checkpoint(run_dir)
    if damage == "flip":
        data = bytearray((folder / "model.safetensors").read_bytes())
        data[-3] ^= 0x40
        (folder / "model.safetensors").write_bytes(bytes(data))
    elif damage == "truncate":
        (folder / "trainer_state.safetensors").write_bytes((folder / "trainer_state.safetensors").read_bytes()[:-8])
    elif damage == "delete":
        (folder / "trainer_state.json").unlink()
    elif damage == "config":
        info = json.loads((run_dir / "config.json").read_text())
        info["config"]["lr"] = 0.5
        (run_dir / "config.json").write_text(json.dumps(info))
    elif damage == "epoch":
        manifest = json.loads((folder / "manifest.json").read_text())
        manifest["epoch"] = 7
        (folder / "manifest.json").write_text(json.dumps(manifest))
    elif damage in ("state-epoch", "state-section"):
        meta = json.loads((folder / "trainer_state.json").read_text())
        items = meta["state"]["__dict__"]
        if damage == "state-epoch":
            trainer = dict(items)["trainer"]["__dict__"]
            trainer[[k for k, _ in trainer].index("epoch")][1] = 1
        else:
            meta["state"]["__dict__"] = [kv for kv in items if kv[0] != "optimizers"]
        _rewrite_part(folder, "trainer_state.json", json.dumps(meta).encode())
    else:  # what hourglass wrote before checkpoints were one folder
        shutil.copy(folder / "trainer_state.json", run_dir / "trainer_state.json")
        shutil.rmtree(run_dir / "checkpoints")
    before = {p: p.read_bytes() for p in run_dir.rglob("*") if p.is_file()}
    err = one_line_error(capsys, "train", "--resume", run_dir, "--epochs", 3, "--no-progress")
    import re

    assert re.search(message, err), err
    after = {p: p.read_bytes() for p in run_dir.rglob("*") if p.is_file()}
    assert after == before  # refused before anything was written


# -- signals ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("sig, status", [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_a_signal_stops_training_with_a_checkpoint_and_says_how_to_resume(tmp_path, sig, status):
    out = tmp_path / "run"
    proc = subprocess.Popen([sys.executable, "-m", "hourglass", "train", "ae", "--epochs", "100000", "--latent-dim",
                             "3", "--set", "hidden=16", "--batch-size", "256", "--threads", "1", "--no-progress",
                             "--checkpoint-interval", "0",
                             "--out", str(out)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=ENV)
    deadline = time.monotonic() + 240
    while ckpt.latest_checkpoint(out) is None:
        assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
        time.sleep(0.05)
    proc.send_signal(sig)
    stdout, stderr = proc.communicate(timeout=120)
    assert proc.returncode == status, stderr
    assert stderr.count("\n") == 1 and f"continue with `hourglass train --resume {out}`" in stderr, stderr
    assert f"training stopped ({signal.Signals(sig).name})" in stderr
    assert not (out / rundir.LOCK_NAME).exists()
    folder = ckpt.latest_checkpoint(out)
    state = ckpt.load_state(folder)["trainer"]
    done = state["epoch"] + (1 if state["step"] else 0)
    assert run_cli("train", "--resume", out, "--epochs", done, "--no-progress") == 0
    assert json.loads((out / "metrics.json").read_text())["epochs"] == done


def test_a_stop_request_inside_an_epoch_saves_the_step_and_resumes_bit_identical(tmp_path):
    """The trainer's hook alone: a stop request after a step checkpoints that step, and a new trainer
    loaded from it ends with the same weights and optimizer moments as one never stopped."""
    import torch

    from helpers import fixed_batch, small_model
    from hourglass.errors import TrainingInterrupted
    from hourglass.training.callbacks import Callback, Checkpoint
    from hourglass.training.trainer import Trainer

    class StopAt(Callback):
        def on_log(self, trainer, epoch, step, steps, means):
            if (epoch, step) == (1, 2):
                trainer.stop_requested = "test"

    x, _ = fixed_batch(n=40)
    cfg = hourglass.TrainConfig(epochs=3, batch_size=8, progress=False, log_every=1)

    def trainer(callbacks=()):
        torch.manual_seed(0)
        return Trainer(small_model("vae"), cfg, callbacks=list(callbacks))

    ref = trainer()
    ref.fit(x)
    stopped = trainer([Checkpoint(tmp_path), StopAt()])
    with pytest.raises(TrainingInterrupted, match=r"stopped \(test\) at epoch 2, step 3 of 5"):
        stopped.fit(x)
    folder = ckpt.latest_checkpoint(tmp_path)
    assert folder.name == "epoch-000001-step-000003"
    resumed = trainer([Checkpoint(tmp_path)])
    resumed.model.load_state_dict(load_file(str(folder / "model.safetensors")))
    resumed.load_state_dict(ckpt.load_state(folder))
    resumed.fit(x)
    for k, v in ref.model.state_dict().items():
        assert torch.equal(v, resumed.model.state_dict()[k]), k
    a, b = ref.optimizers["model"].state_dict()["state"], resumed.optimizers["model"].state_dict()["state"]
    assert all(torch.equal(a[i]["exp_avg_sq"], b[i]["exp_avg_sq"]) for i in a)
    assert [h["train_loss"] for h in ref.state.history] == [h["train_loss"] for h in resumed.state.history]


def test_weights_file_is_checked_from_its_header(run_dir, capsys):
    """A model.safetensors naming the right tensors in the wrong shapes is refused before it is read."""
    tensors = load_file(str(run_dir / "model.safetensors"))
    name = sorted(tensors)[0]
    tensors[name] = tensors[name][:1].clone()
    (run_dir / "model.safetensors").unlink()
    save_file(tensors, str(run_dir / "model.safetensors"))
    err = one_line_error(capsys, "evaluate", run_dir)
    assert f"tensor {name!r} has shape" in err and "the model's config needs" in err
