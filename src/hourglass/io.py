"""The bottom layer's file writes: atomic, durable, never through a link.

Every file hourglass writes (run files, checkpoints, caches) is written under a temporary name in the
same folder (``.hourglass-tmp...``), flushed and ``fsync``-ed, then renamed over its final name, and
the folder is ``fsync``-ed: a reader sees the old file or the new one, never a part. A rename
replaces a symbolic link instead of writing through it, and a link found where hourglass writes is
refused. Temporary files a killed process left behind carry :data:`TMP_PREFIX`, so their owner can
find and remove them.

``FAULT_HOOK`` (tests only) is called with the name of every durable step; the kill tests use it to
stop a process at exact moments, e.g. between two files of a checkpoint.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import Callable

from .errors import PathError, path_access

TMP_PREFIX = ".hourglass-tmp"
FAULT_HOOK: Callable[[str], None] | None = None


def fault_point(name: str) -> None:
    """A durable step has just completed (tests kill the process here through ``FAULT_HOOK``)."""
    if FAULT_HOOK is not None:
        FAULT_HOOK(name)


def refuse_link(path: Path) -> None:
    """A symbolic link where hourglass writes a file or folder is an error, never followed."""
    if os.path.islink(path):
        raise PathError(f"{path} is a symbolic link (to {os.readlink(path)}); hourglass never writes through a "
                        "link: remove it, or choose another path")


def fsync_dir(path: Path) -> None:
    """Make a rename or creation inside ``path`` durable (POSIX; a no-op where folders cannot be opened)."""
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError:  # pragma: no cover - Windows
        return
    try:
        os.fsync(fd)
    except OSError:  # pragma: no cover - some file systems refuse fsync on folders
        pass
    finally:
        os.close(fd)


def fsync_file(path: str | Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def make_dir(path: Path, *, chosen: bool = False) -> None:
    """Create a folder (and its parents). A link in its place is refused, unless the folder is one the caller
    named (``chosen``: a run directory or an output folder may be a link to a folder, as the user chose); the
    folders hourglass names inside a run directory (``checkpoints``) never are."""
    if chosen and os.path.isdir(path):
        return
    refuse_link(path)
    with path_access(path, "create the folder"):
        path.mkdir(parents=True, exist_ok=True)


def atomic_write(path: str | Path, write: Callable[[str], None]) -> Path:
    """``write(tmp_name)`` into a temporary file beside ``path``, fsync it, rename it over ``path``.

    An interrupted write leaves the old file (and at most a temporary file the next owner removes)."""
    path = Path(path)
    make_dir(path.parent, chosen=True)
    with path_access(path, "write"):
        fd, tmp = tempfile.mkstemp(prefix=f"{TMP_PREFIX}.{path.name}.", dir=path.parent)
        os.close(fd)
        try:
            write(tmp)
            fsync_file(tmp)
            refuse_link(path)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        fsync_dir(path.parent)
    fault_point(f"wrote {path.name}")
    return path


def write_text(path: str | Path, text: str) -> Path:
    def w(tmp: str) -> None:
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(text)

    return atomic_write(path, w)


def install_file(src: Path, path: Path) -> None:
    """Put the finished file ``src`` at ``path`` in one rename: a hard link when the file system has
    them (the checkpoint's files are never written again, so sharing them is safe), else a copy."""
    make_dir(path.parent, chosen=True)
    with path_access(path, "write"):
        tmp = path.parent / f"{TMP_PREFIX}.{path.name}.{os.getpid()}.link"
        tmp.unlink(missing_ok=True)
        try:
            try:
                os.link(src, tmp)
            except OSError:
                shutil.copyfile(src, tmp)
                fsync_file(tmp)
            refuse_link(path)
            os.replace(tmp, path)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
    # No fsync of the folder: these are copies of a checkpoint that is durable already; after a power
    # loss the previous copy is what a reader finds, and --resume reads the checkpoint itself.
    fault_point(f"installed {path.name}")


def move_into(src: Path, path: Path) -> None:
    """Move the finished file ``src`` (in a temporary folder of the same file system) to ``path``."""
    make_dir(path.parent, chosen=True)
    with path_access(path, "write"):
        fsync_file(src)
        refuse_link(path)
        os.replace(src, path)
        fsync_dir(path.parent)


def remove_tree(path: Path) -> None:
    """Remove a folder hourglass made: first renamed to a temporary name (so that a half-removed folder
    never looks like a checkpoint), then deleted."""
    trash = path.parent / f"{TMP_PREFIX}.trash.{path.name}.{os.getpid()}"
    with path_access(path, "remove"):
        os.replace(path, trash)
        fsync_dir(path.parent)
    shutil.rmtree(trash, ignore_errors=True)
