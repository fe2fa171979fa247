"""Images of no letter: signs, scribbles, textures, several or cut-off letters, blank pages."""

from __future__ import annotations

import numpy as np
import pytest

from lettercnn.data import negatives
from lettercnn.data.render import render_chunk
from lettercnn.labels import NOT_A_LETTER


def a_letter() -> np.ndarray:
    letter = np.zeros((40, 24), np.uint8)
    letter[:, 2:6] = 255  # a stem
    letter[:4, 2:20] = 255  # and a bar: an F-ish shape
    letter[18:22, 2:16] = 255
    return letter


@pytest.mark.parametrize("kind", [k for k in negatives.KINDS if k != "blank"])
def test_every_kind_draws_some_cropped_ink(kind):
    image = negatives.negative_template(kind, np.random.default_rng(0), a_letter, None)
    assert image is not None and image.dtype == np.uint8 and image.any()
    assert image[0].any() and image[:, 0].any()  # cropped to its ink


def test_a_blank_has_no_ink_to_draw():
    assert negatives.negative_template("blank", np.random.default_rng(0), a_letter, None) is None


def test_the_signs_leave_out_the_digits_that_look_like_letters():
    assert not set("01258") & set(negatives.SIGNS)
    assert set("34679") <= set(negatives.SIGNS)


def test_a_partial_letter_keeps_at_most_about_half_of_it():
    letter = a_letter()
    for seed in range(20):
        cut = negatives.partial(letter, np.random.default_rng(seed))
        assert cut.shape[0] * cut.shape[1] <= 0.6 * letter.size


def test_rendered_negatives_are_labelled_not_a_letter_and_repeat_for_a_seed():
    first = render_chunk(range(12), seed=(0, 3), negatives=True)
    assert (first.labels == NOT_A_LETTER).all() and set(first.chars) == {"?"}
    assert np.array_equal(first.glyphs, render_chunk(range(12), seed=(0, 3), negatives=True).glyphs)


@pytest.mark.parametrize("style", negatives.SCRIBBLE_STYLES)
def test_every_scribble_style_stays_inside_its_square_without_clipping(style):
    for seed in range(20):
        for path in negatives._SCRIBBLE_PATHS[style](np.random.default_rng(seed), 72):
            assert path.ndim == 2 and path.shape[1] == 2 and len(path) >= 2
            assert (path > 0).all() and (path < 72).all()  # fitted in: no stroke runs along the edge


def test_a_scribble_is_cropped_ink_for_any_seed():
    for seed in range(40):
        image = negatives.scribble(np.random.default_rng(seed))
        assert image.any() and image[0].any() and image[:, 0].any()


def test_a_crossing_out_zigzag_turns_too_often_to_be_an_n_m_or_w():
    for seed in range(20):
        (path,) = negatives._SCRIBBLE_PATHS["zigzag"](np.random.default_rng(seed), 72)
        stroke = path[1] - path[0]
        across = path @ (stroke / np.linalg.norm(stroke))  # back and forth along the first stroke
        steps = np.diff(across)
        steps = steps[np.abs(steps) > 1e-6]
        reversals = np.count_nonzero(np.sign(steps[1:]) != np.sign(steps[:-1]))
        assert reversals >= 5  # six strokes or more; three or four would draw an N, M or W
