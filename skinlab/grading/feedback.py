"""nbgrader feedback without hidden tests: the ``HideHiddenTests`` preprocessor.

When the batch was verified (``skinlab.grading.verdicts``), each test cell shows the verifier's
verdict instead of what it printed in the student's kernel: student code ran in that kernel and
could have printed anything there (a fake "passed", or the source of the hidden tests).

Apart from ``skinlab.grading`` because it imports nbconvert (~2 s): the checks run inside every
student's kernel at autograding, and only nbgrader's own process (``nbgrader_config.py``) needs this.
"""

from __future__ import annotations

import json
import os
import re

_ANSI = re.compile(r"\x1b\[[0-9;]*m")


def _strip_hidden(source: str) -> tuple[str, bool]:
    lines, hidden, removed = [], False, False
    for line in source.split("\n"):
        if "BEGIN HIDDEN TESTS" in line:
            hidden = removed = True
        elif "END HIDDEN TESTS" in line:
            hidden = False
        elif not hidden:
            lines.append(line)
    return "\n".join(lines), removed


try:  # nbconvert is there wherever nbgrader is
    from nbconvert.preprocessors import Preprocessor as _PreprocessorBase
    from traitlets import Bool as _Bool
except ImportError:  # pragma: no cover
    _PreprocessorBase, _Bool = object, None


class HideHiddenTests(_PreprocessorBase):
    """Feedback preprocessor: hidden test code never reaches the student.

    In every autograded test cell it removes the ``### BEGIN/END HIDDEN TESTS`` regions from the
    source and reduces an error output to its message (``AssertionError: ...``), dropping the
    traceback frames of the test cell (whose source lines could be hidden ones) and of the
    grading helpers; frames of the student's own cells are kept.
    """

    if _Bool is not None:
        # nbconvert skips preprocessors that are not enabled (nbgrader registers them as classes).
        enabled = _Bool(True).tag(config=True)

    def preprocess(self, nb, resources):
        self._verdicts = _verdicts(resources)
        nb, resources = super().preprocess(nb, resources)
        record = self._verdicts.get("__record__")
        if record is not None:
            from nbformat.v4 import new_markdown_cell

            how = ("in a sandbox" if record.get("sandboxed") else
                   "**without a sandbox** (the instructor chose to grade unsandboxed)")
            nb.cells.insert(0, new_markdown_cell(
                f"*Graded by the skinlab verifier {how}: your code was run in a separate process and "
                "every test's result below was computed outside it, with hidden inputs drawn for "
                f"this batch (seed {record.get('seed')}).*"))
        return nb, resources

    def preprocess_cell(self, cell, resources, index):
        meta = cell.get("metadata", {}).get("nbgrader", {})
        if cell.get("cell_type") != "code" or not meta.get("grade") or meta.get("solution"):
            return cell, resources
        cell.source, removed = _strip_hidden(cell.source)
        if removed:
            cell.source = cell.source.rstrip("\n") + "\n# (hidden tests were run too)"
        verdict = getattr(self, "_verdicts", {}).get(meta.get("grade_id"))
        if verdict is not None:
            cell["outputs"] = [_verdict_output(verdict)]
            return cell, resources
        count = cell.get("execution_count")
        for output in cell.get("outputs", []):
            if output.get("output_type") != "error":
                continue
            frames = []
            for text in output.get("traceback", [])[1:-1]:
                plain = _ANSI.sub("", text)
                if plain.startswith("Cell In[") and not plain.startswith(f"Cell In[{count}]"):
                    frames.append(text)  # the student's own code
            last = output.get("traceback", [""])[-1:]
            output["traceback"] = [f"{output.get('ename', 'Error')} (test failed)"] + frames + last
        return cell, resources


def _verdicts(resources) -> dict:
    """{grade_id: verdict} of this notebook (plus "__record__"), or {} when it was not verified."""
    info = (resources or {}).get("nbgrader", {})
    db_url = str(info.get("db_url", ""))
    if not db_url.startswith("sqlite:///") or not info.get("student") or not info.get("assignment"):
        return {}
    course = os.path.dirname(db_url[len("sqlite:///"):])
    path = os.path.join(course, "verified", info["student"], f"{info['assignment']}.json")
    try:
        with open(path) as f:
            record = json.load(f)
    except (OSError, ValueError):
        return {}
    found = {c["grade_id"]: c for c in record.get("cells", [])}
    found["__record__"] = record
    return found


def _verdict_output(verdict: dict) -> dict:
    from nbformat.v4 import new_output

    if not verdict.get("message"):
        return new_output("stream", name="stdout", text="passed (verified outside your notebook)\n")
    return new_output("error", ename="AssertionError", evalue=verdict["message"],
                      traceback=["AssertionError (test failed)", f"AssertionError: {verdict['message']}"])
