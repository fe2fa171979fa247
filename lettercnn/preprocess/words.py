"""Word mode: cut a one-line word into its letters, each as a canonical glyph.

The word goes through the same gray, light and threshold as a single letter; its
connected components are grouped into letters (the dot of an i joins its stem, broken
strokes join, specks, frame edges and what lies off the line are dropped), and each
letter gets the same crop and fit as :func:`lettercnn.preprocess.canonical`.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass

import numpy as np

from lettercnn.preprocess.choice import FRAME_FRACTION, components, touches_edge
from lettercnn.preprocess.glyph import DEFAULT_SPEC, InputSpec, Threshold, glyph_image, threshold_mask
from lettercnn.preprocess.image import MAX_WORK_SIDE, image_array, load_image, to_levels, work_gray
from lettercnn.preprocess.light import glyph_bright

# Word mode (:func:`split_word`).
# A word is wide, so it is analysed at up to this longest side: an 8-letter word
# still has ~190 px a letter, more than a single letter needs at MAX_WORK_SIDE.
WORD_MAX_WORK_SIDE = 3 * MAX_WORK_SIDE
# Components with at least this fraction of the largest one's area vote for the
# letter height (their median), so noise and i-dots do not. Low, because the thin
# stem of an "i" has a tenth of the ink of a bold "W".
LETTER_VOTE_FRACTION = 0.05
# A part whose longer side is below this fraction of the median letter height is a
# speck (unless it is the dot of an i or j). Measured against the median letter,
# not the largest, so an "i" beside a "W" is a letter, and a blot is no yardstick.
WORD_SPECK_FRACTION = 0.3
# A part with less ink than this fraction of the median letter's is a speck too: a
# chain of noise pixels can be long but has little area. The thin stem of an "i"
# has about half the median letter's ink.
WORD_SPECK_AREA_FRACTION = 0.1
# Parts with less ink than this fraction of the median letter's are noise, dropped
# before anything else: not even a dot (a dot has 0.025 or more), and a noisy photo
# may have thousands of them, which the pairwise dot search below must not see.
WORD_NOISE_AREA_FRACTION = 0.01
# The dot of an i or j is shorter than this fraction of the letter height...
DOT_MAX_HEIGHT_FRACTION = 0.45
# ...has at least this fraction of its stem's area (OpenCV's fonts: 0.13..0.3; a
# pen tap ~0.1; a noise speck over an "H" far less)...
DOT_MIN_AREA_FRACTION = 0.05
# ...and sits at most this far (a fraction of the letter height) above its stem.
# OpenCV's fonts leave 0.1..0.2, handwriting more; a line above is a letter away.
DOT_MAX_GAP_FRACTION = 0.6
# Horizontal slack (a fraction of the letter height) when asking whether a dot is
# over its stem: on slanted and script letters the dot drifts right of the stem.
DOT_SLACK_FRACTION = 0.1
# Parts whose horizontal spans overlap by more than this fraction of the narrower
# one are one letter (a broken stroke). Neighbouring letters of an upright word
# overlap little or not at all; an i and its dot overlap fully.
MERGE_OVERLAP_FRACTION = 0.5
# ...if the gap between them is at most this fraction of the median letter height:
# a broken stroke leaves a crack, noise far above a letter is no part of it.
MERGE_MAX_GAP_FRACTION = 0.25
# ...and if together they are at most this many median letter widths wide: a "W"
# among narrow letters is ~1.6, an underline under a word many more.
MERGE_MAX_WIDTH_RATIO = 2.0
# A letter lies on the word's line: its rows overlap the median letter's rows by at
# least this fraction of the shorter of the two. Noise above or below the word, an
# underline, do not; descenders and capitals do, fully.
LINE_OVERLAP_FRACTION = 0.5
# A border-touching part as tall as the image is a vertical frame edge (a page edge,
# a shadow) only if it is this much taller than the median letter: in a tightly
# cropped word the tallest letters span the image's height too.
FRAME_LETTER_RATIO = 1.6
# A word space (:func:`mark_spaces`): a gap wider than this many times the line's median
# gap (taken from SPACE_MIN_GAPS gaps on; fewer are no sample)...
SPACE_MEDIAN_RATIO = 2.5
SPACE_MIN_GAPS = 3
# ...and than this share of the median letter height (a narrow "i" beside a "W" leaves
# a wide gap, not a space).
SPACE_HEIGHT_FRACTION = 0.35
# Background pixels kept around a letter when it is cut out of the word: the 3x3
# dilation that keeps the anti-aliased stroke edge needs one.
LETTER_PAD = 2


@dataclass(frozen=True)
class LetterCrop:
    """One letter cut out of a word by :func:`split_word`.

    Attributes:
        glyph: the letter's canonical glyph, uint8 (size, size), white on black,
            cropped, centred and fitted with the margin exactly as :func:`canonical`.
        box: ``(x, y, w, h)`` of the letter in the original image's pixels.
        space_before: a word space lies between this letter and the one before it
            (see :func:`mark_spaces`).
    """

    glyph: np.ndarray
    box: tuple[int, int, int, int]
    space_before: bool = False


def split_word(
    image: np.ndarray | str | os.PathLike[str],
    *,
    threshold: Threshold = "otsu",
    spec: InputSpec = DEFAULT_SPEC,
    max_side: int = WORD_MAX_WORK_SIDE,
) -> list[LetterCrop]:
    """Cut a photo or scan of a word (one line) into its letters, left to right.

    The image goes through the same grayscale, polarity and threshold as
    :func:`canonical`. Its connected components are then grouped into letters:
    frame edges are dropped; the dot of an i or j (a small part just above a taller
    one, over its span) joins its stem; specks (small against the median letter,
    not the largest) are dropped; parts that overlap heavily side by side (a broken
    stroke) are joined. Letters that touch each other stay one crop.

    Args:
        image: a path, or an array (gray, BGR or BGRA; uint8, uint16, float, bool).
        threshold: how ink is told from background, see :func:`glyph_mask`;
            ``"adaptive"`` for photos under uneven light.
        spec: the input spec (size, margin) of the glyphs.
        max_side: the longest side the word is analysed at (a count of its letters needs
            less than their glyphs).

    Returns:
        One :class:`LetterCrop` a letter, ordered left to right; ``[]`` for an image
        with no ink (blank, flat).

    Raises:
        ImageError: unreadable file or an array that is not an image.
        ValueError: an unknown ``threshold``.
    """
    array = image_array(load_image(image) if isinstance(image, (str, os.PathLike)) else image)
    bright = glyph_bright(work_gray(array, max_side))
    levels = to_levels(bright)
    mask = threshold_mask(levels, threshold)
    if mask is None:
        return []
    labels, boxes, areas = components(mask)  # component i is label i + 1
    groups = _letter_groups(boxes, areas, mask.shape)
    height, width = array.shape[:2]  # boxes are given in the original image's pixels
    scale = (width / bright.shape[1], height / bright.shape[0])
    crops = [_cut_letter(bright, levels, labels, boxes, members, scale, (height, width), spec) for members in groups]
    return mark_spaces(crops)


def mark_spaces(crops: list[LetterCrop]) -> list[LetterCrop]:
    """Mark the word spaces of a line of letters (left to right): the gaps much wider than the others.

    A gap is a space when it is wider than SPACE_MEDIAN_RATIO times the line's median
    gap and than SPACE_HEIGHT_FRACTION of its median letter height: letters of a word
    sit a stroke or two apart, words a letter's width.
    """
    if len(crops) < 2:
        return crops
    gaps = np.array([b.box[0] - (a.box[0] + a.box[2]) for a, b in zip(crops, crops[1:])], dtype=np.float64)
    height = float(np.median([crop.box[3] for crop in crops]))
    typical = float(np.median(gaps)) if len(gaps) >= SPACE_MIN_GAPS else 0.0
    wide = np.maximum(SPACE_MEDIAN_RATIO * max(typical, 0.0), SPACE_HEIGHT_FRACTION * height)
    return [crops[0]] + [dataclasses.replace(crop, space_before=bool(gap > wide)) for crop, gap in zip(crops[1:], gaps)]


def _letter_groups(boxes: np.ndarray, areas: np.ndarray, shape: tuple[int, int]) -> list[np.ndarray]:
    """Component indices of each letter, ordered left to right by the letter's centre."""
    if len(boxes) == 0:
        return []
    alive, letter = _word_components(boxes, areas, shape)
    groups = _join_dots(boxes, areas, alive, letter.height)
    groups = [g for g in groups if not _is_speck(boxes, areas, g, letter)]
    groups = _join_overlapping(boxes, groups, letter)
    if not groups:
        return []
    line_top = float(np.median([_group_box(boxes, g)[1] for g in groups]))
    line_bottom = float(np.median([_group_box(boxes, g)[3] for g in groups]))
    groups = [g for g in groups if _on_line(_group_box(boxes, g), line_top, line_bottom)]
    return sorted(groups, key=lambda g: sum(_group_box(boxes, g)[::2]))


