"""nbgrader feedback without hidden tests: the ``HideHiddenTests`` preprocessor.

Apart from ``skinlab.grading`` because it imports nbconvert (~2 s): the checks run inside every
student's kernel at autograding, and only nbgrader's own process (``nbgrader_config.py``) needs this.
"""

from __future__ import annotations

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

    def preprocess_cell(self, cell, resources, index):
        meta = cell.get("metadata", {}).get("nbgrader", {})
        if cell.get("cell_type") != "code" or not meta.get("grade") or meta.get("solution"):
            return cell, resources
        cell.source, removed = _strip_hidden(cell.source)
        if removed:
            cell.source = cell.source.rstrip("\n") + "\n# (hidden tests were run too)"
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
