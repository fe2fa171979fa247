"""The font files that synthetic letters may be rendered from (stdlib only; no torch, no matplotlib).

Two sources beyond what matplotlib and OpenCV ship, both fixed by the project:

- *vendored*: TrueType files in ``lettercnn/data/fonts/``, converted from pinned npm
  ``@fontsource/*`` packages by ``tools/vendor_fonts.py`` and listed, with licence,
  copyright and sha256, in ``fonts/manifest.json``. Each family is either ``"train"``
  or ``"heldout"``: the held-out families (about a quarter of each category, chosen
  from the family names alone) are for the benchmark only, never for training;
- *pip*: the fonts of the Python packages in :data:`PIP_FONT_PACKAGES`, installed by
  ``pip install 'lettercnn[train]'``; always training fonts.

Fonts installed on the machine (``/usr/share/fonts`` and the like) are never used:
training data must be reproducible from the repository and its declared dependencies.
"""

from __future__ import annotations

import importlib.metadata
import json
import logging
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)

FONTS_DIR = Path(__file__).resolve().parent / "fonts"
MANIFEST = FONTS_DIR / "manifest.json"
SPLITS = ("train", "heldout")
CATEGORIES = ("serif", "sans-serif", "monospace", "display", "handwriting", "script")
SOURCES = ("vendored", "pip", "matplotlib")
INSTALL_HINT = "pip install 'lettercnn[train]'"
PIP_FONT_EXTENSIONS = (".ttf", ".otf")
# Distribution -> (family, category). Keep in step with the `train` extra in pyproject.toml.
PIP_FONT_PACKAGES: dict[str, tuple[str, str]] = {
    "font-roboto": ("Roboto", "sans-serif"),
    "font-source-sans-pro": ("Source Sans Pro", "sans-serif"),
    "font-source-serif-pro": ("Source Serif Pro", "serif"),
    "font-caladea": ("Caladea", "serif"),
    "font-fredoka-one": ("Fredoka One", "display"),
    "font-hanken-grotesk": ("Hanken Grotesk", "sans-serif"),
    "font-manrope": ("Manrope", "sans-serif"),
    "font-amatic-sc": ("Amatic SC", "handwriting"),
    "font-intuitive": ("Intuitive", "display"),
    "font-fjallaone": ("Fjalla One", "sans-serif"),
    "font-lato": ("Lato", "sans-serif"),
    "font-rhd": ("Red Hat Display", "sans-serif"),
}
# Faces kept from a pip package, by the style after the file stem's last "-", in order
# of preference: thin, light, medium, black... faces add little beyond these.
# A file without "-" (``Intuitive.ttf``) is a package's only face and kept too.
PIP_FACE_STYLES = ("Regular", "Bold", "Italic", "It", "BoldItalic", "BoldIt")
MAX_PIP_FACES = 4


@dataclass(frozen=True)
class FontFile:
    """One font file and what it is for.

    Attributes:
        path: the .ttf/.otf file.
        family: the family name, e.g. ``"Caveat"``; splits are disjoint by family.
        category: one of :data:`CATEGORIES`.
        source: ``"vendored"``, ``"pip"`` or ``"matplotlib"``.
        split: ``"train"`` or ``"heldout"``.
    """

    path: Path
    family: str
    category: str
    source: str
    split: str


def read_manifest(manifest: Path = MANIFEST) -> list[dict[str, object]]:
    """The entries of the vendored fonts' manifest, as written by ``tools/vendor_fonts.py``.

    Args:
        manifest: the manifest file.

    Returns:
        One dict per font file (file, family, package, version, licence, category,
        weight, style, split, sha256, copyright...), in file order.

    Raises:
        FileNotFoundError: no manifest (a checkout or wheel without the fonts).
        ValueError: the manifest is not a list of entries with a file, family,
            category and split.
    """
    entries = json.loads(manifest.read_text(encoding="utf-8"))
    required = ("file", "family", "category", "split")
    if not isinstance(entries, list) or not all(
        isinstance(entry, dict) and all(key in entry for key in required) for entry in entries
    ):
        raise ValueError(f"{manifest} is not a list of font entries with {', '.join(required)}")
    return entries


