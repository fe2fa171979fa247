"""Look inside a trained model: kernels, feature maps, t-SNE, entropy, curves, confusion.

:func:`build_report` writes a report folder (by default ``RUN/report/``)::

    RUN/report/
        kernels_conv0.png        the 32 5x5 kernels of conv layer 0
        kernels_conv1.png        the 64 x 32 5x5 kernels of conv layer 1, a tile per output channel
                                 (linked from the page, not embedded: too fine to read there)
        conv1_patterns.png       what each channel of conv layer 1 responds to: mean input patches
        feature_maps_conv0.png   conv layer 0's 32 maps of one test image, the image beside them
        feature_maps_conv1.png   conv layer 1's 64 maps of the same image
        tsne_hidden.png          t-SNE of the 256-d feature after Linear -> BN1d -> ReLU
        tsne_logits.png          t-SNE of the 26 logits
        entropy.png              entropy per stage, in nats
        loss.png                 the run's training curves (if it has a history.json)
        confusion.png            the confusion matrix of the test images used, counts readable
        reliability.png          reliability diagrams of the test letters, before and after calibration
        risk_coverage.png        as the "?" threshold rises: letters answered, right, non-letters refused
        report.json              every number
        report.md                the report, referencing the PNGs
        report.html              the report in one file: figures embedded (but kernels_conv1.png,
                                 linked beside it), no network

Modules: :mod:`~lettercnn.report.entropy` (the entropies, pure numpy),
:mod:`~lettercnn.report.features` (model, test images, one pass over them),
:mod:`~lettercnn.report.tsne`, :mod:`~lettercnn.report.confidence` (calibration, numpy),
:mod:`~lettercnn.report.figures`,
:mod:`~lettercnn.report.page` (Markdown and HTML), :mod:`~lettercnn.report.build`.
Importing this package loads nothing heavy (not even numpy) until a name is used.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from lettercnn.lazy import lazy_exports

# No default index for the feature maps' and the entropy table's test image: a fixed
# number is past the end of a small test set. Not given, the image is the middle one of
# the test set (index n // 2), the same for both (see build.pick_index).
# t-SNE takes ~10 s per 1,000 points on 2 cores; 2,000 covers a synthetic test split.
DEFAULT_TSNE_SAMPLES = 2000
# The report folder inside the run folder when none is given.
REPORT_DIR = "report"

# Public name -> module that defines it; loaded on first use, so that the CLI can read
# the defaults above without importing numpy.
_EXPORTS: dict[str, str] = {
    "FIGURE_FILES": "build",
    "REPORT_HTML": "build",
    "REPORT_JSON": "build",
    "REPORT_MD": "build",
    "STEP_TSNE": "build",
    "ImageEntropy": "build",
    "Report": "build",
    "TestSetEntropy": "build",
    "build_report": "build",
    "default_out_dir": "build",
    "REFERENCE": "entropy",
    "STEP_DATA": "features",
    "STEP_FEATURES": "features",
    "ReportProgress": "features",
}

__all__ = [
    "DEFAULT_TSNE_SAMPLES",
    "FIGURE_FILES",
    "REFERENCE",
    "REPORT_DIR",
    "REPORT_HTML",
    "REPORT_JSON",
    "REPORT_MD",
    "STEP_DATA",
    "STEP_FEATURES",
    "STEP_TSNE",
    "ImageEntropy",
    "Report",
    "ReportProgress",
    "TestSetEntropy",
    "build_report",
    "default_out_dir",
]

if TYPE_CHECKING:  # pragma: no cover - for type checkers and IDEs only
    from lettercnn.report.build import (
        FIGURE_FILES,
        REPORT_HTML,
        REPORT_JSON,
        REPORT_MD,
        STEP_TSNE,
        ImageEntropy,
        Report,
        TestSetEntropy,
        build_report,
        default_out_dir,
    )
    from lettercnn.report.entropy import REFERENCE
    from lettercnn.report.features import STEP_DATA, STEP_FEATURES, ReportProgress


__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
