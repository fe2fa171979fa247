"""Choosing the glyph in a threshold mask, as a person would.

The mask of a photo holds more than the letter: the edge of the page or the table,
a box drawn around the letter, ruled or squared paper, an underline, specks, the
neighbouring letters at the edges of the view. :func:`choose_glyph` erases ruled
lines, drops frames, boxes and specks, and keeps the big component near the centre
with the parts close to it (the dot of an i, a broken stroke).
"""

from __future__ import annotations

import cv2
import numpy as np

# Connected components smaller than this fraction of the largest one are specks.
SPECK_FRACTION = 0.04
# Choosing the letter (:func:`choose_glyph`). A component's weight falls off
# with its centre's distance from the frame's centre, on this scale (a fraction of the
# frame): the letter a camera is pointed at is near the middle, cut-off neighbours are not.
CENTRE_SIGMA = 0.35
# Parts of the letter lie at most this far (a fraction of its size) from it: a broken
# stroke, a K's arm written apart, a stroke a ruled line was erased from, a thin stroke
# the blur and the threshold broke. A neighbouring letter a word's spacing away is
# farther (the training scenes put neighbours 0.15-0.6 of a letter apart), and two or
# three letters closer than this are one glyph, which the model answers '?'. 0.16
# against 0.08, field benchmark's tuning seeds: blur 96.7 -> 97.5 %, inverted 97.4 ->
# 97.8, ruled 95.5 -> 95.9, several letters answered '?' 90.2 -> 92.7, none worse.
PART_GAP_FRACTION = 0.16
# A flat part (no taller than this share of its width) is an underline, a dash or a
# stub of a rule: it joins no letter, and counts this much less when the letter is chosen.
UNDERLINE_MAX_HEIGHT = 0.12
UNDERLINE_WEIGHT = 0.2
# The dot of an i or j (or an accent): smaller than this share of the letter's ink...
DOT_AREA_FRACTION = 0.35
# ...and over the letter, at most this far above it (a fraction of its size).
DOT_GAP_FRACTION = 0.5
# A hollow box drawn around the letter: at most this share of its bounding box inked...
BOX_MAX_FILL = 0.35
# ...this share of its ink in a band along its bounding box...
BOX_EDGE_SHARE = 0.85
# ...as wide as this fraction of the box's shorter side, and each side's band inked
# along this share of its length (straight sides with corners, unlike an O).
BOX_BAND_FRACTION = 0.15
BOX_SIDE_COVER = 0.9
# Ruled lines (:func:`_erase_rules`) are looked for on a copy of the mask this big...
RULE_ANALYSIS_SIDE = 128
# ...as bands of rows inked over at least this share of the frame's width...
RULE_MIN_SPAN = 0.6
# ...and within this share of both its ends (a rule crosses the frame; a box side does not)...
RULE_END_FRACTION = 0.1
# ...leaning at most this much (rise over run: a page turned ~7 degrees)...
RULE_MAX_SLOPE = 0.12
# ...no thicker than this fraction of the frame (measured within RULE_SEARCH_FRACTION
# of the line)...
RULE_MAX_THICKNESS_FRACTION = 0.05
RULE_SEARCH_FRACTION = 0.04
# ...erased this many pixels beyond their thickness (the anti-aliased edge)...
RULE_PAD_PX = 1.0
# ...and only where it runs past the rest of the ink at both ends by this share of the
# frame, and the rest is no taller than RULE_MAX_LETTER_SPAN of its length: a ruled
# line runs on past the letter written on it; a letter's own stroke (a T's bar, an
# L's foot, a b's stem) ends at the letter, or is as long as the letter is tall.
RULE_OVERHANG = 0.1
RULE_MAX_LETTER_SPAN = 0.8
# Rows of the band a line is looked for in: a line leaning RULE_MAX_SLOPE crosses
# about this many over RULE_MIN_SPAN of a RULE_ANALYSIS_SIDE frame.
RULE_SCREEN_ROWS = 9
# Components that touch the image border and run along more than this fraction of
# its width or height are taken for a frame edge, a table or a shadow, not for the
# glyph. High, so the stem of a tightly cropped "i" or "j" is still a glyph.
FRAME_FRACTION = 0.9
# The second look (:func:`inside_part`) keeps a glyph's parts clear of the image's edge
# only when they hold at least this share of its ink: the letter, with a sliver beside it.
INSIDE_KEEP = 0.6


