"""Writing without ever losing what is there: temporary name beside the target, then rename.

Used by the runtime (--output files), the exporter (model folders) and the trainer (checkpoints,
metrics, token caches). Everything written gets the user's normal permissions (umask), not the 0600/0700 of
Python's temporary-file helpers, so a folder copied to a server running as another user stays
readable.
"""
from __future__ import annotations

import contextlib
import ctypes
import os
import secrets
import shutil
from pathlib import Path

# temporary names: ".NAME.tmp-PID-RANDOM" (being written) and ".NAME.old-PID-RANDOM" (being replaced);
# the PID lets a later run tell a dead writer's leftovers from a live one's work
TMP, OLD = "tmp", "old"


def umask() -> int:
    """The process umask (reading it means setting it: set it straight back)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def temp_name(target: Path, kind: str = TMP) -> Path:
    return target.with_name(f".{target.name}.{kind}-{os.getpid()}-{secrets.token_hex(4)}")


def _writer_alive(name: str) -> bool:
    try:
        pid = int(name.rsplit("-", 2)[-2])
    except (ValueError, IndexError):
        return False
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's live process
        return True
    return True


def leftovers(target: Path, kind: str) -> list[Path]:
    """Temporary siblings of target left by writers that are no longer running."""
    prefix = f".{target.name}.{kind}-"
    if not target.parent.is_dir():
        return []
    return sorted(p for p in target.parent.iterdir() if p.name.startswith(prefix) and not _writer_alive(p.name))


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()


def clean_leftovers(target: Path) -> None:
    """Removes what a killed writer left beside target. If it was killed between the two renames
    of the portable swap (target gone, the old copy still aside), the old copy is put back first."""
    old = leftovers(target, OLD)
    if old and not os.path.lexists(target):
        os.replace(old[-1], target)
        old = old[:-1]
    for path in leftovers(target, TMP) + old:
        _remove(path)


@contextlib.contextmanager
def atomic_write(path: str | os.PathLike, mode: str = "w", encoding: str | None = "utf-8"):
    """Yields a file open on a temporary name beside path; on success it is flushed, synced and
    renamed over path, on any error (or kill) path is left exactly as it was.

    A path that exists and is not a regular file (/dev/null, a FIFO, a terminal) is written
    directly: it can't be replaced, and there is nothing in it to lose.
    """
    path = Path(path)
    if path.exists() and not path.is_file():
        with open(path, mode, encoding=None if "b" in mode else encoding) as f:
            yield f
        return
    tmp = temp_name(path)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)  # the umask applies, as for open()
    try:
        with os.fdopen(fd, mode, encoding=None if "b" in mode else encoding) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)


def make_temp_dir(target: Path) -> Path:
    """A fresh folder beside target with normal permissions (0777 less the umask)."""
    tmp = temp_name(target)
    tmp.mkdir(mode=0o777)
    return tmp


def set_normal_permissions(root: Path) -> None:
    """Files 0666 and folders 0777, less the umask (what a plain `open`/`mkdir` would give)."""
    mask = umask()
    for p in [root, *root.rglob("*")]:
        if p.is_symlink():
            continue
        mode = 0o777 if p.is_dir() else 0o666
        os.chmod(p, mode & ~mask)


# renameat2(2) with RENAME_EXCHANGE swaps two paths in one step (Linux 3.15+, glibc 2.28+)
_AT_FDCWD, _RENAME_EXCHANGE = -100, 2


def _exchange(a: Path, b: Path) -> bool:
    """Atomically swaps a and b; False where the system can't (then the caller falls back)."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        renameat2 = libc.renameat2
    except (OSError, AttributeError):
        return False
    renameat2.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    if renameat2(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE) == 0:
        return True
    err = ctypes.get_errno()
    if err in (22, 38, 95):  # EINVAL, ENOSYS, EOPNOTSUPP: this filesystem or kernel can't exchange
        return False
    raise OSError(err, os.strerror(err), str(b))


def replace_folder(new: Path, target: Path) -> None:
    """Puts the complete folder `new` at target. With an existing target, the two are exchanged in
    one step where the system allows (Linux), so target is at every instant either the old complete
    folder or the new one; elsewhere the old one is renamed aside first, and `clean_leftovers`
    puts it back if a kill lands between the two renames."""
    if not os.path.lexists(target):
        os.replace(new, target)
        return
    if _exchange(new, target):
        _remove(new)  # now holds the old folder
        return
    old = temp_name(target, OLD)
    os.replace(target, old)
    os.replace(new, target)
    _remove(old)


def check_target(out_dir: Path, force: bool) -> None:
    """Before writing folder out_dir: what an earlier, killed writer left beside it is cleaned up
    (a folder it had put aside goes back), and an existing out_dir needs force (FileExistsError)."""
    out_dir = Path(out_dir)
    clean_leftovers(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise FileExistsError(f"--out {out_dir}: is a file, not a folder")
    if out_dir.exists() and not force:
        raise FileExistsError(f"{out_dir} exists; pass --force to replace it")


def write_folder(out_dir: Path, build, force: bool):
    """Calls build(tmp_dir) to fill a fresh folder beside out_dir, then puts it in place; returns
    what build returned.

    A failed or interrupted build leaves out_dir as it was; with force an existing out_dir is
    replaced only once the new one is complete, in one step where the system allows.
    """
    out_dir = Path(out_dir)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    check_target(out_dir, force)
    tmp = make_temp_dir(out_dir)
    try:
        result = build(tmp)
        set_normal_permissions(tmp)
        replace_folder(tmp, out_dir)
        return result
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
