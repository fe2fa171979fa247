"""The font bank's files: the vendored fonts' manifest, the fixed split, the pip font packages."""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import logging
import site
import subprocess
import sys
import sysconfig
from collections import defaultdict
from pathlib import Path

import pytest

from lettercnn.data import fontfiles
from lettercnn.data.fontfiles import (
    CATEGORIES,
    FONTS_DIR,
    PIP_FONT_PACKAGES,
    FontFile,
    heldout_fonts,
    pip_fonts,
    read_manifest,
    training_fonts,
    vendored_fonts,
)
from lettercnn.data.render import truetype_templates

LICENCES = {"OFL-1.1", "Apache-2.0", "UFL-1.0"}
HELDOUT_EVERY = 4  # tools/vendor_fonts.py: every 4th family by sha256 of its name
NON_FONT_ENTRIES = {"manifest.json", "README.md", "LICENSES"}
# The benchmark's held-out families, as fixed before any family was pinned to train.
HELDOUT_FAMILIES = (
    "Anonymous Pro",
    "Audiowide",
    "Bad Script",
    "Big Shoulders Display",
    "Bodoni Moda",
    "Calligraffitti",
    "Changa One",
    "Comfortaa",
    "Coming Soon",
    "Crafty Girls",
    "Didact Gothic",
    "Ephesis",
    "Fira Sans",
    "Fragment Mono",
    "Gaegu",
    "Gentium Book Plus",
    "Gochi Hand",
    "Homemade Apple",
    "Itim",
    "Josefin Sans",
    "Ledger",
    "Lobster",
    "Marck Script",
    "Martel",
    "Merienda",
    "Montserrat",
    "Mr De Haviland",
    "Neucha",
    "Neuton",
    "Noto Sans",
    "Noto Serif",
    "Nova Mono",
    "Old Standard TT",
    "PT Sans",
    "Pacifico",
    "Passion One",
    "Patrick Hand",
    "Pinyon Script",
    "Press Start 2P",
    "Questrial",
    "Rochester",
    "Schoolbell",
    "Share Tech Mono",
    "Solitreo",
    "Tangerine",
    "Waiting for the Sunrise",
    "Xanh Mono",
)


@pytest.fixture(scope="module")
def manifest() -> list[dict[str, object]]:
    return read_manifest()


def installed_pip_packages() -> list[str]:
    installed = []
    for name in PIP_FONT_PACKAGES:
        try:
            importlib.metadata.distribution(name)
        except importlib.metadata.PackageNotFoundError:
            continue
        installed.append(name)
    return installed


def test_manifest_lists_every_vendored_file_and_nothing_else(manifest: list[dict[str, object]]) -> None:
    listed = [str(entry["file"]) for entry in manifest]
    assert len(listed) == len(set(listed))
    on_disk = {path.name for path in FONTS_DIR.iterdir()} - NON_FONT_ENTRIES
    assert on_disk == set(listed)
    assert all(name.endswith(".ttf") for name in listed)


def test_vendored_files_match_their_sha256(manifest: list[dict[str, object]]) -> None:
    for entry in manifest:
        data = (FONTS_DIR / str(entry["file"])).read_bytes()
        assert hashlib.sha256(data).hexdigest() == entry["sha256"], entry["file"]


def test_each_vendored_font_has_an_accepted_licence_its_text_and_a_copyright(
    manifest: list[dict[str, object]],
) -> None:
    for entry in manifest:
        assert entry["licence"] in LICENCES, entry["file"]
        assert (FONTS_DIR / "LICENSES" / f"{entry['licence']}.txt").is_file()
        assert str(entry["copyright"]).strip(), entry["file"]
        assert str(entry["package"]).startswith("@fontsource/")
        assert str(entry["version"]).count(".") == 2  # an exact version
    used = {f"{entry['licence']}.txt" for entry in manifest}
    assert {path.name for path in (FONTS_DIR / "LICENSES").iterdir()} == used


def test_train_and_heldout_are_disjoint_by_family() -> None:
    splits: dict[str, set[str]] = defaultdict(set)
    for font in vendored_fonts():
        splits[font.family].add(font.split)
    assert all(len(found) == 1 for found in splits.values())
    train = {font.family for font in training_fonts()}
    heldout = {font.family for font in heldout_fonts()}
    assert heldout and not train & heldout
    assert not {family for family, _ in PIP_FONT_PACKAGES.values()} & heldout


def unpinned_families() -> dict[str, dict[str, str]]:
    """category -> family -> split, for the families the positional rule splits."""
    pinned = {str(entry["family"]) for entry in read_manifest() if entry.get("split_pinned")}
    families: dict[str, dict[str, str]] = defaultdict(dict)
    for font in vendored_fonts():
        if font.family not in pinned:
            families[font.category][font.family] = font.split
    return families


