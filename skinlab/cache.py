"""Moved to :mod:`skinlab.data.cache`; this name stays so that existing imports keep working.

``import skinlab.cache`` gives the very same module object (not a copy), so attributes set on it,
by a test's monkeypatch for instance, are the ones the package uses.
"""

import sys

from skinlab.data import cache as _module

sys.modules[__name__] = _module
