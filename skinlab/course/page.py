"""The top of every chapter's page: how it shows its results, and what it ran on.

Every chapter starts with one hidden cell::

    from skinlab.course import page
    page.setup()   # figures and tables shown the book's way
    page.banner()  # the note naming the data (a warning on the synthetic sample) and the profile
"""

from __future__ import annotations

import html

from skinlab.course.profile import Profile, current_profile, data_source
from skinlab.data.layout import ENV_VAR

SYNTHETIC_NOTE_CLASS = "skinlab-synthetic-note"


def setup() -> None:
    """Set how this page shows figures and tables (in a Jupyter kernel; elsewhere only tables):

    * figures of photographs as JPEG, every other figure as PNG (:func:`skinlab.plots.book_display`),
      so that no picture of the book weighs more than a few hundred kB;
    * pandas tables with whole cells: pandas cuts them at 50 characters ("...the whole book ru..."),
      and a learner must see the whole text.
    """
    import pandas as pd

    from skinlab.plots import book_display

    pd.set_option("display.max_colwidth", None)
    book_display()


# --------------------------------------------------------------------------- the banner


def banner_html(profile: Profile | None = None, source=None) -> str:
    """HTML admonition naming the profile and data; a warning when on the synthetic sample."""
    profile = profile or current_profile()
    source = source or data_source(profile)
    if source.synthetic:
        return (
            f'<div class="admonition warning {SYNTHETIC_NOTE_CLASS}">'
            '<p class="admonition-title">Synthetic sample, not HAM10000</p>'
            "<p>This page was executed on the <b>embedded synthetic sample</b> (generated images "
            f"in the HAM10000 layout), because <code>{ENV_VAR}</code> was not set. Its figures "
            "and numbers illustrate the method only: they say nothing about skin lesions. "
            f"Set <code>{ENV_VAR}</code> to the real dataset and rebuild to see real results.</p>"
            f"<p>Profile: <b>{html.escape(profile.name)}</b> ({html.escape(profile.description)}).</p>"
            "</div>"
        )
    return (
        '<div class="admonition note skinlab-run-note">'
        '<p class="admonition-title">What this page ran on</p>'
        # the folder is named by its variable, never by its path: a machine path means nothing to
        # a reader and tells where the builder keeps its files
        f"<p>Data: <b>HAM10000</b>, the folder named by <code>{ENV_VAR}</code>. "
        f"Profile: <b>{html.escape(profile.name)}</b> ({html.escape(profile.description)}).</p>"
        "</div>"
    )


class _Banner:
    """Shows as an admonition in Jupyter and in the built book, as plain text elsewhere."""

    def __init__(self, profile, source):
        self.profile, self.source = profile, source

    def _repr_html_(self) -> str:
        return banner_html(self.profile, self.source)

    def _ipython_display_(self):
        from IPython.display import display

        display({"text/html": self._repr_html_(), "text/plain": repr(self)}, raw=True)

    def __repr__(self) -> str:
        what = "synthetic sample (NOT HAM10000)" if self.source.synthetic else f"HAM10000 (${ENV_VAR})"
        return f"data: {what}; profile: {self.profile.name}"


def banner(profile: Profile | None = None, source=None) -> _Banner:
    """The "what this page ran on" note every chapter displays first (after :func:`setup`)."""
    profile = profile or current_profile()
    return _Banner(profile, source or data_source(profile))
