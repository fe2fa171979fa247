"""Folding of folder names onto the 26 classes."""

from __future__ import annotations

import pytest

from lettercnn.labels import LETTERS, NUM_CLASSES, fold_label, letter_index


def test_there_are_26_classes_a_to_z_in_order():
    assert NUM_CLASSES == 26
    assert "".join(LETTERS) == "ABCDEFGHIJKLMNOPQRSTUVWXYZ"


@pytest.mark.parametrize(
    "name, letter",
    [
        ("a", "A"),
        ("A", "A"),
        ("z", "Z"),
        ("upper_a", "A"),
        ("lower_b", "B"),
        ("B_lower", "B"),
        ("capital-q", "Q"),
        ("small x", "X"),
        (" k ", "K"),
        ("UPPER_M", "M"),
        ("uc_c", "C"),
    ],
)
def test_upper_and_lower_case_names_fold_to_one_upper_case_class(name, letter):
    assert fold_label(name) == letter


@pytest.mark.parametrize("name", ["", "1", "aa", "ab_upper", "upper", "é", "digits", "A1", "upper_ab"])
def test_names_that_spell_no_letter_fold_to_none(name):
    assert fold_label(name) is None


def test_letter_index_is_case_insensitive_and_rejects_others():
    assert letter_index("a") == letter_index("A") == 0
    assert letter_index("z") == 25
    with pytest.raises(ValueError, match="'7' is not a letter"):
        letter_index("7")
