"""nbgrader configuration of the skinlab course (nbgrader 0.9.6, run headless).

The course directory is the folder of this file: sources in solutions/<id>/, the student release
in exercises/<id>/ (committed), everything nbgrader writes (gradebook.db, submitted/,
autograded/, feedback/) here too and gitignored. See docs/GRADING.md.
"""

import os
import sys

c = get_config()  # noqa: F821 (provided by traitlets when nbgrader loads this file)

_here = os.path.dirname(os.path.abspath(__file__))

# nbgrader runs `alembic` as a program and starts kernels with `python`: both must be the ones
# of the environment nbgrader runs in, so its bin/ goes first on PATH.
_bin = os.path.dirname(sys.executable)
if os.environ.get("PATH", "").split(os.pathsep)[0] != _bin:
    os.environ["PATH"] = _bin + os.pathsep + os.environ.get("PATH", "")

c.CourseDirectory.root = _here
c.CourseDirectory.course_id = "skinlab"
c.CourseDirectory.source_directory = "solutions"
c.CourseDirectory.release_directory = "exercises"
c.CourseDirectory.db_url = "sqlite:///" + os.path.join(_here, "gradebook.db")
# Only the notebook is released: not build scripts or caches next to it.
c.CourseDirectory.ignore = [".ipynb_checkpoints", "*.pyc", "__pycache__", "feedback", "*.py"]

# Grade in the python3 kernel of this environment; a cell that runs longer than this fails
# (scores 0) and the notebook goes on. The checks stop a student's call after 10 s themselves.
c.Execute.kernel_name = "python3"
c.Execute.timeout = 60
c.Execute.interrupt_on_timeout = True

# A deleted test cell is put back (and run) instead of leaving the notebook ungradable.
c.OverwriteCells.add_missing_cells = True

# A flood of output is cut after the grades are saved (skinlab/grading/outputs.py). Assigned, not
# appended: nbgrader loads this file twice (from the cwd and the course root).
from nbgrader.converters import Autograde  # noqa: E402

from skinlab.grading.outputs import LimitOutputBytes  # noqa: E402

c.Autograde.autograde_preprocessors = [*Autograde.class_traits()["autograde_preprocessors"].default(), LimitOutputBytes]

# `nbgrader export` by hand writes grades/nbgrader_export.csv, not ./grades.csv (`--to FILE`
# overrides); `python -m skinlab.grading grade` writes grades/grades.csv with more columns.
os.makedirs(os.path.join(_here, "grades"), exist_ok=True)
c.ExportPlugin.to = os.path.join(_here, "grades", "nbgrader_export.csv")

# Feedback without hidden tests: their source and their traceback lines are removed, and each
# test cell shows the verifier's verdict (skinlab/grading/verdicts.py) when the batch was verified.
# The same preprocessor sanitises every output and student-written cell (nh3): the page is safe to
# open. It runs in nbgrader's own process, never in a student's kernel.
from nbconvert.preprocessors import CSSHTMLHeaderPreprocessor  # noqa: E402
from nbgrader.preprocessors import GetGrades  # noqa: E402

from skinlab.grading.feedback import HideHiddenTests  # noqa: E402

c.GenerateFeedback.preprocessors = [GetGrades, HideHiddenTests, CSSHTMLHeaderPreprocessor]
