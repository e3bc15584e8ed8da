"""nbgrader feedback without hidden tests: the ``HideHiddenTests`` preprocessor.

When the batch was verified (``skinlab.grading.verdicts``), each test cell shows the verifier's
verdict instead of what it printed in the student's kernel: student code ran in that kernel and
could have printed anything there (a fake "passed", or the source of the hidden tests).

Every other output, and every markdown or raw cell the student wrote, is made inert before the
page is rendered (``_safe_cell``): the page opens in the student's and the instructor's browser,
and nbconvert's template writes HTML, markdown with raw HTML, SVG and JavaScript outputs into it
as they are. Outputs are rebuilt from an allow-list and HTML goes through ``nh3`` (see below).

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
    grading helpers; frames of the student's own cells are kept. Then every cell is made safe
    to open in a browser (``_safe_cell``): no output, markdown or raw cell of the student's can
    run code or load anything.
    """

    if _Bool is not None:
        # nbconvert skips preprocessors that are not enabled (nbgrader registers them as classes).
        enabled = _Bool(True).tag(config=True)

    def preprocess(self, nb, resources):
        self._verdicts = _verdicts(resources)
        # The course's own markdown cells (the release) render as written, maths included; any other
        # markdown cell is the student's and is sanitised like an output.
        self._trusted_markdown = _course_markdown(resources)
        # Lines of the hidden tests: an output that shows one (a last cell printing IPython's
        # `In`, which holds every executed cell) is removed from the feedback.
        self._hidden = set()
        for cell in nb.cells:
            meta = cell.get("metadata", {}).get("nbgrader", {})
            if cell.get("cell_type") == "code" and meta.get("grade") and not meta.get("solution"):
                stripped, _ = _strip_hidden(cell.source)
                kept = {line.strip() for line in stripped.split("\n")}
                self._hidden |= {line.strip() for line in cell.source.split("\n")
                                 if "check_" in line and line.strip() not in kept}
        nb, resources = super().preprocess(nb, resources)
        # The widget state is written into the page by the template: the kernel (student code) chose it.
        nb.metadata.pop("widgets", None)
        record = self._verdicts.get("__record__")
        if record is not None:
            from nbformat.v4 import new_markdown_cell

            how = ("in a sandbox" if record.get("sandboxed") else
                   "**without a sandbox** (the instructor chose to grade unsandboxed)")
            nb.cells.insert(0, new_markdown_cell(
                f"*Graded by the skinlab verifier {how}: your code was run in a separate process and "
                "every test's result below was computed outside it, with hidden inputs drawn for "
                "this batch.*"))
        return nb, resources

    def preprocess_cell(self, cell, resources, index):
        cell, resources = self._hide_hidden(cell, resources)
        return _safe_cell(cell, getattr(self, "_trusted_markdown", frozenset())), resources

    def _hide_hidden(self, cell, resources):
        meta = cell.get("metadata", {}).get("nbgrader", {})
        if not isinstance(meta, dict):
            meta = {}
        if cell.get("cell_type") == "code" and (not meta.get("grade") or meta.get("solution")):
            cell["outputs"] = [_scrubbed(o, getattr(self, "_hidden", set())) for o in cell.get("outputs", [])]
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
        told = verdict.get("self_report")
        also = (f"; it also rests on what the process running your code reported about itself, which "
                f"the grader cannot recompute: {told}" if told else "")
        return new_output("stream", name="stdout", text=f"passed (verified outside your notebook{also})\n")
    return new_output("error", ename="AssertionError", evalue=verdict["message"],
                      traceback=["AssertionError (test failed)", f"AssertionError: {verdict['message']}"])


