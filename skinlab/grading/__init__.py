"""Graded exercises: the checks behind the autograded test cells, and the instructor's commands.

One module per concern (docs/GRADING.md has the whole workflow and the threat model):

* ``ex1_split/`` … ``ex5_gradcam/``: one folder per exercise: its ``Exercise`` (``exercise.py``:
  the answers, the reference they must not run, what the book prints, the grading cost), its
  judges (``judges.py``) and its probes (``probes.py``). A test cell calls a ``check_*`` with the
  student's answer; the check runs it on generated inputs, compares it with the reference in
  ``skinlab`` and raises ``AssertionError`` in the student's words.
* ``guard``: what every in-kernel check does first (the answer must not use the reference; a
  time limit per call). In the student's kernel this is advice, not a verdict.
* ``commands``: ``python -m skinlab.grading release|grade`` (nbgrader, headless).
* ``feedback``: the nbgrader preprocessor that keeps hidden tests out of feedback (imported by
  ``nbgrader_config.py`` only, so student kernels never pay for nbconvert).

``from skinlab.grading import check_…`` keeps working in notebooks already released.
"""

from .guard import (  # noqa: F401
    TIME_LIMIT_S,
    ReferenceUsedError,
    TooSlowError,
    call,
    own_work,
    reset,
)
from .ex1_split import *  # noqa: F401,F403
from .ex1_split import find_lesion_leaks, make_lesion_metadata  # noqa: F401
from .ex2_class_weights import *  # noqa: F401,F403
from .ex3_lenet import *  # noqa: F401,F403
from .ex3_lenet import lenet_parameter_count  # noqa: F401
from .ex4_training import *  # noqa: F401,F403
from .ex5_gradcam import *  # noqa: F401,F403
from .commands import (  # noqa: F401
    default_jobs,
    find_tampering,
    grade,
    grading_batches,
    grading_cost,
    main,
    nbgrader,
    release,
)
