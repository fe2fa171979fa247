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
