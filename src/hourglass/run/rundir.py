"""A run directory has one owner: its lock, its writes and its claim.

**The lock.** While a process trains, resumes or saves into a run directory it holds
``RUN/hourglass.lock``: a file holding the owner's PID, host, command and start time, locked with
``flock``. The kernel drops an ``flock`` when its process ends, however it ends (``kill -9``
included), so a lock file whose lock nobody holds is *stale*: the next owner takes it over. A second
``hourglass train --resume RUN`` (or ``train --out RUN``, or ``Run.save``) while the first runs is
refused with a message naming the owner. A lock file written on another host is not taken over
(file locks on network file systems may not reach that host); the message says to delete it once that
process is gone. The lock is re-entrant within one process and removed when released.

**Writes** go through :mod:`hourglass.io` (temporary name, fsync, rename; links refused). Temporary
files a killed process left behind are removed by the next owner (:func:`clean_stray`).

**The claim.** ``train(out=DIR)`` takes a directory that is new, empty, or a run that was stopped
before its first checkpoint (restarted from scratch: nothing is lost). A directory holding a run is
refused (continue it with ``--resume``), and so is one holding anything else: hourglass writes only
into folders it owns and never overwrites a file it did not write.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import json
import os
import shutil
import socket
import sys
from pathlib import Path
from typing import Any, Iterator

from ..errors import ConfigError, PathError, describe_os_error, path_access
from ..io import TMP_PREFIX, make_dir, refuse_link
from ..training.checkpoint import CHECKPOINTS

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows: exclusive creation and the PID stand in for flock
    fcntl = None  # type: ignore[assignment]

LOCK_NAME = "hourglass.lock"
# Names a finished run holds besides figures (*.png): what tells a run directory from any other folder.
RUN_FILES = ("config.json", "model.safetensors", "history.csv", "metrics.json", "report.html")


def clean_stray(run_dir: Path) -> list[str]:
    """Remove the temporary files and folders an interrupted writer left in ``run_dir`` (call only while
    holding its lock). Returns their names."""
    removed = []
    for folder in (run_dir, run_dir / CHECKPOINTS):
        if not folder.is_dir() or folder.is_symlink():
            continue
        for entry in os.scandir(folder):
            if entry.name.startswith(TMP_PREFIX):
                if entry.is_dir(follow_symlinks=False):
                    shutil.rmtree(entry.path, ignore_errors=True)
                else:
                    with path_access(entry.path, "remove"):
                        os.unlink(entry.path)
                removed.append(entry.name)
    return removed


# -- the lock ------------------------------------------------------------------------------------------
_HELD: dict[str, "RunLock"] = {}


class RunLock:
    """``RUN/hourglass.lock``, held with ``flock`` (see the module docstring)."""

    def __init__(self, run_dir: Path, command: str):
        self.run_dir = Path(run_dir)
        self.path = self.run_dir / LOCK_NAME
        self.command = command
        self.fd: int | None = None
        self.depth = 0
        self.stale: dict[str, Any] | None = None  # what a dead owner had written, if there was one

    def record(self) -> dict[str, Any]:
        return {"pid": os.getpid(), "host": socket.gethostname(), "command": self.command,
                "since": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")}

    def acquire(self) -> None:
        refuse_link(self.path)
        flags = os.O_RDWR | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
        while True:
            with path_access(self.path, "create the lock file"):
                fd = os.open(self.path, flags | (0 if fcntl else os.O_EXCL), 0o644)
            if fcntl is None:  # pragma: no cover
                self.fd = fd
                break
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                holder = _read_record(fd)
                os.close(fd)
                raise PathError(f"{self.run_dir} is in use by {_describe(holder)}: one process at a time trains, "
                                "resumes or saves a run; wait for it to finish or stop it") from None
            # The previous owner removes the file before it unlocks: if the path no longer names the file
            # we locked, we locked a removed file; start again.
            try:
                same = os.path.samestat(os.fstat(fd), os.stat(self.path, follow_symlinks=False))
            except FileNotFoundError:
                same = False
            if same:
                self.fd = fd
                break
            os.close(fd)
        previous = _read_record(self.fd)
        if previous and previous.get("host") not in (None, socket.gethostname()):
            self._close()
            raise PathError(f"{self.run_dir} is locked by {_describe(previous)}; a lock from another machine is "
                            f"not taken over: if that process has ended, delete {self.path}")
        self.stale = previous or None
        data = json.dumps(self.record()).encode()
        os.ftruncate(self.fd, 0)
        os.pwrite(self.fd, data, 0)
        os.fsync(self.fd)

    def release(self) -> None:
        if self.fd is None:
            return
        with contextlib.suppress(OSError):
            os.unlink(self.path)  # before unlocking: see acquire()
        self._close()

    def _close(self) -> None:
        fd, self.fd = self.fd, None
        if fd is not None:
            os.close(fd)  # closing drops the flock


def _read_record(fd: int) -> dict[str, Any]:
    try:
        data = os.pread(fd, 4096, 0)
        rec = json.loads(data.decode("utf-8")) if data.strip() else {}
        return rec if isinstance(rec, dict) else {}
    except (OSError, ValueError):
        return {}


def _describe(rec: dict[str, Any]) -> str:
    if not rec:
        return "another hourglass process"
    return (f"hourglass process {rec.get('pid')} on host {rec.get('host')} "
            f"({rec.get('command')}, since {rec.get('since')})")


def _key(run_dir: Path) -> str:
    return os.path.realpath(run_dir)


@contextlib.contextmanager
def locked(run_dir: str | Path, command: str) -> Iterator[RunLock]:
    """Hold ``run_dir``'s lock for the block (re-entrant in this process). The folder must exist."""
    run_dir = Path(run_dir)
    key = _key(run_dir)
    held = _HELD.get(key)
    if held is not None and held.fd is not None:
        held.depth += 1
        try:
            yield held
        finally:
            held.depth -= 1
        return
    lock = RunLock(run_dir, command)
    lock.acquire()
    _HELD[key] = lock
    try:
        yield lock
    finally:
        _HELD.pop(key, None)
        lock.release()


