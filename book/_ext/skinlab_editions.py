"""Sphinx extension of the skinlab book: the students' edition and the instructors' edition.

Both editions execute the same notebooks (one shared Jupyter cache); what each shows is decided
here, after execution, from the Sphinx config value ``skinlab_edition``: ``"student"`` (the
default) or ``"instructor"`` (set by ``python -m skinlab.course.bookbuild --edition instructor``).

* A code cell tagged ``instructor-only`` (the listing of a graded reference definition) is
  removed, input and output, from the students' edition; one tagged ``student-only`` from the
  instructors' edition. The nodes are removed before the page is written and indexed, so the
  content is absent from the HTML and from ``searchindex.js``, not hidden by CSS.
* Prose can use Sphinx's ``only`` directive: the tag ``student`` or ``instructor`` is set.
* ``exercise-box`` directive: the box of a graded exercise, written from its student notebook
  ``exercises/<id>/<id>.ipynb`` (generated from ``solutions/<id>/<id>.py``), so the task, the
  signature and what the tests check are written once, in the exercise::

      ```{exercise-box} ex1_split
      :reference: skinlab.split.split_by_lesion
      ```
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path

from docutils import nodes
from docutils.parsers.rst import directives
from docutils.statemachine import StringList
from sphinx.util import logging
from sphinx.util.docutils import SphinxDirective

EDITIONS = ("student", "instructor")
DEFAULT_EDITION = "student"
# tag of a code cell -> the edition it belongs to (myst-nb gives the cell the class "tag_<tag>")
CELL_TAGS = {"instructor-only": "instructor", "student-only": "student"}
BOX_CLASS = "skinlab-exercise"
EXERCISES_DIR = "exercises"

logger = logging.getLogger(__name__)


# --------------------------------------------------------------------------- the exercise facts


@dataclass
class Exercise:
    """What the book says about a graded exercise, read from its student notebook."""

    id: str
    notebook: Path
    title: str
    task: str  # markdown of the notebook's "Your task" cell, without its heading
    skeletons: list[str] = field(default_factory=list)  # answer cells, "..." for the code to write
    tests: list[tuple[float, str]] = field(default_factory=list)  # (points, what is checked)

    @property
    def points(self) -> float:
        return sum(p for p, _ in self.tests)


_TODO = re.compile(r"^([ \t]*)# YOUR CODE HERE\n[ \t]*raise NotImplementedError\(\)[ \t]*$", re.M)


def _skeleton(source: str) -> str:
    """An answer cell as the student gets it, imports dropped, the code to write shown as ``...``."""
    code = _TODO.sub(lambda m: f"{m.group(1)}...", source)
    lines = code.splitlines()
    while lines and (not lines[0].strip() or lines[0].startswith(("import ", "from "))):
        lines.pop(0)
    return "\n".join(lines).rstrip()


def _what_is_checked(source: str, grade_id: str) -> str:
    """A test cell's first comment ("# 2 points: no lesion in two splits.") without the points."""
    first = source.lstrip().splitlines()[0] if source.strip() else ""
    if not first.startswith("#"):
        return grade_id
    what = re.sub(r"^#\s*(\d+(\.\d+)?\s+points?\s*:\s*)?", "", first).strip()
    # short quoted strings are values ("train"): code, not prose for smart quotes
    return re.sub(r'(?<!`)("[^"\s]{1,30}")(?!`)', r"`\1`", what)


def read_exercise(root: Path, exercise_id: str) -> Exercise:
    """The facts of ``exercises/<id>/<id>.ipynb`` (the release: it holds no answer and no hidden
    test, so nothing read here can leak one)."""
    path = Path(root) / EXERCISES_DIR / exercise_id / f"{exercise_id}.ipynb"
    if not path.is_file():
        raise FileNotFoundError(f"{path} does not exist: run `make release`")
    cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
    title, task, skeletons, tests = None, None, [], []
    for cell in cells:
        source = "".join(cell["source"]) if isinstance(cell["source"], list) else cell["source"]
        meta = cell.get("metadata", {}).get("nbgrader", {})
        if cell["cell_type"] == "markdown":
            first, _, rest = source.partition("\n")
            if title is None and first.startswith("# "):
                title = first[2:].strip()
            elif task is None and re.match(r"^##\s+Your task\b", first):
                task = rest.strip()
        elif cell["cell_type"] == "code" and meta.get("solution"):
            skeletons.append(_skeleton(source))
        elif cell["cell_type"] == "code" and meta.get("grade"):
            what = _what_is_checked(source, meta.get("grade_id", "?"))
            tests.append((float(meta.get("points", 0) or 0), what))
    missing = [name for name, value in (("a '# ' title", title), ("a '## Your task' cell", task),
                                        ("an answer cell", skeletons), ("a test cell", tests)) if not value]
    if missing:
        raise ValueError(f"{path}: no {', no '.join(missing)}")
    return Exercise(exercise_id, path, title, task, skeletons, tests)


