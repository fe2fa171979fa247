"""Tests of lettercnn.data: letter folders, splits, augmentation, synthetic letters, EMNIST import."""

from __future__ import annotations

import gzip
import logging
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from lettercnn.data import (
    IMG_EXTENSIONS,
    Splits,
    SyntheticLetters,
    import_emnist,
    load_splits,
    read_idx,
    synthetic_splits,
    write_synthetic,
)
from lettercnn.data.augment import GlyphAugment, pixelate
from lettercnn.data.folder import LetterFolder
from lettercnn.data.glyphs import GlyphSet, stratified_split
from lettercnn.data.render import CANVAS, bundled_font_files
from lettercnn.data.scenes import DEFAULT_SCENE
from lettercnn.labels import LETTERS, letter_index
from lettercnn.preprocess import DEFAULT_SPEC

SIZE = DEFAULT_SPEC.size


# --- helpers ---------------------------------------------------------------------


def draw_letter(path: Path, char: str, variant: int = 0) -> None:
    """Write a dark letter on light paper; ``variant`` changes the font and stroke."""
    faces = (cv2.FONT_HERSHEY_SIMPLEX, cv2.FONT_HERSHEY_PLAIN, cv2.FONT_HERSHEY_SCRIPT_SIMPLEX)
    image = np.full((48, 48), 230, dtype=np.uint8)
    cv2.putText(image, char, (8, 38), faces[variant % 3], 1.2, 20, 2 + variant % 3, cv2.LINE_AA)
    path.parent.mkdir(parents=True, exist_ok=True)
    assert cv2.imwrite(str(path), image)


def letter_tree(root: Path, folders: dict[str, int]) -> Path:
    """A tree ``root/<folder>/<i>.png`` with the given number of images per folder."""
    for folder, count in folders.items():
        (root / folder).mkdir(parents=True, exist_ok=True)
        for i in range(count):
            draw_letter(root / folder / f"{i}.png", folder[-1] if folder[-1].isalpha() else "x", i)
    return root


def glyph_keys(dataset: GlyphSet) -> list[bytes]:
    """Glyphs as bytes, to compare datasets as multisets."""
    return sorted(glyph.tobytes() for glyph in dataset.glyphs)


def write_idx(path: Path, array: np.ndarray) -> None:
    """Write a gzip IDX file of unsigned bytes."""
    header = (0x0800 | array.ndim).to_bytes(4, "big") + b"".join(d.to_bytes(4, "big") for d in array.shape)
    path.write_bytes(gzip.compress(header + array.astype(np.uint8).tobytes()))


def emnist_source(src: Path, train: tuple[np.ndarray, np.ndarray], test: tuple[np.ndarray, np.ndarray]) -> Path:
    """The four EMNIST Letters files, images stored transposed as EMNIST does."""
    src.mkdir(parents=True, exist_ok=True)
    for split, (images, labels) in (("train", train), ("test", test)):
        write_idx(src / f"emnist-letters-{split}-images-idx3-ubyte.gz", images.transpose(0, 2, 1))
        write_idx(src / f"emnist-letters-{split}-labels-idx1-ubyte.gz", labels)
    return src


def top_bar_image() -> np.ndarray:
    """A 28x28 image that is not symmetric under transposition: a bar along the top."""
    image = np.zeros((28, 28), dtype=np.uint8)
    image[3:7, 4:24] = 255
    image[7:24, 12:16] = 255  # a T
    return image


@pytest.fixture(scope="module")
def synthetic_tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """write_synthetic output, 10 per letter, shared by the split tests."""
    out = tmp_path_factory.mktemp("synthetic") / "letters"
    write_synthetic(out, 10, seed=3)
    return out


# --- letter folders --------------------------------------------------------------


def test_upper_and_lower_folders_fold_to_one_class(tmp_path: Path) -> None:
    root = letter_tree(tmp_path, {"A": 2, "a": 3, "upper_b": 1, "b_lower": 2})
    dataset = LetterFolder(root)
    assert dataset.classes == list(LETTERS)
    assert dataset.folder_to_idx == {"A": 0, "a": 0, "b_lower": 1, "upper_b": 1}
    assert sorted(dataset.targets) == [0] * 5 + [1] * 3
    assert len(dataset) == 8 and dataset.glyphs.shape == (8, SIZE, SIZE)


