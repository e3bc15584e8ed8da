"""Moved to :mod:`skinlab.data.synthetic`; this name stays so that existing imports keep working.

``import skinlab.synthetic`` gives the very same module object (not a copy), so attributes set on it,
by a test's monkeypatch for instance, are the ones the package uses.
"""

import sys

from skinlab.data import synthetic as _module

sys.modules[__name__] = _module
