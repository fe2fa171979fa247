"""The 26 classes and the folding of folder names to them.

Upper and lower case are one class: ``a/``, ``A/``, ``lower_a/`` and ``upper_A/``
all hold the letter A, which is always shown upper case.
"""

from __future__ import annotations

import re
import string

LETTERS: tuple[str, ...] = tuple(string.ascii_uppercase)
NUM_CLASSES = len(LETTERS)
# The target of a training image that shows no letter (a blank page, a sign, a
# scribble): not a class of its own; training pushes the model towards uniform on it.
NOT_A_LETTER = -1
# Two letters that many faces draw as the same shape, because case folding sends
# those shapes to different classes: a lower-case l is the class L, and in most
# sans-serif faces (and many hands) it is the plain bar of a capital I. On such a bar
# a calibrated model is rightly unsure *which* of the two it is (about 0.5 each) while
# sure that it is one of them; the runtimes then answer the likelier of the pair
# rather than "?" (:func:`lettercnn.calibration.answered`).
LOOK_ALIKES: tuple[tuple[str, str], ...] = (("I", "L"),)

# Folder names that spell a letter plus a case word, e.g. "upper_a", "A-lower", "small b".
_CASE_WORDS = ("upper", "lower", "capital", "small", "uc", "lc")
# How the accepted folder names look, for error messages.
FOLDER_NAME_FORMS = "'A' or 'a', 'upper_a', 'a_lower', 'capital-a', 'small a', 'uc_a' (any case)"
_CASE_PATTERN = re.compile(
    rf"^(?:(?:{'|'.join(_CASE_WORDS)})[_\- ]?([a-z])|([a-z])[_\- ]?(?:{'|'.join(_CASE_WORDS)}))$"
)


def fold_label(name: str) -> str | None:
    """Fold a folder or label name to its class letter.

    Args:
        name: a folder name such as ``"a"``, ``"A"``, ``"upper_a"`` or ``"b_lower"``.

    Returns:
        The upper-case letter, or ``None`` when the name spells no letter.
    """
    key = name.strip().lower()
    if len(key) == 1:
        return key.upper() if key in string.ascii_lowercase else None
    match = _CASE_PATTERN.match(key)
    if match is None:
        return None
    return (match.group(1) or match.group(2)).upper()


def letter_index(letter: str) -> int:
    """Index of a letter (either case) among the 26 classes.

    Raises:
        ValueError: when ``letter`` is not one of A-Z.
    """
    folded = fold_label(letter)
    if folded is None:
        raise ValueError(f"{letter!r} is not a letter; expected one of {''.join(LETTERS)}")
    return LETTERS.index(folded)
