"""nbgrader run headless: release the exercises and grade a folder of submissions."""

from __future__ import annotations

import csv
import os
import re
import shutil
import subprocess
import sys
import json
import secrets
import tempfile
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from . import verdicts
from .guard import ASSIGNMENTS, TIME_LIMIT_S

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


def _export_grades(course: Path, path: Path) -> None:
    """``nbgrader export`` in this process (its CSV plugin; saves starting nbgrader once more)."""
    from nbgrader.plugins.export import CsvExportPlugin

    tmp = path.with_name(f".{path.name}.tmp")
    with _gradebook(course) as gb:
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


def _cell_scores(course: Path) -> list[dict]:
    """Points per student, assignment and test cell, for every assignment in the gradebook."""
    rows = []
    with _gradebook(course) as gb:
        for assignment in gb.assignments:
            for student in gb.students:
                try:
                    submission = gb.find_submission(assignment.name, student.id)
                except Exception:
                    continue
                for nb in submission.notebooks:
                    for grade in nb.grades:
                        rows.append(dict(student_id=student.id, assignment=assignment.name, grade_id=grade.name,
                                         score=grade.score, max_score=grade.max_score))
    return rows


# ---------------------------------------------------------------------------- 1. collect

DEDUPLICATED = "duplicated (de-duplicated)"
SKIPPED_FIELDS = ["student_id", "path", "reason", "guess", "guessed_from"]
TAMPERED_FIELDS = ["student_id", "assignment", "grade_id", "problem"]


@dataclass
class _Batch:
    """What one ``grade`` call found in SUBMISSIONS."""

    found: dict = field(default_factory=dict)       # assignment -> [student] put into submitted/
    tampered: list = field(default_factory=list)    # rows of tampered.csv for those notebooks
    skipped: list = field(default_factory=list)     # rows of skipped.csv
    students: set = field(default_factory=set)      # every student folder with a notebook in it

    @property
    def pairs(self) -> set:
        return {(student, aid) for aid, students in self.found.items() for student in students}


def _one_line(text, limit: int = 200) -> str:
    line = " ".join(str(text).split())
    return line if len(line) <= limit else line[: limit - 1] + "…"


def _deduplicate(nb, release_nb) -> list[tuple[str, str]]:
    """Make the grade_ids of ``nb`` unique, in place; [(grade_id, problem)] for each one fixed.

    A cell duplicated by accident (Jupyter's copy/paste) keeps its nbgrader metadata, and nbgrader
    0.9.6 then fails on the notebook (``KeyError: 'grade_id'``: its ``DeduplicateIds`` leaves an
    empty ``nbgrader`` dict that ``OverwriteCells`` cannot read), so an honest notebook scored 0.
    A duplicated test or locked cell: the later copies are dropped (nbgrader restores the first
    from the gradebook anyway). A duplicated answer cell: every copy stays, in order (the kernel
    runs them all and the last definition wins, as in the student's notebook), and all but the
    last lose their nbgrader metadata. Metadata without a grade_id is removed too.
    """
    kinds = {}
    for cell in release_nb.cells:
        meta = cell.get("metadata", {}).get("nbgrader", {})
        if meta.get("grade_id"):
            kinds[meta["grade_id"]] = meta
    fixes = []
    copies: dict[str, list[int]] = {}
    for i, cell in enumerate(nb.cells):
        meta = cell.get("metadata", {}).get("nbgrader")
        if meta is None:
            continue
        if not isinstance(meta, dict) or not meta.get("grade_id"):
            del cell["metadata"]["nbgrader"]
            fixes.append(("(no grade_id)", "nbgrader metadata without a grade_id (removed)"))
            continue
        copies.setdefault(meta["grade_id"], []).append(i)
    drop = set()
    for gid, idxs in copies.items():
        if len(idxs) < 2:
            continue
        meta = kinds.get(gid) or nb.cells[idxs[-1]]["metadata"]["nbgrader"]
        if meta.get("solution") or not (meta.get("grade") or meta.get("locked")):
            for i in idxs[:-1]:
                del nb.cells[i]["metadata"]["nbgrader"]
        else:
            drop.update(idxs[1:])
        fixes.append((gid, DEDUPLICATED))
    if drop:
        nb.cells = [cell for i, cell in enumerate(nb.cells) if i not in drop]
    seen = set()
    for cell in nb.cells:  # a copy made outside Jupyter may repeat the cell id, which nbformat rejects
        if "id" in cell:
            if cell["id"] in seen:
                cell["id"] = uuid.uuid4().hex[:8]
            seen.add(cell["id"])
    return fixes


