"""The book's page extension (book/_ext/skinlab_pages.py) without building the book: launch
buttons only with a repository URL, figures' alt text from their captions, MathJax found and
copied, the other edition's cells dropped from downloadable notebooks."""

from __future__ import annotations

from pathlib import Path

import pytest
from docutils import nodes
from docutils.utils import new_document
from docutils.frontend import get_default_settings
from docutils.parsers.rst import Parser

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def ext(book_extension):
    return book_extension("skinlab_pages")


THEME = {"launch_buttons": {"binderhub_url": "https://mybinder.org", "colab_url": "https://colab.research.google.com"},
         "repository_url": ""}


def test_launch_buttons_only_with_a_repository(ext):
    without = ext.launch_settings(THEME, None)
    assert "launch_buttons" not in without and "repository_url" not in without
    # Jupyter Book's default repository is not this course's
    assert "launch_buttons" not in ext.launch_settings({**THEME, "repository_url": ext.JUPYTER_BOOK_DEFAULT_URL}, None)
    given = ext.launch_settings(THEME, "https://github.com/example/skinlab")
    assert given["repository_url"] == "https://github.com/example/skinlab"
    assert given["launch_buttons"]["binderhub_url"] == "https://mybinder.org"
    from_config = ext.launch_settings({**THEME, "repository_url": "https://github.com/example/skinlab"}, None)
    assert from_config["launch_buttons"] == THEME["launch_buttons"]
    with pytest.raises(ValueError, match="https"):
        ext.launch_settings(THEME, "github.com/example/skinlab")


def _cell_output(*children):
    out = nodes.container(classes=["cell_output"])
    out.extend(children)
    return out


def test_figures_get_their_caption_as_alt_and_uncaptioned_ones_are_reported(ext):
    doc = new_document("page", get_default_settings(Parser))
    captioned = nodes.image(uri="_images/a.png", alt="_images/a.png")
    figure = nodes.figure("", nodes.container("", nodes.container("", captioned)),
                          nodes.caption("", "", nodes.Text("Bars of the images per class.")))
    own_alt = nodes.image(uri="_images/b.png", alt="A bar chart of counts.")
    figure_b = nodes.figure("", own_alt, nodes.caption("", "", nodes.Text("Counts.")))
    bare = nodes.image(uri="_images/c.png")
    prose = nodes.image(uri="logo.png")  # not a cell output: not ours to check
    doc.extend([_cell_output(figure), _cell_output(figure_b), _cell_output(bare), prose])
    missing = ext.label_figures(doc)
    assert missing == ["_images/c.png"]
    assert captioned["alt"] == "Bars of the images per class."
    assert own_alt["alt"] == "A bar chart of counts."


def test_mathjax_is_found_and_copied(ext, tmp_path):
    es5 = ext.mathjax_source()
    if es5 is None:
        pytest.skip("django-static-mathjax is not installed (pip install -e '.[book]')")
    target = ext.copy_mathjax(es5, tmp_path)
    assert (target / "tex-chtml.js").stat().st_size > 500_000
    assert list((target / "output/chtml/fonts/woff-v2").glob("*.woff"))
    assert not (target / "sre").exists()  # the 4 MB speech engine is left out


def test_downloadable_notebooks_hold_only_their_edition(ext):
    nb = {"cells": [{"metadata": {"tags": ["instructor-only"]}, "source": "secret"},
                    {"metadata": {}, "source": "shared"},
                    {"metadata": {"tags": ["student-only"]}, "source": "box"}]}
    assert ext.strip_other_edition(nb, {"instructor-only"}) == 1
    assert [c["source"] for c in nb["cells"]] == ["shared", "box"]
