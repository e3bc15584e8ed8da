"""``python -m skinlab.grading release|grade …``: see :mod:`skinlab.grading.commands`."""

import sys

from .commands import main

sys.exit(main())
