"""Bound what a student's notebook prints: the nbgrader preprocessor ``LimitOutputBytes``.

A print flood (``while True: print("x" * 10**8)``) must not become a 50 MB autograded notebook
or feedback page. ``LimitOutputBytes`` runs in nbgrader's process (trusted) at the end of
autograding, after ``SaveAutoGrades``: grades are computed from the full outputs (nbgrader fails a
test cell on an ``error`` or a ``stderr`` stream), and only what is stored and shown is cut.
In ``nbgrader_config.py``::

    from nbgrader.converters import Autograde
    c.Autograde.autograde_preprocessors = [
        *Autograde.class_traits()["autograde_preprocessors"].default(), LimitOutputBytes]

(not ``.append``: nbgrader loads ``nbgrader_config.py`` twice, from the cwd and the course root,
and the appends add up; running twice would be harmless anyway, notes are not counted).

The sandboxed kernel also cuts each cell's stdout/stderr at the source (``Limits.output_bytes``
in ``sandbox.py``), so a flood ends at once and nbgrader is not left reading gigabytes.
Imported by nbgrader's process only (it imports nbgrader), never by a student's kernel.
"""

from __future__ import annotations

import json
import re

from nbformat.v4 import new_output
from nbgrader.preprocessors import NbGraderPreprocessor
from traitlets import Integer

_NOTE = re.compile(r"\[output truncated: \d+ bytes\]\n")


def _clip(text: str, room: int) -> tuple[str, int, int]:
    """(text cut to ``room`` UTF-8 bytes, bytes kept, bytes cut)."""
    data = text.encode("utf-8", "replace")
    if len(data) <= room:
        return text, len(data), 0
    room = max(room, 0)
    return data[:room].decode("utf-8", "ignore"), room, len(data) - room


class LimitOutputBytes(NbGraderPreprocessor):
    """Keep at most ``max_cell_bytes`` of text per code cell and ``max_notebook_bytes`` in all.

    Text is stream output, error messages and tracebacks, and text data (text/plain, HTML,
    JSON…); images count apart (``max_image_bytes``), each kept whole or dropped. Outputs are
    shortened; emptied streams go, except a cell's first ``stderr`` one (nbgrader fails a test
    cell on a ``stderr`` stream or an ``error``, and this must not change on a re-run). A cell
    that lost something ends with a stdout note "[output truncated: N bytes]".
    """

    max_cell_bytes = Integer(20_000, help="Text output kept per code cell, in bytes").tag(config=True)
    max_notebook_bytes = Integer(200_000, help="Text output kept per notebook, in bytes").tag(config=True)
    max_image_bytes = Integer(2_000_000, help="Image data (base64) kept per notebook, in bytes").tag(config=True)

    def preprocess(self, nb, resources):
        self._text_left, self._image_left = self.max_notebook_bytes, self.max_image_bytes
        return super().preprocess(nb, resources)

    def preprocess_cell(self, cell, resources, index):
        if cell.cell_type != "code" or not cell.get("outputs"):
            return cell, resources
        room = min(self.max_cell_bytes, self._text_left)
        used = cut = 0

        def clip(text):
            nonlocal used, cut
            text, kept, lost = _clip(text, room - used)
            used, cut = used + kept, cut + lost
            return text

        outputs, stderr_kept = [], False
        for out in cell.outputs:
            if out.output_type == "stream" and _NOTE.fullmatch(out.text):
                outputs.append(out)  # the note of an earlier run: kept, not counted
                continue
            if out.output_type == "stream":
                out.text = clip(out.text)
                if not out.text and (out.name != "stderr" or stderr_kept):
                    continue  # emptied: dropped, except one stderr stream (it fails a test cell)
                stderr_kept |= out.name == "stderr"
            elif out.output_type == "error":
                out.ename = out.ename[:200]  # a class name can be made as long as a flood
                out.evalue = clip(out.evalue)
                out.traceback = [line for line in map(clip, out.traceback) if line]
            outputs.append(out)
            for mime, value in list(out.get("data", {}).items()):
                text = value if isinstance(value, str) else json.dumps(value)
                size = len(text.encode("utf-8", "replace"))
                if mime.startswith("image/") and mime != "image/svg+xml":
                    if size <= self._image_left:
                        self._image_left -= size
                        continue
                elif mime == "text/plain":
                    out.data[mime] = clip(text)
                    continue
                elif used + size <= room:  # markup cut in half would break the page: all or nothing
                    used += size
                    continue
                del out.data[mime]
                cut += size
        cell.outputs = outputs
        self._text_left -= used
        if cut:
            cell.outputs.append(new_output("stream", name="stdout", text=f"[output truncated: {cut} bytes]\n"))
        return cell, resources
