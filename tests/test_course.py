"""The course code (``skinlab.course``) finds the course from its arguments or the current folder,
never from where the package is installed; what keys the book's cached runs and pages follows the
code's imports; the chapters use only names that exist."""

from __future__ import annotations

import ast
import importlib
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from skinlab import course
from skinlab.config import train_command
from skinlab.course import bookbuild, browser, codekey, configs, page, profile, runcache

ROOT = Path(__file__).resolve().parents[1]
CHAPTERS = sorted((ROOT / "book").glob("*.md"))


def test_no_module_of_the_package_is_an_alias_of_another():
    """Old names (``skinlab.profile``, ``skinlab.cache``...) are gone: a module that replaces itself
    in ``sys.modules`` is a second name for the same code, and each thing has one name. The one
    old name kept, ``skinlab.bookbuild``, is only the published ``python -m`` command: importing
    it gives no name at all."""
    aliases = [p.relative_to(ROOT).as_posix() for p in codekey.package_dir().rglob("*.py")
               if "sys.modules[__name__]" in p.read_text(encoding="utf-8")]
    assert aliases == []
    for old in ("profile", "cache", "download", "synthetic"):
        with pytest.raises(ModuleNotFoundError):
            importlib.import_module(f"skinlab.{old}")
    command = importlib.import_module("skinlab.bookbuild")
    assert command is not bookbuild
    assert [name for name in vars(command) if not name.startswith("_")] == []


def test_the_published_book_build_command_still_runs_the_build(monkeypatch, capsys):
    """``python -m skinlab.bookbuild`` (the README's and Makefile's command before the move) is the
    build's command line: the same help, exit status 0."""
    monkeypatch.setenv("COLUMNS", "100")  # the same wrapping here and in the child
    with pytest.raises(SystemExit) as stop:
        bookbuild.main(["--help"])
    assert stop.value.code == 0
    expected = capsys.readouterr().out
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    r = subprocess.run([sys.executable, "-m", "skinlab.bookbuild", "--help"], capture_output=True,
                       text=True, env=env, cwd=ROOT)
    assert r.returncode == 0, r.stderr
    assert "--browser-check" in expected and r.stdout == expected


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
    monkeypatch.delenv(runcache.RUNS_ENV, raising=False)
    monkeypatch.setenv(course.COURSE_ENV, str(tmp_path))

    class Source:
        root, synthetic = tmp_path, True

    (tmp_path / "HAM10000_metadata.csv").write_text("lesion_id,image_id,dx\n")
    assert runcache.runs_dir(profile.current_profile("quick"), Source()).parent == tmp_path / "_build" / ".skinlab-runs"
    assert bookbuild.html_dir(tmp_path, "instructor") == tmp_path / "_build" / "instructor" / "html"
    assert browser.screenshot_dir(bookbuild.html_dir(tmp_path)) == tmp_path / "_build" / "screenshots"


def test_book_build_refuses_a_folder_without_config(tmp_path):
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    r = subprocess.run([sys.executable, "-m", "skinlab.course.bookbuild", str(tmp_path)], capture_output=True,
                       text=True, env=env)
    assert r.returncode != 0 and "_config.yml" in r.stderr


@pytest.mark.parametrize("overrides, changed", [
    ({}, ""),
    ({"rotation": 0, "flip": False, "init_seed": 2}, " --rotation 0 --no-flip --init-seed 2"),
    ({"sampling": "balanced", "weighting": "none"}, " --weighting none --sampling balanced"),
    ({"class_weights": (0.5, 1.0, 1.25, 4.0, 1.0, 0.125, 8.0)}, " --class-weights 0.5,1,1.25,4,1,0.125,8"),
])
def test_train_command_names_every_changed_option(overrides, changed):
    quick = profile.current_profile("quick")
    # The profile's LeNet settings always show; the changed options follow; the folder ends it.
    expected = (f"skinlab train --model lenet --epochs {quick.lenet_epochs} --lr {quick.lenet_lr:g}"
                f"{changed} --out runs/lenet")
    cfg = configs.lenet_config(quick, **overrides)
    assert train_command(cfg) == expected
    from skinlab.cli import build_parser

    args = build_parser().parse_args(expected.split()[1:])  # and the CLI accepts it
    assert all(getattr(args, k) == v for k, v in overrides.items())


