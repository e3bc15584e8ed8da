"""nbgrader run headless: release the exercises and grade a folder of submissions."""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from . import verdicts
from .collect import GLOB_CHARACTERS, SKIPPED_FIELDS, _collect, _deduplicate, _guess_from_name, find_tampering  # noqa: F401 (public names)
from ..course.exercises import exercise_ids
from .exercise import exercises
from .guard import TIME_LIMIT_S
from .report import _nbgrader_failures, _report, _report_verification, _write_csv  # noqa: F401


def _env() -> dict:
    """nbgrader calls `alembic` and starts `python` kernels: this interpreter's bin/ goes first."""
    env = dict(os.environ)
    env["PATH"] = os.path.dirname(sys.executable) + os.pathsep + env.get("PATH", "")
    env.setdefault("PYTHONUNBUFFERED", "1")
    return env


def nbgrader(course: Path, *args: str, check: bool = True, env: dict | None = None) -> subprocess.CompletedProcess:
    """Run ``nbgrader ARGS`` in ``course`` with this environment (plus ``env``); raise with its log on failure."""
    cmd = [sys.executable, "-m", "nbgrader", *args]
    proc = subprocess.run(cmd, cwd=course, env={**_env(), **(env or {})}, capture_output=True, text=True)
    if check and proc.returncode != 0:
        raise RuntimeError(f"`nbgrader {' '.join(args)}` failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    return proc


def _course_dir(path) -> Path:
    course = Path(path or ".").resolve()
    if not (course / "nbgrader_config.py").is_file():
        raise SystemExit(
            f"{course} has no nbgrader_config.py: run from the repository root or pass --course-dir"
        )
    return course


def release(course=None, assignments=None) -> list[Path]:
    """Regenerate ``exercises/<id>/`` from ``solutions/<id>/`` for each assignment (--force; default:
    every exercise of the course)."""
    course = _course_dir(course)
    assignments = list(assignments or exercise_ids(course))
    if not assignments:
        raise SystemExit(f"{course} has no exercises: expected solutions/<id>/<id>.py (or .ipynb)")
    nbgrader(course, "generate_assignment", _pattern(assignments), "--force", "--log-level=WARN")
    return [course / "exercises" / aid / f"{aid}.ipynb" for aid in assignments]


def _pattern(assignments) -> str:
    """One nbgrader call handles several assignments through a glob (~2.5 s saved per id)."""
    assignments = sorted(assignments)
    if len(assignments) == 1:
        return assignments[0]
    digits = [a[2] for a in assignments]
    if any(not (a.startswith("ex") and a[2:3].isdigit() and a[3:4] == "_") for a in assignments) or \
            len(set(digits)) != len(digits):
        raise ValueError(f"no glob covers exactly {assignments}")
    return f"ex[{''.join(digits)}]_*"


def grading_cost() -> dict[str, float]:
    """Seconds each exercise's notebook takes to autograde on one core (its ``Exercise``): most of
    it is the kernel importing torch (and torch._dynamo, which the first optimizer or hook pulls in)."""
    return {aid: e.grading_cost_s for aid, e in exercises().items()}


def grading_batches(assignments, jobs: int) -> list[str]:
    """Globs for ``jobs`` parallel nbgrader calls, balanced by ``grading_cost`` (largest first)."""
    cost = grading_cost()
    groups: list[list[str]] = [[] for _ in range(max(1, min(jobs, len(assignments))))]
    for aid in sorted(assignments, key=lambda a: (-cost.get(a, 6.0), a)):
        min(groups, key=lambda g: sum(cost.get(a, 6.0) for a in g)).append(aid)
    return [_pattern(g) for g in groups if g]


def _nbgrader_parallel(course: Path, calls: list[list[str]], envs: list[dict] | None = None) -> list[tuple[list[str], subprocess.CompletedProcess]]:
    """Run the nbgrader commands ``calls`` at once (a thread waiting on each); every (args, result)."""
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=max(1, len(calls))) as pool:
        return list(zip(calls, pool.map(lambda args, env: nbgrader(course, *args, check=False, env=env),
                                        calls, envs or [None] * len(calls))))


_gradebook = verdicts.open_gradebook


def _register_students(course: Path, students) -> None:
    """Create the gradebook and its students before parallel calls, which would race to do it."""
    with _gradebook(course) as gb:
        for student in students:
            gb.update_or_create_student(student)


def default_jobs(n_assignments: int | None = None) -> int:
    """Parallel nbgrader calls: one per core, at most one per assignment."""
    cores = os.cpu_count() or 1
    return max(1, min(cores, n_assignments or cores))

# ---------------------------------------------------------------------------- 2. gradebook

