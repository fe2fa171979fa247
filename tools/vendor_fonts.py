"""Vendor the @fontsource fonts pinned in tools/fonts.toml into lettercnn/data/fonts.

For every ``[[font]]`` entry of the pinned list this script runs ``npm pack
<package>@<version>`` in a temporary folder (never in the repository), reads the
package's ``package.json``, ``metadata.json`` and ``LICENSE``, takes the latin subset
``files/<id>-latin-<weight>-<style>.woff`` of each listed face, unwraps it to a plain
TrueType file with fontTools (``flavor = None``, timestamps kept, so the bytes are the
same on every run), checks that matplotlib's FreeType draws all 52 letters with
:func:`lettercnn.data.render.truetype_templates`, and writes:

- ``lettercnn/data/fonts/<family-slug>-<weight>[italic].ttf``;
- ``lettercnn/data/fonts/manifest.json``, one entry per file (package, exact version,
  SPDX licence, category, weight, style, split, sha256, upstream copyright line);
- ``lettercnn/data/fonts/LICENSES/<SPDX id>.txt``, each licence text used, once.

TTF files in the output folder that the list no longer names are deleted, so running
the script again reproduces exactly the files of the manifest.

The split is fixed by the family names alone: within each category, families sorted
by the sha256 of their name, every :data:`HELDOUT_EVERY`-th one is held out (used only
by the benchmark, never for training). Accuracy never enters. An entry may pin its
split instead (``split = "train"``): families added after the benchmark's held-out set
was fixed are pinned, so that adding them reshuffles nothing; the manifest marks them
``"split_pinned": true`` and the rule counts only the others.

Usage (from the repository root, with the project's venv and ``npm`` on PATH)::

    python tools/vendor_fonts.py                      # regenerate lettercnn/data/fonts
    python tools/vendor_fonts.py --sheets /tmp/sheets # also a PNG of the 52 letters per file
    python tools/vendor_fonts.py --config cand.toml --out /tmp/try --keep-going  # survey
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import logging
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib  # type: ignore[no-redef]

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

from lettercnn.data.fontfiles import CATEGORIES, SPLITS  # noqa: E402
from lettercnn.data.render import CHARS, FontError, truetype_templates  # noqa: E402

log = logging.getLogger("vendor_fonts")

DEFAULT_CONFIG = REPO_ROOT / "tools" / "fonts.toml"
DEFAULT_OUT = REPO_ROOT / "lettercnn" / "data" / "fonts"
MANIFEST_NAME = "manifest.json"
LICENSES_DIR = "LICENSES"
# SPDX ids we accept, and the heading from which each package's LICENSE holds the
# licence text itself (OFL packages put the copyright line above it).
LICENCE_HEADINGS: dict[str, str] = {
    "OFL-1.1": "SIL OPEN FONT LICENSE Version 1.1",
    "Apache-2.0": "Apache License",
    "UFL-1.0": "UBUNTU FONT LICENCE Version 1.0",
}
# Within a category, families sorted by sha256(name): positions 0, 4, 8, ... are held out.
HELDOUT_EVERY = 4
SUBSET = "latin"
# A face as written in fonts.toml: "400", "700", "400italic".
FACE_PATTERN = re.compile(r"^(?P<weight>[1-9]00)(?P<style>italic)?$")
# The per-file repetitions some attributions carry ("Lora-Italic[wght].ttf: Copyright ...").
PER_FILE_ATTRIBUTION = re.compile(r"\s+\S+\.(?:ttf|otf):\s")
RESERVED_NAME = re.compile(r"Reserved Font Names? ([^.]*)", re.IGNORECASE)
# Where a licence's own text ends; what follows (Apache's appendix) is per package.
LICENCE_ENDS: dict[str, str] = {"Apache-2.0": "END OF TERMS AND CONDITIONS"}
NPM_TIMEOUT_S = 300
COPYRIGHT_NAME_ID = 0
# Contact sheets: cell side, pixels, and letters per row.
SHEET_CELL = 72
SHEET_COLUMNS = 13


class VendorError(RuntimeError):
    """A pinned package that cannot be vendored as asked."""


@dataclass(frozen=True)
class FontSpec:
    """One pinned package of fonts.toml.

    Attributes:
        package: the npm package, e.g. ``"@fontsource/caveat"``.
        version: its exact version.
        category: ours (see :data:`CATEGORIES`); Google's has no ``script``.
        faces: e.g. ``("400", "700", "400italic")``.
        split: a pinned split (``"train"`` or ``"heldout"``), or ``None`` for the
            positional rule of :func:`assign_splits`.
    """

    package: str
    version: str
    category: str
    faces: tuple[str, ...]
    split: str | None = None


@dataclass(frozen=True)
class Package:
    """What we read from a packed @fontsource tarball.

    Attributes:
        font_id: the id used in file names, e.g. ``"caveat"``.
        family: the family name, e.g. ``"Caveat"``.
        licence: SPDX id, the same in package.json and metadata.json.
        licence_text: the licence itself, without the copyright lines.
        copyright: the upstream copyright line.
        reserved_font_name: the Reserved Font Name clause, or ``""``.
        upstream_category: Google Fonts' category.
        woffs: the latin-subset WOFF bytes by face (``"400"``, ``"400italic"``...).
    """

    font_id: str
    family: str
    licence: str
    licence_text: str
    copyright: str
    reserved_font_name: str
    upstream_category: str
    woffs: dict[str, bytes]


def load_config(path: Path) -> list[FontSpec]:
    """Read the pinned list.

    Args:
        path: a TOML file with ``[[font]]`` tables (package, version, category, faces).

    Returns:
        The specs in file order.

    Raises:
        VendorError: an unknown category, a malformed face or version, a package twice.
    """
    with path.open("rb") as handle:
        data = tomllib.load(handle)
    specs, seen = [], set()
    for entry in data.get("font", []):
        spec = FontSpec(
            package=entry["package"],
            version=entry["version"],
            category=entry["category"],
            faces=tuple(entry.get("faces", ["400"])),
            split=entry.get("split"),
        )
        if spec.split not in (None, *SPLITS):
            raise VendorError(f"{spec.package}: split {spec.split!r} not in {SPLITS}")
        if spec.category not in CATEGORIES:
            raise VendorError(f"{spec.package}: category {spec.category!r} not in {CATEGORIES}")
        if not re.fullmatch(r"\d+\.\d+\.\d+", spec.version):
            raise VendorError(f"{spec.package}: pin an exact version, not {spec.version!r}")
        if not spec.faces:
            raise VendorError(f"{spec.package}: no faces")
        for face in spec.faces:
            parse_face(face)
        if spec.package in seen:
            raise VendorError(f"{spec.package} is listed twice")
        seen.add(spec.package)
        specs.append(spec)
    return specs


def npm_pack(spec: FontSpec, folder: Path) -> Path:
    """Download the pinned tarball into ``folder`` (reused when already there).

    Returns:
        The tarball's path.

    Raises:
        VendorError: npm failed (unknown package or version, no network).
    """
    name = spec.package.lstrip("@").replace("/", "-") + f"-{spec.version}.tgz"
    tarball = folder / name
    if tarball.is_file():
        return tarball
    command = ["npm", "pack", f"{spec.package}@{spec.version}", "--pack-destination", str(folder), "--silent"]
    result = subprocess.run(command, capture_output=True, text=True, timeout=NPM_TIMEOUT_S, check=False)
    if result.returncode != 0 or not tarball.is_file():
        raise VendorError(f"npm pack {spec.package}@{spec.version} failed: {result.stderr.strip()[-500:]}")
    return tarball


def _member(archive: tarfile.TarFile, name: str) -> bytes | None:
    """The bytes of ``package/<name>`` in the tarball, or ``None``."""
    try:
        handle = archive.extractfile(f"package/{name}")
    except KeyError:
        return None
    return None if handle is None else handle.read()


def _copyright_line(licence_text: str, attribution: str) -> str:
    """The upstream copyright line: the LICENSE's opening paragraph, else metadata's attribution."""
    head = licence_text.split("This Font Software is licensed", 1)[0].strip()
    line = head if head.lower().startswith("copyright") else attribution
    line = PER_FILE_ATTRIBUTION.split(" ".join(line.split()), maxsplit=1)[0]
    return line.strip()


def _from_heading(text: str, heading: int) -> str:
    """The licence text from the line holding ``heading``, with a dashed rule above it kept."""
    lines_before = text[:heading].split("\n")
    start = heading - len(lines_before[-1])
    if len(lines_before) > 1 and lines_before[-2].startswith("---"):
        start -= len(lines_before[-2]) + 1
    return text[start:].strip() + "\n"


def _reserved_name(notice: str) -> str:
    """The Reserved Font Name clause of a copyright notice, or ``""``."""
    match = RESERVED_NAME.search(notice)
    return match.group(1).strip() if match else ""


def read_package(spec: FontSpec, tarball: Path) -> Package:
    """Read a packed @fontsource package.

    Raises:
        VendorError: the name or version differ from the pin, the licence is not one
            of :data:`LICENCE_HEADINGS` or differs between package.json and
            metadata.json, the LICENSE is missing, or a face has no latin WOFF.
    """
    with tarfile.open(tarball, "r:gz") as archive:
        package_json = json.loads(_member(archive, "package.json") or b"{}")
        metadata = json.loads(_member(archive, "metadata.json") or b"{}")
        licence_bytes = _member(archive, "LICENSE")
        font_id = metadata.get("id", "")
        woffs: dict[str, bytes] = {}
        for face in spec.faces:
            data = _member(archive, source_file(font_id, face))
            if data is None:
                raise VendorError(f"{spec.package}@{spec.version} has no {SUBSET} {face} WOFF")
            woffs[face] = data
    if package_json.get("name") != spec.package or package_json.get("version") != spec.version:
        raise VendorError(f"{tarball.name} is {package_json.get('name')}@{package_json.get('version')}")
    licence_meta = metadata.get("license")
    if not isinstance(licence_meta, dict):
        raise VendorError(f"{spec.package}: metadata.json has no licence type ({licence_meta!r})")
    licence = package_json.get("license", "")
    if licence not in LICENCE_HEADINGS or licence_meta.get("type") != licence:
        raise VendorError(f"{spec.package}: licence {licence!r} / {licence_meta.get('type')!r} not accepted")
    if licence_bytes is None:
        raise VendorError(f"{spec.package}: no LICENSE file")
    text = licence_bytes.decode("utf-8").replace("\r\n", "\n")
    heading = text.find(LICENCE_HEADINGS[licence])
    if heading < 0:
        raise VendorError(f"{spec.package}: LICENSE does not hold the {licence} text")
    licence_text = _from_heading(text, heading)
    if licence in LICENCE_ENDS and LICENCE_ENDS[licence] in licence_text:
        end = licence_text.index(LICENCE_ENDS[licence]) + len(LICENCE_ENDS[licence])
        licence_text = licence_text[:end] + "\n"
    copyright_line = _copyright_line(text, str(licence_meta.get("attribution", "")))
    return Package(
        font_id=font_id,
        family=metadata.get("family", ""),
        licence=licence,
        licence_text=licence_text,
        copyright=copyright_line,
        reserved_font_name=_reserved_name(copyright_line),
        upstream_category=metadata.get("category", ""),
        woffs=woffs,
    )


def woff_to_ttf(woff: bytes) -> bytes:
    """Unwrap a WOFF into plain sfnt bytes (TrueType or CFF), reproducibly.

    The font data stay as they are: tables are decompressed, not rebuilt, and the
    head table's modification time is kept.
    """
    from fontTools.ttLib import TTFont

    font = TTFont(io.BytesIO(woff), recalcTimestamp=False, recalcBBoxes=False)
    font.flavor = None
    out = io.BytesIO()
    font.save(out, reorderTables=True)
    return out.getvalue()


def font_copyright(ttf: bytes) -> str:
    """The copyright notice in a font's name table (name ID 0), whitespace collapsed."""
    from fontTools.ttLib import TTFont

    notice = TTFont(io.BytesIO(ttf), lazy=True)["name"].getDebugName(COPYRIGHT_NAME_ID) or ""
    return " ".join(notice.split())