@pytest.mark.parametrize("name", sorted(profile.PROFILES))
def test_transfer_config_fine_tunes_the_pretrained_layers_at_a_smaller_rate(name):
    # Chapter 11 says so: the new head at transfer_lr, the pretrained layers at a smaller rate.
    cfg = configs.transfer_config(profile.current_profile(name))
    assert cfg.backbone_lr is not None and cfg.backbone_lr < cfg.lr
    assert "--backbone-lr" in train_command(cfg)


def test_browser_check_of_an_unbuilt_book_says_so_in_one_line(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(bookbuild, "browser_available", lambda: True)
    assert bookbuild.main([str(tmp_path), "--browser-check"]) == 2
    err = capsys.readouterr().err.strip()
    assert "build it first" in err and str(tmp_path) in err and len(err.splitlines()) == 1


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


# ---------------------------------------------------------------------------- what keys a cached run


def test_the_run_key_covers_every_module_the_training_path_imports():
    """Oracle: what Python itself loads for the training path (``skinlab.pipeline``, the run cache
    and the chapters' configurations) must all key a run; the sampler module chapter 12 trains
    with once was missing from a hand-written list."""
    derived = set(runcache.code_modules())
    assert "skinlab.distributed" in derived
    code = ("import sys, json, skinlab.pipeline, skinlab.course.runcache, skinlab.course.configs; "
            "print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] == 'skinlab')))")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    loaded = set(json.loads(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                                           env=env, check=True).stdout))
    assert "skinlab.distributed" in loaded and "skinlab.pipeline" in loaded
    assert loaded <= derived, f"imported by the training path but not in its key: {sorted(loaded - derived)}"
    assert runcache.code_modules() == runcache.code_modules()  # deterministic: sorted, no import order
    assert not any(m.startswith(("skinlab.grading", "skinlab.cli")) for m in derived)  # not everything


def test_the_import_walk_follows_every_form_of_import(tmp_path):
    package = tmp_path / "skinlab"
    files = {
        "__init__.py": "",
        "a.py": "def f():\n    from . import b  # relative, inside a function\n",
        "b.py": "from skinlab.sub import c, X  # c a module, X a name\n",
        "sub/__init__.py": "from .d import X\n",
        "sub/c.py": "import skinlab.e as e\n",
        "sub/d.py": "from ..f import g\nX = 1\n",
        "e.py": "from skinlab import h\n",
        "f.py": "def g(): pass\n",
        "h.py": "import os\n",
        "unused.py": "",
    }
    for name, text in files.items():
        (package / name).parent.mkdir(parents=True, exist_ok=True)
        (package / name).write_text(text)
    found = codekey.imported_modules(["skinlab.a"], package)
    assert found == tuple(sorted(["skinlab"] + [f"skinlab.{m}" for m in ("a", "b", "sub", "sub.c", "sub.d", "e", "f", "h")]))
    with pytest.raises(ValueError, match="skinlab.nope"):
        codekey.imported_modules(["skinlab.nope"], package)
    key = codekey.code_hash(found, package)
    (package / "sub" / "d.py").write_text("from ..f import g\nX = 2\n")
    assert codekey.code_hash(found, package) != key


def test_the_book_key_follows_what_the_chapters_import(tmp_path):
    chapter = tmp_path / "01_x.md"
    chapter.write_text("# x\n\n```{code-cell} ipython3\n:tags: [remove-input]\n%matplotlib inline\n"
                       "from skinlab.course import page\n```\n\n```python\nimport skinlab.cli  # not a cell\n```\n\n"
                       "````{code-cell} ipython3\n---\nmystnb:\n  figure:\n    caption: y\n---\n"
                       "from skinlab import split\n````\n")
    found = set(codekey.chapters_modules([chapter]))
    assert {"skinlab.course.page", "skinlab.course.profile", "skinlab.split", "skinlab.data"} <= found
    assert "skinlab.cli" not in found and "skinlab.pipeline" not in found
    book = set(bookbuild.book_code_modules(ROOT))
    assert set(runcache.code_modules()) <= book  # the chapters train: the run key's code keys the pages


