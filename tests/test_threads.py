"""Tests of lettercnn.threads: the thread count torch gets, and the once-only slowdown hint."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
import torch

from lettercnn import threads
from lettercnn.threads import SlowdownWatch, apply_threads, default_threads, first_slowdown, resolve_threads


@pytest.fixture
def torch_threads_restored() -> Iterator[None]:
    """Give torch its thread count back after a test that changes it."""
    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)


def test_default_threads_are_the_cores_this_process_may_use(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(os, "sched_getaffinity", lambda _pid: {0, 3, 5}, raising=False)
    monkeypatch.setattr(os, "cpu_count", lambda: 64)
    assert default_threads({}) == 3


def test_default_threads_fall_back_to_the_cpu_count_without_affinity(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delattr(os, "sched_getaffinity", raising=False)
    monkeypatch.setattr(os, "cpu_count", lambda: 6)
    assert default_threads({}) == 6


@pytest.mark.parametrize(("value", "expected"), [("1", 1), ("4,2", 4), (" 2 ", 2), ("0", 3), ("many", 3), ("", 3)])
def test_default_threads_take_omp_num_threads_when_the_user_set_it(
    monkeypatch: pytest.MonkeyPatch, value: str, expected: int
) -> None:
    monkeypatch.setattr(os, "sched_getaffinity", lambda _pid: {0, 1, 2}, raising=False)
    assert default_threads({threads.OMP_ENV: value}) == expected


def test_a_given_thread_count_overrides_the_default_and_below_one_is_refused() -> None:
    assert resolve_threads(5, {threads.OMP_ENV: "1"}) == 5
    with pytest.raises(ValueError, match="--threads must be at least 1, got 0"):
        resolve_threads(0)


@pytest.mark.usefixtures("torch_threads_restored")
def test_apply_threads_sets_torch_to_the_given_or_default_count(monkeypatch: pytest.MonkeyPatch) -> None:
    assert apply_threads(1) == 1 and torch.get_num_threads() == 1
    monkeypatch.setenv(threads.OMP_ENV, "2")
    assert apply_threads() == 2 and torch.get_num_threads() == 2


def test_first_slowdown_is_the_first_epoch_far_below_the_first_ones_speed() -> None:
    assert first_slowdown([200.0, 180.0, 150.0, 90.0]) is None  # 45% of the first: slower, not crowded out
    assert first_slowdown([200.0, 190.0, 60.0, 50.0]) == 2
    assert first_slowdown([200.0]) is None and first_slowdown([]) is None


def test_the_slowdown_hint_fires_once_with_the_threads_hint() -> None:
    watch = SlowdownWatch(threads=2)
    said = [watch.update(epoch, speed) for epoch, speed in enumerate([225.0, 210.0, 24.0, 30.0, 20.0, 220.0], 1)]
    assert said[:2] == [None, None] and said[3:] == [None, None, None]
    assert said[2] is not None
    assert "epoch 3 trained at 24 images/s, 11% of the first epoch's 225 with 2 threads" in said[2]
    assert "--threads 1" in said[2]


def test_nproc_shares_the_cores_unless_the_user_set_omp_num_threads(monkeypatch: pytest.MonkeyPatch) -> None:
    from lettercnn.training.launch import threads_per_process

    monkeypatch.setattr(os, "sched_getaffinity", lambda _pid: set(range(8)), raising=False)
    assert threads_per_process(None, 2, {}) == 4
    assert threads_per_process(None, 16, {}) == 1  # never below one
    assert threads_per_process(None, 2, {"OMP_NUM_THREADS": "3"}) == 3  # OpenMP reads it in every process
    assert threads_per_process(None, 2, {"OMP_NUM_THREADS": "many"}) == 4
    assert threads_per_process(5, 2, {"OMP_NUM_THREADS": "3"}) == 5  # --threads wins
