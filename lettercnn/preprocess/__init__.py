"""One preprocessing for training and recognition (numpy and OpenCV only, no torch).

Any image -- a path or an array; gray, BGR or BGRA; uint8, uint16, float or bool;
any size; dark ink on light paper or light on dark, under any light -- becomes the
model's canonical input: a white glyph on black, cropped to the glyph, centred keeping
its aspect ratio inside a margin (the EMNIST recipe), 32x32, then normalised::

    image --to_gray--> float [0, 1]                                        (image.py)
          --glyph_bright--> ink bright, the light's gradient and shadows divided out,
                            polarity decided on the flattened image        (light.py)
          --threshold (Otsu | adaptive)--> mask
          --choose_glyph--> the letter: rules erased; frames, boxes, underlines,
                            specks and cut-off neighbours dropped          (choice.py)
          --stands_out? whole? (else again without its parts touching the edge,
                            when they are the lesser part; else no glyph: a
                            blank page, a letter cut off by the image's
                            edge)--> crop + clean
          --fit--> uint8 32x32 (canonical)  --normalize--> float32 (1, 32, 32)  (glyph.py)

Training data (image folders, the synthetic letters and scenes) and ``letters
recognize`` both go through :func:`canonical`, so what the model saw in training is
what it sees in the field. Word mode, :func:`split_word` (words.py), cuts a one-line
word into letters with the same gray, light and threshold, then gives each letter
the same crop and fit.
"""

from lettercnn.errors import ImageError
from lettercnn.preprocess.choice import choose_glyph
from lettercnn.preprocess.glyph import (
    DEFAULT_SPEC,
    THRESHOLDS,
    InputSpec,
    Threshold,
    bounds,
    canonical,
    cut_off,
    glyph_mask,
    normalize,
    stands_out,
    to_input,
)
from lettercnn.preprocess.image import (
    IMG_EXTENSIONS,
    MAX_WORK_SIDE,
    encode_png,
    load_image,
    quiet_opencv,
    to_gray,
)
from lettercnn.preprocess.light import dark_ink, glyph_bright
from lettercnn.preprocess.words import LetterCrop, split_word

__all__ = [
    "DEFAULT_SPEC",
    "IMG_EXTENSIONS",
    "MAX_WORK_SIDE",
    "THRESHOLDS",
    "ImageError",
    "InputSpec",
    "LetterCrop",
    "Threshold",
    "bounds",
    "canonical",
    "choose_glyph",
    "cut_off",
    "dark_ink",
    "encode_png",
    "glyph_bright",
    "glyph_mask",
    "load_image",
    "normalize",
    "quiet_opencv",
    "split_word",
    "stands_out",
    "to_gray",
    "to_input",
]
