"""Build the course book (``make book``), and the command line that builds and checks it.

    python -m skinlab.course.bookbuild                    # build _build/html (warnings are errors)
    python -m skinlab.course.bookbuild path/to/course     # the course in another folder
    python -m skinlab.course.bookbuild --profile full     # the guide's settings (meant for a GPU)
    python -m skinlab.course.bookbuild --edition instructor  # _build/instructor/html, with the listings
    python -m skinlab.course.bookbuild --install-browser  # apt-get install chromium chromium-driver
    python -m skinlab.course.bookbuild --browser-check    # screenshots, broken images, JS errors,
                                                          # and the page audit (offline math and views,
                                                          # alt text, sideways scroll at 1280 and 390 px)

The headless browser is :mod:`skinlab.course.browser`, the checks of the built pages
:mod:`skinlab.course.audit`; this module builds.

The course folder is the one holding the book's ``_config.yml``: the argument, else the current
folder (or the nearest one above it with ``_config.yml``). The chapters run on ``$HAM10000_DIR``
when set, else on the embedded synthetic sample (every page then says so). Execution is cached (``_build/.jupyter_cache``): an unchanged rebuild takes seconds.

Two editions (``--edition``, default ``$SKINLAB_EDITION``, else ``student``):

* ``student`` (the default, ``_build/html``): where a chapter would list a graded reference
  definition it shows the exercise box instead, and runs the reference without displaying it;
* ``instructor`` (``_build/instructor/html``): the same pages with the listings.

Both execute the same notebooks and share the execution cache: the edition is decided at Sphinx
level (``book/_ext/skinlab_editions.py``, config value ``skinlab_edition``), so building the
second edition after the first re-executes nothing.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

from skinlab.course import CONFIG_FILE, COURSE_ENV, course_root
from skinlab.course.audit import audit_book
from skinlab.course.browser import INSTALL_HINT, browser_available, install_browser
from skinlab.course.codekey import chapters_modules, code_hash
from skinlab.course.profile import BOOK_BUILD_ENV, PROFILE_ENV, current_profile, data_hash
from skinlab.data.layout import ENV_VAR

EDITIONS = ("student", "instructor")
EDITION_ENV = "SKINLAB_EDITION"


def current_edition(name: str | None = None) -> str:
    """The edition named ``name``, else ``$SKINLAB_EDITION``, else ``student``."""
    chosen = (name or os.environ.get(EDITION_ENV) or "student").strip().lower()
    if chosen not in EDITIONS:
        raise ValueError(f"{EDITION_ENV}={chosen!r}: unknown edition; expected one of {', '.join(EDITIONS)}")
    return chosen


def edition_dir(root: Path | None = None, edition: str = "student") -> Path:
    """Build folder of an edition (its ``html/`` and ``.doctrees/``): the students' edition is
    where ``jupyter-book build`` puts a book, ``_build/``; the instructors' is ``_build/instructor/``."""
    edition = current_edition(edition)
    build_dir = course_root(root) / "_build"
    return build_dir if edition == "student" else build_dir / edition


def html_dir(root: Path | None = None, edition: str = "student") -> Path:
    return edition_dir(root, edition) / "html"


def book_code_modules(root: Path) -> tuple[str, ...]:
    """The ``skinlab`` modules the chapters of the course in ``root`` run: what their code cells
    import, and all those import in turn (:mod:`skinlab.course.codekey`)."""
    return chapters_modules(sorted((root / "book").glob("*.md")))


# Files of the course that chapters read as data (not code): chapter 13 the exercise notebooks,
# chapter 11 the recorded accuracy figures. A change to any of them re-executes the book.
CHAPTER_INPUTS = ("exercises/*/*.ipynb", "bench/results-accuracy.json")


def build_key(root: Path, profile) -> str:
    """What the executed outputs depend on besides the chapters' own code: profile, dataset,
    the source of every skinlab module the chapters run (:func:`book_code_modules`) and the
    course files the chapters read (:data:`CHAPTER_INPUTS`)."""
    import hashlib

    from skinlab.data import resolve_data_dir

    source = resolve_data_dir(None, n_synthetic=profile.n_synthetic, progress=False)
    h = hashlib.sha256()
    for pattern in CHAPTER_INPUTS:
        for path in sorted(root.glob(pattern)):
            h.update(path.relative_to(root).as_posix().encode() + b"\0" + path.read_bytes())
    return (f"{profile.name}|{'synthetic' if source.synthetic else 'ham10000'}|{data_hash(source)}|"
            f"{code_hash(book_code_modules(root))}|{h.hexdigest()[:8]}")


