"""One writer at a time for an output (a training run's --out, an export's target folder).

An exclusive flock on a small lock file: a second writer is refused at once with the holder's
process id and command, and the kernel drops the lock when its process ends, however it ends, so
the lock of a killed run never blocks the next one. The holder removes the file when it is done; a
writer that locked a file just removed (its path now names another file, or none) tries again.
"""
from __future__ import annotations

import contextlib
import os
import sys
from pathlib import Path

try:
    import fcntl
except ImportError:  # not on POSIX: no locking (the temporary-name writes still never leave half a file)
    fcntl = None


class Busy(Exception):
    """Another process is writing the same output; the message is one line."""


def lock_path(target: Path, inside: bool) -> Path:
    """The lock file of target: inside it (a folder that stays, e.g. a training run's --out) or
    beside it (a folder that is replaced whole, e.g. a model folder)."""
    target = Path(target)
    return target / ".lock" if inside else target.with_name(f".{target.name}.lock")


@contextlib.contextmanager
def exclusive(path: Path, what: str):
    """Holds the lock at path for the block; Busy if another live process holds it."""
    if fcntl is None:
        yield
        return
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 4096, 0).decode("utf-8", "replace").strip() or "another process"
            os.close(fd)
            raise Busy(f"{what} is in use by {holder}: wait for it to finish, or choose another") from None
        try:
            if os.stat(path).st_ino == os.fstat(fd).st_ino:
                break
        except FileNotFoundError:
            pass
        os.close(fd)  # the holder removed it as we locked it: lock the file that is there now
    try:
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"process {os.getpid()} ({' '.join(sys.argv)[:200]})".encode(), 0)
        yield
    finally:
        with contextlib.suppress(OSError):
            os.unlink(path)  # while still holding it: the next writer locks a new file
        os.close(fd)
