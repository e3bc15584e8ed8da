"""Build the nbgrader source notebooks ``solutions/<id>/<id>.ipynb`` from ``solutions/<id>/<id>.py``.

One readable Python source per exercise, in "percent" format. A cell starts with a header line:

    # %% [markdown]                              markdown (each line starts with "# ")
    # %%                                         ordinary code (e.g. a figure)
    # %% answer grade_id=split_by_lesion         autograded answer (### BEGIN/END SOLUTION inside)
    # %% test grade_id=test_split_output points=2   autograded, locked test cell

Then ``python -m skinlab.grading release`` (nbgrader generate_assignment) writes the student
version into ``exercises/``. Usage: ``python solutions/build.py [--check]`` (``--check`` exits 1
if a committed notebook differs from its source).
"""

from __future__ import annotations

import sys
from pathlib import Path

import nbformat

from skinlab.course.exercises import exercise_ids, parse

HERE = Path(__file__).resolve().parent

KERNELSPEC = {"display_name": "Python 3 (ipykernel)", "language": "python", "name": "python3"}
LANGUAGE_INFO = {"name": "python", "pygments_lexer": "ipython3", "file_extension": ".py", "mimetype": "text/x-python"}


def build_notebook(text: str) -> nbformat.NotebookNode:
    nb = nbformat.v4.new_notebook()
    nb.metadata = {"kernelspec": KERNELSPEC, "language_info": LANGUAGE_INFO}
    for i, (kind, options, source) in enumerate(parse(text)):
        cell_id = f"cell-{i:02d}" + (f"-{options['grade_id']}" if "grade_id" in options else "")
        if kind == "markdown":
            cell = nbformat.v4.new_markdown_cell(source)
        else:
            cell = nbformat.v4.new_code_cell(source)
        cell.id = cell_id.replace("_", "-")
        if kind == "answer":
            cell.metadata["nbgrader"] = {
                "grade": False, "grade_id": options["grade_id"], "locked": False,
                "schema_version": 3, "solution": True, "task": False,
            }
        elif kind == "test":
            cell.metadata["nbgrader"] = {
                "grade": True, "grade_id": options["grade_id"], "locked": True,
                "points": int(options["points"]), "schema_version": 3, "solution": False, "task": False,
            }
            cell.metadata["editable"] = False
            cell.metadata["deletable"] = False
        nb.cells.append(cell)
    nbformat.validate(nb)
    return nb


def notebook_text(assignment: str) -> str:
    source = (HERE / assignment / f"{assignment}.py").read_text()
    return nbformat.writes(build_notebook(source)) + "\n"


def main(argv=None) -> int:
    args = sys.argv[1:] if argv is None else argv
    stale = []
    for aid in exercise_ids(HERE.parent):
        target = HERE / aid / f"{aid}.ipynb"
        text = notebook_text(aid)
        if "--check" in args:
            if not target.is_file() or target.read_text() != text:
                stale.append(str(target))
        else:
            target.write_text(text)
            print(target)
    if stale:
        print("out of date (run python solutions/build.py):", *stale, sep="\n  ", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