def components(mask: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The 8-connected components of a uint8 mask: labels (component i is label i + 1,
    0 the background), boxes (n, 4): x0, y0, x1, y1, the ends exclusive, and areas."""
    _, labels, stats, _ = cv2.connectedComponentsWithStats(mask, connectivity=8)
    stats = stats[1:]  # without the background
    left, top = stats[:, cv2.CC_STAT_LEFT], stats[:, cv2.CC_STAT_TOP]
    right, bottom = left + stats[:, cv2.CC_STAT_WIDTH], top + stats[:, cv2.CC_STAT_HEIGHT]
    return labels, np.column_stack([left, top, right, bottom]), stats[:, cv2.CC_STAT_AREA]


def touches_edge(boxes: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Which of the boxes (n, 4: x0, y0, x1, y1, ends exclusive) touch the edge of an
    image of ``shape`` (height, width)."""
    height, width = shape
    return (boxes[:, 0] == 0) | (boxes[:, 1] == 0) | (boxes[:, 2] >= width) | (boxes[:, 3] >= height)


def choose_glyph(mask: np.ndarray) -> np.ndarray | None:
    """The glyph a person would pick in a threshold mask: a bool mask, or ``None``.

    Ruled lines that cross the frame are erased (where a stroke crosses them it
    stays); frame edges, hollow boxes drawn around the letter and specks are
    dropped. Of what is left, the largest component near the centre is the letter;
    the parts near it (the dot of an i, a broken stroke, the arm of a K written
    apart) join it, while neighbouring letters at the edges of the view do not.
    """
    labels, boxes, areas = components(_erase_rules(mask))
    if not len(boxes):
        return None
    areas = areas.astype(np.float64)
    alive = _glyph_candidates(boxes, areas, labels, mask.shape)
    chosen = _letter_group(boxes, areas, alive, mask.shape)
    keep = np.zeros(len(boxes) + 1, dtype=bool)  # a lookup table by component label
    keep[chosen + 1] = True
    return keep[labels]


def inside_part(glyph: np.ndarray) -> np.ndarray | None:
    """The chosen glyph without its parts that touch the image's edge, when they are the
    lesser part (the second look of :func:`lettercnn.preprocess.canonical`); else ``None``.

    A sliver of a shadow's edge, a stray stroke or the page's grain along the border,
    grouped with a letter that is whole in view, makes the glyph run off the image, and
    the letter is lost as "cut off". Leaving those parts out gives the letter back. A
    letter that itself runs off the image is most of its glyph: nothing is kept, and it
    stays cut off.
    """
    labels, boxes, areas = components(glyph.astype(np.uint8))
    touches = touches_edge(boxes, glyph.shape)
    if not touches.any() or areas[~touches].sum() < INSIDE_KEEP * areas.sum():
        return None
    keep = np.concatenate([[False], ~touches])  # a lookup table by component label
    return keep[labels]


def _glyph_candidates(boxes: np.ndarray, areas: np.ndarray, labels: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Indices of the components that may be (part of) the letter."""
    height, width = shape
    widths, heights = boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]
    touches = touches_edge(boxes, shape)
    frame = touches & ((widths > FRAME_FRACTION * width) | (heights > FRAME_FRACTION * height))
    pool = ~frame if not frame.all() else np.ones(len(areas), dtype=bool)  # a tight crop touches all round
    pool &= areas >= SPECK_FRACTION * areas[pool].max()
    boxed = [i for i in np.flatnonzero(pool) if _is_hollow_box(i, boxes, areas, labels, pool)]
    if boxed and len(boxed) < pool.sum():
        pool[boxed] = False
    return np.flatnonzero(pool)


def _is_hollow_box(index: int, boxes: np.ndarray, areas: np.ndarray, labels: np.ndarray, pool: np.ndarray) -> bool:
    """A drawn frame around the letter: thin ink along its own bounding box, holding another part."""
    x0, y0, x1, y1 = boxes[index]
    width, height = x1 - x0, y1 - y0
    if areas[index] > BOX_MAX_FILL * width * height or min(width, height) < 8:
        return False
    centres_x, centres_y = (boxes[:, 0] + boxes[:, 2]) / 2, (boxes[:, 1] + boxes[:, 3]) / 2
    inside = pool & (centres_x > x0) & (centres_x < x1) & (centres_y > y0) & (centres_y < y1)
    inside[index] = False
    if not inside.any():
        return False
    band = max(2, int(BOX_BAND_FRACTION * min(width, height)))
    own = labels[y0:y1, x0:x1] == index + 1
    core = own[band:-band, band:-band].sum() if min(width, height) > 2 * band else 0
    if float(core) > (1.0 - BOX_EDGE_SHARE) * float(areas[index]):
        return False
    # Straight sides: each side's band is inked along most of its length (an O or a
    # D, hollow too, leaves its corners empty).
    sides = (own[:band].any(axis=0), own[-band:].any(axis=0), own[:, :band].any(axis=1), own[:, -band:].any(axis=1))
    return all(float(side.mean()) >= BOX_SIDE_COVER for side in sides)


def _letter_group(boxes: np.ndarray, areas: np.ndarray, alive: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """The main glyph (big and central) and the parts close to it, as component indices."""
    height, width = shape
    centre_x, centre_y = (boxes[alive, 0] + boxes[alive, 2]) / 2, (boxes[alive, 1] + boxes[alive, 3]) / 2
    offset = np.hypot((centre_x - width / 2) / width, (centre_y - height / 2) / height)
    widths, heights = boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]
    flat = heights <= np.maximum(2, UNDERLINE_MAX_HEIGHT * widths)  # an underline, a dash, a rule
    weight = areas[alive] * np.exp(-((offset / CENTRE_SIGMA) ** 2)) * np.where(flat[alive], UNDERLINE_WEIGHT, 1.0)
    main = int(alive[np.argmax(weight)])
    group = [main]
    box = boxes[main].astype(np.float64)
    added = True
    while added:
        added = False
        size = max(box[2] - box[0], box[3] - box[1])
        for index in alive:
            if index in group or (flat[index] and not flat[main]):
                continue  # an underline (or a rule's stub) is no part of a letter
            other = boxes[index]
            gap_x = max(other[0] - box[2], box[0] - other[2], 0.0)
            gap_y = max(other[1] - box[3], box[1] - other[3], 0.0)
            overlap_x = min(other[2], box[2]) - max(other[0], box[0])
            dot = (  # a small part above, over the letter: the dot of an i or j, an accent
                areas[index] < DOT_AREA_FRACTION * areas[group].sum()
                and overlap_x > 0
                and gap_x == 0
                and gap_y <= DOT_GAP_FRACTION * size
            )
            if max(gap_x, gap_y) <= PART_GAP_FRACTION * size or dot:
                group.append(int(index))
                box = np.array(
                    [min(box[0], other[0]), min(box[1], other[1]), max(box[2], other[2]), max(box[3], other[3])],
                    dtype=np.float64,
                )
                added = True
    return np.array(group, dtype=np.int64)


def _erase_rules(mask: np.ndarray) -> np.ndarray:
    """Erase ruled lines (thin, straight, across the frame) from a uint8 0/255 mask.

    Lines are found on a small copy of the mask as bands inked from one side of the
    frame to the other, both ways (ruled and squared paper), and fitted, so a faint
    line broken by the threshold is still one line. Where a stroke crosses a line
    (ink just before and after it), the line's pixels stay and the stroke is not cut;
    where a letter only sits on the line, its foot loses the line's few pixels. A
    line is erased only if it runs on past the rest of the ink at both ends, which a
    letter's own bar (a T in a tight crop, an L's foot) never does.
    """
    ink = mask > 0
    small, scale = _analysis_copy(ink)  # shrunk once: shrinking commutes with transposing
    across = _line_candidates(ink, small, scale)  # left to right
    down = [  # top to bottom
        line.T for line in _line_candidates(np.ascontiguousarray(ink.T), np.ascontiguousarray(small.T), scale)
    ]
    if not across and not down:
        return mask
    rest = ink & ~np.logical_or.reduce(across + down)
    erase = [line for line in across if _is_rule(line, rest)]
    erase += [line for line in down if _is_rule(line.T, rest.T)]
    if not erase:
        return mask
    out = mask.copy()
    out[np.logical_or.reduce(erase)] = 0
    return out


def _analysis_copy(ink: np.ndarray) -> tuple[np.ndarray, float]:
    """A bool mask as uint8 0/255, shrunk so its longer side is at most
    RULE_ANALYSIS_SIDE (a pixel is inked if any ink falls in it), and the scale."""
    height, width = ink.shape
    scale = min(1.0, RULE_ANALYSIS_SIDE / max(height, width))
    small = ink.astype(np.uint8) * 255
    if scale < 1.0:
        size = (max(1, round(width * scale)), max(1, round(height * scale)))
        small = (cv2.resize(small, size, interpolation=cv2.INTER_AREA) > 0).astype(np.uint8) * 255
    return small, scale


def _line_candidates(ink: np.ndarray, small: np.ndarray, scale: float) -> list[np.ndarray]:
    """The pixels of each left-to-right line across a bool mask (``small``, ``scale``:
    its :func:`_analysis_copy`; see :func:`_erase_rules`)."""
    height, width = ink.shape
    ys = np.arange(height, dtype=np.float32)[:, None]
    candidates = []
    for slope, intercept in _rule_fits(small):
        rows = ((slope * np.arange(width) * scale + intercept) / scale).astype(np.float32)  # its row per column
        line = _line_pixels(ink, rows, ys)
        if line is not None:
            candidates.append(line)
    return candidates


def _rule_fits(small: np.ndarray) -> list[tuple[float, float]]:
    """``(slope, intercept)`` of each ruled-line candidate in a small uint8 mask.

    A candidate is a band of rows (RULE_SCREEN_ROWS tall, which a line leaning up to
    RULE_MAX_SLOPE stays within over the span) inked over RULE_MIN_SPAN of the width
    and at both ends: a rule crosses the whole frame, a box's side or a letter's bar
    does not. The band's ink is fitted with a line (Huber: the letter's strokes in
    the band do not pull it).
    """
    height, width = small.shape
    band = cv2.dilate(small, np.ones((RULE_SCREEN_ROWS, 1), np.uint8)) > 0
    end = max(1, int(RULE_END_FRACTION * width))
    found = (band.sum(axis=1) >= RULE_MIN_SPAN * width) & band[:, :end].any(axis=1) & band[:, -end:].any(axis=1)
    fits: list[tuple[float, float]] = []
    rows = np.flatnonzero(found)
    if rows.size == 0:
        return fits
    runs = np.split(rows, np.flatnonzero(np.diff(rows) > 1) + 1)
    for run in runs:
        top, bottom = max(0, run[0] - RULE_SCREEN_ROWS // 2), min(height, run[-1] + RULE_SCREEN_ROWS // 2 + 1)
        ys, xs = np.nonzero(small[top:bottom])
        if xs.size < RULE_MIN_SPAN * width or np.ptp(xs) < RULE_MIN_SPAN * width:
            continue
        vx, vy, x0, y0 = cv2.fitLine(
            np.column_stack([xs, ys + top]).astype(np.float32), cv2.DIST_HUBER, 0, 0.01, 0.01
        ).ravel()
        if abs(vx) < 1e-6 or abs(vy / vx) > RULE_MAX_SLOPE:
            continue
        slope = float(vy / vx)
        fits.append((slope, float(y0 - slope * x0)))
    return fits


def _line_pixels(ink: np.ndarray, rows: np.ndarray, ys: np.ndarray) -> np.ndarray | None:
    """The ink of a thin line through ``rows`` (one row per column), where no stroke crosses it."""
    height = ink.shape[0]
    distance = np.abs(ys - rows[None, :])
    counts = (ink & (distance <= RULE_SEARCH_FRACTION * height + 1)).sum(axis=0)
    if not counts.any():
        return None
    thickness = float(np.median(counts[counts > 0]))
    if thickness > RULE_MAX_THICKNESS_FRACTION * height + 1:
        return None  # a thick band: a stroke, a shadow edge, not a ruled line
    reach = thickness / 2 + RULE_PAD_PX
    columns = np.arange(ink.shape[1])
    above = np.clip(np.round(rows - reach - 1).astype(np.int64), 0, height - 1)
    below = np.clip(np.round(rows + reach + 1).astype(np.int64), 0, height - 1)
    crossing = ink[above, columns] & ink[below, columns]
    return ink & (distance <= reach) & ~crossing[None, :]


def _is_rule(line: np.ndarray, rest: np.ndarray) -> bool:
    """Whether a line's ink is a ruled line rather than a stroke of the letter (``rest``: the ink of no line)."""
    width = line.shape[1]
    line_columns = np.flatnonzero(line.any(axis=0))
    rest_rows, rest_columns = np.flatnonzero(rest.any(axis=1)), np.flatnonzero(rest.any(axis=0))
    if line_columns.size == 0 or rest_rows.size == 0:
        return False  # nothing but lines: they are the glyph (an I, an l)
    overhang = RULE_OVERHANG * width
    return bool(
        rest_columns[0] - line_columns[0] >= overhang
        and line_columns[-1] - rest_columns[-1] >= overhang
        and rest_rows[-1] - rest_rows[0] <= RULE_MAX_LETTER_SPAN * (line_columns[-1] - line_columns[0])
    )