def test_a_changed_sampler_trains_the_cached_run_again(tmp_path, monkeypatch, synth_dir, one_torch_thread):
    """Edit ``ShardedSampler`` in a copy of the package: the run key changes, and ``cached_train``
    of the same name trains again (into the new key's folder) instead of reusing the old run."""
    from skinlab import pipeline

    package = tmp_path / "copy" / "skinlab"
    shutil.copytree(codekey.package_dir(), package, ignore=shutil.ignore_patterns("__pycache__"))
    monkeypatch.setattr(codekey, "package_dir", lambda: package)  # runs are keyed by the copy's code
    monkeypatch.setenv(runcache.RUNS_ENV, str(tmp_path / "runs"))
    monkeypatch.setenv("HAM10000_DIR", str(synth_dir))
    trained = []
    real_train = pipeline.train
    monkeypatch.setattr(pipeline, "train", lambda cfg, **kw: trained.append(cfg.out) or real_train(cfg, **kw))

    smoke = profile.current_profile("smoke")
    cfg = configs.lenet_config(smoke, epochs=1, batch_size=32, device="cpu", progress=False)
    first = runcache.cached_train("tiny", cfg, smoke)
    again = runcache.cached_train("tiny", cfg, smoke)
    assert len(trained) == 1 and again.folder == first.folder  # unchanged code: reused

    sampler = package / "distributed.py"
    source = sampler.read_text()
    edited = re.sub(r'(class ShardedSampler\b.*?\n    """.*?"""\n)', r"\1\n    edited = True\n", source,
                    count=1, flags=re.S)
    assert edited != source
    sampler.write_text(edited)
    retrained = runcache.cached_train("tiny", cfg, smoke)
    assert len(trained) == 2, "the sampler changed, yet the cached run was reused"
    assert retrained.folder != first.folder and retrained.folder.name == first.folder.name  # same name and settings
    assert (retrained.folder / "metrics.json").is_file() and (first.folder / "metrics.json").is_file()


def _fake_train(log_file: Path):
    """A stand-in for ``pipeline.train``: appends to ``log_file``, then writes a finished run slowly,
    so that a second process asking for the same run meanwhile would see it half-made."""
    import time

    from skinlab.atomic import write_json

    def train(cfg, log=None):
        with open(log_file, "a") as fh:
            fh.write(f"{os.getpid()}\n")
        out = Path(cfg.out)
        write_json({**runcache.settings(cfg), "out": cfg.out}, out / "config.json")
        time.sleep(0.5)
        write_json({"accuracy": 0.5, "n": 1}, out / "metrics.json")

    return train


def _ask_for_run(name, cfg, smoke, results):
    results.put(str(runcache.cached_train(name, cfg, smoke).folder))


def test_chapters_executed_side_by_side_train_a_shared_run_once(tmp_path, monkeypatch, synth_dir):
    """Two kernels ask for the same run at once (the book executes chapters side by side): one
    trains it, the other waits and reads it; nobody reads a half-made run."""
    import multiprocessing

    from skinlab import pipeline

    monkeypatch.setenv(runcache.RUNS_ENV, str(tmp_path / "runs"))
    monkeypatch.setenv("HAM10000_DIR", str(synth_dir))
    log = tmp_path / "trained.log"
    monkeypatch.setattr(pipeline, "train", _fake_train(log))
    smoke = profile.current_profile("smoke")
    cfg = configs.lenet_config(smoke, epochs=1)
    ctx = multiprocessing.get_context("fork")  # the children keep the fake train
    results = ctx.Queue()
    kernels = [ctx.Process(target=_ask_for_run, args=("shared", cfg, smoke, results)) for _ in range(3)]
    for k in kernels:
        k.start()
    for k in kernels:
        k.join(60)
        assert k.exitcode == 0
    folders = {results.get(timeout=5) for _ in kernels}
    assert len(log.read_text().split()) == 1, "the shared run was trained more than once"
    assert len(folders) == 1 and (Path(folders.pop()) / "metrics.json").is_file()