def file_name(font_id: str, face: str) -> str:
    """``caveat-400.ttf``, ``lato-700italic.ttf``."""
    return f"{font_id}-{face}.ttf"


def family_key(family: str) -> str:
    """The sha256 of a family name, the order that fixes the split."""
    return hashlib.sha256(family.encode("utf-8")).hexdigest()


def assign_splits(categories: dict[str, str]) -> dict[str, str]:
    """Fix each family's split from the names alone.

    Args:
        categories: family -> category.

    Returns:
        family -> ``"train"`` or ``"heldout"``; within each category, families sorted
        by :func:`family_key`, every :data:`HELDOUT_EVERY`-th from the first held out.
    """
    by_category: dict[str, list[str]] = defaultdict(list)
    for family, category in categories.items():
        by_category[category].append(family)
    splits = {}
    for families in by_category.values():
        for position, family in enumerate(sorted(families, key=family_key)):
            splits[family] = "heldout" if position % HELDOUT_EVERY == 0 else "train"
    return splits


def contact_sheet(templates: Sequence[object], title: str, path: Path) -> None:
    """Write the 52 letters as a PNG, dark on white, :data:`SHEET_COLUMNS` a row."""
    import cv2
    import numpy as np

    rows = -(-len(CHARS) // SHEET_COLUMNS)
    banner = 24
    sheet = np.full((banner + rows * SHEET_CELL, SHEET_COLUMNS * SHEET_CELL), 255, dtype=np.uint8)
    cv2.putText(sheet, title, (4, 17), cv2.FONT_HERSHEY_SIMPLEX, 0.5, 0, 1, cv2.LINE_AA)
    inner = SHEET_CELL - 8
    for index, template in enumerate(templates):
        glyph = np.asarray(template, dtype=np.uint8)
        scale = min(1.0, inner / max(glyph.shape))
        if scale < 1.0:
            size = (max(1, round(glyph.shape[1] * scale)), max(1, round(glyph.shape[0] * scale)))
            glyph = cv2.resize(glyph, size, interpolation=cv2.INTER_AREA)
        top = banner + (index // SHEET_COLUMNS) * SHEET_CELL + (SHEET_CELL - glyph.shape[0]) // 2
        left = (index % SHEET_COLUMNS) * SHEET_CELL + (SHEET_CELL - glyph.shape[1]) // 2
        cell = sheet[top : top + glyph.shape[0], left : left + glyph.shape[1]]
        np.minimum(cell, 255 - glyph, out=cell)
    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), sheet)