def test_items_are_float_tensors_of_one_channel_and_int_labels(tmp_path: Path) -> None:
    dataset = LetterFolder(letter_tree(tmp_path, {"z": 1}))
    image, label = dataset[0]
    assert image.dtype == torch.float32 and image.shape == (1, SIZE, SIZE)
    assert label == letter_index("Z") and isinstance(label, int)
    assert -1.0 <= image.min() < image.max() <= 1.0  # normalised with mean/std 0.5


def test_glyphs_are_white_on_black_whatever_the_polarity(tmp_path: Path) -> None:
    draw_letter(tmp_path / "L" / "dark_on_light.png", "L")
    inverted = 255 - cv2.imread(str(tmp_path / "L" / "dark_on_light.png"), cv2.IMREAD_GRAYSCALE)
    cv2.imwrite(str(tmp_path / "L" / "light_on_dark.png"), inverted)
    glyphs = LetterFolder(tmp_path).glyphs
    assert glyphs[:, 0, :].max() == 0 and glyphs.max() == 255  # black border, white ink
    assert np.abs(glyphs[0].astype(int) - glyphs[1].astype(int)).mean() < 10


def test_unknown_folders_error_lists_them_and_the_accepted_forms(tmp_path: Path) -> None:
    root = letter_tree(tmp_path, {"A": 1, "digits": 1, "foo": 1})
    with pytest.raises(ValueError, match="unknown class folders") as error:
        LetterFolder(root)
    listed = re.search(r"unknown class folders in .*?: (.*?); ", str(error.value))
    assert listed is not None and listed.group(1) == "'digits', 'foo'"
    assert "upper_a" in str(error.value)


def test_hidden_folders_and_non_image_files_are_ignored(tmp_path: Path) -> None:
    root = letter_tree(tmp_path, {"c": 2, ".ipynb_checkpoints": 1})
    (root / "c" / "notes.txt").write_text("not an image")
    assert len(LetterFolder(root)) == 2


