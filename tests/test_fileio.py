"""Atomic writes: a file appears whole under its name, or not at all."""

from __future__ import annotations

import os
import stat

import pytest

from lettercnn.fileio import atomic_path, remove_stale_temps, write_json, write_text


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
    with pytest.raises(RuntimeError), atomic_path(target) as tmp:
        tmp.write_text("half")
        raise RuntimeError("crash mid-write")
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["model.onnx"]


def test_the_file_is_flushed_to_disk_before_it_takes_the_final_name(tmp_path, monkeypatch):
    events = []
    real_fsync, real_replace = os.fsync, os.replace
    monkeypatch.setattr(os, "fsync", lambda fd: events.append("fsync") or real_fsync(fd))
    monkeypatch.setattr(os, "replace", lambda a, b: events.append("replace") or real_replace(a, b))
    write_text(tmp_path / "best.pt", "weights")
    assert events[:2] == ["fsync", "replace"]
    assert (tmp_path / "best.pt").read_text() == "weights"


def test_remove_stale_temps_deletes_only_what_a_killed_write_left(tmp_path):
    (tmp_path / "last.pt").write_bytes(b"kept")
    (tmp_path / ".last.pt.abc123.tmp").write_bytes(b"half")
    (tmp_path / "notes.tmp").write_bytes(b"not ours: no leading dot")
    removed = remove_stale_temps(tmp_path)
    assert [path.name for path in removed] == [".last.pt.abc123.tmp"]
    assert sorted(path.name for path in tmp_path.iterdir()) == ["last.pt", "notes.tmp"]