def parse_face(face: str) -> tuple[int, str]:
    """``"400"`` -> ``(400, "normal")``, ``"700italic"`` -> ``(700, "italic")``.

    Raises:
        VendorError: not a face as fonts.toml writes them.
    """
    match = FACE_PATTERN.match(face)
    if match is None:
        raise VendorError(f"face {face!r} is not like '400' or '700italic'")
    return int(match["weight"]), match["style"] or "normal"


def source_file(font_id: str, face: str) -> str:
    """The latin WOFF of a face inside a @fontsource package, e.g. ``files/caveat-latin-400-normal.woff``."""
    weight, style = parse_face(face)
    return f"files/{font_id}-{SUBSET}-{weight}-{style}.woff"


def _vendor_face(spec: FontSpec, package: Package, face: str, out: Path, sheets: Path | None) -> dict[str, object]:
    """Convert, check and write one face; return its manifest entry (without the split).

    Raises:
        VendorError: FreeType cannot draw its 52 letters (the file is not kept).
    """
    woff = package.woffs[face]
    ttf = woff_to_ttf(woff)
    target = out / file_name(package.font_id, face)
    target.write_bytes(ttf)
    try:
        templates = truetype_templates(target)
    except FontError as err:
        target.unlink()
        raise VendorError(f"{spec.package} {face}: {err}") from None
    if sheets is not None:
        contact_sheet(templates, f"{package.family} {face} ({spec.category})", sheets / f"{target.stem}.png")
    weight, style = parse_face(face)
    notice = font_copyright(ttf)
    return {
        "file": target.name,
        "family": package.family,
        "package": spec.package,
        "version": spec.version,
        "licence": package.licence,
        "category": spec.category,
        "upstream_category": package.upstream_category,
        "weight": weight,
        "style": style,
        "sha256": hashlib.sha256(ttf).hexdigest(),
        "source_file": source_file(package.font_id, face),
        "source_sha256": hashlib.sha256(woff).hexdigest(),
        "copyright": package.copyright,
        "font_copyright": notice,
        "reserved_font_name": package.reserved_font_name or _reserved_name(notice),
    }


