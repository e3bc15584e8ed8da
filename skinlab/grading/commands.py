"""nbgrader run headless: release the exercises and grade a folder of submissions."""

from __future__ import annotations

import csv
import os
import shutil
import subprocess
import sys
from pathlib import Path

from .guard import ASSIGNMENTS

def _env() -> dict:
    """nbgrader calls `alembic` and starts `python` kernels: this interpreter's bin/ goes first."""
    env = dict(os.environ)
    env["PATH"] = os.path.dirname(sys.executable) + os.pathsep + env.get("PATH", "")
    env.setdefault("PYTHONUNBUFFERED", "1")
    return env


def nbgrader(course: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    """Run ``nbgrader ARGS`` in ``course`` with this environment; raise with its log on failure."""
    cmd = [sys.executable, "-m", "nbgrader", *args]
    proc = subprocess.run(cmd, cwd=course, env=_env(), capture_output=True, text=True)
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


def release(course=None, assignments=ASSIGNMENTS) -> list[Path]:
    """Regenerate ``exercises/<id>/`` from ``solutions/<id>/`` for each assignment (--force)."""
    course = _course_dir(course)
    assignments = list(assignments)
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


# Seconds each notebook takes to autograde on one core (docs/PERFORMANCE.md): most of it is the
# kernel importing torch (and torch._dynamo, which the first optimizer or hook pulls in).
GRADING_COST = {"ex1_split": 8.0, "ex2_class_weights": 6.5, "ex3_lenet": 5.5, "ex4_training": 9.0, "ex5_gradcam": 5.5}


def grading_batches(assignments, jobs: int) -> list[str]:
    """Globs for ``jobs`` parallel nbgrader calls, balanced by ``GRADING_COST`` (largest first)."""
    groups: list[list[str]] = [[] for _ in range(max(1, min(jobs, len(assignments))))]
    for aid in sorted(assignments, key=lambda a: (-GRADING_COST.get(a, 6.0), a)):
        min(groups, key=lambda g: sum(GRADING_COST.get(a, 6.0) for a in g)).append(aid)
    return [_pattern(g) for g in groups if g]


def _nbgrader_parallel(course: Path, calls: list[list[str]]) -> list[tuple[list[str], subprocess.CompletedProcess]]:
    """Run the nbgrader commands ``calls`` at once (a thread waiting on each); every (args, result)."""
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=max(1, len(calls))) as pool:
        return list(zip(calls, pool.map(lambda args: nbgrader(course, *args, check=False), calls)))


def _register_students(course: Path, students) -> None:
    """Create the gradebook and its students before parallel calls, which would race to do it."""
    from nbgrader.api import Gradebook

    with Gradebook(f"sqlite:///{course / 'gradebook.db'}", course_id="skinlab") as gb:
        for student in students:
            gb.update_or_create_student(student)


def _export_grades(course: Path, path: Path) -> None:
    """``nbgrader export`` in this process (its CSV plugin; saves starting nbgrader once more)."""
    from nbgrader.api import Gradebook
    from nbgrader.plugins.export import CsvExportPlugin

    tmp = path.with_name(f".{path.name}.tmp")
    with Gradebook(f"sqlite:///{course / 'gradebook.db'}", course_id="skinlab") as gb:
        CsvExportPlugin(to=str(tmp)).export(gb)
    os.replace(tmp, path)


def default_jobs() -> int:
    """Parallel nbgrader calls: one per core, at most one per assignment."""
    return max(1, min(os.cpu_count() or 1, len(ASSIGNMENTS)))


