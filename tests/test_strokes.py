"""Stroke fonts: the Hershey vector faces, drawn anew with a hand's wobble per sample."""

from __future__ import annotations

import numpy as np
import pytest

from lettercnn.data.strokes import CHARS, STROKE_FACES, draw_letter, face_strokes


@pytest.mark.parametrize("face", list(STROKE_FACES))
def test_every_face_has_strokes_for_all_52_letters(face):
    letters = face_strokes(face)
    assert len(letters) == len(CHARS) == 52
    assert all(len(strokes) and all(s.ndim == 2 and s.shape[1] == 2 for s in strokes) for strokes in letters)


def test_the_plain_drawing_is_a_fixed_cropped_template():
    strokes = face_strokes("futural")[CHARS.index("R")]
    first, again = draw_letter(strokes), draw_letter(strokes)
    assert first.dtype == np.uint8 and np.array_equal(first, again)
    assert first[0].any() and first[-1].any() and first[:, 0].any() and first[:, -1].any()  # cropped to the ink


def test_each_sample_wobbles_and_changes_pen_but_a_seed_repeats():
    strokes = face_strokes("scripts")[CHARS.index("g")]
    one = draw_letter(strokes, np.random.default_rng(1))
    two = draw_letter(strokes, np.random.default_rng(2))
    assert one.shape != two.shape or not np.array_equal(one, two)
    assert np.array_equal(one, draw_letter(strokes, np.random.default_rng(1)))


def test_an_unknown_face_is_refused_by_name():
    with pytest.raises(ValueError, match="unknown stroke face 'gothiceng'"):
        face_strokes("gothiceng")