def _cache_key_file(root: Path) -> Path:
    return root / "_build" / ".skinlab-cache-key"


def _env_key_file(root: Path, edition: str) -> Path:
    return edition_dir(root, edition) / ".skinlab-build-key"


def _invalidate_if_changed(root: Path, key: str) -> bool:
    """Jupyter Book's cache knows only the notebooks' code, not the data or profile they ran on:
    when those changed since the last build, drop the cache (shared by both editions)."""
    key_file = _cache_key_file(root)
    if not key_file.is_file() and _env_key_file(root, "student").is_file():
        key_file = _env_key_file(root, "student")  # a _build/ from before the editions existed
    if key_file.is_file() and key_file.read_text() == key:
        return False
    shutil.rmtree(root / "_build" / ".jupyter_cache", ignore_errors=True)
    return True


IOPUB_TIMEOUT = 120  # seconds a cell's late output is waited for (nbclient's default: 4)


def _wait_for_all_output() -> None:
    """Make the book's notebook execution wait for every output of a cell, or fail.

    nbclient waits ``iopub_timeout`` seconds (4 by default) for the outputs a kernel sends after its
    reply, then moves on with only a log line: on a loaded machine chapter 9 lost both its figures
    that way (2026-11-29), and the page was built without them. MyST-NB passes no client options,
    so its executor is wrapped here (in the build's own process)."""
    import functools

    from jupyter_cache.executors import utils

    if not getattr(utils.executenb, "_skinlab_patient", False):
        patient = functools.partial(utils.executenb, iopub_timeout=IOPUB_TIMEOUT, raise_on_iopub_timeout=True)
        patient._skinlab_patient = True
        utils.executenb = patient


def _sphinx_build(spec: str) -> int:
    """Child process of :func:`build`: what ``jupyter-book build`` does, with the output folders,
    the shared execution cache and the edition given explicitly (its CLI can set none of them)."""
    from jupyter_book.sphinx import build_sphinx

    _wait_for_all_output()

    s = json.loads(spec)
    root = Path(s["root"])
    result = build_sphinx(
        root, Path(s["html"]), doctreedir=Path(s["doctrees"]), noconfig=True,
        path_config=str(root / "_config.yml"), use_external_toc=True,
        confoverrides={"external_toc_path": (root / "_toc.yml").as_posix(), "latex_individualpages": False,
                       "skinlab_edition": s["edition"], "nb_execution_cache_path": s["cache"]},
        builder="html", warningiserror=s["strict"], keep_going=s["strict"], freshenv=s["fresh"])
    if isinstance(result, BaseException):
        print(f"the Sphinx build failed: {result!r}", file=sys.stderr, flush=True)
        return 1
    return int(result or 0)


