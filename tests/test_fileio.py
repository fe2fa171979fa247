"""Atomic writes: a file appears whole under its name, or not at all."""

from __future__ import annotations

import os
import stat

import pytest

from lettercnn.fileio import atomic_path, write_json, write_text


def test_written_file_appears_whole_with_normal_permissions(tmp_path):
    target = tmp_path / "sub" / "out.json"
    write_json(target, {"a": 1})
    assert target.read_text() == '{\n  "a": 1\n}\n'
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE(target.stat().st_mode) == 0o666 & ~umask


def test_failure_leaves_the_old_file_and_no_temp_file(tmp_path):
    target = tmp_path / "model.onnx"
    write_text(target, "old")
    with pytest.raises(RuntimeError):
        with atomic_path(target) as tmp:
            tmp.write_text("half")
            raise RuntimeError("crash mid-write")
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["model.onnx"]