def test_every_category_holds_out_about_a_quarter_of_its_families() -> None:
    families = unpinned_families()
    assert set(families) == set(CATEGORIES)
    for category, splits in families.items():
        held = sum(split == "heldout" for split in splits.values())
        assert held == -(-len(splits) // HELDOUT_EVERY), category


def test_the_split_follows_from_the_family_names_alone() -> None:
    for splits in unpinned_families().values():
        ordered = sorted(splits, key=lambda family: hashlib.sha256(family.encode("utf-8")).hexdigest())
        expected = ["heldout" if i % HELDOUT_EVERY == 0 else "train" for i in range(len(ordered))]
        assert [splits[family] for family in ordered] == expected


def test_families_added_later_are_pinned_to_train_and_leave_the_heldout_set_as_it_was(
    manifest: list[dict[str, object]],
) -> None:
    pinned = [entry for entry in manifest if entry.get("split_pinned")]
    assert pinned and all(entry["split"] == "train" for entry in pinned)
    heldout = {str(entry["family"]) for entry in manifest if entry["split"] == "heldout"}
    assert sorted(heldout) == list(HELDOUT_FAMILIES)


def test_vendored_fonts_filters_by_split_in_a_fixed_order() -> None:
    everything = vendored_fonts()
    train, heldout = vendored_fonts("train"), vendored_fonts("heldout")
    assert sorted(train + heldout, key=lambda font: font.path.name) == everything
    assert [font.path.name for font in everything] == sorted(font.path.name for font in everything)
    assert all(font.source == "vendored" for font in everything)
    assert heldout_fonts() == heldout
    with pytest.raises(ValueError, match="split must be"):
        vendored_fonts("test")


def test_every_font_file_is_in_the_package_or_in_site_packages() -> None:
    allowed = [FONTS_DIR.resolve()]
    allowed += [Path(folder).resolve() for folder in site.getsitepackages() + [site.getusersitepackages()]]
    allowed += [Path(sysconfig.get_paths()[key]).resolve() for key in ("purelib", "platlib")]
    for font in training_fonts() + heldout_fonts():
        path = font.path.resolve()
        assert path.is_file(), path
        assert any(path.is_relative_to(folder) for folder in allowed), path
        assert not path.is_relative_to("/usr/share/fonts"), path
        assert font.source in {"vendored", "pip"}


def test_pip_fonts_are_training_fonts_a_few_faces_a_package() -> None:
    installed = installed_pip_packages()
    if not installed:
        pytest.skip("no font package installed (pip install 'lettercnn[train]')")
    fonts = pip_fonts()
    assert all(font.split == "train" and font.source == "pip" for font in fonts)
    assert all(font.category in CATEGORIES for font in fonts)
    by_family: dict[str, list[FontFile]] = defaultdict(list)
    for font in fonts:
        by_family[font.family].append(font)
    assert {PIP_FONT_PACKAGES[name][0] for name in installed} == set(by_family)
    assert all(1 <= len(faces) <= fontfiles.MAX_PIP_FACES for faces in by_family.values())
    assert fonts == pip_fonts()


def test_a_missing_pip_font_package_is_skipped_with_the_install_hint(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(fontfiles, "PIP_FONT_PACKAGES", {"font-no-such-package-x": ("X", "serif")})
    with caplog.at_level(logging.WARNING, logger="lettercnn.data.fontfiles"):
        assert pip_fonts() == []
    assert "font-no-such-package-x" in caplog.text
    assert "pip install 'lettercnn[train]'" in caplog.text


def test_pip_faces_prefer_regular_bold_italic_and_truetype() -> None:
    names = [
        "Sans-Thin.ttf",
        "Sans-Regular.otf",
        "Sans-Regular.ttf",
        "Sans-BoldIt.otf",
        "Sans-Black.ttf",
        "Sans-Bold.ttf",
        "Sans-It.ttf",
        "Sans-VariableFont_wght.ttf",
    ]
    chosen = fontfiles._pip_faces([Path("/fonts") / name for name in names])
    assert [path.name for path in chosen] == ["Sans-Regular.ttf", "Sans-Bold.ttf", "Sans-It.ttf", "Sans-BoldIt.otf"]
    assert [p.name for p in fontfiles._pip_faces([Path("/fonts/Intuitive.ttf")])] == ["Intuitive.ttf"]


def test_the_module_imports_neither_torch_nor_matplotlib() -> None:
    code = (
        "import sys, lettercnn.data.fontfiles as f; f.vendored_fonts(); f.pip_fonts(); "
        "print(sorted({'torch', 'matplotlib', 'cv2'} & set(sys.modules)))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"


def test_every_font_file_draws_all_52_letters() -> None:
    # About 235 fonts, about a second in all: quick enough for every run.
    for font in training_fonts() + heldout_fonts():
        templates = truetype_templates(font.path)
        assert len(templates) == 52, font.path.name


def test_manifest_is_valid_json_sorted_by_file() -> None:
    entries = json.loads((FONTS_DIR / "manifest.json").read_text(encoding="utf-8"))
    assert [entry["file"] for entry in entries] == sorted(entry["file"] for entry in entries)