@dataclass(frozen=True)
class _Letter:
    """The median letter of a word: its height, width and ink, pixels."""

    height: float
    width: float
    area: float


def _group_box(boxes: np.ndarray, members: np.ndarray) -> tuple[int, int, int, int]:
    """``(x0, y0, x1, y1)`` around some components, ends exclusive."""
    return (
        int(boxes[members, 0].min()),
        int(boxes[members, 1].min()),
        int(boxes[members, 2].max()),
        int(boxes[members, 3].max()),
    )


def _word_components(boxes: np.ndarray, areas: np.ndarray, shape: tuple[int, int]) -> tuple[np.ndarray, _Letter]:
    """The components that are neither frame edge nor noise, and the word's median letter."""
    height, width = shape
    widths, heights = boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]
    touches = touches_edge(boxes, shape)
    tall = touches & (heights > FRAME_FRACTION * height)
    wide = touches & (widths > FRAME_FRACTION * width)  # no letter of a word is the word's width
    pool = ~(tall | wide) if not (tall | wide).all() else np.ones(len(boxes), dtype=bool)
    voters = pool & (areas >= LETTER_VOTE_FRACTION * areas[pool].max())
    letter = _Letter(
        height=float(np.median(heights[voters])),
        width=float(np.median(widths[voters])),
        area=float(np.median(areas[voters])),
    )
    frame = wide | (tall & (heights > FRAME_LETTER_RATIO * letter.height))
    if frame.all():
        frame[:] = False  # nothing but frame: a tightly cropped single letter
    return np.flatnonzero(~frame & (areas >= WORD_NOISE_AREA_FRACTION * letter.area)), letter