def _release_nb(course: Path, aid: str) -> Path:
    path = course / "exercises" / aid / f"{aid}.ipynb"
    if not path.is_file():
        raise SystemExit(f"{path} is missing: run `python -m skinlab.grading release {aid}` in the course first")
    return path


def _submit(course: Path, src: Path, student: str, aid: str, batch: _Batch) -> None:
    """Copy ``src`` (``<student>/<aid>/``) into ``submitted/``, de-duplicated; note its tampering."""
    import nbformat

    release_nb = _release_nb(course, aid)
    dest = course / "submitted" / student / aid
    if dest.exists():
        shutil.rmtree(dest)
    shutil.copytree(src, dest)
    for stale in (course / "autograded" / student / aid, course / "feedback" / student / aid):
        if stale.exists():  # graded from an older submission: not this one's result
            shutil.rmtree(stale)
    problems = find_tampering(release_nb, src / f"{aid}.ipynb")
    try:
        nb = nbformat.read(str(src / f"{aid}.ipynb"), as_version=4)
    except Exception:  # find_tampering flags it; nbgrader will fail on it, and the status says why
        pass
    else:
        fixes = _deduplicate(nb, nbformat.read(str(release_nb), as_version=4))
        if fixes:
            nbformat.write(nb, str(dest / f"{aid}.ipynb"))
            problems = [p for p in problems if p[1] != "duplicated"] + fixes
    batch.tampered += [dict(student_id=student, assignment=aid, grade_id=gid, problem=problem)
                       for gid, problem in problems]
    batch.found.setdefault(aid, []).append(student)


def _guess_from_name(names) -> str | None:
    """The assignment that a file or folder name points to: its id, or "ex2", "exercise 2"…"""
    for name in names:
        low = name.lower()
        for aid in ASSIGNMENTS:
            if aid in low:
                return aid
        m = re.search(r"(?<![a-z])ex(?:ercise)?[\s_-]*0*([1-9])(?!\d)", low)
        if m:
            for aid in ASSIGNMENTS:
                if aid.startswith(f"ex{m.group(1)}_"):
                    return aid
    return None


def _guess_from_cells(course: Path, path: Path) -> str | None:
    """The assignment whose release shares most grade_ids with the notebook at ``path``."""
    import nbformat

    try:
        nb = nbformat.read(str(path), as_version=4)
    except Exception:
        return None
    gids = {c.get("metadata", {}).get("nbgrader", {}).get("grade_id") for c in nb.cells} - {None}
    best, overlap = None, 0
    for aid in ASSIGNMENTS:
        release = course / "exercises" / aid / f"{aid}.ipynb"
        if not gids or not release.is_file():
            continue
        rel = nbformat.read(str(release), as_version=4)
        n = len(gids & {c.get("metadata", {}).get("nbgrader", {}).get("grade_id") for c in rel.cells})
        if n > overlap:
            best, overlap = aid, n
    return best


def _skipped_row(course: Path, path: Path, rel: Path) -> dict:
    parts = rel.parts
    if len(parts) == 1:
        reason = "not in a student folder"
    elif len(parts) == 2:
        reason = "not in an exercise folder"
    elif parts[1] in ASSIGNMENTS and len(parts) == 3:
        reason = f"named {parts[2]!r}, not {parts[1]}.ipynb"
        if (path.parent / f"{parts[1]}.ipynb").is_file():
            reason += f" ({parts[1]}.ipynb next to it is graded)"
    elif parts[1] in ASSIGNMENTS:
        reason = "in a subfolder of the exercise folder"
    else:
        reason = f"unknown exercise folder {parts[1]!r}"
    by_name = _guess_from_name([Path(parts[-1]).stem, *reversed(parts[1:-1])])
    by_cells = _guess_from_cells(course, path)
    if by_name and by_cells and by_name != by_cells:
        guess, source = by_cells, f"cells (name says {by_name})"
    else:
        guess = by_cells or by_name or ""
        source = " and ".join(k for k, v in (("name", by_name), ("cells", by_cells)) if v)
    return dict(student_id=parts[0] if len(parts) > 1 else "", path=rel.as_posix(), reason=reason,
                guess=guess, guessed_from=source)


