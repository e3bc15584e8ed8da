"""Sphinx extension of the skinlab book: execute the chapters side by side before they are read.

The work is :func:`skinlab.course.execute.prefetch` (why and how: its module docstring); this file
only connects it to Sphinx, before MyST-NB reads the first chapter.
"""

from skinlab.course.execute import prefetch


def setup(app):
    app.connect("env-before-read-docs", prefetch)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