def _points(p: float) -> str:
    n = int(p) if float(p).is_integer() else p
    return f"{n} point{'' if n == 1 else 's'}"


def _demote_headings(markdown: str) -> str:
    # a heading cannot sit inside an admonition: make it a bold line
    return re.sub(r"^#{1,6}\s+(.*)$", r"**\1**", markdown, flags=re.M)


# --------------------------------------------------------------------------- the directive


class ExerciseBox(SphinxDirective):
    """``exercise-box <id>``: what to write, the signature, what the tests check, the notebook."""

    required_arguments = 1
    has_content = False
    option_spec = {"reference": directives.unchanged}

    def run(self):
        exercise_id = self.arguments[0].strip()
        try:
            ex = read_exercise(Path(self.env.srcdir), exercise_id)
        except (OSError, ValueError, KeyError) as err:
            logger.warning(f"exercise-box {exercise_id}: {err}", location=self.get_location())
            return []
        self.env.note_dependency(str(ex.notebook))
        edition = self.config.skinlab_edition
        rel = ex.notebook.relative_to(Path(self.env.srcdir)).as_posix()

        box = nodes.admonition("", classes=[BOX_CLASS, "tip"], ids=[f"exercise-{exercise_id}"])
        title_nodes, _ = self.state.inline_text(f"Graded {ex.title[0].lower()}{ex.title[1:]}", self.lineno)
        box += nodes.title("", "", *title_nodes)

        def markdown(text: str) -> None:
            self.state.nested_parse(StringList(text.splitlines(), source=str(ex.notebook)),
                                    self.content_offset, box)

        markdown(_demote_headings(ex.task))
        markdown("**The cell to complete** (in the notebook):" if len(ex.skeletons) == 1
                 else "**The cells to complete** (in the notebook):")
        for code in ex.skeletons:
            block = nodes.literal_block(code, code, language="python")
            box += block
        markdown(f"**What the tests check** ({_points(ex.points)}; each test cell scores all its "
                 "points or none, and hidden tests run the same checks on other inputs):\n\n"
                 + "\n".join(f"* {_points(p)}: {what}" for p, what in ex.tests))
        reference = self.options.get("reference", "").strip()
        if reference:
            names = " and ".join(f"`{name.strip()}`" for name in reference.split(","))
            shown = ("it is listed below (instructors' edition)." if edition == "instructor" else
                     "this chapter runs it without showing it (the instructors' edition of the book "
                     "lists it).")
            ref_text = f" The reference solution is {names}: {shown}"
        else:
            ref_text = ""
        markdown(f"**The notebook:** {{download}}`{ex.notebook.name} </{rel}>` (`{rel}` in the "
                 "repository); {doc}`/book/13_exercises` explains how to do, check and hand it in."
                 + ref_text)
        return [box]


# --------------------------------------------------------------------------- the editions


def _config_inited(app, config):
    edition = (config.skinlab_edition or DEFAULT_EDITION).strip().lower()
    if edition not in EDITIONS:
        raise ValueError(f"skinlab_edition={config.skinlab_edition!r}: expected one of {', '.join(EDITIONS)}")
    config.skinlab_edition = edition
    for other in EDITIONS:  # for the `only` directive
        if app.tags.has(other) and other != edition:
            app.tags.remove(other)
    app.tags.add(edition)


def other_edition_classes(edition: str) -> set[str]:
    return {f"tag_{tag}" for tag, owner in CELL_TAGS.items() if owner != edition}


def remove_other_edition(doctree, edition: str) -> int:
    """Remove the cells of the other edition from ``doctree``; returns how many."""
    drop = other_edition_classes(edition)
    found = [n for n in doctree.findall(nodes.Element) if drop & set(n.get("classes", []))]
    for node in found:
        if node.parent is not None:
            node.parent.remove(node)
    return len(found)


def _doctree_resolved(app, doctree, docname):
    # runs before the page is written and before it is added to the search index
    remove_other_edition(doctree, app.config.skinlab_edition)


def setup(app):
    app.add_config_value("skinlab_edition", DEFAULT_EDITION, "env", [str])
    app.connect("config-inited", _config_inited)
    app.connect("doctree-resolved", _doctree_resolved)
    app.add_directive("exercise-box", ExerciseBox)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
