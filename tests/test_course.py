"""The course code (``skinlab.course``) finds the course from its arguments or the current folder,
never from where the package is installed; the old module names still work."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from skinlab import course
from skinlab.course import bookbuild, profile


def test_old_names_are_the_course_modules():
    import skinlab.bookbuild
    import skinlab.profile

    assert skinlab.profile is profile and skinlab.bookbuild is bookbuild
    assert not hasattr(profile, "REPO_ROOT")


def test_course_root_is_the_argument_else_the_environment_else_the_folder_with_config(tmp_path, monkeypatch):
    monkeypatch.delenv(course.COURSE_ENV, raising=False)
    book = tmp_path / "course" / "book"
    book.mkdir(parents=True)
    (tmp_path / "course" / "_config.yml").write_text("title: x\n")
    monkeypatch.chdir(book)
    assert course.course_root() == tmp_path / "course"  # a chapter opened in Jupyter runs in book/
    assert course.course_root(tmp_path) == tmp_path
    monkeypatch.setenv(course.COURSE_ENV, str(tmp_path / "elsewhere"))
    assert course.course_root() == tmp_path / "elsewhere"
    monkeypatch.delenv(course.COURSE_ENV)
    monkeypatch.chdir(tmp_path)
    assert course.course_root() == tmp_path  # no course above: the current folder


def test_runs_and_build_folders_follow_the_course_not_the_package(tmp_path, monkeypatch):
    monkeypatch.delenv(profile.RUNS_ENV, raising=False)
    monkeypatch.setenv(course.COURSE_ENV, str(tmp_path))

    class Source:
        root, synthetic = tmp_path, True

    (tmp_path / "HAM10000_metadata.csv").write_text("lesion_id,image_id,dx\n")
    assert profile.runs_dir(profile.current_profile("quick"), Source()).parent == tmp_path / "_build" / ".skinlab-runs"
    assert bookbuild.html_dir(tmp_path, "instructor") == tmp_path / "_build" / "instructor" / "html"
    assert bookbuild.screenshot_dir(bookbuild.html_dir(tmp_path)) == tmp_path / "_build" / "screenshots"


def test_book_build_refuses_a_folder_without_config(tmp_path):
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    r = subprocess.run([sys.executable, "-m", "skinlab.bookbuild", str(tmp_path)], capture_output=True,
                       text=True, env=env)
    assert r.returncode != 0 and "_config.yml" in r.stderr


def test_code_hash_covers_modules_and_packages():
    assert profile.code_hash(("plots",)) != profile.code_hash(("gradcam",))
    assert len(profile._source_files("plots")) > 1  # a package: every file of it
    assert profile._source_files("no_such_module") == []
    assert profile.code_hash() == profile.code_hash()


@pytest.mark.parametrize("overrides, expected", [
    ({}, "skinlab train --model lenet --epochs 12 --lr 0.001 --out runs/lenet"),
    ({"rotation": 0, "flip": False, "init_seed": 2},
     "skinlab train --model lenet --epochs 12 --lr 0.001 --rotation 0 --no-flip --init-seed 2 --out runs/lenet"),
    ({"sampling": "balanced", "weighting": "none"},
     "skinlab train --model lenet --epochs 12 --lr 0.001 --weighting none --sampling balanced --out runs/lenet"),
    ({"class_weights": (0.5, 1.0, 1.25, 4.0, 1.0, 0.125, 8.0)},
     "skinlab train --model lenet --epochs 12 --lr 0.001 --class-weights 0.5,1,1.25,4,1,0.125,8 --out runs/lenet"),
])
def test_train_command_names_every_changed_option(overrides, expected):
    cfg = profile.lenet_config(profile.current_profile("quick"), **overrides)
    assert profile.train_command(cfg) == expected
    from skinlab.cli import build_parser

    args = build_parser().parse_args(expected.split()[1:])  # and the CLI accepts it
    assert all(getattr(args, k) == v for k, v in overrides.items())


@pytest.mark.parametrize("name", sorted(profile.PROFILES))
def test_transfer_config_fine_tunes_the_pretrained_layers_at_a_smaller_rate(name):
    # Chapter 11 says so: the new head at transfer_lr, the pretrained layers at a smaller rate.
    cfg = profile.transfer_config(profile.current_profile(name))
    assert cfg.backbone_lr is not None and cfg.backbone_lr < cfg.lr
    assert "--backbone-lr" in profile.train_command(cfg)


# ---------------------------------------------------------------------------- exercises


def test_exercise_facts_come_from_the_sources_and_match_the_built_notebooks():
    """Ids and points are read from ``solutions/<id>/<id>.py``; the committed nbgrader notebooks
    (built from them, read here through their own metadata) agree."""
    import json

    from skinlab.course.exercises import exercise_ids, test_points

    root = Path(__file__).resolve().parents[1]
    ids = exercise_ids(root)
    assert ids == tuple(sorted((p.name for p in (root / "solutions").glob("ex*_*") if p.is_dir()),
                               key=lambda a: int(a[2:a.index("_")])))
    assert len(ids) >= 5
    for aid in ids:
        nb = json.loads((root / "solutions" / aid / f"{aid}.ipynb").read_text())
        meta = [c["metadata"]["nbgrader"] for c in nb["cells"] if c["metadata"].get("nbgrader", {}).get("grade")]
        assert test_points(aid, root) == {m["grade_id"]: m["points"] for m in meta}


def test_a_new_exercise_is_one_source_file(tmp_path):
    from skinlab.course.exercises import exercise_ids, test_points

    src = tmp_path / "solutions" / "ex10_extra"
    src.mkdir(parents=True)
    (src / "ex10_extra.py").write_text("# %% answer grade_id=f\ndef f(): return 1\n"
                                       "# %% test grade_id=test_f points=4\nassert f() == 1\n")
    (tmp_path / "solutions" / "ex2_b").mkdir()
    (tmp_path / "solutions" / "ex2_b" / "ex2_b.py").write_text("# %% [markdown]\n# nothing graded\n")
    (tmp_path / "solutions" / "notes").mkdir()  # not an exercise
    assert exercise_ids(tmp_path) == ("ex2_b", "ex10_extra")  # numeric order, not text order
    assert test_points("ex10_extra", tmp_path) == {"test_f": 4}
    assert exercise_ids(tmp_path / "nowhere") == ()


def test_a_bad_exercise_header_or_id_is_named(tmp_path):
    from skinlab.course.exercises import test_points

    src = tmp_path / "solutions" / "ex1_x"
    src.mkdir(parents=True)
    (src / "ex1_x.py").write_text("# %% test grade_id=test_a points=two\nassert True\n")
    with pytest.raises(ValueError, match=r"ex1_x\.py.*points=N"):
        test_points("ex1_x", tmp_path)
    with pytest.raises(FileNotFoundError, match=r"ex9_missing.*exercises of this course: ex1_x"):
        test_points("ex9_missing", tmp_path)


def test_book_execution_waits_for_late_output_or_fails(monkeypatch):
    # A chapter once lost its figures on a loaded machine: nbclient gave up on output after 4 s and
    # only logged it. The build's executor must wait longer and raise instead of dropping output.
    from jupyter_cache.executors import utils

    seen = []
    monkeypatch.setattr(utils, "executenb", lambda nb, **kw: seen.append(kw))
    bookbuild._wait_for_all_output()
    bookbuild._wait_for_all_output()  # idempotent: not wrapped twice
    utils.executenb("nb", cwd="/tmp", timeout=5)
    assert seen == [{"cwd": "/tmp", "timeout": 5, "iopub_timeout": bookbuild.IOPUB_TIMEOUT,
                     "raise_on_iopub_timeout": True}]
    assert bookbuild.IOPUB_TIMEOUT >= 60
    import nbclient
    import nbformat

    client = nbclient.NotebookClient(nbformat.v4.new_notebook(), iopub_timeout=bookbuild.IOPUB_TIMEOUT,
                                     raise_on_iopub_timeout=True)  # nbclient accepts both options
    assert client.iopub_timeout == bookbuild.IOPUB_TIMEOUT and client.raise_on_iopub_timeout
