"""Atomic file writes: nothing half-written is ever left under a final name.

Everything the tool writes (checkpoints, run files, models, reports, crops) goes
through :func:`atomic_path`: write a temporary file in the same folder, flush it to
disk, then ``os.replace`` it onto the final name, which is atomic on POSIX and
Windows. A killed process leaves the old file or the new one, never half of one;
the flush (and the folder's, after the rename) extends that to a power cut, which a
Pi running unattended will meet.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

_CREATE_MODE = 0o666  # what open(..., "w") asks for, before the umask
# Temporary files are ".<final name>.<random>.tmp" beside the final file.
TEMP_SUFFIX = ".tmp"


def _current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success move it onto ``path``.

    Args:
        path: the final file name. Its folder is created if missing.

    Yields:
        A temporary path in the same folder (same file system, so the rename is atomic).
        On an exception the temporary file is removed and ``path`` is left as it was.
    """
    final = Path(path)
    final.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{final.name}.", suffix=TEMP_SUFFIX, dir=final.parent)
    # mkstemp makes the file private (0600); give it the permissions open() would.
    os.fchmod(fd, _CREATE_MODE & ~_current_umask())
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        _flush_to_disk(tmp)
        os.replace(tmp, final)
        _flush_folder(final.parent)
    finally:
        tmp.unlink(missing_ok=True)


def _flush_to_disk(path: Path) -> None:
    """fsync a written file, so the rename never publishes data still in the page cache."""
    with open(path, "rb") as file:
        os.fsync(file.fileno())


def _flush_folder(folder: Path) -> None:
    """fsync a folder so a rename in it survives a power cut (POSIX only; elsewhere a no-op)."""
    if not hasattr(os, "O_DIRECTORY"):
        return
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def remove_stale_temps(folder: str | os.PathLike[str]) -> list[Path]:
    """Delete the temporary files a killed :func:`atomic_path` left in ``folder``.

    Only call this for a folder no other process is writing to (a run being resumed).

    Returns:
        The files removed.
    """
    stale = [path for path in Path(folder).glob(f".*{TEMP_SUFFIX}") if path.is_file()]
    for path in stale:
        path.unlink(missing_ok=True)
    return stale


def write_bytes(path: str | os.PathLike[str], data: bytes) -> None:
    """Write ``data`` to ``path`` atomically."""
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def write_text(path: str | os.PathLike[str], text: str) -> None:
    """Write ``text`` (UTF-8) to ``path`` atomically."""
    write_bytes(path, text.encode("utf-8"))


def write_json(path: str | os.PathLike[str], obj: Any) -> None:
    """Write ``obj`` as indented JSON to ``path`` atomically."""
    write_text(path, json.dumps(obj, indent=2, sort_keys=False) + "\n")
