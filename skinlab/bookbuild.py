"""``python -m skinlab.bookbuild``: the book build's command as it was published before the build
moved to :mod:`skinlab.course.bookbuild` (the README and Makefile gave it), kept so that it keeps
working. It runs ``skinlab.course.bookbuild.main()`` with the same arguments and exits with its
status.

This is a command, not a module to import: it defines nothing. Code imports
``skinlab.course.bookbuild``.
"""

if __name__ == "__main__":
    import sys

    from skinlab.course import bookbuild as _bookbuild

    sys.exit(_bookbuild.main())
