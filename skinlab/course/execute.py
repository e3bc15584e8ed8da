"""Execute the book's chapters side by side before Sphinx reads them (a cold build's speed).

MyST-NB executes a notebook when Sphinx reads it, one chapter after the other, and each kernel
computes on one thread (``OMP_NUM_THREADS=1``, see :mod:`skinlab.course.bookbuild`): on a 2-core
machine a cold build left a core idle for its whole length. Chapter 11's transfer run alone was
about 40 % of it.

Before Sphinx reads the chapters (``env-before-read-docs``), :func:`prefetch` reads each chapter
that MyST-NB would execute *exactly as MyST-NB does* (its own notebook reader), skips those the
execution cache already holds, executes the rest on ``jobs`` kernels at once (longest first, by the
times of the previous build, else as the chapters' front matter says), and stores every success in
the execution cache under MyST-NB's own key. Sphinx then reads every chapter from the cache. A
chapter that fails here is left out of the cache: MyST-NB executes it again while reading and
reports the error as it always did, so a failed build says the same thing, with the same
traceback, as before.

Chapters that share a run (the main LeNet of chapters 8-12) may now ask for it at the same time:
:func:`skinlab.course.runcache.cached_train` trains it under a lock, once.

``$SKINLAB_BOOK_JOBS`` sets the number of kernels (default: the cores, at most 4; 1 turns the
prefetch off and leaves execution to MyST-NB alone).
"""

from __future__ import annotations

import json
import math
import os
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path, PurePosixPath

JOBS_ENV = "SKINLAB_BOOK_JOBS"
TIMES_FILE = ".skinlab-execution-seconds.json"  # beside the execution cache, kept when it is dropped


def jobs_from_env(default: int | None = None) -> int:
    """Kernels to run at once: ``$SKINLAB_BOOK_JOBS``, else ``default``, else the cores (at most 4)."""
    text = os.environ.get(JOBS_ENV, "").strip()
    if text:
        try:
            jobs = int(text)
        except ValueError:
            raise ValueError(f"{JOBS_ENV}={text!r}: expected a whole number of kernels, e.g. 2") from None
        if jobs < 1:
            raise ValueError(f"{JOBS_ENV}={jobs}: expected at least 1")
        return jobs
    return default if default is not None else max(1, min(4, os.cpu_count() or 1))


def _times_file(cache_path: str | os.PathLike) -> Path:
    return Path(cache_path).parent / TIMES_FILE


def read_times(cache_path) -> dict:
    """Seconds each chapter took to execute in earlier builds (``{path: seconds}``)."""
    try:
        data = json.loads(_times_file(cache_path).read_text())
        return {str(k): float(v) for k, v in data.items()}
    except (OSError, ValueError, AttributeError):
        return {}


def _record_times(cache_path, new: dict) -> None:
    from skinlab.atomic import write_json

    if new:
        write_json({**read_times(cache_path), **new}, _times_file(cache_path))


