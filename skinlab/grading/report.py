"""Step 5 of grading: the reports an instructor reads, written from the gradebook.

``grades.csv`` (nbgrader's export plus ``status``, ``tampered``, ``graded_by``),
``scores_by_test.csv``, ``tampered.csv``, ``disagreements.csv``, ``similarity.csv``/``.html``
and ``grading.json``.
"""

from __future__ import annotations

import csv
import json
import os
import re
import sys
from pathlib import Path

from ..atomic import exclusive, write_json
from .collect import DEDUPLICATED, TAMPERED_FIELDS, _Batch, _one_line
from .verdicts import open_gradebook as _gradebook


def _export_grades(course: Path, path: Path) -> None:
    """``nbgrader export`` in this process (its CSV plugin; saves starting nbgrader once more)."""
    from nbgrader.plugins.export import CsvExportPlugin

    tmp = path.with_name(f".{path.name}.tmp")
    with _gradebook(course) as gb:
        CsvExportPlugin(to=str(tmp)).export(gb)
    os.replace(tmp, path)


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
    said in this run (``failures``), else what it said in the run that last graded it. A notebook
    of an earlier batch that only the verifier could grade keeps that status (it is not regraded).
    """
    path = _history(course, "status")
    earlier = {(r["student_id"], r["assignment"]): r["status"] for r in _read_csv(path)}
    statuses = {}
    for student, aid in pairs:
        kept = earlier.get((student, aid), "") if (student, aid) not in batch.pairs else ""
        if (student, aid) in verifier_only:  # nbgrader's kernel failed; the verifier graded it
            status = f"graded by the verifier only (nbgrader: {failures.get((student, aid), 'could not grade it')})"
        elif (course / "autograded" / student / aid / f"{aid}.ipynb").is_file():
            status = kept if kept.startswith(_VERIFIER_ONLY) else "graded"
        elif (course / "submitted" / student / aid / f"{aid}.ipynb").is_file():
            reason = _unreadable(course / "submitted" / student / aid / f"{aid}.ipynb") or failures.get((student, aid))
            before = earlier.get((student, aid), "")
            status = f"ungradable: {reason}" if reason else before if before.startswith("ungradable") else \
                "ungradable: nbgrader could not grade it (see nbgrader_errors.log)"
        else:
            status = "not submitted"
            misfiled = [r["path"] for r in batch.skipped if r["student_id"] == student and r["guess"] == aid]
            if misfiled:
                status += f" (skipped {', '.join(misfiled)}: see skipped.csv)"
        statuses[student, aid] = status
    path.parent.mkdir(parents=True, exist_ok=True)
    _write_csv(path, [dict(student_id=s, assignment=a, status=v) for (s, a), v in sorted(statuses.items())
                      if v.startswith(("ungradable", _VERIFIER_ONLY))], ["student_id", "assignment", "status"])
    return statuses


_VERIFIER_ONLY = "graded by the verifier only"


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
    mine = {(r["student_id"], r["assignment"]) for r in batch.tampered if r["problem"] != DEDUPLICATED}
    if mine:  # the points are right (the verifier reads the source), but someone tried
        print(f"warning: {len(mine)} notebook(s) of this batch have test cells or nbgrader metadata that "
              f"differ from the source (edited, deleted, re-marked, extra graded cells): see "
              f"{out / 'tampered.csv'} and the tampered column of {grades_csv}", file=sys.stderr)
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
    batch_record = keep_batch_record(course, info, records)
    info["batch_record"] = str(batch_record)
    write_json(info, out / "grading.json")  # the latest batch's summary, where it always was
    print(f"graded with batch seed {seed} ({by}); {len(found['rows'])} similar pair(s) in {found['csv']}",
          file=sys.stderr)
    return {"disagreements": path, "similarity": found["csv"], "similarity_html": found["html"],
            "grading": out / "grading.json"}


BATCH_INDEX_FIELDS = ["record", "finished_at", "seed", "sandboxed", "notebooks_verified", "disagreements",
                      "similar_pairs", "students"]


def batches_dir(course: Path) -> Path:
    """Where every batch's record is kept, in the course (like the other histories), whatever --out."""
    return course / "grades" / "batches"


def keep_batch_record(course: Path, info: dict, records) -> Path:
    """Write this batch's record as ``grades/batches/<UTC time>-<seed>.json`` (a new file: never
    one of an earlier batch) and rebuild ``grades/batches/index.csv`` from every record there.

    ``grading.json`` holds only the latest batch: a late student's batch replaced the seed that
    graded the rest of the class (needed to re-grade them identically) and its counts. Each record
    also lists the notebooks it graded, so the seed of any student's notebook can be found.
    """
    import time

    folder = batches_dir(course)
    notebooks = [dict(student=r["student"], assignment=r["assignment"],
                      points=round(sum(float(c["points"]) for c in r.get("cells", [])), 4),
                      max_points=round(sum(float(c["max_points"]) for c in r.get("cells", [])), 4),
                      **({"unreadable": r["unreadable"]} if "unreadable" in r else {}))
                 for r in records]
    finished = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    record = {**info, "finished_at": finished, "students": sorted({n["student"] for n in notebooks}),
              "notebooks": notebooks}
    with exclusive(folder):  # two batches finishing at once get two files and one whole index
        stem = f"{finished.replace('-', '').replace(':', '')}-{info['seed']}"
        path, n = folder / f"{stem}.json", 1
        while path.exists():  # the same second and seed (a re-grade): a new name, never an overwrite
            n += 1
            path = folder / f"{stem}-{n}.json"
        write_json(record, path)
        rows = []
        for kept in sorted(folder.glob("*.json"), key=lambda p: (p.stat().st_mtime_ns, p.name)):  # oldest first
            try:
                data = json.loads(kept.read_text())
            except (OSError, ValueError):
                continue  # a record damaged by hand: the others are still listed
            rows.append({**{k: data.get(k, "") for k in BATCH_INDEX_FIELDS}, "record": kept.name,
                         "students": len(data.get("students", []))})
        _write_csv(folder / "index.csv", rows, BATCH_INDEX_FIELDS)
    return path


def _cell(value):
    """A CSV field that a spreadsheet shows as text: student-controlled strings (grade_ids,
    messages) starting with = + - @ would otherwise run as formulas when the file is opened."""
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        try:
            float(value)
            return value  # a negative number stays a number
        except ValueError:
            return "'" + value
    return value


def _write_csv(path: Path, rows: list[dict], fields: list[str]) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=fields)
        writer.writeheader()
        writer.writerows({k: _cell(v) for k, v in row.items()} for row in rows)
    os.replace(tmp, path)