def _is_speck(boxes: np.ndarray, areas: np.ndarray, members: np.ndarray, letter: _Letter) -> bool:
    """Small against the median letter: by its longer side or by its ink."""
    x0, y0, x1, y1 = _group_box(boxes, members)
    return (
        max(x1 - x0, y1 - y0) < WORD_SPECK_FRACTION * letter.height
        or float(areas[members].sum()) < WORD_SPECK_AREA_FRACTION * letter.area
    )


def _on_line(box: tuple[int, int, int, int], line_top: float, line_bottom: float) -> bool:
    """Whether a letter's rows overlap the word's line (the median letter's rows)."""
    _, top, _, bottom = box
    overlap = min(bottom, line_bottom) - max(top, line_top)
    return overlap >= LINE_OVERLAP_FRACTION * min(bottom - top, line_bottom - line_top)


def _stem_below(boxes: np.ndarray, areas: np.ndarray, alive: np.ndarray, dot: int, letter_height: float) -> int | None:
    """The part an i/j dot belongs to: the nearest taller one below it, under its span."""
    x0, y0, x1, y1 = boxes[dot]
    slack = DOT_SLACK_FRACTION * letter_height
    gaps = boxes[alive, 1] - y1  # stem top minus dot bottom: >= 0 when below
    below = (
        (boxes[alive, 3] - boxes[alive, 1] > y1 - y0)
        & (gaps >= 0)
        & (gaps <= DOT_MAX_GAP_FRACTION * letter_height)
        & (boxes[alive, 0] < x1 + slack)
        & (boxes[alive, 2] > x0 - slack)
        & (areas[alive] * DOT_MIN_AREA_FRACTION <= areas[dot])
    )
    return int(alive[below][np.argmin(gaps[below])]) if below.any() else None