def find_tampering(release_nb, submitted_nb) -> list[tuple[str, str]]:
    """[(grade_id, problem)] for locked/test cells of the release that were deleted or edited."""
    import nbformat

    rel = nbformat.read(str(release_nb), as_version=4)
    try:
        sub = nbformat.read(str(submitted_nb), as_version=4)
    except Exception as exc:  # unreadable JSON is tampering of its own kind
        return [("(notebook)", f"unreadable: {exc}")]
    by_id = {}
    for cell in sub.cells:
        gid = cell.get("metadata", {}).get("nbgrader", {}).get("grade_id")
        if gid:
            by_id.setdefault(gid, []).append(cell)
    problems = []
    for cell in rel.cells:
        meta = cell.get("metadata", {}).get("nbgrader", {})
        gid = meta.get("grade_id")
        if not gid or not (meta.get("locked") or meta.get("grade")) or meta.get("solution"):
            continue
        copies = by_id.get(gid, [])
        if not copies:
            problems.append((gid, "deleted"))
            continue
        if len(copies) > 1:
            problems.append((gid, "duplicated"))
        other = copies[0]
        if other.source.strip() != cell.source.strip():
            problems.append((gid, "edited"))
        elif {k: other["metadata"].get("nbgrader", {}).get(k) for k in ("grade", "points", "locked")} != {
            k: meta.get(k) for k in ("grade", "points", "locked")
        }:
            problems.append((gid, "metadata changed"))
    return problems


def _cell_scores(course: Path, assignments) -> list[dict]:
    from nbgrader.api import Gradebook

    rows = []
    with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gb:
        for aid in assignments:
            for student in gb.students:
                try:
                    submission = gb.find_submission(aid, student.id)
                except Exception:
                    continue
                for nb in submission.notebooks:
                    for grade in nb.grades:
                        rows.append(dict(student_id=student.id, assignment=aid, grade_id=grade.name,
                                         score=grade.score, max_score=grade.max_score))
    return rows


def grade(submissions, course=None, out=None, assignments=None, jobs: int | None = None) -> dict:
    """Autograde a folder ``<student>/<assignment>/<assignment>.ipynb``; returns output paths.

    Copies the submissions into ``<course>/submitted/``, autogrades them (all students at once,
    the assignments split over ``jobs`` parallel nbgrader calls), writes feedback HTML without hidden tests, exports ``grades.csv`` (plus
    a ``tampered`` column), ``tampered.csv`` and ``scores_by_test.csv`` into ``out``.
    ``jobs`` defaults to one per core, at most one per assignment.
    """
    course = _course_dir(course)
    submissions = Path(submissions).resolve()
    out = Path(out or course / "grades").resolve()
    out.mkdir(parents=True, exist_ok=True)
    if not submissions.is_dir():
        raise SystemExit(f"no such folder: {submissions}")
    found: dict[str, list[str]] = {}
    tampered = []
    for student_dir in sorted(p for p in submissions.iterdir() if p.is_dir()):
        for aid in assignments or ASSIGNMENTS:
            nb = student_dir / aid / f"{aid}.ipynb"
            if not nb.is_file():
                continue
            dest = course / "submitted" / student_dir.name / aid
            if dest.exists():
                shutil.rmtree(dest)
            shutil.copytree(student_dir / aid, dest)
            found.setdefault(aid, []).append(student_dir.name)
            release_nb = course / "exercises" / aid / f"{aid}.ipynb"
            for gid, problem in find_tampering(release_nb, nb):
                tampered.append(dict(student_id=student_dir.name, assignment=aid, grade_id=gid, problem=problem))
    if not found:
        raise SystemExit(f"no submissions found in {submissions} (expected <student>/<id>/<id>.ipynb, ids {', '.join(ASSIGNMENTS)})")
    # Everything in submitted/ is (re)graded: nbgrader's model of "the class". The assignments are
    # autograded, then given feedback, in ``jobs`` parallel nbgrader calls (each notebook's kernel
    # keeps one core busy, mostly importing torch). A notebook nbgrader cannot grade (broken JSON,
    # cells it cannot match) makes its call exit 1 after grading all the others: log it and go on,
    # so one submission cannot stop the batch.
    jobs = default_jobs() if jobs is None else jobs
    if jobs < 1:
        raise ValueError(f"--jobs {jobs}: expected 1 or more")
    _register_students(course, sorted(p.name for p in (course / "submitted").iterdir() if p.is_dir()))
    problems = []
    batches = grading_batches(found, jobs)
    for step in ("autograde", "generate_feedback"):  # feedback needs every grade of its notebook
        calls = [[step, batch, "--force", "--log-level=WARN"] for batch in batches]
        for args, proc in _nbgrader_parallel(course, calls):
            if proc.returncode != 0:
                problems.append(f"$ nbgrader {' '.join(args[:2])}  (exit {proc.returncode})\n{proc.stdout}{proc.stderr}")
    errors_log = out / "nbgrader_errors.log"
    errors_log.write_text("\n".join(problems))
    if problems:
        print(f"warning: nbgrader reported problems with some submissions; see {errors_log}", file=sys.stderr)
    grades_csv = out / "grades.csv"
    _export_grades(course, grades_csv)
    _write_csv(out / "tampered.csv", tampered, ["student_id", "assignment", "grade_id", "problem"])
    flags = {}
    for row in tampered:
        flags.setdefault((row["student_id"], row["assignment"]), []).append(f"{row['grade_id']} {row['problem']}")
    with open(grades_csv, newline="") as f:
        rows = list(csv.DictReader(f))
    for row in rows:
        row["tampered"] = "; ".join(flags.get((row["student_id"], row["assignment"]), []))
    _write_csv(grades_csv, rows, list(rows[0].keys()) if rows else ["tampered"])
    _write_csv(out / "scores_by_test.csv", _cell_scores(course, list(found)),
               ["student_id", "assignment", "grade_id", "score", "max_score"])
    return {"grades": grades_csv, "tampered": out / "tampered.csv", "scores_by_test": out / "scores_by_test.csv",
            "feedback": course / "feedback", "errors": errors_log}