def holds_lock(run_dir: str | Path) -> bool:
    held = _HELD.get(_key(Path(run_dir)))
    return held is not None and held.fd is not None


# -- what a folder holds, and the claim of a new run --------------------------------------------------
def check_out_path(out: Path) -> None:
    """Refuse, before anything is written, a run directory path that cannot be one: a file, a dangling or
    looping link, a parent that is a file."""
    try:
        st = os.stat(out)
    except FileNotFoundError:
        if os.path.islink(out):
            raise PathError(f"{out} is a symbolic link to {os.readlink(out)}, which does not exist") from None
        return
    except OSError as e:
        raise PathError(f"cannot use {out} as a run directory: {describe_os_error(e)}") from None
    if not os.path.isdir(out):
        raise PathError(f"cannot use {out} as a run directory: it is a file (mode {oct(st.st_mode)})")


def user_entries(run_dir: Path) -> list[str]:
    """Names in ``run_dir`` other than the lock and temporary files, sorted."""
    with path_access(run_dir, "read"):
        return sorted(n for n in os.listdir(run_dir) if n != LOCK_NAME and not n.startswith(TMP_PREFIX))


def is_run_config(path: Path) -> bool:
    """Whether ``path`` is a ``config.json`` hourglass wrote (a JSON object naming a model and a format)."""
    try:
        if not path.is_file() or path.is_symlink() or path.stat().st_size > 16 << 20:
            return False
        info = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError, RecursionError):
        return False
    from .record import looks_like_record

    return looks_like_record(info)


def started(run_dir: Path) -> bool:
    """Whether a run got as far as its first checkpoint (or a saved model): then it holds work to keep."""
    ckpts = run_dir / CHECKPOINTS
    has_ckpt = ckpts.is_dir() and any(not n.startswith(TMP_PREFIX) for n in os.listdir(ckpts))
    return has_ckpt or (run_dir / "model.safetensors").exists() or (run_dir / "metrics.json").exists()


@contextlib.contextmanager
def claim_new(out: str | Path, command: str) -> Iterator[RunLock]:
    """Own ``out`` for a new run, for the block: create it, lock it and check what it holds (see the module
    docstring). If the block fails before the run wrote anything, a folder this call created is removed."""
    out = Path(out)
    check_out_path(out)
    created = not out.exists()
    make_dir(out, chosen=True)
    try:
        with locked(out, command) as lock:
            clean_stray(out)
            names = user_entries(out)
            if names:
                if not (out / "config.json").exists() or not is_run_config(out / "config.json"):
                    shown = ", ".join(names[:5]) + (f" and {len(names) - 5} more" if len(names) > 5 else "")
                    raise ConfigError(f"{out} is not empty and is not an hourglass run (it holds {shown}); hourglass "
                                      "writes a run only into a new or empty folder: choose another --out")
                if started(out):
                    raise ConfigError(f"{out} already holds a run; choose another --out or continue it with "
                                      f"--resume {out}")
                # A run stopped before its first checkpoint: nothing to keep, so it starts again.
                for name in ("config.json", "tensorboard"):
                    p = out / name
                    if p.is_dir() and not p.is_symlink():
                        shutil.rmtree(p)
                    elif p.exists() or p.is_symlink():
                        p.unlink()
            yield lock
    except BaseException:
        if created:
            with contextlib.suppress(OSError):
                out.rmdir()  # only if the run left nothing in it
        raise


def check_links(run_dir: Path, names: tuple[str, ...] = (*RUN_FILES, CHECKPOINTS, "tensorboard")) -> None:
    """Refuse a run directory in which one of hourglass' own names is a symbolic link."""
    for name in names:
        refuse_link(run_dir / name)
    if run_dir.is_dir():
        for entry in os.scandir(run_dir):
            if entry.name.endswith(".png"):
                refuse_link(Path(entry.path))


def command_line() -> str:
    """What this process is doing, for the lock file (``hourglass train ...`` or the Python program)."""
    argv = [Path(sys.argv[0]).name, *sys.argv[1:]] if sys.argv and sys.argv[0] else ["python"]
    return " ".join(argv)[:200]
