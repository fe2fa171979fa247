"""Preprocessing in the field: uneven light, shadows, boxes, rules, neighbours, blank pages.

Each scene is drawn here with OpenCV (not with the training scenes), and its
canonical glyph is compared with the glyph of the same letter on plain paper.
"""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from lettercnn.preprocess import canonical, dark_ink, glyph_bright
from lettercnn.preprocess.choice import INSIDE_KEEP, _analysis_copy, inside_part
from lettercnn.preprocess.glyph import bounds, cut_off

SIDE = 160


def ink(text: str = "R", *, side: int = SIDE, scale: float = 3.5, thickness: int = 9, org=(45, 120)) -> np.ndarray:
    """Ink coverage (float 0..1) of a Hershey letter on a side x side frame."""
    coverage = np.zeros((side, side), np.uint8)
    cv2.putText(coverage, text, org, cv2.FONT_HERSHEY_SIMPLEX, scale, 255, thickness, cv2.LINE_AA)
    return coverage.astype(np.float32) / 255.0


def photo(coverage: np.ndarray, light: np.ndarray | None = None, paper=0.85, ink_level=0.1, noise=0.0) -> np.ndarray:
    """Reflectance x light (+ noise) as a uint8 frame."""
    reflect = paper + (ink_level - paper) * coverage
    image = reflect * (1.0 if light is None else light)
    if noise:
        image = image + np.random.default_rng(0).normal(0, noise, image.shape)
    return (np.clip(image, 0, 1) * 255 + 0.5).astype(np.uint8)


def ramp(strength: float, side: int = SIDE) -> np.ndarray:
    """Light falling off by ``strength`` from the left edge to the right."""
    return np.tile(np.linspace(1.0, 1.0 - strength, side, dtype=np.float32), (side, 1))


def differs(a: np.ndarray, b: np.ndarray) -> float:
    """Mean absolute difference of two canonical glyphs, 0..255."""
    return float(np.abs(a.astype(int) - b.astype(int)).mean())


REFERENCE = canonical(photo(ink()))


def test_a_strong_light_gradient_is_flattened_before_the_threshold():
    assert differs(canonical(photo(ink(), ramp(0.7))), REFERENCE) < 12