def _join_dots(boxes: np.ndarray, areas: np.ndarray, alive: np.ndarray, letter_height: float) -> list[np.ndarray]:
    """Group each stem with its dot (the biggest candidate: an i has one); others stand alone."""
    heights = boxes[:, 3] - boxes[:, 1]
    dot_of: dict[int, int] = {}  # stem -> its dot
    for dot in alive[heights[alive] < DOT_MAX_HEIGHT_FRACTION * letter_height]:
        stem = _stem_below(boxes, areas, alive, int(dot), letter_height)
        if stem is not None and (stem not in dot_of or areas[dot] > areas[dot_of[stem]]):
            dot_of[stem] = int(dot)
    for stem in [s for s in dot_of if s in dot_of.values()]:
        del dot_of[stem]  # a "stem" that is itself some taller part's dot keeps no dot
    dots = set(dot_of.values())
    return [np.array([i, dot_of[i]] if i in dot_of else [i]) for i in map(int, alive) if i not in dots]


def _join_overlapping(boxes: np.ndarray, groups: list[np.ndarray], letter: _Letter) -> list[np.ndarray]:
    """Join the parts of broken letters (see :func:`_are_parts`) until none are left."""
    while True:
        joined: list[np.ndarray] = []
        for group in groups:
            partner = next((k for k, other in enumerate(joined) if _are_parts(boxes, group, other, letter)), None)
            if partner is None:
                joined.append(group)
            else:
                joined[partner] = np.concatenate([joined[partner], group])
        if len(joined) == len(groups):
            return joined
        groups = joined


def _are_parts(boxes: np.ndarray, first: np.ndarray, second: np.ndarray, letter: _Letter) -> bool:
    """Two parts of one letter: one over the other, overlapping most of the narrower
    one's width, near each other, and together no wider than a letter."""
    left_a, top_a, right_a, bottom_a = _group_box(boxes, first)
    left_b, top_b, right_b, bottom_b = _group_box(boxes, second)
    overlap = min(right_a, right_b) - max(left_a, left_b)
    gap = max(top_a, top_b) - min(bottom_a, bottom_b)  # negative when the rows overlap
    return (
        overlap > MERGE_OVERLAP_FRACTION * min(right_a - left_a, right_b - left_b)
        and gap <= MERGE_MAX_GAP_FRACTION * letter.height
        and max(right_a, right_b) - min(left_a, left_b) <= MERGE_MAX_WIDTH_RATIO * letter.width
    )


def _cut_letter(
    bright: np.ndarray,
    levels: np.ndarray,
    labels: np.ndarray,
    boxes: np.ndarray,
    members: np.ndarray,
    scale: tuple[float, float],
    shape: tuple[int, int],
    spec: InputSpec,
) -> LetterCrop:
    """The canonical glyph of one letter and its box in the original image."""
    x0, y0, x1, y1 = _group_box(boxes, members)
    top, left = max(0, y0 - LETTER_PAD), max(0, x0 - LETTER_PAD)
    bottom, right = min(bright.shape[0], y1 + LETTER_PAD), min(bright.shape[1], x1 + LETTER_PAD)
    mask = np.isin(labels[top:bottom, left:right], members + 1)
    glyph = glyph_image(bright[top:bottom, left:right], levels[top:bottom, left:right], mask, spec)
    scale_x, scale_y = scale
    box_x0, box_y0 = int(np.floor(x0 * scale_x)), int(np.floor(y0 * scale_y))
    box_x1 = min(shape[1], int(np.ceil(x1 * scale_x)))
    box_y1 = min(shape[0], int(np.ceil(y1 * scale_y)))
    return LetterCrop(glyph=glyph, box=(box_x0, box_y0, box_x1 - box_x0, box_y1 - box_y0))
