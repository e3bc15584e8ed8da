"""``skinlab.profile`` is :mod:`skinlab.course.profile` (the chapters import it by this name)."""

import sys

from skinlab.course import profile as _profile

sys.modules[__name__] = _profile