def test_a_soft_shadow_over_part_of_the_letter_is_no_glyph():
    shadow = np.ones((SIDE, SIDE), np.float32)
    shadow[:, : SIDE // 2] = 0.45
    light = cv2.GaussianBlur(shadow, (0, 0), 6) * ramp(0.3)
    assert differs(canonical(photo(ink(), light)), REFERENCE) < 15


def test_the_32x32_input_carries_no_lighting_gradient():
    glyph = canonical(photo(ink("H", org=(35, 120)), ramp(0.7))).astype(float)
    strokes = glyph > 128
    left, right = glyph[:, :16][strokes[:, :16]], glyph[:, 16:][strokes[:, 16:]]
    assert abs(left.mean() - right.mean()) < 12  # the stroke is as bright on the dim side
    assert glyph[~cv2.dilate(strokes.astype(np.uint8), np.ones((5, 5), np.uint8)).astype(bool)].max() == 0


def test_a_box_drawn_around_the_letter_is_not_the_glyph():
    coverage = ink()
    cv2.rectangle(coverage, (25, 15), (135, 140), 1.0, 3)
    assert differs(canonical(photo(coverage)), REFERENCE) < 10


def test_ruled_lines_across_the_page_are_erased_and_the_letter_kept():
    coverage = ink()
    for y in (30, 75, 121, 150):  # one rule runs along the letter's foot, one through it
        cv2.line(coverage, (0, y), (SIDE - 1, y + 3), 0.5, 1, cv2.LINE_AA)
    assert differs(canonical(photo(coverage)), REFERENCE) < 15


def test_a_letter_whose_own_bar_spans_a_tight_crop_keeps_it():
    tight = photo(ink("T", side=64, scale=2.0, thickness=5, org=(3, 52)))
    glyph = canonical(tight)
    assert (glyph[:8] > 128).sum() > 30  # the bar is there: a T, not an I


def test_the_letter_near_the_centre_wins_over_neighbours_cut_off_by_the_frame():
    coverage = ink("K", org=(50, 115))
    neighbours = np.zeros((SIDE, SIDE), np.uint8)
    cv2.putText(neighbours, "A", (-40, 115), cv2.FONT_HERSHEY_SIMPLEX, 3.5, 255, 9, cv2.LINE_AA)
    cv2.putText(neighbours, "W", (135, 115), cv2.FONT_HERSHEY_SIMPLEX, 3.5, 255, 9, cv2.LINE_AA)
    framed = canonical(photo(np.maximum(coverage, neighbours.astype(np.float32) / 255)))
    assert differs(framed, canonical(photo(coverage))) < 8


def test_a_letter_written_in_parts_a_little_apart_is_one_glyph():
    coverage = np.zeros((SIDE, SIDE), np.float32)
    cv2.line(coverage, (45, 36), (115, 36), 1.0, 11, cv2.LINE_AA)  # a T's bar...
    cv2.line(coverage, (80, 58), (80, 134), 1.0, 9, cv2.LINE_AA)  # ...and its stem, 0.14 of it below
    glyph = canonical(photo(coverage))
    assert (glyph[:8] > 128).sum() > 40  # the bar is there (61 pixels): a T, not the stem alone (22)


def test_letters_a_word_space_apart_stay_apart():
    alone = ink("K", scale=2.0, thickness=6, org=(58, 100))  # x 62-94, 41 px tall
    word = np.maximum(alone, ink("A", scale=2.0, thickness=6, org=(108, 100)))  # from x 108: 0.34 of the K apart
    assert differs(canonical(photo(word)), canonical(photo(alone))) < 8


def test_an_underline_is_no_part_of_the_letter():
    coverage = ink()
    cv2.line(coverage, (35, 132), (125, 134), 1.0, 3, cv2.LINE_AA)
    assert differs(canonical(photo(coverage)), REFERENCE) < 10


@pytest.mark.parametrize("org", [(100, 115), (-45, 115), (50, 60), (110, 195)])
def test_a_letter_cut_off_by_the_frame_is_no_glyph(org):
    cut = photo(ink("K", org=org), ramp(0.3), noise=0.01)  # runs off the right, left, top, bottom-right
    assert not canonical(cut).any()


@pytest.mark.parametrize("ends", [((115, 70), (159, 30)), ((114, 90), (159, 70)), ((114, 60), (150, 159))])
def test_a_stroke_running_off_the_edge_beside_a_whole_letter_is_left_out(ends):
    # A shadow's edge or a stray pen stroke that touches the letter's group and the
    # image's edge made the whole look cut off: the letter was lost.
    coverage = ink()
    cv2.line(coverage, *ends, 0.7, 4, cv2.LINE_AA)
    assert differs(canonical(photo(coverage)), REFERENCE) < 5


def test_the_second_look_keeps_the_inside_only_when_it_is_most_of_the_glyph():
    glyph = np.zeros((60, 60), bool)
    glyph[20:30, 50:60] = True  # 100 pixels running off the right edge
    glyph[20:30, 30:35] = True  # 50 inside: the lesser part, a letter cut off stays cut off
    assert 50 / 150 < INSIDE_KEEP and inside_part(glyph) is None
    glyph[20:40, 20:35] = True  # 300 inside: a letter with a sliver at the edge
    kept = inside_part(glyph)
    assert kept is not None and kept.sum() == 300 and not kept[:, 50:].any()
    assert inside_part(glyph[:, :45]) is None  # nothing touches the edge: nothing to leave out


def test_bounds_end_past_the_last_inked_row_and_column_so_touching_an_edge_is_end_equals_side():
    mask = np.zeros((20, 30), bool)
    mask[3:8, 0:4] = True
    assert bounds(mask) == (3, 8, 0, 4)
    assert cut_off(mask) and cut_off(mask, bounds(mask))  # hugs the left edge only
    mask[:] = False
    mask[5:15, 26:30] = True  # hugs the right edge, the last column
    assert bounds(mask) == (5, 15, 26, 30) and cut_off(mask)
    mask[:, :] = False
    mask[0:20, 10:20] = True  # top to bottom: a tight crop, not cut off
    assert not cut_off(mask)


@pytest.mark.parametrize("seed", range(4))
def test_the_rule_search_copy_of_a_transposed_mask_is_the_transposed_copy(seed):
    # _erase_rules shrinks the mask once and transposes the copy to look for lines
    # top to bottom: that must be what shrinking the transposed mask gives.
    rng = np.random.default_rng(seed)
    for _ in range(50):
        height, width = (int(side) for side in rng.integers(60, 600, 2))
        ink = rng.random((height, width)) < rng.uniform(0.001, 0.2)
        if seed % 2:
            ink = cv2.dilate(ink.astype(np.uint8), np.ones((3, 3), np.uint8)) > 0
        small, scale = _analysis_copy(ink)
        small_t, scale_t = _analysis_copy(np.ascontiguousarray(ink.T))
        assert scale == scale_t
        assert np.array_equal(small.T, small_t)


def test_a_whole_letter_near_the_edge_and_a_tight_crop_are_still_read():
    near = photo(ink("K", org=(94, 115)))  # one column of paper left to its right
    assert canonical(near).any()
    tight = photo(ink("I", side=40, scale=1.2, thickness=4, org=(10, 36)))[12:36, 6:24]  # ink at top and bottom
    assert canonical(tight).any()


@pytest.mark.parametrize("strength", [0.0, 0.6])
def test_a_blank_page_has_no_glyph_even_under_a_lamp(strength):
    blank = photo(np.zeros((SIDE, SIDE), np.float32), ramp(strength), noise=0.02)
    assert not canonical(blank).any()


def test_chalk_on_a_board_under_uneven_light_is_read_as_light_ink():
    board = photo(ink(), ramp(0.6), paper=0.15, ink_level=0.85)
    gray = board.astype(np.float32) / 255
    assert not dark_ink(gray)
    assert differs(canonical(board), REFERENCE) < 12


def test_glyph_bright_gives_the_ink_as_a_share_of_the_local_light():
    bright = glyph_bright(photo(ink(), ramp(0.6)).astype(np.float32) / 255)
    strokes = ink() > 0.9
    assert bright[strokes].min() > 0.7  # black ink is dark under dim light and bright light alike
    assert np.median(bright[ink() == 0]) < 0.03  # the paper is flat zero


def test_a_dark_band_along_one_edge_of_a_blank_page_is_no_glyph():
    light = np.ones((SIDE, SIDE), np.float32)
    light[:, :14] = np.linspace(0.55, 1.0, 14, dtype=np.float32)  # the lamp's fall-off at the left edge
    assert not canonical(photo(np.zeros((SIDE, SIDE), np.float32), light, noise=0.01)).any()


def speckled(image: np.ndarray, share: float, seed: int) -> np.ndarray:
    """``image`` with ``share`` of its pixels black and as many white (dead and hot pixels)."""
    out = image.copy()
    draw = np.random.default_rng(seed).random(image.shape)
    out[draw < share], out[draw > 1 - share] = 0, 255
    return out


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("level", [0.85, 0.2], ids=["paper", "board"])
def test_hot_and_dead_pixels_leave_a_blank_page_flat(level, seed):
    """A few hundred hot and dead pixels on a page under a lamp: one in nearly every
    element of the grey closing (opening) that estimates the paper (board), which
    then followed the specks instead of the page, so half of a blank page came out
    as ink."""
    page = (level * ramp(0.5, 128) * 255 + 0.5).astype(np.uint8)
    specks = speckled(page, 0.003, seed)
    bright = glyph_bright(specks.astype(np.float32) / 255.0)
    away = cv2.dilate((specks != page).astype(np.uint8), np.ones((3, 3), np.uint8)) == 0
    assert (bright[away] > 0.2).mean() < 0.05