def vendored_fonts(split: str | None = None) -> list[FontFile]:
    """The fonts vendored in ``lettercnn/data/fonts``, as listed in its manifest.

    Args:
        split: ``"train"``, ``"heldout"``, or ``None`` for both.

    Returns:
        The font files, sorted by file name.

    Raises:
        ValueError: an unknown split, or a manifest entry with an unknown split or
            category.
        FileNotFoundError: the manifest, or a file it lists, is missing.
    """
    if split is not None and split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS} or None, not {split!r}")
    fonts = []
    for entry in read_manifest():
        font = FontFile(
            path=FONTS_DIR / str(entry["file"]),
            family=str(entry["family"]),
            category=str(entry["category"]),
            source="vendored",
            split=str(entry["split"]),
        )
        if font.split not in SPLITS or font.category not in CATEGORIES:
            raise ValueError(f"{MANIFEST}: {font.path.name} has split {font.split!r}, category {font.category!r}")
        if split is None or font.split == split:
            fonts.append(font)
    missing = [font.path.name for font in fonts if not font.path.is_file()]
    if missing:
        raise FileNotFoundError(f"fonts listed in {MANIFEST} are missing: {', '.join(missing)}")
    return sorted(fonts, key=lambda font: font.path.name)


def _pip_faces(files: list[Path]) -> list[Path]:
    """Pick a package's regular, bold and italic faces, at most :data:`MAX_PIP_FACES`.

    A TrueType file is preferred to an OpenType one of the same stem.
    """
    by_stem: dict[str, Path] = {}
    for path in sorted(files, key=lambda p: (p.stem, p.suffix.lower() != ".ttf")):
        by_stem.setdefault(path.stem, path)
    ranked = []
    for stem, path in by_stem.items():
        style = stem.rsplit("-", 1)[1] if "-" in stem else None
        if style is None:
            ranked.append((-1, stem, path))
        elif style in PIP_FACE_STYLES:
            ranked.append((PIP_FACE_STYLES.index(style), stem, path))
    return [path for _, _, path in sorted(ranked)[:MAX_PIP_FACES]]


def pip_fonts() -> list[FontFile]:
    """The fonts of the installed :data:`PIP_FONT_PACKAGES` (all training fonts).

    A package that is not installed is skipped with a warning.

    Returns:
        The font files, in :data:`PIP_FONT_PACKAGES` order, each package's faces in
        :data:`PIP_FACE_STYLES` order.
    """
    fonts = []
    for name, (family, category) in PIP_FONT_PACKAGES.items():
        try:
            distribution = importlib.metadata.distribution(name)
        except importlib.metadata.PackageNotFoundError:
            log.warning("font package %s is not installed; its fonts are skipped (%s)", name, INSTALL_HINT)
            continue
        files = [
            Path(str(distribution.locate_file(file)))
            for file in distribution.files or ()
            if file.suffix.lower() in PIP_FONT_EXTENSIONS
        ]
        faces = _pip_faces([path for path in files if path.is_file()])
        if not faces:
            log.warning("font package %s holds no font file; reinstall it (%s)", name, INSTALL_HINT)
        fonts.extend(FontFile(path, family, category, "pip", "train") for path in faces)
    return fonts


def training_fonts() -> list[FontFile]:
    """Every font file training may use: the pip fonts, then the vendored train split.

    Returns:
        The font files, pip first, in a fixed order.

    Raises:
        FileNotFoundError: the vendored manifest, or a file it lists, is missing.
    """
    return pip_fonts() + vendored_fonts("train")


def heldout_fonts() -> list[FontFile]:
    """The held-out font files, for the benchmark only.

    Returns:
        The vendored fonts of the ``"heldout"`` split, sorted by file name.

    Raises:
        FileNotFoundError: the vendored manifest, or a file it lists, is missing.
    """
    return vendored_fonts("heldout")