def _create_assignments(course: Path, missing: list[str]) -> None:
    """Put assignments that the gradebook lacks into it: ``generate_assignment`` from solutions/.

    On a fresh clone (no gradebook.db) nbgrader knows no assignment and autograde grades nothing.
    generate_assignment records the cells, points and hidden tests; its release goes to a
    temporary folder, so the committed exercises/ is not touched.
    """
    for aid in missing:
        source = course / "solutions" / aid / f"{aid}.ipynb"
        if not source.is_file():
            raise RuntimeError(
                f"the gradebook has no assignment {aid}, and {source} to create it from is missing: "
                f"copy solutions/{aid}/ into {course} and grade again")
    print(f"note: the gradebook had no {', '.join(missing)}: creating it from solutions/ "
          "(nbgrader generate_assignment)", file=sys.stderr)
    with tempfile.TemporaryDirectory(prefix="skinlab-release-") as tmp:
        nbgrader(course, "generate_assignment", _pattern(missing), "--force", "--log-level=WARN",
                 f"--CourseDirectory.release_directory={tmp}")


def _prepare_gradebook(course: Path, assignments, students) -> None:
    """Step 2: the gradebook knows every submitted assignment and every student of the class."""
    from nbgrader.api import MissingEntry

    with _gradebook(course) as gb:
        missing = []
        for aid in sorted(assignments):
            try:
                if not gb.find_assignment(aid).notebooks:
                    missing.append(aid)
            except MissingEntry:
                missing.append(aid)
    if missing:
        _create_assignments(course, missing)
    _register_students(course, students)


# ---------------------------------------------------------------------------- 3./4. autograde, feedback

# Where each step reads and writes: with a batch's pairs, only their output is redone.
_STEP_DIRS = {"autograde": ("submitted", "autograded"), "generate_feedback": ("autograded", "feedback")}


def _grader_skinlab() -> tuple[Path, list[Path]]:
    """The skinlab package this process runs, and what a kernel needs first on its import path
    to import that one.

    A kernel's interpreter finds skinlab where the environment says (an editable install points
    at the folder it was installed from); the grader may run another copy, e.g. a copied course
    folder's ``skinlab/`` when started there (``python -m`` puts the current folder first). The
    kernel sees only what its sandbox binds: the package the grader runs, first on its path
    (unless it is installed in the environment, where the kernel finds it anyway).
    """
    import skinlab

    package = Path(skinlab.__file__).resolve().parent
    prefixes = {Path(p).resolve() for p in (sys.prefix, sys.base_prefix)}
    installed = any(package.is_relative_to(p) for p in prefixes)
    return package, [] if installed else [package.parent]


def _step_args(course: Path, step: str, batch: str, pairs) -> list[str]:
    """nbgrader's arguments for one call of ``step`` on the assignments ``batch`` (a glob).

    Without ``pairs``: ``--force``, every notebook in the step's input folder is redone. With
    ``pairs`` (the batch's (student, assignment)): no ``--force``, so nbgrader skips every
    notebook whose output exists (``_run_step`` removes the pairs' own first); students with no
    pair here are excluded outright (a classmate's notebook nbgrader failed on earlier, which has
    no output, is not retried in every later batch).
    """
    import fnmatch

    args = [step, batch, "--log-level=WARN"]
    if pairs is None:
        return args[:2] + ["--force"] + args[2:]
    mine = {s for s, a in pairs if fnmatch.fnmatchcase(a, batch)}
    folder = course / _STEP_DIRS[step][0]
    others = sorted(p.name for p in folder.iterdir() if p.is_dir() and p.name not in mine) if folder.is_dir() else []
    others = [s for s in others if "," not in s]  # the list is comma-separated: such a name is not excluded
    if others:
        args.append(f"--CourseDirectory.student_id_exclude={','.join(others)}")
    return args


def _run_step(course: Path, step: str, batches: list[str], sandboxed: bool = False, pairs=None) -> list[str]:
    """``nbgrader STEP`` on every glob of ``batches`` at once; the output of each call that failed.

    A notebook nbgrader cannot grade (broken JSON, cells it cannot match) makes its call exit 1
    after grading all the others: it is reported, and one submission cannot stop the batch.
    With ``sandboxed``, each call's kernels run in the sandbox (their own work folder each), and
    import the skinlab this process runs (``_grader_skinlab``), wherever the course is.
    With ``pairs`` (student, assignment), only those are autograded (or get feedback): their
    earlier output is removed, everything else keeps its own (grades, feedback pages); without,
    every notebook in ``submitted/`` is redone (``--force``).
    """
    if pairs is not None:
        out = _STEP_DIRS[step][1]
        for student, aid in sorted(pairs):
            shutil.rmtree(course / out / student / aid, ignore_errors=True)
    calls = [_step_args(course, step, batch, pairs) for batch in batches]
    envs, works = [None] * len(calls), []
    if sandboxed:
        from . import sandbox

        package, path = _grader_skinlab()
        for i, call in enumerate(calls):
            work = Path(tempfile.mkdtemp(prefix="sk-"))  # short: ipc socket paths are limited
            works.append(work)
            env, args = sandbox.kernel_setup(work, ro=[package], pythonpath=path)
            envs[i] = env
            call += args
    try:
        return [f"$ nbgrader {' '.join(args[:2])}  (exit {proc.returncode})\n{proc.stdout}{proc.stderr}"
                for args, proc in _nbgrader_parallel(course, calls, envs) if proc.returncode != 0]
    finally:
        for work in works:
            shutil.rmtree(work, ignore_errors=True)