def vendor(
    specs: Sequence[FontSpec],
    out: Path,
    tarballs: Path,
    sheets: Path | None = None,
    keep_going: bool = False,
) -> list[dict[str, object]]:
    """Fetch, convert, check and write every pinned face; write the manifest and licences.

    Args:
        specs: the pinned list.
        out: the fonts folder (created; stale .ttf files in it are deleted).
        tarballs: where npm packs (and tarballs already there are reused).
        sheets: a folder for contact sheets, or ``None``.
        keep_going: log a package that fails and go on; otherwise raise.

    Returns:
        The manifest entries, sorted by file.

    Raises:
        VendorError: a package cannot be vendored (unless ``keep_going``), or two
            packages give the same family.
    """
    out.mkdir(parents=True, exist_ok=True)
    rows: list[dict[str, object]] = []
    licences: dict[str, str] = {}
    categories: dict[str, str] = {}
    pinned: dict[str, str] = {}
    for spec in specs:
        try:
            package = read_package(spec, npm_pack(spec, tarballs))
            if package.family in categories or package.family in pinned:
                raise VendorError(f"{spec.package}: family {package.family} is listed twice")
            entries = [_vendor_face(spec, package, face, out, sheets) for face in spec.faces]
        except (VendorError, OSError, ValueError) as err:
            if not keep_going:
                raise
            log.warning("skipped: %s", err)
            continue
        if spec.split is None:
            categories[package.family] = spec.category
        else:
            pinned[package.family] = spec.split
        rows.extend(entries)
        known = licences.setdefault(package.licence, package.licence_text)
        if " ".join(known.split()) != " ".join(package.licence_text.split()):
            log.warning(
                "%s: its %s text differs from the first one's; the first is kept", spec.package, package.licence
            )
    splits = assign_splits(categories)
    for row in rows:
        family = str(row["family"])
        if family in pinned:
            row["split"], row["split_pinned"] = pinned[family], True
        else:
            row["split"] = splits[family]
    rows.sort(key=lambda row: str(row["file"]))
    _write_outputs(out, rows, licences)
    return rows


