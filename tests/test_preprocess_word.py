"""Word mode: a one-line word -> its letters, left to right, each as a canonical glyph."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from lettercnn.preprocess import ImageError, InputSpec, LetterCrop, canonical, split_word

PAPER, INK = 235, 20


def render(
    text: str,
    *,
    font: int = cv2.FONT_HERSHEY_SIMPLEX,
    scale: float = 3.0,
    thickness: int = 6,
    ink: int = INK,
    paper: int = PAPER,
    pad: int = 20,
) -> np.ndarray:
    """A word in one line, uint8 gray, ``pad`` pixels of paper around it."""
    (width, height), baseline = cv2.getTextSize(text, font, scale, thickness)
    image = np.full((height + baseline + 2 * pad, width + 2 * pad), paper, np.uint8)
    cv2.putText(image, text, (pad, height + pad), font, scale, ink, thickness, cv2.LINE_AA)
    return image


def photo(image: np.ndarray, seed: int = 0) -> np.ndarray:
    """Uneven light (dim on the left) and sensor noise over a rendered word."""
    rng = np.random.default_rng(seed)
    rows, cols = np.mgrid[0 : image.shape[0], 0 : image.shape[1]]
    light = 0.55 + 0.45 * (cols / image.shape[1]) * (0.7 + 0.3 * rows / image.shape[0])
    noisy = image.astype(np.float32) * light + rng.normal(0.0, 8.0, image.shape)
    return np.clip(noisy, 0, 255).astype(np.uint8)


def cut_out(image: np.ndarray, box: tuple[int, int, int, int], paper: int, pad: int = 4) -> np.ndarray:
    """The box of one letter, on a little fresh paper."""
    x, y, w, h = box
    return cv2.copyMakeBorder(image[y : y + h, x : x + w], pad, pad, pad, pad, cv2.BORDER_CONSTANT, value=paper)


def assert_covers_ink(crops: list[LetterCrop], image: np.ndarray, dark_ink: bool = True) -> None:
    """Every inked pixel (i and j dots included) lies in some letter's box."""
    ink = image < 128 if dark_ink else image > 128
    covered = np.zeros_like(ink)
    for crop in crops:
        x, y, w, h = crop.box
        covered[y : y + h, x : x + w] = True
    assert covered[ink].all()


def assert_left_to_right(crops: list[LetterCrop], shape: tuple[int, ...]) -> None:
    for crop in crops:
        x, y, w, h = crop.box
        assert w > 0 and h > 0 and x >= 0 and y >= 0 and x + w <= shape[1] and y + h <= shape[0]
    lefts, rights = [crop.box[0] for crop in crops], [crop.box[0] + crop.box[2] for crop in crops]
    assert lefts == sorted(lefts) and rights == sorted(rights)  # slanted script letters may overlap a little


@pytest.mark.parametrize(("ink", "paper"), [(INK, PAPER), (PAPER, INK)], ids=["dark-on-light", "light-on-dark"])
def test_a_word_splits_into_its_letters_left_to_right_in_either_polarity(ink, paper):
    image = render("HELLO", ink=ink, paper=paper)
    crops = split_word(image)
    assert len(crops) == 5
    assert_left_to_right(crops, image.shape)
    assert_covers_ink(crops, image, dark_ink=ink < paper)
    for before, after in zip(crops, crops[1:]):
        assert before.box[0] + before.box[2] <= after.box[0]  # upright letters: side by side
    for crop in crops:
        assert crop.glyph.shape == (32, 32) and crop.glyph.dtype == np.uint8
        assert crop.glyph.max() == 255 and crop.glyph[0].max() == 0  # white glyph, black margin


@pytest.mark.parametrize("text", ["Jim", "lip", "jig", "Kiwi"])
@pytest.mark.parametrize("font", [cv2.FONT_HERSHEY_SIMPLEX, cv2.FONT_HERSHEY_TRIPLEX, cv2.FONT_HERSHEY_SCRIPT_SIMPLEX])
def test_the_dot_of_an_i_or_j_stays_with_its_letter(text, font):
    image = render(text, font=font, thickness=3)
    crops = split_word(image)
    assert len(crops) == len(text)
    assert_left_to_right(crops, image.shape)
    assert_covers_ink(crops, image)


def test_the_dot_is_inside_the_box_of_its_letter():
    image = render("lip")
    i_box = split_word(image)[1].box
    ink_rows = np.flatnonzero((image[:, i_box[0] : i_box[0] + i_box[2]] < 128).any(axis=1))
    assert i_box[1] <= ink_rows[0]  # the box starts at the dot, above the stem


