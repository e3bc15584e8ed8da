"""What an exercise's test cells ask, read from the *source* notebook (never the student's copy).

The verifier (:mod:`skinlab.grading.verifier`) grades each ``check_*`` call of each autograded test
cell: :func:`test_cells` lists them with their literal arguments (a hidden call may compute its
own, and gets inputs drawn from the batch seed instead: :func:`call_params`), and
:func:`worker_cells` is the code the sandboxed worker runs: the student's notebook without its
test cells, every locked cell as the source has it (as nbgrader restores them).
"""

from __future__ import annotations

import ast
import re
import zlib
from dataclasses import dataclass, field

import numpy as np

from .checking import CHECKS

_HIDDEN = re.compile(r"### BEGIN HIDDEN TESTS(.*?)### END HIDDEN TESTS", re.S)


@dataclass
class CheckCall:
    check: str
    args: tuple
    kwargs: dict
    hidden: bool
    literal: bool  # the arguments are literals (hidden ones need not be)


@dataclass
class TestCell:
    grade_id: str
    points: float
    calls: list[CheckCall] = field(default_factory=list)


def _nbgrader(cell) -> dict:
    """A cell's nbgrader metadata, or {} when the cell (a student's) has none or a malformed one."""
    meta = cell.get("metadata") if isinstance(cell, dict) else None
    meta = meta.get("nbgrader") if isinstance(meta, dict) else None
    if not isinstance(meta, dict) or not isinstance(meta.get("grade_id", ""), str):
        return {}
    return meta


def _is_test(meta) -> bool:
    return bool(meta.get("grade")) and not meta.get("solution")


def test_cells(source_nb) -> list[TestCell]:
    """The autograded test cells of a source notebook with the ``check_*`` calls each makes."""
    cells = []
    for cell in source_nb["cells"]:
        meta = _nbgrader(cell)
        if cell.get("cell_type") != "code" or not _is_test(meta):
            continue
        source = "".join(cell["source"]) if isinstance(cell["source"], list) else cell["source"]
        hidden_lines = set()
        for m in _HIDDEN.finditer(source):
            first = source[:m.start()].count("\n") + 1
            hidden_lines.update(range(first, first + m.group(0).count("\n") + 1))
        test = TestCell(meta["grade_id"], float(meta.get("points", 0)))
        for node in ast.walk(ast.parse(source)):
            if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
                    and node.func.id.startswith("check_")):
                continue
            if node.func.id not in CHECKS:
                raise ValueError(f"test cell {test.grade_id} calls {node.func.id}, which is no registered check")
            try:
                args = tuple(ast.literal_eval(a) for a in node.args[1:])
                kwargs = {k.arg: ast.literal_eval(k.value) for k in node.keywords}
                literal = True
            except ValueError:
                args, kwargs, literal = (), {}, False
            hidden = node.lineno in hidden_lines
            if not literal and not hidden:
                raise ValueError(f"test cell {test.grade_id}: {node.func.id}(...) needs literal arguments")
            test.calls.append(CheckCall(node.func.id, args, kwargs, hidden, literal))
        cells.append(test)
    return cells


def worker_cells(source_nb, submitted_nb) -> list[str]:
    """The code the worker runs: the student's notebook without its test cells, with every
    locked cell as the source has it (as nbgrader restores them)."""
    locked = {}
    tests = set()
    for cell in source_nb["cells"]:
        meta = _nbgrader(cell)
        if _is_test(meta):
            tests.add(meta["grade_id"])
        elif meta.get("locked") and meta.get("grade_id"):
            locked[meta["grade_id"]] = cell
    code = []
    for cell in submitted_nb.get("cells", []):
        if not isinstance(cell, dict) or cell.get("cell_type") != "code":
            continue
        meta = _nbgrader(cell)
        gid = meta.get("grade_id")
        if gid in tests or _is_test(meta):
            continue
        source = locked.get(gid, cell).get("source", "")
        if isinstance(source, list):
            source = "".join(str(line) for line in source)
        code.append(str(source))
    return code


def call_params(exercise: str, test: TestCell, index: int, call: CheckCall, seed: int) -> dict:
    """The inputs of one check call: its literal arguments, or fresh ones for a hidden call."""
    spec = CHECKS[call.check]
    if call.hidden and spec.fresh is not None:
        key = [seed & 0xFFFFFFFF, zlib.crc32(exercise.encode()), zlib.crc32(test.grade_id.encode()), index]
        return spec.params(kwargs=spec.fresh(np.random.default_rng(key)))
    if call.literal:
        return spec.params(call.args, call.kwargs)
    return spec.params()