def _scrubbed(output: dict, hidden: set) -> dict:
    """The student's own output, unless it shows a line of the hidden tests: then a note in its
    place. Every text form counts, HTML and markdown too, read as the browser would show them
    (entities decoded, tags removed: ``che<b></b>ck_&#119;eights`` is ``check_weights``)."""
    from nbformat.v4 import new_output

    if not hidden:
        return output
    traceback = output.get("traceback") if isinstance(output.get("traceback"), list) else []
    texts = [_text(output.get("text", "")), _text(output.get("evalue", "")), *map(_text, traceback)]
    data = output.get("data") if isinstance(output.get("data"), dict) else {}
    for mime, value in data.items():
        value = _text(value)
        texts.append(value)
        if "html" in mime or "markdown" in mime or "svg" in mime:
            texts.append(_visible_text(value))
    text = "\n".join(texts)
    if any(line in text for line in hidden):
        return new_output("stream", name="stdout", text="[output removed: it showed the hidden tests]\n")
    return output


# ---------------------------------------------------------------------------- what the page may show
#
# The feedback page is opened by the student and by the instructor, in a browser, from a file the
# grader wrote: every output in it was produced by student code (the kernel is the student's, so
# even the output's type, metadata and execution count are), and nbconvert's templates put HTML,
# markdown (raw HTML allowed), SVG and JavaScript outputs into the page as they are. So each
# output is rebuilt from an allow-list: text (escaped by the template), PNG/JPEG as base64 data,
# HTML and markdown through nh3 (ammonia: a maintained allow-list sanitiser), nothing else.

_IMAGE_SRC = re.compile(r"data:image/(?:png|jpeg|gif|webp);base64,[A-Za-z0-9+/=\s]*\Z")
_BASE64 = re.compile(r"[A-Za-z0-9+/=\s]*\Z")
_SAFE_ID = re.compile(r"[^A-Za-z0-9_.-]")
_ACTIVE_REMOVED = "[{} output removed from the feedback: it could run code in the browser]\n"


def _text(value) -> str:
    """A notebook string field (a str or a list of str); anything else as its ``str``."""
    if isinstance(value, list):
        return "".join(v if isinstance(v, str) else str(v) for v in value)
    return value if isinstance(value, str) else str(value)


def _url_filter(element: str, attribute: str, value: str):
    """nh3's attribute filter: images only from inline data (a remote ``src`` would tell a third
    party that the page was opened, and by whom), links only to the web or mail."""
    if attribute == "src":
        return value if _IMAGE_SRC.match(value) else None
    if attribute in ("href", "cite") and value.strip().lower().startswith("data:"):
        return None
    return value


def sanitize_html(html: str) -> str:
    """``html`` with only inert markup left: nh3's default tags and attributes (no script, style,
    iframe, svg, form, event handler, ``class``/``id``/``style``), ``javascript:`` and other
    schemes removed, images only from ``data:image/...;base64``."""
    import nh3

    return nh3.clean(_text(html), url_schemes={"http", "https", "mailto", "data"},
                     attribute_filter=_url_filter, link_rel="noopener noreferrer nofollow")


def _visible_text(html: str) -> str:
    import html as _html

    import nh3

    return _html.unescape(nh3.clean(_text(html), tags=set()))


def markdown_html(markdown: str) -> str:
    """Markdown rendered as nbconvert renders it, then sanitised (mistune keeps raw HTML and
    ``javascript:`` links)."""
    from nbconvert.filters.markdown_mistune import markdown2html_mistune

    return sanitize_html(markdown2html_mistune(_text(markdown)))


def _as_markdown_block(html: str) -> str:
    """Sanitised HTML that the template's markdown renderer passes through untouched: one
    ``<div>`` on one line (a blank line would end mistune's HTML block and let the rest be read
    as markdown again). ``&#10;`` is a newline to the browser, inside ``<pre>`` too."""
    return "<div>" + html.replace("\r", "").replace("\n", "&#10;") + "</div>"