def _sandbox_or_refuse(unsandboxed: bool) -> bool:
    """True when student code will run sandboxed; stop in one line when it cannot and may not."""
    from . import sandbox

    reason = sandbox.unavailable_reason()
    if reason is None:
        return True
    if not unsandboxed:
        raise SandboxUnavailableError(
            f"this machine cannot sandbox student code ({reason}); grade on one that can "
            "(bubblewrap and Linux user namespaces), or pass --unsandboxed to grade without it")
    print(f"warning: grading WITHOUT a sandbox ({reason}): student code runs with your rights",
          file=sys.stderr)
    return False


class SandboxUnavailableError(RuntimeError):
    """This machine cannot sandbox student code, and grading unsandboxed was not allowed."""


class NothingGradedError(RuntimeError):
    """No notebook of the batch could be graded (the report files are written all the same)."""


def grade(submissions, course=None, out=None, assignments=None, jobs: int | None = None, *,
          unsandboxed: bool = False, seed: int | None = None, time_limit: float = TIME_LIMIT_S) -> dict:
    """Autograde a folder ``<student>/<assignment>/<assignment>.ipynb``; returns output paths.

    1. collect: copies the submissions into ``<course>/submitted/`` (a duplicated answer or test
       cell de-duplicated, see ``_deduplicate``), compares each with the release (tampering), and
       lists every notebook filed elsewhere, or in a student folder that cannot be graded under
       its name (hidden, glob characters, a Unicode twin), in ``skipped.csv``;
    2. gradebook: creates the assignments it lacks (fresh clone) and the students;
    3. autograde: all students at once, the assignments split over ``jobs`` parallel nbgrader
       calls (``jobs`` defaults to one per core, at most one per assignment);
       in sandboxed kernels;
    3b. verify: every notebook again, through the verifier (``verifier``, ``verdicts``): its
       points stand, written into the gradebook where they differ from nbgrader's in-kernel ones;
    4. feedback: HTML without hidden tests, each test cell showing the verifier's verdict;
    5. report: ``grades.csv`` (nbgrader's export plus ``status``, ``tampered``, ``graded_by``),
       ``disagreements.csv``, ``tampered.csv``, ``scores_by_test.csv``, ``similarity.csv`` and
       ``.html``, ``grading.json`` (the batch seed: re-grade identically with ``seed``) and
       ``nbgrader_errors.log`` into ``out``; every batch's record is kept in
       ``<course>/grades/batches/`` (``index.csv`` lists them).

    Student code runs only in the sandbox (``sandbox``); where this machine cannot sandbox,
    ``grade`` refuses unless ``unsandboxed`` is set, and every output then says so.

    Everything in ``submitted/`` is regraded (nbgrader's model of the class); tampering flags and
    the reasons a notebook is ungradable are kept in ``<course>/grades/`` across batches.
    Raises ``NothingGradedError`` (after writing the reports) when no notebook of this batch
    could be graded.
    """
    course = _course_dir(course)
    submissions = Path(submissions).resolve()
    out = Path(out or course / "grades").resolve()
    if not submissions.is_dir():
        raise SystemExit(f"no such folder: {submissions}")
    sandboxed = _sandbox_or_refuse(unsandboxed)
    seed = secrets.randbits(32) if seed is None else int(seed)
    wanted = list(assignments or exercise_ids(course))
    jobs = default_jobs(len(wanted)) if jobs is None else jobs
    if jobs < 1:
        raise ValueError(f"--jobs {jobs}: expected 1 or more")
    out.mkdir(parents=True, exist_ok=True)

    # 1. collect
    batch = _collect(submissions, course, wanted)
    skipped_csv = out / "skipped.csv"
    _write_csv(skipped_csv, batch.skipped, SKIPPED_FIELDS)
    if batch.skipped:
        print(f"warning: skipped {len(batch.skipped)} notebook(s) not filed as <student>/<id>/<id>.ipynb; "
              f"see {skipped_csv}", file=sys.stderr)
    if not batch.found:
        raise SystemExit(f"no submissions found in {submissions} (expected <student>/<id>/<id>.ipynb, "
                         f"ids {', '.join(wanted)}; {len(batch.skipped)} notebook(s) in {skipped_csv})")

    # 2. gradebook
    earlier = {p.name for p in (course / "submitted").iterdir() if p.is_dir()}
    unsafe = sorted(name for name in earlier if set(name) & set(GLOB_CHARACTERS))
    if unsafe:  # filed by a batch before names were checked: nbgrader still reads them as patterns
        print(f"warning: submitted/ holds student folder(s) {', '.join(map(repr, unsafe))} with glob characters "
              f"({GLOB_CHARACTERS}) from an earlier batch: nbgrader may grade a classmate's notebook under "
              "that name; remove them from submitted/ and the gradebook", file=sys.stderr)
    students = sorted(batch.students | earlier)
    _prepare_gradebook(course, batch.found, students)

    # 3. autograde
    batches = grading_batches(batch.found, jobs)
    problems = _run_step(course, "autograde", batches, sandboxed=sandboxed, pairs=batch.pairs)
    # 3b. verify: the verdict, from processes where student code never ran
    units = [(student, aid, course / "submitted" / student / aid / f"{aid}.ipynb")
             for student, aid in sorted(batch.pairs)]
    records = verdicts.verify_batch(course, units, seed=seed, sandboxed=sandboxed, jobs=jobs,
                                    time_limit=time_limit)
    disagreements = verdicts.apply_to_gradebook(course, records)
    verifier_only = {(r["student"], r["assignment"]) for r, (_, _, nb) in zip(records, units)
                     if "unreadable" not in r and verdicts.ensure_autograded(course, r["student"], r["assignment"], nb)}
    # 4. feedback
    # feedback needs every grade of its notebook; earlier notebooks keep their pages
    problems += _run_step(course, "generate_feedback", batches, pairs=batch.pairs)

    # 5. export, report
    paths, graded = _report(course, out, batch, problems, verifier_only)
    paths.update(_report_verification(course, out, records, disagreements, seed, sandboxed))
    if not graded:
        raise NothingGradedError(f"none of the {len(batch.pairs)} submitted notebooks could be graded: "
                                 f"see the status column of {paths['grades']}")
    return paths