def _write_outputs(out: Path, rows: list[dict[str, object]], licences: dict[str, str]) -> None:
    """Write manifest.json and LICENSES/, delete .ttf files the manifest does not name."""
    keep = {str(row["file"]) for row in rows}
    for stale in sorted(out.glob("*.ttf")):
        if stale.name not in keep:
            log.info("deleting %s: no longer pinned", stale.name)
            stale.unlink()
    manifest = out / MANIFEST_NAME
    manifest.write_text(json.dumps(rows, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    folder = out / LICENSES_DIR
    if folder.is_dir():
        shutil.rmtree(folder)
    folder.mkdir()
    for licence, text in sorted(licences.items()):
        (folder / f"{licence}.txt").write_text(text, encoding="utf-8")


def summary(rows: Sequence[dict[str, object]]) -> str:
    """Families per category and split, one line a category."""
    families: dict[tuple[str, str], set[str]] = defaultdict(set)
    for row in rows:
        families[(str(row["category"]), str(row["split"]))].add(str(row["family"]))
    return "\n".join(
        f"{category:12s} train {len(families[category, 'train']):3d}  heldout {len(families[category, 'heldout']):3d}"
        for category in CATEGORIES
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Command line: see the module docstring."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--config", type=Path, default=DEFAULT_CONFIG, help="the pinned list (TOML)")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="the fonts folder to write")
    parser.add_argument("--tarballs", type=Path, help="keep npm tarballs here (default: a temporary folder)")
    parser.add_argument("--sheets", type=Path, help="write a contact sheet PNG per file here")
    parser.add_argument("--keep-going", action="store_true", help="skip a failing package instead of stopping")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")
    specs = load_config(args.config)
    with tempfile.TemporaryDirectory(prefix="vendor_fonts-") as scratch:
        tarballs = args.tarballs or Path(scratch)
        tarballs.mkdir(parents=True, exist_ok=True)
        rows = vendor(specs, args.out, tarballs, args.sheets, args.keep_going)
    megabytes = sum((args.out / str(row["file"])).stat().st_size for row in rows) / 1e6
    families = len({row["family"] for row in rows})
    log.info("%d files, %d families, %.2f MB\n%s", len(rows), families, megabytes, summary(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