def _collect(submissions: Path, course: Path, wanted) -> _Batch:
    """Step 1: every notebook in SUBMISSIONS either goes into ``submitted/`` or into skipped.csv."""
    batch = _Batch()
    for path in sorted(submissions.rglob("*.ipynb")):
        rel = path.relative_to(submissions)
        parts = rel.parts
        if not path.is_file() or any(p.startswith(".") or p == "__MACOSX" for p in parts):
            continue  # checkpoints, macOS resource forks
        if len(parts) > 1:
            batch.students.add(parts[0])
        if len(parts) == 3 and parts[1] in ASSIGNMENTS and parts[2] == f"{parts[1]}.ipynb":
            if parts[1] in wanted:
                _submit(course, path.parent, parts[0], parts[1], batch)
            continue  # an assignment not asked for is no mistake of the student's
        batch.skipped.append(_skipped_row(course, path, rel))
    return batch


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

def _run_step(course: Path, step: str, batches: list[str], sandboxed: bool = False) -> list[str]:
    """``nbgrader STEP`` on every glob of ``batches`` at once; the output of each call that failed.

    A notebook nbgrader cannot grade (broken JSON, cells it cannot match) makes its call exit 1
    after grading all the others: it is reported, and one submission cannot stop the batch.
    With ``sandboxed``, each call's kernels run in the sandbox (their own work folder each).
    """
    calls = [[step, batch, "--force", "--log-level=WARN"] for batch in batches]
    envs, works = [None] * len(calls), []
    if sandboxed:
        import skinlab

        from . import sandbox

        for i, call in enumerate(calls):
            work = Path(tempfile.mkdtemp(prefix="sk-"))  # short: ipc socket paths are limited
            works.append(work)
            env, args = sandbox.kernel_setup(work, ro=[Path(skinlab.__file__).resolve().parent])
            envs[i] = env
            call += args
    try:
        return [f"$ nbgrader {' '.join(args[:2])}  (exit {proc.returncode})\n{proc.stdout}{proc.stderr}"
                for args, proc in _nbgrader_parallel(course, calls, envs) if proc.returncode != 0]
    finally:
        for work in works:
            shutil.rmtree(work, ignore_errors=True)


_FAILED_AT = re.compile(r"There was an error processing assignment: (\S.*?)\s*$")
_FAILED = re.compile(r"There was an error processing assignment '([^']+)' for student '([^']+)'")
_UNRESPONSIVE = re.compile(r"While processing assignment (\S+), the kernel became unresponsive")


def _nbgrader_failures(log: str) -> dict[tuple[str, str], str]:
    """{(student, assignment): one-line reason} for each notebook that nbgrader's ``log`` says failed."""
    failures = {}
    lines = log.splitlines()
    for i, line in enumerate(lines):
        m = _FAILED.search(line)
        if m:
            failures.setdefault((m.group(2), m.group(1)), "nbgrader could not grade it")
            continue
        m = _UNRESPONSIVE.search(line)
        if m:
            path = Path(m.group(1))
            failures[path.parent.name, path.name] = "the kernel became unresponsive (a loop that fills the memory?)"
            continue
        m = _FAILED_AT.search(line)
        if not m:
            continue
        path = Path(m.group(1))
        last = ""
        for nxt in lines[i + 1:]:  # the traceback: one log record, then indented lines
            if nxt.startswith("[") and "Traceback" not in nxt:
                break
            if nxt.strip():
                last = nxt.strip()
        last = re.sub(r"^(?:\w+\.)+(?=\w+(?:Error|Exception)\b)", "", last)  # nbgrader.x.NbGraderException
        if last:
            failures[path.parent.name, path.name] = f"nbgrader error: {_one_line(last)}"
        else:
            failures.setdefault((path.parent.name, path.name), "nbgrader could not grade it")
    return failures


# ---------------------------------------------------------------------------- 5. export, report

def _read_csv(path: Path) -> list[dict]:
    if not path.is_file():
        return []
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def _history(course: Path, name: str) -> Path:
    """A record kept in the course across batches (gitignored with grades/)."""
    return course / "grades" / f".{name}-history.csv"


def _class_tampering(course: Path, batch: _Batch) -> list[dict]:
    """Tampering flags of the whole class: this batch's, and older batches' for notebooks not resubmitted."""
    path = _history(course, "tampered")
    rows = [r for r in _read_csv(path) if (r["student_id"], r["assignment"]) not in batch.pairs] + batch.tampered
    rows = [r for r in rows if (course / "submitted" / r["student_id"] / r["assignment"] / f"{r['assignment']}.ipynb").is_file()]
    rows.sort(key=lambda r: (r["student_id"], r["assignment"]))
    path.parent.mkdir(parents=True, exist_ok=True)
    _write_csv(path, rows, TAMPERED_FIELDS)
    return rows


def _unreadable(path: Path) -> str | None:
    """Why nbformat cannot read the notebook at ``path`` (broken JSON…), or None."""
    import nbformat

    try:
        nbformat.read(str(path), as_version=4)
    except Exception as exc:
        return f"unreadable notebook: {_one_line(exc)}"
    return None