def schedule(paths: list[str], times: dict, long: frozenset = frozenset()) -> list[str]:
    """Longest first, so that the longest chapter never starts last: by the time each took in an
    earlier build; a chapter never timed is guessed at the median of the others, or first of all
    when its front matter says ``skinlab: {execution: long}`` (a fresh clone has no times)."""
    known = sorted(times[p] for p in paths if p in times)
    guess = known[len(known) // 2] if known else 0.0

    def estimate(p):
        return times[p] if p in times else math.inf if p in long else guess

    return sorted(paths, key=lambda p: -estimate(p))  # stable: ties keep the given (table of contents) order


def is_long(notebook) -> bool:
    """Whether a chapter says in its front matter that it executes long (``skinlab: {execution: long}``)."""
    meta = notebook.metadata.get("skinlab") or {}
    return isinstance(meta, dict) and meta.get("execution") == "long"


def pending_notebooks(env, docnames) -> list[tuple[str, object, object]]:
    """``(path, notebook, read_fmt)`` of each of ``docnames`` that MyST-NB would execute and the
    execution cache does not hold yet: read with MyST-NB's own reader, so the cache key is the one
    MyST-NB will look up."""
    from jupyter_cache import get_cache
    from myst_nb.core.read import create_nb_reader

    nb_config = env.mystnb_config
    cache = get_cache(nb_config.execution_cache_path or ".jupyter_cache")
    pending = []
    for docname in sorted(docnames):
        path = str(env.doc2path(docname))
        if _excluded(path, nb_config):
            continue
        text = Path(path).read_text(encoding="utf-8")
        reader = create_nb_reader(path, env.myst_config, nb_config, text)
        if reader is None:  # plain Markdown: nothing to execute
            continue
        notebook = reader.read(text)
        try:
            cache.match_cache_notebook(notebook)
            continue  # already executed with this code
        except KeyError:
            pending.append((path, notebook, reader.read_fmt))
    return pending


def _excluded(path: str, nb_config) -> bool:
    """MyST-NB's own rule (``myst_nb.core.execute.create_client``): a pattern matched by the path."""
    posix = PurePosixPath(Path(path).as_posix())
    return any(posix.match(pattern) for pattern in nb_config.execution_excludepatterns or ())


def execute_all(pending, cache_path, jobs: int, timeout, allow_errors: bool = False, log=print) -> dict:
    """Execute ``pending`` on ``jobs`` kernels at once; cache each success. Returns
    ``{path: error string or None}``. Database writes stay in this thread (SQLite)."""
    from jupyter_cache import get_cache
    from jupyter_cache.base import CacheBundleIn
    from jupyter_cache.executors.utils import single_nb_execution

    cache = get_cache(cache_path)
    by_path = {path: (nb, fmt) for path, nb, fmt in pending}
    order = schedule(list(by_path), read_times(cache_path),
                     frozenset(p for p, (nb, _) in by_path.items() if is_long(nb)))

    def run(path):
        nb, _ = by_path[path]
        return single_nb_execution(nb, cwd=str(Path(path).parent), timeout=timeout,
                                   allow_errors=allow_errors, meta_override=True)

    outcome, seconds = {}, {}
    t0 = time.perf_counter()
    log(f"executing {len(order)} chapter(s) on {jobs} kernel(s) at once, longest first")
    with ThreadPoolExecutor(max_workers=jobs) as pool:
        futures = {path: pool.submit(run, path) for path in order}
        for path in order:
            try:
                result = futures[path].result()
            except Exception as exc:  # noqa: BLE001 - MyST-NB will execute it again and report
                outcome[path] = f"{type(exc).__name__}: {exc}"
                continue
            if result.err is not None:
                outcome[path] = f"{type(result.err).__name__}"
                continue
            nb, fmt = by_path[path]
            record = cache.add_nb_to_project(path, read_data=fmt) if fmt is not None else cache.add_nb_to_project(path)
            cache.cache_notebook_bundle(CacheBundleIn(nb, record.uri, data={"execution_seconds": result.time}),
                                        check_validity=False, overwrite=True)
            seconds[path] = round(result.time, 1)
            outcome[path] = None
            log(f"  {Path(path).name}: {result.time:.0f} s")
    _record_times(cache_path, seconds)
    failed = [p for p, err in outcome.items() if err]
    log(f"executed in {time.perf_counter() - t0:.0f} s" + (
        f"; {len(failed)} failed and will run again while the pages are read: "
        + ", ".join(Path(p).name for p in failed) if failed else ""))
    return outcome


def prefetch(app, env, docnames) -> None:
    """Sphinx ``env-before-read-docs`` handler: execute the chapters about to be read."""
    nb_config = getattr(env, "mystnb_config", None)
    if nb_config is None or nb_config.execution_mode != "cache":
        return
    jobs = jobs_from_env()
    if jobs < 2:
        return
    pending = pending_notebooks(env, docnames)
    if len(pending) < 2:
        return  # nothing to overlap: MyST-NB executes it as usual
    cache_path = nb_config.execution_cache_path or ".jupyter_cache"
    execute_all(pending, cache_path, min(jobs, len(pending)), nb_config.execution_timeout,
                nb_config.execution_allow_errors, log=lambda msg: print(msg, flush=True))
