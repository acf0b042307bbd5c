"""Writing a command's output files: all of them or none.

Each file is first written whole to a temporary file beside its target (so the rename stays on
one file system); only when every one of them is written are they renamed into place. A failure
while writing (a full disk, a read-only folder) leaves the targets untouched and no temporary
behind. The files get the mode a plain open() would give them (0666 less the umask), not the
0600 of a temporary file.
"""
from __future__ import annotations

import os
import tempfile
from typing import Callable

from .errors import ProtosegError


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


class Outputs:
    """A transaction of output files:

        with Outputs() as out:
            out.add("a.py", lambda tmp: write_text(tmp, code))
            out.add("a.safetensors", lambda tmp: save(tmp))
        # both renamed into place here, or neither on an error
    """

    def __init__(self):
        self._staged: list[tuple[str, str]] = []      # (temporary, target)

    def add(self, path, write: Callable[[str], None], *, protect=()) -> str:
        """Write one file through `write(temporary_path)`; returns the target path. `protect`:
        input files the target must not be."""
        path = os.fspath(path)
        for p in protect:
            if p and os.path.exists(path) and os.path.samefile(path, p):
                raise ProtosegError(f"{path}: refusing to overwrite an input file")
        if os.path.isdir(path):
            raise ProtosegError(f"{path}: is a folder, not a file to write")
        folder = os.path.dirname(os.path.abspath(path))
        if not os.path.isdir(folder):
            raise ProtosegError(f"{path}: the folder {folder} does not exist")
        try:
            fd, tmp = tempfile.mkstemp(prefix=f".{os.path.basename(path)}.", suffix=".tmp",
                                       dir=folder)
            os.close(fd)
        except OSError as e:
            raise ProtosegError(f"{path}: cannot write: {e.strerror or e}") from None
        self._staged.append((tmp, path))
        try:
            write(tmp)
            os.chmod(tmp, 0o666 & ~_umask())
        except OSError as e:
            raise ProtosegError(f"{path}: cannot write: {e.strerror or e}") from None
        return path

    def commit(self) -> None:
        try:
            for tmp, path in self._staged:
                os.replace(tmp, path)
        except OSError as e:
            raise ProtosegError(f"{e.filename or path}: cannot write: {e.strerror or e}") from None
        finally:
            self.abort()

    def abort(self) -> None:
        for tmp, _ in self._staged:
            if os.path.exists(tmp):
                os.unlink(tmp)
        self._staged = []

    def __enter__(self) -> "Outputs":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.commit()
        else:
            self.abort()


def write_text(path: str, text: str) -> None:
    with open(path, "w", encoding="utf-8") as f:
        f.write(text)


def make_folder(path) -> str:
    """Make an output folder (and its parents); a clear error when it cannot be."""
    path = os.fspath(path)
    if os.path.exists(path) and not os.path.isdir(path):
        raise ProtosegError(f"{path}: names an output folder, but this is a file")
    try:
        os.makedirs(path, exist_ok=True)
    except OSError as e:
        raise ProtosegError(f"{e.filename or path}: cannot make the folder: {e.strerror or e}") from None
    return path