def _count(value):
    """An execution count as the template may print it: an int or None (it is written unescaped,
    and a kernel can report any value)."""
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _safe_output(output) -> dict:
    """``output`` rebuilt from what the page may show (see above); unknown keys are dropped."""
    from nbformat.v4 import new_output

    if not isinstance(output, dict):
        return new_output("stream", name="stdout", text="[malformed output removed]\n")
    kind = output.get("output_type")
    if kind == "stream":
        name = output.get("name") if output.get("name") in ("stdout", "stderr") else "stdout"
        return new_output("stream", name=name, text=_text(output.get("text", "")))
    if kind == "error":
        tb = output.get("traceback")
        return new_output("error", ename=_text(output.get("ename", "Error"))[:200],
                          evalue=_text(output.get("evalue", "")),
                          traceback=[_text(t) for t in tb] if isinstance(tb, list) else [])
    if kind not in ("display_data", "execute_result"):
        return new_output("stream", name="stdout", text=f"[output of type {_text(kind)[:40]!r} removed]\n")
    data = output.get("data") if isinstance(output.get("data"), dict) else {}
    meta = output.get("metadata") if isinstance(output.get("metadata"), dict) else {}
    safe, safe_meta, removed = {}, {}, []
    for mime, value in data.items():
        if mime == "text/plain":
            safe[mime] = _text(value)
        elif mime == "text/html":
            safe["text/html"] = sanitize_html(value)
        elif mime == "text/markdown":
            if "text/html" not in data:  # rendered here, shown as (sanitised) HTML
                safe["text/html"] = markdown_html(value)
        elif mime in ("image/png", "image/jpeg") and isinstance(value, str) and _BASE64.match(value):
            safe[mime] = value
            size = meta.get(mime) if isinstance(meta.get(mime), dict) else {}
            kept = {k: size[k] for k in ("width", "height") if _count(size.get(k)) is not None}
            if kept:
                safe_meta[mime] = kept
        else:  # JavaScript, SVG (scripts, remote loads), widgets, LaTeX, JSON, PDF, anything else
            removed.append(_text(mime)[:60])
    if "text/html" in safe and not safe["text/html"].strip():
        del safe["text/html"]  # nothing inert was left (it was all <script>)
    if not safe:
        return new_output("stream", name="stdout", text=_ACTIVE_REMOVED.format(", ".join(removed) or "an empty"))
    if kind == "execute_result":
        return new_output(kind, data=safe, metadata=safe_meta, execution_count=_count(output.get("execution_count")))
    return new_output(kind, data=safe, metadata=safe_meta)


def _safe_cell(cell, trusted_markdown=frozenset()):
    """Every part of ``cell`` that the feedback template writes into the page unescaped, made inert:
    outputs, the execution count, a grade_id (in ``href``/``name``), a student's markdown or raw cell."""
    meta = cell.get("metadata")
    if not isinstance(meta, dict):
        cell["metadata"] = meta = {}
    nbmeta = meta.get("nbgrader")
    if isinstance(nbmeta, dict) and "grade_id" in nbmeta:
        nbmeta["grade_id"] = _SAFE_ID.sub("_", _text(nbmeta["grade_id"]))[:100]
    kind = cell.get("cell_type")
    if kind == "code":
        cell["execution_count"] = _count(cell.get("execution_count"))
        outputs = cell.get("outputs") if isinstance(cell.get("outputs"), list) else []
        cell["outputs"] = [_safe_output(o) for o in outputs]
    elif kind == "markdown" and _text(cell.get("source", "")).strip() not in trusted_markdown:
        cell["source"] = _as_markdown_block(markdown_html(cell.get("source", "")))
        cell.pop("attachments", None)
    elif kind == "raw":
        cell["source"] = sanitize_html(cell.get("source", ""))
    return cell


def _course_markdown(resources) -> frozenset:
    """The markdown cells of this assignment's release and source (the course's text), or none."""
    import nbformat

    info = (resources or {}).get("nbgrader", {})
    db_url, aid = str(info.get("db_url", "")), info.get("assignment")
    if not db_url.startswith("sqlite:///") or not aid:
        return frozenset()
    course = os.path.dirname(db_url[len("sqlite:///"):])
    found = set()
    for folder in ("exercises", "solutions"):
        try:
            nb = nbformat.read(os.path.join(course, folder, aid, f"{aid}.ipynb"), as_version=4)
        except (OSError, ValueError, TypeError):
            continue
        found |= {c.source.strip() for c in nb.cells if c.get("cell_type") == "markdown"}
    return frozenset(found)