def _statuses(course: Path, pairs, batch: _Batch, failures: dict, verifier_only=frozenset()) -> dict[tuple[str, str], str]:
    """``graded``, ``not submitted`` or ``ungradable: <reason>`` for each (student, assignment).

    The reason of an ungradable notebook: nbformat's if it cannot be read, else what nbgrader
    said in this run (``failures``), else what it said in the run that last graded it.
    """
    path = _history(course, "status")
    earlier = {(r["student_id"], r["assignment"]): r["status"] for r in _read_csv(path)}
    statuses = {}
    for student, aid in pairs:
        if (student, aid) in verifier_only:  # nbgrader's kernel failed; the verifier graded it
            status = f"graded by the verifier only (nbgrader: {failures.get((student, aid), 'could not grade it')})"
        elif (course / "autograded" / student / aid / f"{aid}.ipynb").is_file():
            status = "graded"
        elif (course / "submitted" / student / aid / f"{aid}.ipynb").is_file():
            reason = _unreadable(course / "submitted" / student / aid / f"{aid}.ipynb") or failures.get((student, aid))
            status = f"ungradable: {reason}" if reason else earlier.get(
                (student, aid), "ungradable: nbgrader could not grade it (see nbgrader_errors.log)")
        else:
            status = "not submitted"
            misfiled = [r["path"] for r in batch.skipped if r["student_id"] == student and r["guess"] == aid]
            if misfiled:
                status += f" (skipped {', '.join(misfiled)}: see skipped.csv)"
        statuses[student, aid] = status
    path.parent.mkdir(parents=True, exist_ok=True)
    _write_csv(path, [dict(student_id=s, assignment=a, status=v) for (s, a), v in sorted(statuses.items())
                      if v.startswith("ungradable")], ["student_id", "assignment", "status"])
    return statuses


def _report(course: Path, out: Path, batch: _Batch, problems: list[str], verifier_only=frozenset()) -> tuple[dict, int]:
    """Step 5: grades.csv (+ ``status``, ``tampered``), tampered.csv, scores_by_test.csv, the log.

    Returns the paths and how many notebooks of this batch were graded.
    """
    errors_log = out / "nbgrader_errors.log"
    errors_log.write_text("\n".join(problems))
    if problems:
        print(f"warning: nbgrader reported problems with some submissions; see {errors_log}", file=sys.stderr)
    grades_csv = out / "grades.csv"
    _export_grades(course, grades_csv)
    rows = _read_csv(grades_csv)
    tampered = _class_tampering(course, batch)
    _write_csv(out / "tampered.csv", tampered, TAMPERED_FIELDS)
    flags = {}
    for row in tampered:
        flags.setdefault((row["student_id"], row["assignment"]), []).append(f"{row['grade_id']} {row['problem']}")
    statuses = _statuses(course, [(r["student_id"], r["assignment"]) for r in rows], batch,
                         _nbgrader_failures("\n".join(problems)), verifier_only)
    for row in rows:
        key = row["student_id"], row["assignment"]
        row["status"] = statuses[key]
        row["tampered"] = "; ".join(flags.get(key, []))
    fields = list(rows[0].keys()) if rows else ["assignment", "student_id", "score", "max_score", "status", "tampered"]
    _write_csv(grades_csv, rows, fields)
    _write_csv(out / "scores_by_test.csv", _cell_scores(course),
               ["student_id", "assignment", "grade_id", "score", "max_score"])
    ungradable = [k for k in batch.pairs if statuses.get(k, "").startswith("ungradable")]
    if ungradable:
        print(f"warning: {len(ungradable)} of {len(batch.pairs)} notebooks could not be graded "
              f"(they score 0): see the status column of {grades_csv}", file=sys.stderr)
    graded = sum(statuses.get(k, "").startswith("graded") for k in batch.pairs)
    paths = {"grades": grades_csv, "tampered": out / "tampered.csv", "scores_by_test": out / "scores_by_test.csv",
             "skipped": out / "skipped.csv", "feedback": course / "feedback", "errors": errors_log}
    return paths, graded


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


