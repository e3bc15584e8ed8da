"""Benchmark 3 (``--course``, optional): the course's own chores.

- Book build, cold (a fresh copy of the course with no execution cache, no trained runs and an
  empty image cache) then cached (the same build again), quick profile, as ``make book`` runs it.
  Targets: <= 10 min cold, <= 1 min cached on 2 cores.
- Autograding one student's five assignments with nbgrader (``python -m skinlab.grading grade``),
  the student being the simulated class's "solution" submissions. Target: <= 45 s.
- One late notebook added to a class already graded (``LATE_CLASS`` students, ex2): its batch
  grades that notebook only, beside the time the class's own batch took. Target: less than that.

Both run in a temporary copy of the repository so they never touch the working tree's
``_build/`` or gradebook. Each is skipped with a note when its part of the course is missing.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from bench.common import Row, Skipped, timed

REPO = Path(__file__).resolve().parents[1]
_SKIP = {".venv", ".git", "_build", "runs", "data", "submitted", "autograded", "feedback", "grades",
         ".pytest_cache", ".hypothesis", "__pycache__", "gradebook.db", ".ipynb_checkpoints", "bench"}


def _copy_course(dest: Path) -> Path:
    shutil.copytree(REPO, dest, ignore=lambda d, names: [n for n in names if n in _SKIP or n.endswith(".egg-info")])
    return dest


def _env(tmp: Path) -> dict:
    env = dict(os.environ)
    env["SKINLAB_CACHE"] = str(tmp / "cache")  # cold: synthetic sample and image cache made anew
    env["SKINLAB_RUNS_DIR"] = str(tmp / "book-runs")
    env.setdefault("SKINLAB_PROFILE", "quick")
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    return env


def _build(course: Path, env: dict) -> int:
    code = "import sys; from pathlib import Path; from skinlab.course.bookbuild import build; sys.exit(build(Path(sys.argv[1])))"
    return subprocess.call([sys.executable, "-c", code, str(course)], cwd=course, env=env,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def book(log=print) -> list:
    if not (REPO / "_config.yml").is_file() and not (REPO / "book" / "_config.yml").is_file():
        return [Skipped("course", "no book yet (no _config.yml): book build not measured")]
    tmp = Path(tempfile.mkdtemp(prefix="skinlab-bench-book-"))
    try:
        course = _copy_course(tmp / "course")
        env = _env(tmp)
        log("course: building the book cold (minutes)")
        cold_s, rc = timed(_build, course, env)
        if rc != 0:
            return [Skipped("course", f"the book build failed (exit {rc}) in a fresh copy; not timed")]
        log("course: building the book again (cached)")
        warm_s, rc2 = timed(_build, course, env)
        return [
            Row("course", "book build, quick profile, cold", "target 10 min", 600.0, cold_s, "s",
                ratio=None, target="<= 600 s", passed=cold_s <= 600),
            Row("course", "book build, quick profile, cached", "target 1 min", 60.0, warm_s, "s",
                ratio=None, target="<= 60 s", passed=warm_s <= 60 and rc2 == 0),
        ]
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _grading_course(tmp: Path):
    """A copy of the course in ``tmp``, the simulated class module, the environment and the
    grading command's prefix."""
    course = _copy_course(tmp / "course")
    spec = importlib.util.spec_from_file_location("simulated_class", course / "solutions" / "simulated_class.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return course, module, _env(tmp), [sys.executable, "-m", "skinlab.grading", "--course-dir", str(course)]


def grading(log=print) -> list:
    sim = REPO / "solutions" / "simulated_class.py"
    if not sim.is_file() or not (REPO / "nbgrader_config.py").is_file():
        return [Skipped("course", "no exercises/simulated class yet: autograding not measured")]
    tmp = Path(tempfile.mkdtemp(prefix="skinlab-bench-grade-"))
    try:
        course, module, env, py = _grading_course(tmp)
        subprocess.run(py + ["release"], cwd=course, env=env, check=True, capture_output=True)
        module.write_class(course / "exercises", tmp / "class", students=("solution",))
        log("course: autograding one student's five assignments")
        seconds, proc = timed(subprocess.run, py + ["grade", str(tmp / "class"), "--out", str(tmp / "grades")],
                              cwd=course, env=env, capture_output=True, text=True)
        if proc.returncode != 0:
            return [Skipped("course", f"grading failed (exit {proc.returncode}): {proc.stderr.strip()[-300:]}")]
        return [Row("course", "autograde 1 student x 5 assignments (nbgrader + verifier, sandboxed)", "target 45 s", 45.0, seconds, "s",
                    target="<= 45 s", passed=seconds <= 45)]
    except (subprocess.CalledProcessError, OSError, AttributeError) as exc:
        return [Skipped("course", f"grading benchmark could not run: {exc}")]
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


CLASS_MIX = ("solution", "mistake", "solution", "raises", "untouched", "solution")  # no infinite loops


def _write_mixed_class(module, release_dir: Path, out: Path, students: int) -> None:
    """``students`` students, each handing in all five exercises, cycling through CLASS_MIX."""
    import nbformat

    for i in range(students):
        kind = CLASS_MIX[i % len(CLASS_MIX)]
        for aid in module.POINTS:
            nb = module.submission(release_dir / aid / f"{aid}.ipynb", aid, kind)
            target = out / f"s{i:02d}_{kind}" / aid / f"{aid}.ipynb"
            target.parent.mkdir(parents=True, exist_ok=True)
            nbformat.write(nb, str(target))


def grading_class(log=print, students: int = 30, jobs=(2,)) -> list:
    """A class of ``students`` x 5 exercises, graded in one batch at each ``jobs`` (target 15 min for 30 at 2 cores)."""
    tmp = Path(tempfile.mkdtemp(prefix="skinlab-bench-class-"))
    rows = []
    try:
        course, module, env, py = _grading_course(tmp)
        _write_mixed_class(module, course / "exercises", tmp / "class", students)
        for n in jobs:
            for leftover in ("submitted", "autograded", "feedback", "verified", "gradebook.db"):
                shutil.rmtree(course / leftover, ignore_errors=True) if leftover != "gradebook.db" else \
                    (course / leftover).unlink(missing_ok=True)
            log(f"course: autograding a class of {students} x 5 with --jobs {n}")
            seconds, proc = timed(subprocess.run, py + ["grade", str(tmp / "class"), "--out", str(tmp / f"grades{n}"),
                                                        "--jobs", str(n), "--seed", "1"],
                                  cwd=course, env=env, capture_output=True, text=True)
            if proc.returncode != 0:
                rows.append(Skipped("course", f"class grading failed (exit {proc.returncode}): {proc.stderr.strip()[-300:]}"))
                continue
            budget = 900.0 * students / 30
            rows.append(Row("course", f"autograde {students} students x 5 assignments, --jobs {n}", f"target {budget:.0f} s",
                            budget, seconds, "s", target=f"<= {budget:.0f} s", passed=seconds <= budget))
    except (subprocess.CalledProcessError, OSError, AttributeError) as exc:
        rows.append(Skipped("course", f"class grading benchmark could not run: {exc}"))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return rows


LATE_CLASS = 5
LATE_AID = "ex2_class_weights"  # the fastest exercise to grade


def late_notebook(log=print, students: int = LATE_CLASS, aid: str = LATE_AID) -> list:
    """A class of ``students`` hands in ``aid`` and is graded (one batch, timed: what re-grading
    every submission costs); then one late student's notebook is graded on its own (timed). The
    class's autograded notebooks and feedback pages must stay as they were."""
    sim = REPO / "solutions" / "simulated_class.py"
    if not sim.is_file() or not (REPO / "nbgrader_config.py").is_file():
        return [Skipped("course", "no exercises/simulated class yet: a late notebook not measured")]
    import nbformat

    tmp = Path(tempfile.mkdtemp(prefix="skinlab-bench-late-"))
    try:
        course, module, env, py = _grading_course(tmp)
        release = course / "exercises" / aid / f"{aid}.ipynb"
        for i in range(students):
            kind = CLASS_MIX[i % len(CLASS_MIX)]
            target = tmp / "class" / f"s{i:02d}_{kind}" / aid / f"{aid}.ipynb"
            target.parent.mkdir(parents=True)
            nbformat.write(module.submission(release, aid, kind), str(target))
        late = tmp / "late" / "late_solution" / aid / f"{aid}.ipynb"
        late.parent.mkdir(parents=True)
        nbformat.write(module.submission(release, aid, "solution"), str(late))
        grade = py + ["grade", "--jobs", "2", "--seed", "1"]
        log(f"course: grading a class of {students} x {aid}, then one late notebook")
        class_s, proc = timed(subprocess.run, grade + [str(tmp / "class"), "--out", str(tmp / "grades1")],
                              cwd=course, env=env, capture_output=True, text=True)
        if proc.returncode != 0:
            return [Skipped("course", f"class grading failed (exit {proc.returncode}): {proc.stderr.strip()[-300:]}")]
        outputs = [p for s in ("autograded", "feedback") for p in sorted((course / s).glob(f"*/{aid}/*.*"))]
        before = {p: p.stat().st_mtime_ns for p in outputs}
        late_s, proc = timed(subprocess.run, grade + [str(tmp / "late"), "--out", str(tmp / "grades2")],
                             cwd=course, env=env, capture_output=True, text=True)
        if proc.returncode != 0:
            return [Skipped("course", f"late grading failed (exit {proc.returncode}): {proc.stderr.strip()[-300:]}")]
        rewritten = [p for p in outputs if not p.is_file() or p.stat().st_mtime_ns != before[p]]
        with open(tmp / "grades2" / "grades.csv", newline="") as f:
            listed = sum(1 for _ in f) - 1
        note = "" if not rewritten and listed == students + 1 else \
            f"WRONG: {len(rewritten)} earlier file(s) rewritten, {listed} rows in grades.csv"
        return [Row("course", f"one late notebook added to a graded class of {students} ({aid})",
                    f"the class's own batch ({students} notebooks)", class_s, late_s, "s", ratio=class_s / late_s,
                    target=f"< {class_s:.0f} s, the class untouched", passed=late_s < class_s and not note,
                    note=note, extra={"class_files_rewritten": len(rewritten), "grades_rows": listed})]
    except (subprocess.CalledProcessError, OSError, AttributeError) as exc:
        return [Skipped("course", f"late notebook benchmark could not run: {exc}")]
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def run(quick: bool = False, log=print, book: bool = True, students: int = 0, jobs=(2,)) -> list:
    rows = grading(log)
    rows += late_notebook(log)
    if students:
        rows += grading_class(log, students, jobs)
    if book:
        rows += globals()["book"](log)
    else:
        rows.append(Skipped("course", "book build not measured in this run (--skip-book)"))
    return rows
