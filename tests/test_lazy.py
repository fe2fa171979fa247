"""Tests of lettercnn.lazy: package names imported on first use."""

from __future__ import annotations

import subprocess
import sys

import pytest


def test_package_import_loads_nothing_until_a_name_is_used() -> None:
    code = (
        "import sys, lettercnn.data, lettercnn.report\n"
        "before = [m for m in ('torch', 'numpy', 'lettercnn.data.glyphs') if m in sys.modules]\n"
        "lettercnn.data.GlyphSet\n"
        "print(before, 'lettercnn.data.glyphs' in sys.modules, 'GlyphSet' in vars(lettercnn.data))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[] True True"


def test_unknown_name_is_an_attribute_error_and_dir_lists_the_exports() -> None:
    import lettercnn.report as report

    with pytest.raises(AttributeError, match="module 'lettercnn.report' has no attribute 'nope'"):
        report.nope  # noqa: B018
    assert {"build_report", "DEFAULT_TSNE_SAMPLES"} <= set(dir(report))


def test_the_runtime_never_imports_the_training_side() -> None:
    code = (
        "import pathlib, sys, tempfile\n"
        "import lettercnn.bench, lettercnn.camera, lettercnn.runtime\n"
        "lettercnn.bench.sample_image(pathlib.Path(tempfile.mkdtemp()))  # drawn by data.render, torch-free\n"
        "print(sorted(sys.modules))\n"
    )
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split("'")
    heavy = {"torch", "torchvision", "matplotlib", "sklearn", "onnx"}
    training = ("lettercnn.training", "lettercnn.nn", "lettercnn.export", "lettercnn.quantize", "lettercnn.experiments",
                "lettercnn.report.", "lettercnn.data.folder", "lettercnn.data.glyphs", "lettercnn.data.synthetic")  # fmt: skip
    assert not [name for name in loaded if name.split(".")[0] in heavy or name.startswith(training)]


@pytest.mark.parametrize("package", ["lettercnn.data", "lettercnn.report"])
def test_every_lazy_name_is_public(package: str) -> None:
    import importlib

    module = importlib.import_module(package)
    assert set(module._EXPORTS) <= set(module.__all__)
