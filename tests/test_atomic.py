"""skinlab.atomic: files written whole, and one process at a time in a folder."""

from __future__ import annotations

import json
import multiprocessing
import os

import pytest

from skinlab.atomic import atomic_write, exclusive, write_json


def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path):
    target = write_json({"a": 1}, tmp_path / "x.json")
    with pytest.raises(RuntimeError):
        with atomic_write(target, "w") as fh:
            fh.write("half")
            raise RuntimeError("killed mid-write")
    assert json.loads(target.read_text()) == {"a": 1}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x.json"]


def _hold_and_write(folder: str, started, release) -> None:
    with exclusive(folder):
        started.set()
        release.wait(30)
        with open(os.path.join(folder, "log"), "a") as fh:
            fh.write("first\n")


def test_exclusive_lets_one_process_in_at_a_time(tmp_path):
    folder = tmp_path / "run"
    folder.mkdir()
    ctx = multiprocessing.get_context("fork")
    started, release = ctx.Event(), ctx.Event()
    holder = ctx.Process(target=_hold_and_write, args=(str(folder), started, release))
    holder.start()
    assert started.wait(30), "the first process never got the lock"
    entered = ctx.Event()

    def second():
        with exclusive(folder):
            entered.set()
            with open(folder / "log", "a") as fh:
                fh.write("second\n")

    waiter = ctx.Process(target=second)
    waiter.start()
    # while the holder is inside, the second process stays out
    assert not entered.wait(1.0)
    release.set()
    holder.join(30)
    waiter.join(30)
    assert (folder / "log").read_text() == "first\nsecond\n"


def test_a_killed_holder_frees_the_lock(tmp_path):
    folder = tmp_path / "run"
    ctx = multiprocessing.get_context("fork")
    started, release = ctx.Event(), ctx.Event()
    holder = ctx.Process(target=_hold_and_write, args=(str(folder.parent), started, release))
    holder.start()
    assert started.wait(30)
    holder.kill()
    holder.join(30)
    with exclusive(folder.parent):  # would block forever if the lock outlived its process
        pass
