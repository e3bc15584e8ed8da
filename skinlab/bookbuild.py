"""``skinlab.bookbuild`` is :mod:`skinlab.course.bookbuild`; ``python -m skinlab.bookbuild``
(what ``make book`` runs) builds the book of the course in the current folder."""

import sys

from skinlab.course import bookbuild as _bookbuild

if __name__ == "__main__":
    sys.exit(_bookbuild.main())
sys.modules[__name__] = _bookbuild