def _write_csv(path: Path, rows: list[dict], fields: list[str]) -> None:
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=fields)
        writer.writeheader()
        writer.writerows(rows)


def main(argv=None) -> int:
    """``python -m skinlab.grading release|grade SUBMISSIONS`` (also ``skinlab grade``)."""
    import argparse

    p = argparse.ArgumentParser(prog="python -m skinlab.grading", description="Release and grade the skinlab exercises with nbgrader (headless).")
    p.add_argument("--course-dir", default=None, help="folder with nbgrader_config.py (default: current folder)")
    sub = p.add_subparsers(dest="command", required=True)
    r = sub.add_parser("release", help="regenerate exercises/ from solutions/ (nbgrader generate_assignment --force)")
    r.add_argument("assignments", nargs="*", metavar="ID", help=f"assignment ids (default: all of {', '.join(ASSIGNMENTS)})")
    g = sub.add_parser("grade", help="autograde a folder of submissions <student>/<id>/<id>.ipynb")
    g.add_argument("submissions", help="folder of <student>/<id>/<id>.ipynb")
    g.add_argument("--out", default=None, help="where the CSV files go (default: COURSE/grades)")
    g.add_argument("--jobs", type=int, default=None,
                   help=f"assignments autograded at once (default: one per core, here {default_jobs()})")
    args = p.parse_args(argv)
    unknown = [a for a in getattr(args, "assignments", None) or [] if a not in ASSIGNMENTS]
    if unknown:
        p.error(f"unknown assignment {unknown[0]!r}; choose from {', '.join(ASSIGNMENTS)}")
    if getattr(args, "jobs", None) is not None and args.jobs < 1:
        p.error(f"--jobs {args.jobs}: expected 1 or more")
    try:
        if args.command == "release":
            for path in release(args.course_dir, args.assignments or ASSIGNMENTS):
                print(path)
        else:
            paths = grade(args.submissions, args.course_dir, args.out, jobs=args.jobs)
            for key, path in paths.items():
                print(f"{key}: {path}")
    except RuntimeError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


