"""Which image files a command's arguments name: files, folders (recursively) and globs.

What ``letters recognize`` and ``letters export --calib`` read; standard library only
(the image suffixes are :data:`lettercnn.preprocess.IMG_EXTENSIONS`).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from lettercnn import preprocess


def find_images(inputs: Sequence[str | os.PathLike[str]]) -> tuple[list[Path], list[str]]:
    """Expand files, folders (recursively) and glob patterns into image files.

    Args:
        inputs: paths of files or folders, or glob patterns (``"scans/*.png"``, ``"**/*.jpg"``).

    Returns:
        The image files in a stable order (each once), and the inputs that matched
        nothing (a missing file, an empty folder, a glob with no match).
    """
    found: dict[Path, None] = {}
    unmatched: list[str] = []
    for raw in inputs:
        before = len(found)
        path = Path(raw)
        if path.is_dir():
            found.update(dict.fromkeys(p for p in sorted(path.rglob("*")) if _is_image(p)))
        elif path.is_file():
            found[path] = None  # named explicitly: try it whatever its suffix
        elif any(ch in str(raw) for ch in "*?["):
            found.update(dict.fromkeys(p for p in sorted(_glob(str(raw))) if p.is_file()))
        if len(found) == before:
            unmatched.append(str(raw))
    return list(found), unmatched


def unmatched_reason(raw: str | os.PathLike[str]) -> str:
    """Why an input of :func:`find_images` gave no image, as ``"<input>: <reason>"``."""
    path = Path(raw)
    if path.is_dir():
        return f"{raw}: no image files in this folder (searched recursively for {', '.join(preprocess.IMG_EXTENSIONS)})"
    if any(ch in str(raw) for ch in "*?["):
        return f"{raw}: the pattern matches no file"
    return f"{raw}: no such file or folder"


def _is_image(path: Path) -> bool:
    return path.is_file() and path.name.lower().endswith(preprocess.IMG_EXTENSIONS)


def _glob(pattern: str) -> list[Path]:
    import glob

    return [Path(p) for p in glob.glob(pattern, recursive=True)]