def test_other_settings_or_another_split_train_a_run_of_their_own(tmp_path, monkeypatch, synth_dir):
    """A chapter edited to train its run otherwise (another rate, another given split) never reads
    the run made before the edit: the folder is keyed by what the run computes."""
    import pandas as pd

    from skinlab import pipeline

    monkeypatch.setenv(runcache.RUNS_ENV, str(tmp_path / "runs"))
    monkeypatch.setenv("HAM10000_DIR", str(synth_dir))
    log = tmp_path / "trained.log"
    monkeypatch.setattr(pipeline, "train", _fake_train(log))
    smoke = profile.current_profile("smoke")
    base = runcache.cached_train("lenet", configs.lenet_config(smoke), smoke)
    how = runcache.cached_train("lenet", configs.lenet_config(smoke, progress=True, device="cpu"), smoke)
    assert how.folder == base.folder  # how a run executes does not key it
    other = runcache.cached_train("lenet", configs.lenet_config(smoke, lr=0.01), smoke)
    assert other.folder != base.folder and other.folder.name.startswith("lenet-")
    meta = runcache.prepared(configs.lenet_config(smoke)).metadata
    parts = pd.Series((["train"] * 8 + ["val", "test"]) * (len(meta) // 10 + 1), dtype=object).iloc[: len(meta)]
    parts.index = meta.index
    one = runcache.cached_train("given", configs.lenet_config(smoke), smoke, split=parts)
    again = runcache.cached_train("given", configs.lenet_config(smoke), smoke, split=parts.copy())
    moved = parts.copy()
    moved.iloc[0] = "test" if parts.iloc[0] != "test" else "train"
    changed = runcache.cached_train("given", configs.lenet_config(smoke), smoke, split=moved)
    assert again.folder == one.folder and changed.folder != one.folder
    assert len(log.read_text().split()) == 4  # base, lr=0.01, the split, the moved split


def test_prepared_data_depends_only_on_the_options_declared_data(synth_dir, monkeypatch):
    """prepare_data reads no option that is not declared data=True (so the kernel's memo of
    prepared data, keyed by those, is never stale), and each of those is read."""
    from skinlab import config, pipeline

    monkeypatch.setenv("HAM10000_DIR", str(synth_dir))
    read = set()
    fields = {f.name for f in config.option_fields()}

    class Watched(config.TrainConfig):
        def __getattribute__(self, name):
            if name in fields:
                read.add(name)
            return super().__getattribute__(name)

    cfg = Watched(model="lenet", epochs=1, progress=False)
    read.clear()  # __post_init__ reads out
    pipeline.prepare_data(cfg, log=None)
    executes = {"progress", "workers"}  # how it runs, not what it gives
    assert read - executes <= set(config.data_options(cfg)), read - executes - set(config.data_options(cfg))
    assert set(config.data_options(cfg)) <= read | {"image_size"}  # image_size: through resolved_image_size


def test_a_given_split_is_written_before_its_run_trains_and_the_run_is_reused(tmp_path, monkeypatch, synth_dir):
    """Chapter 3 trains on splits it makes (the leaky image-level one): the split file must exist
    when training starts, and asking again reuses the run (same settings, split file included)."""
    import pandas as pd

    from skinlab import pipeline

    monkeypatch.setenv(runcache.RUNS_ENV, str(tmp_path / "runs"))
    monkeypatch.setenv("HAM10000_DIR", str(synth_dir))
    seen = []
    fake = _fake_train(tmp_path / "trained.log")

    def train(cfg, log=None):
        seen.append(pd.read_csv(cfg.split_file))  # fails if the file is not there yet
        fake(cfg, log)

    monkeypatch.setattr(pipeline, "train", train)
    smoke = profile.current_profile("smoke")
    cfg = configs.lenet_config(smoke)
    meta = runcache.prepared(cfg).metadata
    parts = pd.Series(["train", "val", "test"] * (len(meta) // 3 + 1), dtype=object).iloc[: len(meta)]
    parts.index = meta.index
    first = runcache.cached_train("given", cfg, smoke, split=parts)
    again = runcache.cached_train("given", cfg, smoke, split=parts)
    assert len(seen) == 1 and again.folder == first.folder
    assert list(seen[0]["split"]) == list(parts) and list(seen[0]["image_id"]) == list(meta["image_id"])


def test_the_book_key_follows_the_course_files_the_chapters_read(tmp_path):
    """Chapter 11 reads the recorded accuracy figures and chapter 13 the exercise notebooks: a
    change to either re-executes the book; every course file a chapter names is such an input."""
    course_copy = tmp_path / "course"
    for part in ("book", "exercises"):
        shutil.copytree(ROOT / part, course_copy / part)
    (course_copy / "bench").mkdir()
    shutil.copy(ROOT / "bench" / "results-accuracy.json", course_copy / "bench")
    quick = profile.current_profile("quick")
    key = bookbuild.build_key(course_copy, quick)
    recorded = course_copy / "bench" / "results-accuracy.json"
    recorded.write_text(recorded.read_text() + "\n")
    assert bookbuild.build_key(course_copy, quick) != key
    notebook = sorted((course_copy / "exercises").glob("*/*.ipynb"))[0]
    before = bookbuild.build_key(course_copy, quick)
    notebook.write_text(notebook.read_text() + "\n")
    assert bookbuild.build_key(course_copy, quick) != before
    # the course files the chapters' code names are among the inputs
    named = set()
    for chapter in CHAPTERS:
        for code in codekey.code_cells(chapter):
            named.update(re.findall(r"\"(results-[\w-]+\.json|[\w-]+\.ipynb)\"", code))
    assert "results-accuracy.json" in named  # chapter 11 names it
    for name in named:
        assert any(Path(name).match(Path(p).name) for p in bookbuild.CHAPTER_INPUTS), name


# ---------------------------------------------------------------------------- the chapters' names


def _skinlab_bindings(tree: ast.AST) -> dict[str, str]:
    """``{name in the cell: skinlab module}`` for the modules a cell binds by importing."""
    bound = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for a in node.names:
                if a.name.split(".")[0] == "skinlab" and a.asname:
                    bound[a.asname] = a.name
        elif isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == "skinlab":
            for a in node.names:
                bound[a.asname or a.name] = f"{node.module}.{a.name}"
    return bound


@pytest.mark.parametrize("chapter", CHAPTERS, ids=lambda p: p.stem)
def test_every_skinlab_name_a_chapter_uses_exists(chapter):
    """A renamed or moved function must not leave a chapter calling it by its old name (the book
    build would fail minutes in): every ``from skinlab... import x`` and every ``module.attr`` of
    an imported skinlab module must exist."""
    trees = [ast.parse(src) for src in codekey.code_cells(chapter)]
    assert trees, f"{chapter.name}: no code cell found"
    bound: dict[str, str] = {}
    for tree in trees:
        bound.update(_skinlab_bindings(tree))
    # names the chapter also assigns itself are not (only) modules: leave them out
    assigned = {n.id for t in trees for n in ast.walk(t) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store)}
    missing = []
    objects = {}
    for name, dotted in bound.items():
        parent, _, attr = dotted.rpartition(".")
        try:
            objects[name] = importlib.import_module(dotted)
        except ModuleNotFoundError:
            module = importlib.import_module(parent)
            if not hasattr(module, attr):
                missing.append(f"{parent}.{attr}")
            objects[name] = getattr(module, attr, None)
    for tree in trees:
        for node in ast.walk(tree):
            if (isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name)
                    and node.value.id in objects and node.value.id not in assigned):
                obj = objects[node.value.id]
                if type(obj).__name__ == "module" and not hasattr(obj, node.attr):
                    missing.append(f"{obj.__name__}.{node.attr}")
    assert not missing, f"{chapter.name} uses names that do not exist: {sorted(set(missing))}"
    first = codekey.code_cells(chapter)[0]
    assert "page.setup()" in first and "page.banner()" in first, f"{chapter.name}: the first cell must set the page up"


def test_the_page_setup_is_explicit_and_the_banner_has_no_side_effect(monkeypatch, tmp_path):
    import pandas as pd

    class Source:
        root, synthetic = tmp_path, True

    with pd.option_context("display.max_colwidth", 50):
        note = page.banner(profile.current_profile("quick"), Source())
        assert pd.get_option("display.max_colwidth") == 50  # showing the note sets nothing
        assert page.SYNTHETIC_NOTE_CLASS in note._repr_html_() and "quick" in repr(note)
        page.setup()
        assert pd.get_option("display.max_colwidth") is None  # whole cells: the setup's job


def test_no_large_module_of_the_course_mixes_jobs():
    """The course's modules were split by job (profiles, page, configs, run cache, code key, build,
    browser, audit): none grows back past 400 lines."""
    sizes = {p.name: len(p.read_text().splitlines()) for p in (codekey.package_dir() / "course").glob("*.py")}
    assert max(sizes.values()) <= 400, sizes