def build(root: Path | None = None, profile: str | None = None, strict: bool = True,
          extra_args: list[str] | None = None, edition: str | None = None) -> int:
    """Build one edition of the book of the course in ``root`` (default :func:`course_root`)
    (edition default ``$SKINLAB_EDITION``, else the students'); returns the build's exit status
    (0 = success). ``extra_args`` may hold ``--all`` (re-read every page; execution stays cached)."""
    root = course_root(root)
    if not (root / CONFIG_FILE).is_file():
        raise SystemExit(f"{root} holds no {CONFIG_FILE}: run in the course folder or pass it as an argument")
    chosen = current_profile(profile)  # fails early on a bad profile name
    edition = current_edition(edition)
    if importlib.util.find_spec("jupyter_book") is None:
        raise SystemExit("jupyter-book is not installed: run `make install` (pip install -e '.[book]')")
    unknown = [a for a in extra_args or [] if a != "--all"]
    if unknown:
        raise ValueError(f"unsupported build arguments {unknown}: only --all")
    key = build_key(root, chosen)
    dropped = _invalidate_if_changed(root, key)
    env_key = _env_key_file(root, edition)
    # this edition's pages were read with other outputs (other data, profile or cache): re-read all
    fresh = dropped or "--all" in (extra_args or []) or not (env_key.is_file() and env_key.read_text() == key)
    out = edition_dir(root, edition)
    env = dict(os.environ)
    env[BOOK_BUILD_ENV] = "1"
    env[PROFILE_ENV] = chosen.name
    env[EDITION_ENV] = edition
    env[COURSE_ENV] = str(root)  # the kernels run in book/: they find the course (runs, exercises) here
    # The kernel must be this environment's python, and nbgrader/jupyter tools on PATH.
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    # One compute thread per kernel unless told otherwise: the book's small models gain little
    # from a second core, and on a busy machine two spinning OpenMP threads per process made
    # LeNet epochs ~10x slower (measured: 3 s vs 31 s per epoch under a load of 12 on 2 cores).
    env.setdefault("OMP_NUM_THREADS", "1")
    # Figures must go to the page: the kernels need the inline backend even when the caller
    # (e.g. pytest's conftest) exported MPLBACKEND=Agg.
    env["MPLBACKEND"] = "module://matplotlib_inline.backend_inline"
    spec = json.dumps({"root": str(root), "html": str(out / "html"), "doctrees": str(out / ".doctrees"),
                       "cache": str(root / "_build" / ".jupyter_cache"), "edition": edition,
                       "strict": strict, "fresh": fresh})
    cmd = [sys.executable, "-c", "import sys; from skinlab.course.bookbuild import _sphinx_build; "
           "sys.exit(_sphinx_build(sys.argv[1]))", spec]
    data = env.get(ENV_VAR) or f"synthetic sample ({ENV_VAR} not set)"
    print(f"building the book ({edition}s' edition): profile {env[PROFILE_ENV]}, data {data}", flush=True)
    t0 = time.perf_counter()
    rc = subprocess.call(cmd, cwd=root, env=env)
    # The cache now holds outputs for this key only (failed notebooks are not cached), and this
    # edition's pages were read from them.
    for key_file in (_cache_key_file(root), env_key):
        key_file.parent.mkdir(parents=True, exist_ok=True)
        key_file.write_text(key)
    print(f"the book build exited with {rc} after {time.perf_counter() - t0:.0f} s; "
          f"HTML in {out / 'html'}", flush=True)
    return rc


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m skinlab.course.bookbuild", description=__doc__.split("\n")[0])
    p.add_argument("course", nargs="?", default=None,
                   help=f"the course folder, holding {CONFIG_FILE} (default: the current folder)")
    p.add_argument("--profile", choices=("quick", "full", "smoke"), default=None,
                   help="default: $SKINLAB_PROFILE, else quick")
    p.add_argument("--no-strict", dest="strict", action="store_false", help="don't treat warnings as errors")
    p.add_argument("--edition", choices=EDITIONS, default=None,
                   help="student (default: $SKINLAB_EDITION, else student; _build/html): exercise boxes "
                        "instead of the graded reference listings; instructor (_build/instructor/html): "
                        "with the listings")
    p.add_argument("--all", action="store_true", help="re-read every page (execution stays cached)")
    p.add_argument("--install-browser", action="store_true", help="apt-get install chromium chromium-driver")
    p.add_argument("--browser-check", action="store_true",
                   help="screenshot the built index and chapters; fail on broken images, JS errors, missing "
                        "alt text, pictures over 300 kB, math or views that do not work offline, sideways "
                        "scroll at 1280 or 390 px")
    args = p.parse_args(argv)
    if args.install_browser:
        install_browser()
        return 0
    if args.browser_check:
        if not browser_available():
            print(f"chromium/chromedriver missing: run {INSTALL_HINT}", file=sys.stderr)
            return 2
        out = html_dir(args.course, current_edition(args.edition))
        if not (out / "index.html").is_file():
            print(f"no built book in {out}: build it first (python -m skinlab.course.bookbuild)", file=sys.stderr)
            return 2
        problems = audit_book(out)
        bad = {k: v for k, v in problems.items() if v}
        for page, lines in bad.items():
            for line in lines:
                print(f"{page}: {line}", file=sys.stderr)
        return 1 if bad else 0
    return build(args.course, profile=args.profile, strict=args.strict, extra_args=["--all"] if args.all else None,
                 edition=args.edition)


if __name__ == "__main__":
    sys.exit(main())
