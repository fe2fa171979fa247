"""The sample images: made by samples/make_samples.py, deterministic, readable, small."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest

from lettercnn.preprocess import canonical, load_image, split_word, to_gray

SAMPLES_DIR = Path(__file__).resolve().parent.parent / "samples"
MAX_BYTES = 60 * 1024


@pytest.fixture(scope="module")
def make_samples() -> ModuleType:
    """The generator script, imported as a module (samples/ is no package)."""
    spec = importlib.util.spec_from_file_location("make_samples", SAMPLES_DIR / "make_samples.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    try:
        spec.loader.exec_module(module)
    finally:
        del sys.modules[spec.name]
    return module


def _relative(path: Path) -> str:
    """A generated file's path inside its samples folder: letters/A_paper.png, README.md."""
    return path.name if path.parent.name not in ("letters", "words") else f"{path.parent.name}/{path.name}"


@pytest.fixture(scope="module")
def generated(make_samples: ModuleType, tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    return make_samples.main(tmp_path_factory.mktemp("samples"))


def test_the_generator_is_deterministic(make_samples, generated, tmp_path):
    again = make_samples.main(tmp_path)
    assert [_relative(path) for path in again] == [_relative(path) for path in generated]
    for first, second in zip(generated, again):
        assert first.read_bytes() == second.read_bytes(), first.name


def test_the_committed_samples_are_what_the_generator_writes(generated):
    committed = {
        path.relative_to(SAMPLES_DIR).as_posix()
        for path in SAMPLES_DIR.rglob("*")
        if path.is_file() and path.name != "make_samples.py" and "__pycache__" not in path.parts
    }
    assert committed == {_relative(path) for path in generated}
    # The README is text the script writes, so it must match byte for byte; images
    # may differ between OpenCV builds (fonts, codecs), so only their names are checked.
    assert (SAMPLES_DIR / "README.md").read_text() == next(p for p in generated if p.name == "README.md").read_text()


def test_samples_are_small_and_cover_both_polarities_and_cases(generated):
    images = [path for path in generated if path.suffix in (".png", ".jpg")]
    assert all(path.stat().st_size < MAX_BYTES for path in images)
    letters = [path.name.split("_")[0] for path in images if not path.name.startswith("word_")]
    assert len(letters) >= 12 and all(len(letter) == 1 for letter in letters)
    assert any(letter.isupper() for letter in letters) and any(letter.islower() for letter in letters)
    light_on_dark = [_border_is_dark(path) for path in images]
    assert any(light_on_dark) and not all(light_on_dark)


def _border_is_dark(path: Path) -> bool:
    gray = to_gray(load_image(path))
    return float(np.median(np.concatenate([gray[0], gray[-1], gray[:, 0], gray[:, -1]]))) < 0.5


def test_every_single_letter_sample_gives_a_clean_glyph(generated):
    for path in generated:
        if path.suffix not in (".png", ".jpg") or path.name.startswith("word_"):
            continue
        glyph = canonical(path)
        ink = glyph > 127
        assert 0.03 < ink.mean() < 0.6, path.name  # a letter, not a blank or a blob (thin pen: 0.047)
        assert glyph[0].max() == 0 and glyph[-1].max() == 0, path.name  # the margin is empty


def test_the_word_sample_splits_into_its_letters(make_samples, generated):
    word = next(path for path in generated if path.name.startswith("word_"))
    assert len(split_word(word)) == len(make_samples.WORD)
