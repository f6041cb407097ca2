"""Reading a model folder: every file is a plain name inside it, a regular file under a size bound,
read once, through one opened directory.

The directory is opened once and every file is opened relative to that handle (dir_fd), so a load
reads one version of the folder, the old or the new, even while `export --force` exchanges it for
a new one; and what is hashed is exactly what is then loaded.
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import os
import stat
from pathlib import Path

REEXPORT_HINT = "re-export it with `python -m export onnx CHECKPOINT --out DIR --force`"
MiB = 1 << 20
MAX_LINKS = 8  # a chain of links to other files of the folder, at most this long


class ModelFolderError(Exception):
    """A model folder is missing, incomplete, tampered with or of another format version."""


def check_name(model_dir: Path, name) -> None:
    if not isinstance(name, str) or not name or name in (".", "..") or "/" in name or "\\" in name \
            or "\0" in name or os.path.isabs(name):
        raise ModelFolderError(f"{model_dir / 'config.json'}: files: {name!r} is not a plain file name inside the "
                               f"folder; {REEXPORT_HINT}")


class Folder:
    """An opened model folder: read(name, limit) -> the file's bytes."""

    def __init__(self, path: Path, fd: int):
        self.path, self.fd = path, fd

    def replaced(self) -> bool:
        """The path names another folder now than the one opened (an export exchanged them)."""
        try:
            return os.stat(self.path).st_ino != os.fstat(self.fd).st_ino
        except OSError:
            return True

    def _resolve(self, name: str) -> str:
        """name, or the file a chain of links from it names (each a plain name of this folder)."""
        for _ in range(MAX_LINKS):
            try:
                st = os.stat(name, dir_fd=self.fd, follow_symlinks=False)
            except FileNotFoundError:
                raise ModelFolderError(f"{self.path / name}: file is missing; {REEXPORT_HINT}") from None
            except OSError as e:
                raise ModelFolderError(f"{self.path / name}: unreadable ({e.strerror}); {REEXPORT_HINT}") from None
            if not stat.S_ISLNK(st.st_mode):
                return name
            target = os.readlink(name, dir_fd=self.fd)
            if os.path.isabs(target) or ".." in Path(target).parts:
                raise ModelFolderError(f"{self.path / name}: a link to {target}, outside the model folder; {REEXPORT_HINT}")
            if "/" in target:
                raise ModelFolderError(f"{self.path / name}: a link to {target}; a link may only name another file "
                                       f"of the folder itself; {REEXPORT_HINT}")
            name = target
        raise ModelFolderError(f"{self.path / name}: a chain of more than {MAX_LINKS} links; {REEXPORT_HINT}")

    def read(self, name: str, limit: int) -> bytes:
        """The bytes of a regular file of the folder, at most `limit` of them, read through one open
        file (a FIFO or device is refused without waiting on it)."""
        check_name(self.path, name)
        where = self.path / name
        try:
            fd = os.open(self._resolve(name), os.O_RDONLY | getattr(os, "O_NONBLOCK", 0), dir_fd=self.fd)
        except OSError as e:
            raise ModelFolderError(f"{where}: unreadable ({e.strerror}); {REEXPORT_HINT}") from None
        with os.fdopen(fd, "rb") as f:
            st = os.fstat(f.fileno())
            if not stat.S_ISREG(st.st_mode):
                raise ModelFolderError(f"{where}: not a regular file; {REEXPORT_HINT}")
            if st.st_size > limit:
                raise ModelFolderError(f"{where}: {st.st_size:,} bytes, more than the {limit:,} allowed; {REEXPORT_HINT}")
            # the size fstat gave and one byte more, which only a file that grew has: asking for the
            # limit instead had Python allocate it (2 GiB for a graph) and shrink it after, which
            # cost 40 ms of a 35 MB folder's cold start
            data = f.read(st.st_size + 1)
        if len(data) > st.st_size:
            raise ModelFolderError(f"{where}: grew while being read; read the folder again when the writer is done")
        return data


@contextlib.contextmanager
def opened(model_dir: Path, missing_hint: str):
    """The folder opened once for reading (ModelFolderError with missing_hint if it is not a folder)."""
    model_dir = Path(model_dir)
    try:
        fd = os.open(model_dir, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except (FileNotFoundError, NotADirectoryError):
        raise ModelFolderError(f"{model_dir}: no model folder there; {missing_hint}") from None
    except OSError as e:
        raise ModelFolderError(f"{model_dir}: unreadable ({e.strerror})") from None
    try:
        yield Folder(model_dir, fd)
    finally:
        os.close(fd)


def parse_json(model_dir: Path, name: str, data: bytes):
    try:
        return json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as e:
        raise ModelFolderError(f"{model_dir / name}: unreadable JSON ({str(e)[:120]}); {REEXPORT_HINT}") from None


def sha256_files(paths) -> str:
    """The sha256 of the files' contents one after the other, read in 1 MiB blocks."""
    h = hashlib.sha256()
    for path in paths:
        with open(path, "rb") as f:
            for block in iter(lambda: f.read(MiB), b""):
                h.update(block)
    return h.hexdigest()