def main(argv=None) -> int:
    """``python -m skinlab.grading release|grade SUBMISSIONS`` (also ``skinlab grade``)."""
    import argparse

    p = argparse.ArgumentParser(prog="python -m skinlab.grading", description="Release and grade the skinlab exercises with nbgrader (headless).")
    p.add_argument("--course-dir", default=None, help="folder with nbgrader_config.py (default: current folder)")
    sub = p.add_subparsers(dest="command", required=True)
    r = sub.add_parser("release", help="regenerate exercises/ from solutions/ (nbgrader generate_assignment --force)")
    r.add_argument("assignments", nargs="*", metavar="ID", help="assignment ids (default: every solutions/<id>/ of the course)")
    g = sub.add_parser("grade", help="autograde a folder of submissions <student>/<id>/<id>.ipynb")
    g.add_argument("submissions", help="folder of <student>/<id>/<id>.ipynb")
    g.add_argument("--out", default=None, help="where the CSV files go (default: COURSE/grades)")
    g.add_argument("--jobs", type=int, default=None,
                   help=f"assignments autograded at once (default: one per core, here {default_jobs()})")
    g.add_argument("--seed", type=int, default=None,
                   help="seed of the hidden tests' inputs (default: a fresh one, written to grading.json; "
                        "the same seed re-grades a batch identically)")
    g.add_argument("--unsandboxed", action="store_true",
                   help="grade even where student code cannot be sandboxed (it then runs with your rights; "
                        "every output says so)")
    args = p.parse_args(argv)
    if getattr(args, "jobs", None) is not None and args.jobs < 1:
        p.error(f"--jobs {args.jobs}: expected 1 or more")
    try:
        if args.command == "release":
            known = exercise_ids(_course_dir(args.course_dir))
            unknown = [a for a in args.assignments if a not in known]
            if unknown:
                p.error(f"unknown assignment {unknown[0]!r}; choose from {', '.join(known)}")
            for path in release(args.course_dir, args.assignments):
                print(path)
        else:
            paths = grade(args.submissions, args.course_dir, args.out, jobs=args.jobs,
                          unsandboxed=args.unsandboxed, seed=args.seed)
            for key, path in paths.items():
                print(f"{key}: {path}")
    except RuntimeError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0