def test_letter_without_images_logs_a_warning(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    root = letter_tree(tmp_path, {"A": 1, "b": 1})
    (root / "C").mkdir()
    with caplog.at_level(logging.WARNING, logger="lettercnn.data"):
        LetterFolder(root)
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    missing = warnings[0].split(": ")[-1].split(", ")
    assert "C" in missing and "Z" in missing and "A" not in missing and "B" not in missing


def test_unreadable_image_is_skipped_counted_and_logged(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    root = letter_tree(tmp_path, {"A": 2})
    (root / "A" / "broken.png").write_bytes(b"\x89PNG not really")
    with caplog.at_level(logging.WARNING, logger="lettercnn.data"):
        dataset = LetterFolder(root)
    assert len(dataset) == 2 and len(dataset.glyphs) == 2
    assert [Path(path).name for path, _ in dataset.skipped] == ["broken.png"]
    assert any("broken.png" in record.getMessage() for record in caplog.records)


def test_tree_without_images_raises_naming_the_root(tmp_path: Path) -> None:
    (tmp_path / "A").mkdir()
    (tmp_path / "A" / "readme.txt").write_text("no images here")
    with pytest.raises(ValueError, match="Couldn't find any image in"):
        LetterFolder(tmp_path)


def test_folder_without_letter_folders_raises(tmp_path: Path) -> None:
    draw_letter(tmp_path / "loose.png", "A")
    with pytest.raises(ValueError, match="Couldn't find any letter folder in"):
        load_splits(tmp_path)


def test_missing_root_raises_file_not_found(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="nowhere"):
        load_splits(tmp_path / "nowhere")


def test_image_extensions_cover_common_formats() -> None:
    for extension in (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp", ".pgm", ".ppm"):
        assert extension in IMG_EXTENSIONS


# --- splits ------------------------------------------------------------------------


def test_flat_tree_is_split_stratified_deterministic_and_disjoint(synthetic_tree: Path) -> None:
    first = load_splits(synthetic_tree, seed=1)
    again = load_splits(synthetic_tree, seed=1)
    other = load_splits(synthetic_tree, seed=2)
    assert first.sizes() == {"train": 208, "val": 26, "test": 26}
    assert all(
        glyph_keys(a) == glyph_keys(b)
        for a, b in zip((first.train, first.val, first.test), (again.train, again.val, again.test), strict=True)
    )
    assert glyph_keys(first.val) != glyph_keys(other.val)
    keys = [set(glyph_keys(part)) for part in (first.train, first.val, first.test)]
    assert not (keys[0] & keys[1] or keys[0] & keys[2] or keys[1] & keys[2])
    assert (first.val.class_counts() == 1).all() and (first.test.class_counts() == 1).all()
    assert "seed 1" in first.source


def test_stratified_split_shares_out_small_classes_and_keeps_one_to_train() -> None:
    targets = np.repeat(np.arange(26), 4)  # 104 items: 10% is 10 items, though each class has only 4
    rest, val, test = stratified_split(targets, (0.1, 0.1), seed=0)
    assert len(val) == 10 and len(test) == 10 and len(rest) == 84
    assert sorted(np.concatenate([rest, val, test]).tolist()) == list(range(104))
    assert (np.bincount(targets[rest], minlength=26) >= 1).all()
    again = stratified_split(targets, (0.1, 0.1), seed=0)
    assert all(np.array_equal(a, b) for a, b in zip(again, (rest, val, test), strict=True))
    rest, val, test = stratified_split(np.array([0, 1, 1]), (0.4, 0.4), seed=0)
    assert 0 in rest and (1 in rest or 2 in rest), "every class keeps an item to train on"


def test_glyph_sets_batch_through_a_data_loader(synthetic_tree: Path) -> None:
    splits = load_splits(synthetic_tree)
    images, labels = next(iter(torch.utils.data.DataLoader(splits.train, batch_size=16, shuffle=True)))
    assert images.shape == (16, 1, SIZE, SIZE) and images.dtype == torch.float32
    assert labels.dtype == torch.int64 and labels.max() < len(LETTERS)


def test_augment_applies_to_the_training_split_only(synthetic_tree: Path) -> None:
    augmented = load_splits(synthetic_tree)
    plain = load_splits(synthetic_tree, augment=False)
    assert isinstance(augmented.train.transform, GlyphAugment)
    assert augmented.val.transform is None and augmented.test.transform is None
    assert plain.train.transform is None


def test_bad_split_fractions_raise_naming_them(synthetic_tree: Path) -> None:
    with pytest.raises(ValueError, match="val_fraction must be in"):
        load_splits(synthetic_tree, val_fraction=1.5)
    with pytest.raises(ValueError, match="leave something to train on"):
        load_splits(synthetic_tree, val_fraction=0.5, test_fraction=0.5)


def test_train_and_test_folders_are_used_and_val_is_carved_from_train(tmp_path: Path) -> None:
    letter_tree(tmp_path / "train", {"A": 10, "b": 10})
    letter_tree(tmp_path / "test", {"a": 3, "B": 2})
    splits = load_splits(tmp_path, val_fraction=0.2, test_fraction=0.3)
    assert splits.sizes() == {"train": 16, "val": 4, "test": 5}
    assert splits.test.class_counts()[:2].tolist() == [3, 2]
    assert "train/ + test/" in splits.source and "val 20% of train/" in splits.source


def test_val_folder_is_used_when_present(tmp_path: Path) -> None:
    for split, count in (("train", 4), ("val", 2), ("test", 1)):
        letter_tree(tmp_path / split, {"q": count})
    splits = load_splits(tmp_path)
    assert splits.sizes() == {"train": 4, "val": 2, "test": 1}
    assert splits.source.endswith(": train/ + val/ + test/")


def test_train_folder_alone_gets_val_and_test_carved(tmp_path: Path) -> None:
    letter_tree(tmp_path / "train", {"E": 10})
    splits = load_splits(tmp_path)
    assert splits.sizes() == {"train": 8, "val": 1, "test": 1}


def test_split_folders_mixed_with_letter_folders_raise(tmp_path: Path) -> None:
    letter_tree(tmp_path / "train", {"A": 1})
    letter_tree(tmp_path, {"B": 1})
    with pytest.raises(ValueError, match="mixes split folders"):
        load_splits(tmp_path)


def test_test_folder_without_train_folder_raises(tmp_path: Path) -> None:
    letter_tree(tmp_path / "test", {"A": 1})
    with pytest.raises(ValueError, match="no train/ folder"):
        load_splits(tmp_path)


def test_progress_reports_every_image_once_over_all_split_folders(tmp_path: Path) -> None:
    letter_tree(tmp_path / "train", {"A": 3})
    letter_tree(tmp_path / "test", {"A": 2})
    calls: list[tuple[int, int]] = []
    load_splits(tmp_path, progress=lambda done, total: calls.append((done, total)))
    assert calls[-1] == (5, 5) and {total for _, total in calls} == {5}


def test_glyph_set_rejects_wrong_shapes_and_labels() -> None:
    with pytest.raises(ValueError, match="uint8"):
        GlyphSet(np.zeros((2, 28, 28), np.uint8), [0, 1])
    with pytest.raises(ValueError, match="0..25"):
        GlyphSet(np.zeros((1, SIZE, SIZE), np.uint8), [26])


def test_tensors_match_items_without_augmentation(synthetic_tree: Path) -> None:
    splits = load_splits(synthetic_tree)
    inputs, targets = splits.val.tensors()
    assert inputs.shape == (len(splits.val), 1, SIZE, SIZE)
    image, label = splits.val[3]
    assert torch.equal(inputs[3], image) and int(targets[3]) == label


# --- augmentation ------------------------------------------------------------------


def test_pixelate_draws_the_glyph_in_square_blocks_of_ink_or_paper() -> None:
    glyph = np.zeros((70, 50), np.uint8)
    cv2.putText(glyph, "A", (2, 66), cv2.FONT_HERSHEY_SIMPLEX, 2.5, 255, 9, cv2.LINE_AA)
    blocky = pixelate(glyph, 7)
    assert blocky.shape == glyph.shape and set(np.unique(blocky)) == {0, 255}
    assert 0.5 < blocky.sum() / glyph.sum() < 2.0  # the same letter, not a blob or a speck
    block = 10  # 70 rows / 7: every 10x10 block is one colour
    for top in range(0, 70, block):
        for left in range(0, 50, block):
            assert len(np.unique(blocky[top : top + block, left : left + block])) == 1


def test_pixelate_leaves_a_glyph_it_would_break_apart() -> None:
    thin = np.zeros((60, 40), np.uint8)
    cv2.line(thin, (3, 57), (36, 3), 255, 3)  # a thin slanted stroke: six rows cut it in two
    assert pixelate(thin, 6) is thin
    hairline = np.zeros((60, 40), np.uint8)
    cv2.line(hairline, (3, 57), (36, 3), 255, 1)  # too thin for any block to be ink
    assert pixelate(hairline, 6) is hairline


def test_augmentation_distorts_but_keeps_the_canonical_form(synthetic_tree: Path) -> None:
    glyphs = load_splits(synthetic_tree, augment=False).train.glyphs[:60]
    augment = GlyphAugment()
    rng = np.random.default_rng(0)
    outputs = np.stack([augment(glyph, rng) for glyph in glyphs])
    assert outputs.shape == glyphs.shape and outputs.dtype == np.uint8
    assert np.mean([not np.array_equal(a, b) for a, b in zip(outputs, glyphs, strict=True)]) > 0.9
    inner = slice(DEFAULT_SPEC.margin - 1, SIZE - DEFAULT_SPEC.margin + 1)
    border = outputs.copy()
    border[:, inner, inner] = 0
    assert border.max() == 0, "ink stays inside the margin, as canonical puts it"
    assert (outputs.reshape(len(outputs), -1).max(axis=1) > 128).all(), "no letter is erased"


def test_augmentation_follows_torch_seed() -> None:
    glyph = np.zeros((SIZE, SIZE), np.uint8)
    glyph[4:28, 12:20] = 255
    augment = GlyphAugment()
    torch.manual_seed(5)
    first = [augment(glyph) for _ in range(5)]
    torch.manual_seed(5)
    assert all(np.array_equal(a, b) for a, b in zip(first, [augment(glyph) for _ in range(5)], strict=True))
    torch.manual_seed(6)
    assert not all(np.array_equal(a, b) for a, b in zip(first, [augment(glyph) for _ in range(5)], strict=True))


def test_augmentation_costs_well_under_a_millisecond_per_glyph(synthetic_tree: Path) -> None:
    glyphs = load_splits(synthetic_tree, augment=False).train.glyphs
    augment, rng = GlyphAugment(), np.random.default_rng(0)
    start = time.perf_counter()
    for glyph in glyphs:
        augment(glyph, rng)
    per_glyph = (time.perf_counter() - start) / len(glyphs)
    assert per_glyph < 1e-3, f"{per_glyph * 1e6:.0f} us per glyph"


# --- synthetic letters -------------------------------------------------------------


def test_synthetic_same_seed_gives_identical_glyphs_and_another_seed_differs() -> None:
    first, again, other = (SyntheticLetters(2, seed=s) for s in (7, 7, 8))
    assert np.array_equal(first.glyphs, again.glyphs) and np.array_equal(first.targets, again.targets)
    assert first.glyphs.shape == (52, SIZE, SIZE) and first.glyphs.dtype == np.uint8
    assert not np.array_equal(first.glyphs, other.glyphs)


def test_synthetic_covers_all_letters_in_both_cases() -> None:
    dataset = SyntheticLetters(2, seed=0)
    assert (dataset.class_counts() == 2).all()
    assert set(dataset.chars.tolist()) == set(LETTERS) | {c.lower() for c in LETTERS}
    assert all(glyph.max() > 0 for glyph in dataset.glyphs), "every render survives canonical"


def test_synthetic_draws_from_bundled_and_hershey_fonts_without_symbol_fonts() -> None:
    dataset = SyntheticLetters(1, seed=0, augment=False)
    names = dataset.font_names
    assert any(name.startswith("DejaVu") for name in names) and any(name.startswith("hershey") for name in names)
    assert "cmsy10" not in names and "cmex10" not in names and not any("LastResort" in n for n in names)
    assert any("script" in name for name in names)


def test_synthetic_splits_share_no_sample_and_only_train_is_augmented() -> None:
    splits = synthetic_splits(10, seed=0)
    assert isinstance(splits, Splits)
    assert splits.sizes() == {"train": 208, "val": 26, "test": 26}
    keys = [set(glyph_keys(part)) for part in (splits.train, splits.val, splits.test)]
    assert not (keys[0] & keys[1] or keys[0] & keys[2] or keys[1] & keys[2])
    assert splits.train.transform is not None and splits.val.transform is None
    assert "seed 0" in splits.source


def test_synthetic_does_not_depend_on_the_number_of_workers() -> None:
    serial = SyntheticLetters(2, seed=4, workers=1)
    pooled = SyntheticLetters(2, seed=4, workers=2)
    assert np.array_equal(serial.glyphs, pooled.glyphs) and np.array_equal(serial.fonts, pooled.fonts)


def test_synthetic_rejects_bad_arguments() -> None:
    with pytest.raises(ValueError, match="per_letter must be a positive integer"):
        SyntheticLetters(0)
    with pytest.raises(ValueError, match="seed must be a non-negative integer"):
        SyntheticLetters(1, seed=-1)
    with pytest.raises(ValueError, match="unknown split 'dev'; expected one of train, val, test"):
        SyntheticLetters(1, split="dev")


def test_fonts_dir_adds_the_users_fonts(tmp_path: Path) -> None:
    shutil.copy(bundled_font_files()[0], tmp_path / "MyHand.ttf")
    dataset = SyntheticLetters(1, seed=0, fonts_dir=tmp_path)
    assert "user:MyHand" in dataset.font_names


def test_fonts_dir_without_fonts_raises_naming_it(tmp_path: Path) -> None:
    (tmp_path / "readme.txt").write_text("no fonts")
    with pytest.raises(ValueError, match=f"no usable font in fonts_dir {tmp_path}"):
        SyntheticLetters(1, fonts_dir=tmp_path)


def test_fonts_dir_with_only_broken_fonts_raises_naming_each(tmp_path: Path) -> None:
    (tmp_path / "broken.ttf").write_bytes(b"not a font")
    with pytest.raises(ValueError, match="broken.ttf cannot be loaded"):
        synthetic_splits(3, fonts_dir=tmp_path)


def test_missing_fonts_dir_raises(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="is not a folder"):
        write_synthetic(tmp_path / "out", 1, fonts_dir=tmp_path / "no-fonts")
    assert not (tmp_path / "out").exists()


def test_write_synthetic_writes_a_letter_tree_that_reloads_to_the_same_glyphs(
    synthetic_tree: Path, tmp_path: Path
) -> None:
    assert sorted(p.name for p in synthetic_tree.iterdir()) == list(LETTERS)
    files = sorted((synthetic_tree / "Q").glob("*.png"))
    assert len(files) == 10 and {f.name.split("-")[1] for f in files} == {"Q", "q"}
    shapes = {cv2.imread(str(f), cv2.IMREAD_UNCHANGED).shape for f in files}  # letters and whole scenes
    low, high = DEFAULT_SCENE.frame
    assert all(len(s) == 2 and (s == (CANVAS, CANVAS) or (s[0] == s[1] and low <= s[0] <= high)) for s in shapes)
    reloaded = load_splits(synthetic_tree, val_fraction=0.0, test_fraction=0.0, augment=False).train
    assert glyph_keys(reloaded) == glyph_keys(SyntheticLetters(10, seed=3))
    assert not [p for p in synthetic_tree.parent.iterdir() if p.name.startswith(".")], "no staging left"


def test_write_synthetic_returns_counts_per_letter_and_reports_progress(tmp_path: Path) -> None:
    calls: list[tuple[int, int]] = []
    counts = write_synthetic(tmp_path / "out", 1, progress=lambda d, t: calls.append((d, t)))
    assert counts == dict.fromkeys(LETTERS, 1) and calls[-1] == (26, 26)


def test_write_synthetic_refuses_a_non_empty_folder_unless_overwrite(tmp_path: Path) -> None:
    out = tmp_path / "out"
    write_synthetic(out, 1, seed=0)
    before = sorted(p.name for p in (out / "A").iterdir())
    with pytest.raises(ValueError, match="not empty"):
        write_synthetic(out, 1, seed=1)
    assert sorted(p.name for p in (out / "A").iterdir()) == before
    write_synthetic(out, 2, seed=1, overwrite=True)
    assert len(list((out / "A").iterdir())) == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_overwrite_refuses_a_folder_that_is_not_an_image_tree(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("precious")
    with pytest.raises(ValueError, match="refusing to overwrite"):
        write_synthetic(tmp_path, 1, overwrite=True)
    assert (tmp_path / "notes.txt").read_text() == "precious"


def test_interrupted_write_leaves_nothing_behind(tmp_path: Path) -> None:
    def stop(done: int, total: int) -> None:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        write_synthetic(tmp_path / "out", 30, progress=stop)  # 780 samples: stops after the first chunk
    assert list(tmp_path.iterdir()) == []


# --- EMNIST ------------------------------------------------------------------------


def test_emnist_import_undoes_the_transposition_and_the_one_based_labels(tmp_path: Path) -> None:
    bar = top_bar_image()
    train = (np.stack([bar, bar, np.zeros_like(bar)]), np.array([1, 26, 2]))
    test = (np.stack([bar]), np.array([3]))
    counts = import_emnist(emnist_source(tmp_path / "src", train, test), tmp_path / "out")
    assert counts["train"]["A"] == 1 and counts["train"]["Z"] == 1 and counts["train"]["B"] == 1
    assert counts["test"]["C"] == 1 and sum(counts["test"].values()) == 1
    written = cv2.imread(str(next((tmp_path / "out" / "train" / "A").glob("*.png"))), cv2.IMREAD_UNCHANGED)
    assert np.array_equal(written, bar), "stored transposed, written upright"
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["test", "train"]


def test_emnist_tree_loads_with_its_own_train_and_test_split(tmp_path: Path) -> None:
    bar = top_bar_image()
    train = (np.stack([bar] * 20), np.repeat([1, 2], 10))
    src = emnist_source(tmp_path / "src", train, (np.stack([bar] * 4), np.array([1, 1, 2, 2])))
    import_emnist(src, tmp_path / "out")
    splits = load_splits(tmp_path / "out")
    assert splits.sizes() == {"train": 18, "val": 2, "test": 4}
    assert "train/ + test/" in splits.source


def test_read_idx_reads_what_was_written(tmp_path: Path) -> None:
    array = np.arange(24, dtype=np.uint8).reshape(2, 3, 4)
    write_idx(tmp_path / "x.gz", array)
    assert np.array_equal(read_idx(tmp_path / "x.gz"), array)


def test_read_idx_rejects_a_wrong_magic_number_and_a_short_body(tmp_path: Path) -> None:
    (tmp_path / "bad.gz").write_bytes(gzip.compress((1234).to_bytes(4, "big") + bytes(8)))
    with pytest.raises(ValueError, match="bad.gz has magic number 1234; expected .*2049.*2051"):
        read_idx(tmp_path / "bad.gz")
    header = (2051).to_bytes(4, "big") + b"".join(d.to_bytes(4, "big") for d in (2, 28, 28))
    (tmp_path / "short.gz").write_bytes(gzip.compress(header + bytes(100)))
    with pytest.raises(ValueError, match=r"short.gz header says shape \(2, 28, 28\)"):
        read_idx(tmp_path / "short.gz")
    (tmp_path / "plain.gz").write_bytes(b"not gzip at all")
    with pytest.raises(ValueError, match="plain.gz is not a readable gzip file"):
        read_idx(tmp_path / "plain.gz")


def test_emnist_missing_files_error_lists_the_expected_names(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError) as error:
        import_emnist(tmp_path, tmp_path / "out")
    for split in ("train", "test"):
        for kind in ("images-idx3", "labels-idx1"):
            assert f"emnist-letters-{split}-{kind}-ubyte.gz" in str(error.value)


def test_emnist_swapped_files_error_names_the_file(tmp_path: Path) -> None:
    bar = top_bar_image()
    src = emnist_source(tmp_path / "src", (np.stack([bar]), np.array([1])), (np.stack([bar]), np.array([1])))
    images, labels = (src / f"emnist-letters-test-{k}-ubyte.gz" for k in ("images-idx3", "labels-idx1"))
    images.write_bytes(labels.read_bytes())
    with pytest.raises(
        ValueError, match="emnist-letters-test-images-idx3-ubyte.gz has magic number 2049; expected 2051"
    ):
        import_emnist(src, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_emnist_count_mismatch_and_label_range_are_checked(tmp_path: Path) -> None:
    bar = top_bar_image()
    src = emnist_source(tmp_path / "a", (np.stack([bar, bar]), np.array([1])), (np.stack([bar]), np.array([1])))
    with pytest.raises(ValueError, match="has 2 images but .* has 1 labels"):
        import_emnist(src, tmp_path / "out")
    src = emnist_source(tmp_path / "b", (np.stack([bar]), np.array([0])), (np.stack([bar]), np.array([1])))
    with pytest.raises(ValueError, match="holds label 0; EMNIST Letters labels are 1..26"):
        import_emnist(src, tmp_path / "out")


# --- imports -----------------------------------------------------------------------


def test_torch_free_data_modules_do_not_import_torch() -> None:
    code = (
        "import sys, lettercnn.data, lettercnn.data.emnist, lettercnn.data.render, lettercnn.data.imagetree; "
        "assert 'torch' not in sys.modules, 'torch imported'"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_synthetic_split_renders_one_split_of_synthetic_splits_alone():
    from lettercnn.data import synthetic_split

    splits = synthetic_splits(20, seed=3, augment=False)
    for name in ("val", "test"):
        alone = synthetic_split(name, 20, seed=3)
        assert np.array_equal(alone.glyphs, getattr(splits, name).glyphs)
        assert np.array_equal(alone.targets, getattr(splits, name).targets)
    assert len(synthetic_split("test", 4, seed=3)) == 0  # round(0.4) letters per letter: none


def test_auto_workers_follow_the_cores_this_process_may_use(monkeypatch: pytest.MonkeyPatch) -> None:
    from lettercnn.data.parallel import MAX_AUTO_WORKERS, PARALLEL_MIN_ITEMS, resolve_workers

    monkeypatch.setattr(os, "cpu_count", lambda: 64)
    monkeypatch.setattr(os, "sched_getaffinity", lambda _pid: {0, 1}, raising=False)  # a 2-core container
    assert resolve_workers(None, PARALLEL_MIN_ITEMS) == 2
    monkeypatch.setattr(os, "sched_getaffinity", lambda _pid: set(range(32)), raising=False)
    assert resolve_workers(None, PARALLEL_MIN_ITEMS) == MAX_AUTO_WORKERS
    assert resolve_workers(None, PARALLEL_MIN_ITEMS - 1) == 1  # a small job: no pool
