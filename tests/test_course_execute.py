"""The book's chapters are executed side by side before Sphinx reads them (skinlab.course.execute).

A tiny Jupyter Book of three notebooks is built with the same extension as the course: every
notebook is executed once (by the prefetch), two of them at the same time, their outputs reach the
pages, and a notebook that fails still fails the build with MyST-NB's own report.
"""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest

from skinlab.course import execute

ROOT = Path(__file__).resolve().parents[1]


def test_schedule_puts_the_longest_first_and_guesses_the_never_timed():
    times = {"a.md": 5.0, "b.md": 300.0, "c.md": 40.0}
    # never timed: the median of the others (40 s), after the longer, before the shorter
    assert execute.schedule(["a.md", "b.md", "c.md", "new.md"], times) == ["b.md", "c.md", "new.md", "a.md"]
    assert execute.schedule(["x.md", "y.md"], {}) == ["x.md", "y.md"]  # no history: the given order
    # a fresh clone: the chapter whose front matter says it executes long starts first
    assert execute.schedule(["x.md", "y.md", "z.md"], {}, frozenset({"z.md"})) == ["z.md", "x.md", "y.md"]
    # a measured time wins over the hint
    assert execute.schedule(["x.md", "z.md"], {"x.md": 9.0, "z.md": 1.0}, frozenset({"z.md"})) == ["x.md", "z.md"]


def test_the_long_chapter_says_so_in_its_front_matter():
    import jupytext

    flagged = [p.name for p in sorted((ROOT / "book").glob("*.md")) if execute.is_long(jupytext.read(p))]
    # the transfer run (about 4 min of one core on HAM10000) and the six LeNet runs of the tips
    # (about 2 min): started first, the other chapters fill the other kernel meanwhile
    assert flagged == ["11_transfer.md", "12_tips.md"]


@pytest.mark.parametrize("value, message", [("two", "whole number"), ("0", "at least 1"), ("-3", "at least 1")])
def test_a_bad_job_count_is_named(monkeypatch, value, message):
    monkeypatch.setenv(execute.JOBS_ENV, value)
    with pytest.raises(ValueError, match=message) as err:
        execute.jobs_from_env()
    assert execute.JOBS_ENV in str(err.value)


def test_job_count_defaults_to_the_cores_at_most_four(monkeypatch):
    monkeypatch.delenv(execute.JOBS_ENV, raising=False)
    assert 1 <= execute.jobs_from_env() <= 4
    monkeypatch.setenv(execute.JOBS_ENV, "3")
    assert execute.jobs_from_env() == 3


def test_times_survive_a_damaged_file(tmp_path):
    cache = tmp_path / ".jupyter_cache"
    (tmp_path / execute.TIMES_FILE).write_text("{not json")
    assert execute.read_times(cache) == {}
    execute._record_times(cache, {"a.md": 1.5})
    execute._record_times(cache, {"b.md": 2.0})
    assert execute.read_times(cache) == {"a.md": 1.5, "b.md": 2.0}


NOTEBOOK = """\
---
jupytext:
  text_representation:
    extension: .md
    format_name: myst
kernelspec:
  display_name: Python 3
  language: python
  name: python3
---
# {title}

```{{code-cell}} ipython3
import json, os, time
start = time.time()
time.sleep({sleep})
{extra}
with open("{name}.json", "w") as fh:
    json.dump({{"pid": os.getpid(), "start": start, "end": time.time()}}, fh)
print("output of {name}")
```
"""


def _tiny_book(folder: Path, fail: bool = False) -> Path:
    folder.mkdir()
    names = ["one", "two", "three"]
    for i, name in enumerate(names):
        extra = "raise RuntimeError('planted failure')" if fail and name == "three" else ""
        (folder / f"{name}.md").write_text(NOTEBOOK.format(title=name.title(), sleep=2 if i < 2 else 0,
                                                            name=name, extra=extra))
    (folder / "_toc.yml").write_text("format: jb-book\nroot: one\nchapters:\n- file: two\n- file: three\n")
    (folder / "_config.yml").write_text(textwrap.dedent(f"""\
        title: tiny
        only_build_toc_files: true
        execute:
          execute_notebooks: cache
          timeout: 120
        sphinx:
          local_extensions:
            skinlab_execute: {ROOT / 'book' / '_ext'}
          config:
            nb_execution_raise_on_error: true
            nb_execution_show_tb: true
        """))
    return folder


def _build(folder: Path) -> int:
    from jupyter_book.sphinx import build_sphinx

    result = build_sphinx(folder, folder / "_build" / "html", doctreedir=folder / "_build" / ".doctrees",
                          noconfig=True, path_config=str(folder / "_config.yml"), use_external_toc=True,
                          confoverrides={"external_toc_path": str(folder / "_toc.yml"), "latex_individualpages": False},
                          builder="html", warningiserror=True, keep_going=True, freshenv=True)
    return 1 if isinstance(result, BaseException) else int(result or 0)


@pytest.mark.slow
def test_a_tiny_book_is_executed_side_by_side_once_and_shown(tmp_path, monkeypatch, capfd):
    monkeypatch.setenv(execute.JOBS_ENV, "2")
    book = _tiny_book(tmp_path / "book")
    assert _build(book) == 0
    out = capfd.readouterr().out
    assert "executing 3 chapter(s) on 2 kernel(s) at once" in out
    runs = {name: json.loads((book / f"{name}.json").read_text()) for name in ("one", "two", "three")}
    # two kernels at once: the two 2-second notebooks overlap in time
    assert runs["one"]["pid"] != runs["two"]["pid"]
    assert runs["one"]["start"] < runs["two"]["end"] and runs["two"]["start"] < runs["one"]["end"]
    # MyST-NB took every notebook from the cache: none was executed a second time while reading
    assert "Executing notebook" not in out
    for name in ("one", "two", "three"):
        assert f"output of {name}" in (book / "_build" / "html" / f"{name}.html").read_text()
    times = execute.read_times(book / "_build" / ".jupyter_cache")
    assert sorted(Path(p).name for p in times) == ["one.md", "three.md", "two.md"]
    # an unchanged rebuild executes nothing
    for name in ("one", "two", "three"):
        (book / f"{name}.json").unlink()
    assert _build(book) == 0
    assert not any((book / f"{name}.json").exists() for name in ("one", "two", "three"))


@pytest.mark.slow
def test_a_failing_chapter_still_fails_the_build_with_its_error(tmp_path, monkeypatch, capfd):
    monkeypatch.setenv(execute.JOBS_ENV, "2")
    book = _tiny_book(tmp_path / "book", fail=True)
    assert _build(book) != 0
    captured = capfd.readouterr()
    text = captured.out + captured.err
    assert "1 failed and will run again while the pages are read: three.md" in text
    assert "planted failure" in text  # MyST-NB's own report, with the traceback