def _report_verification(course: Path, out: Path, records, disagreements, seed: int, sandboxed: bool) -> dict:
    """disagreements.csv, the graded_by column, similarity.csv/.html and grading.json."""
    from . import similarity

    path = out / "disagreements.csv"
    _write_csv(path, disagreements, ["student_id", "assignment", "grade_id", "in_kernel", "verified", "reason"])
    if disagreements:
        print(f"note: {len(disagreements)} test cell(s) scored differently in the student's kernel than "
              f"when verified; the verified points stand: see {path}", file=sys.stderr)
    by = "verifier (sandboxed)" if sandboxed else "verifier (UNSANDBOXED)"
    rows = _read_csv(out / "grades.csv")
    for row in rows:
        row["graded_by"] = by if row.get("status", "").startswith("graded") else ""
    if rows:
        _write_csv(out / "grades.csv", rows, list(rows[0].keys()))
    notebooks = {(nb.parent.parent.name, nb.parent.name): nb
                 for nb in sorted((course / "submitted").glob("*/*/*.ipynb")) if nb.stem == nb.parent.name}
    found = similarity.report_for_course(course, notebooks, out)
    info = {"seed": seed, "sandboxed": sandboxed, "notebooks_verified": len(records),
            "disagreements": len(disagreements), "similar_pairs": len(found["rows"]),
            "regrade": f"python -m skinlab.grading grade SUBMISSIONS --seed {seed}"}
    tmp = out / ".grading.json.tmp"
    tmp.write_text(json.dumps(info, indent=1))
    os.replace(tmp, out / "grading.json")
    print(f"graded with batch seed {seed} ({by}); {len(found['rows'])} similar pair(s) in {found['csv']}",
          file=sys.stderr)
    return {"disagreements": path, "similarity": found["csv"], "similarity_html": found["html"],
            "grading": out / "grading.json"}


class SandboxUnavailableError(RuntimeError):
    """This machine cannot sandbox student code, and grading unsandboxed was not allowed."""


class NothingGradedError(RuntimeError):
    """No notebook of the batch could be graded (the report files are written all the same)."""


def grade(submissions, course=None, out=None, assignments=None, jobs: int | None = None, *,
          unsandboxed: bool = False, seed: int | None = None, time_limit: float = TIME_LIMIT_S) -> dict:
    """Autograde a folder ``<student>/<assignment>/<assignment>.ipynb``; returns output paths.

    1. collect: copies the submissions into ``<course>/submitted/`` (a duplicated answer or test
       cell de-duplicated, see ``_deduplicate``), compares each with the release (tampering), and
       lists every notebook filed elsewhere in ``skipped.csv``;
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
       ``nbgrader_errors.log`` into ``out``.

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
    jobs = default_jobs() if jobs is None else jobs
    if jobs < 1:
        raise ValueError(f"--jobs {jobs}: expected 1 or more")
    out.mkdir(parents=True, exist_ok=True)
    wanted = list(assignments or ASSIGNMENTS)

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
    students = sorted(batch.students | {p.name for p in (course / "submitted").iterdir() if p.is_dir()})
    _prepare_gradebook(course, batch.found, students)

    # 3. autograde
    batches = grading_batches(batch.found, jobs)
    problems = _run_step(course, "autograde", batches, sandboxed=sandboxed)
    # 3b. verify: the verdict, from processes where student code never ran
    units = [(student, aid, course / "submitted" / student / aid / f"{aid}.ipynb")
             for student, aid in sorted(batch.pairs)]
    records = verdicts.verify_batch(course, units, seed=seed, sandboxed=sandboxed, jobs=jobs,
                                    time_limit=time_limit)
    disagreements = verdicts.apply_to_gradebook(course, records)
    verifier_only = {(r["student"], r["assignment"]) for r, (_, _, nb) in zip(records, units)
                     if "unreadable" not in r and verdicts.ensure_autograded(course, r["student"], r["assignment"], nb)}
    # 4. feedback
    problems += _run_step(course, "generate_feedback", batches)  # feedback needs every grade of its notebook

    # 5. export, report
    paths, graded = _report(course, out, batch, problems, verifier_only)
    paths.update(_report_verification(course, out, records, disagreements, seed, sandboxed))
    if not graded:
        raise NothingGradedError(f"none of the {len(batch.pairs)} submitted notebooks could be graded: "
                                 f"see the status column of {paths['grades']}")
    return paths


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
    g.add_argument("--seed", type=int, default=None,
                   help="seed of the hidden tests' inputs (default: a fresh one, written to grading.json; "
                        "the same seed re-grades a batch identically)")
    g.add_argument("--unsandboxed", action="store_true",
                   help="grade even where student code cannot be sandboxed (it then runs with your rights; "
                        "every output says so)")
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
            paths = grade(args.submissions, args.course_dir, args.out, jobs=args.jobs,
                          unsandboxed=args.unsandboxed, seed=args.seed)
            for key, path in paths.items():
                print(f"{key}: {path}")
    except RuntimeError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