@pytest.mark.parametrize(("text", "paper"), [("Jim", PAPER), ("Kiwi", INK)])
def test_each_glyph_is_the_canonical_glyph_of_its_letter_cut_out(text, paper):
    ink = INK if paper == PAPER else PAPER
    image = render(text, ink=ink, paper=paper)
    for crop in split_word(image):
        alone = canonical(cut_out(image, crop.box, paper))
        assert np.abs(alone.astype(int) - crop.glyph.astype(int)).mean() < 6


@pytest.mark.parametrize("threshold", ["otsu", "adaptive"])
def test_a_noisy_photo_under_uneven_light_still_splits(threshold):
    clean = render("Jim")
    crops = split_word(photo(clean), threshold=threshold)
    assert len(crops) == 3
    reference = split_word(clean)
    for got, want in zip(crops, reference):  # boxes within a couple of pixels of the clean ones
        assert np.abs(np.subtract(got.box, want.box)).max() <= 3


def test_a_large_photo_gives_tight_boxes_in_its_own_pixels():
    image = render("Kiwi", scale=24.0, thickness=40, pad=160)
    assert max(image.shape) > 1600  # analysed shrunk
    crops = split_word(image)
    assert len(crops) == 4
    assert_covers_ink(crops, image)
    ink = image < 128
    for crop in crops:
        x, y, w, h = crop.box
        rows, cols = np.flatnonzero(ink[y : y + h, x : x + w].any(1)), np.flatnonzero(ink[y : y + h, x : x + w].any(0))
        tolerance = 4  # pixels: about one analysis pixel, scaled back
        assert rows[0] <= tolerance and rows[-1] >= h - 1 - tolerance
        assert cols[0] <= tolerance and cols[-1] >= w - 1 - tolerance


def test_broken_strokes_are_joined():
    image = render("HELLO", thickness=8)
    image[70:73, :] = PAPER  # a crack across every letter
    assert len(split_word(image)) == 5


def test_specks_underline_and_frame_edge_are_not_letters():
    image = render("Jump", pad=40)
    rng = np.random.default_rng(0)
    for x, y in rng.integers([0, 0], [image.shape[1], image.shape[0]], size=(30, 2)):
        cv2.circle(image, (int(x), int(y)), 1, INK, -1)  # specks, some on the letters
    image[:, :15] = 40  # the table beyond the paper's edge
    middle = image.shape[0] // 2
    cv2.line(image, (image.shape[1] - 35, middle), (image.shape[1] - 8, middle), INK, 1)  # a hairline: long, no ink
    cv2.line(image, (50, image.shape[0] - 30), (image.shape[1] - 50, image.shape[0] - 30), INK, 2)
    crops = split_word(image)
    assert len(crops) == 4
    assert_left_to_right(crops, image.shape)


@pytest.mark.parametrize(
    "blank",
    [np.zeros((60, 200), np.uint8), np.full((60, 200), 200, np.uint8), np.full((60, 200, 3), 1.0, np.float32)],
    ids=["black", "gray", "white-float"],
)
def test_a_blank_image_has_no_letters(blank):
    assert split_word(blank) == []


def test_reads_a_file_and_honours_the_spec(tmp_path):
    path = tmp_path / "word.png"
    cv2.imwrite(str(path), cv2.cvtColor(render("Hi"), cv2.COLOR_GRAY2BGR))
    crops = split_word(path, spec=InputSpec(size=28, margin=2))
    assert len(crops) == 2 and all(crop.glyph.shape == (28, 28) for crop in crops)


def test_bad_input_raises(tmp_path):
    not_an_image = tmp_path / "word.png"
    not_an_image.write_text("no pixels here")
    with pytest.raises(ImageError, match="word.png"):
        split_word(not_an_image)
    with pytest.raises(ImageError):
        split_word(np.zeros((4, 4, 2), np.uint8))
    with pytest.raises(ValueError, match="otsu"):
        split_word(render("Hi"), threshold="sauvola")  # type: ignore[arg-type]


def test_a_wide_gap_between_words_is_a_space():
    crops = split_word(render("HELLO WORLD"))
    assert len(crops) == 10
    assert [crop.space_before for crop in crops] == [False] * 5 + [True] + [False] * 4


def test_letters_of_one_word_have_no_space_even_beside_a_narrow_letter():
    assert not any(crop.space_before for crop in split_word(render("Wiki")))
