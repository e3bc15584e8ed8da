"""Sphinx extension of the skinlab book: pages that work offline, legibly, for every reader.

* **Math offline**: MathJax 3 is served with the book (``_static/mathjax/``, copied from the
  ``django-static-mathjax`` package of the ``book`` extra) instead of a CDN, so formulas render
  with no internet. Missing package: a warning (an error in the strict build) naming the fix.
* **Interactive views**: ``_static/skinlab-view.js`` is :data:`skinlab.plots.views.VIEW_JS`, which
  switches the precomputed pictures of a :class:`skinlab.plots.views.View` in the browser.
* **Figures**: every picture of a cell output needs a caption (the cell's
  ``mystnb: figure: caption:``) and gets alt text that says what it shows: the cell's
  ``mystnb: image: alt:``, else the caption's text, never the file path. A figure without either
  is a warning (an error in the strict build). ``skinlab-pages.css``/``.js`` make figures fit the
  page at every width, enlarge them on click, and keep wide outputs from scrolling the page.
* **Launch buttons** (Binder, Colab, JupyterHub): shown when a repository URL is configured
  (``repository: url:`` in ``_config.yml``, or ``$SKINLAB_REPOSITORY_URL``); without one, the
  book builds without them. The notebooks the theme then offers for download hold only the cells
  of the edition being built.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

from docutils import nodes
from sphinx.util import logging

logger = logging.getLogger(__name__)

STATIC = Path(__file__).parent / "static"
REPOSITORY_ENV = "SKINLAB_REPOSITORY_URL"
MATHJAX_PACKAGE = "django-static-mathjax"
MATHJAX_DIR = "mathjax"  # under _static
# What MathJax's tex-chtml component loads: itself, its fonts, TeX extensions it may autoload, and
# the menu. The speech engine (sre, 4 MB) is left out.
MATHJAX_PARTS = ("tex-chtml.js", "output/chtml/fonts/woff-v2", "input/tex/extensions", "ui", "a11y")
# Jupyter Book's default `repository: url:`: not this course's repository
JUPYTER_BOOK_DEFAULT_URL = "https://github.com/executablebooks/jupyter-book"
LAUNCH_KEYS = ("binderhub_url", "jupyterhub_url", "colab_url", "thebe", "jupyterlite_url", "deepnote_url")


# --------------------------------------------------------------------------- MathJax


def mathjax_source() -> Path | None:
    """The ``es5`` folder of MathJax 3 installed by ``django-static-mathjax``, or None."""
    import importlib.util

    spec = importlib.util.find_spec("mathjax")
    for base in (spec.submodule_search_locations or []) if spec else []:
        es5 = Path(base) / "static" / "mathjax" / "es5"
        if (es5 / "tex-chtml.js").is_file():
            return es5
    return None


def copy_mathjax(es5: Path, static_dir: Path) -> Path:
    """Copy what the book needs of MathJax into ``static_dir/mathjax`` (skipped when present)."""
    target = static_dir / MATHJAX_DIR
    for part in MATHJAX_PARTS:
        src, dst = es5 / part, target / part
        if not src.exists():
            raise FileNotFoundError(f"{src} is missing from {MATHJAX_PACKAGE}")
        if src.is_dir():
            shutil.copytree(src, dst, dirs_exist_ok=True)
        elif not dst.is_file() or dst.stat().st_size != src.stat().st_size:
            dst.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dst)
    return target


# --------------------------------------------------------------------------- launch buttons


def launch_settings(theme_options: dict, repository_url: str | None) -> dict:
    """The theme options with launch buttons only when there is a repository to launch from:
    ``repository_url`` (else the theme's own ``repository_url``) set -> kept (and the URL set);
    none -> ``launch_buttons`` removed, so the book builds and shows none."""
    options = dict(theme_options)
    url = (repository_url or options.get("repository_url") or "").strip()
    if url.rstrip("/") == JUPYTER_BOOK_DEFAULT_URL:
        url = ""
    if url:
        if not url.startswith(("https://", "http://")):
            raise ValueError(f"repository URL {url!r}: expected an https:// address of the repository")
        options["repository_url"] = url
    else:
        options.pop("launch_buttons", None)
        options.pop("repository_url", None)
    return options


def strip_other_edition(notebook: dict, drop_tags: set[str]) -> int:
    """Remove from a notebook (nbformat dict) the cells tagged with any of ``drop_tags``."""
    cells = notebook.get("cells", [])
    kept = [c for c in cells if not drop_tags & set(c.get("metadata", {}).get("tags", []))]
    notebook["cells"] = kept
    return len(cells) - len(kept)


# --------------------------------------------------------------------------- figures


def _in_cell_output(node) -> bool:
    parent = node.parent
    while parent is not None:
        if "cell_output" in parent.get("classes", []):
            return True
        parent = parent.parent
    return False


def _caption_text(image) -> str:
    """The caption of the figure around ``image`` (myst-nb nests the picture in containers)."""
    figure = image.parent
    while figure is not None and not isinstance(figure, nodes.figure):
        figure = figure.parent
    if figure is not None:
        for child in figure.children:
            if isinstance(child, nodes.caption):
                return child.astext().strip()
    return ""


def label_figures(doctree) -> list[str]:
    """Give every picture of a cell output alt text (its own, else its caption's); return the
    URIs of those with neither a caption nor alt text."""
    missing = []
    for image in list(doctree.findall(nodes.image)):
        if not _in_cell_output(image):
            continue
        alt = (image.get("alt") or "").strip()
        caption = _caption_text(image)
        if not caption:
            missing.append(image.get("uri", "?"))
        elif not alt or alt == image.get("uri"):
            image["alt"] = caption
    return missing


# --------------------------------------------------------------------------- Sphinx events


def _config_inited(app, config):
    url = os.environ.get(REPOSITORY_ENV) or None
    config.html_theme_options = launch_settings(config.html_theme_options or {}, url)
    es5 = mathjax_source()
    app.env_mathjax = es5  # remembered for build-finished
    if es5 is None:
        logger.warning(f"MathJax 3 is not installed: formulas would need a CDN. Install the book's "
                       f"extra (pip install -e '.[book]', which holds {MATHJAX_PACKAGE}).")
    else:
        config.mathjax_path = f"{MATHJAX_DIR}/tex-chtml.js"


def _builder_inited(app):
    if app.builder.format != "html":
        return
    app.config.html_static_path = list(app.config.html_static_path) + [str(STATIC)]
    app.add_css_file("skinlab-pages.css")
    app.add_js_file("skinlab-pages.js")
    app.add_js_file("skinlab-view.js")


def _doctree_resolved(app, doctree, docname):
    for uri in label_figures(doctree):
        logger.warning(f"{docname}: a figure ({Path(uri).name}) has no caption: give its cell "
                       "`mystnb: figure: caption:` (and `image: alt:` when the caption does not "
                       "say what it shows)", location=docname)


def _build_finished(app, exception):
    if exception is not None or app.builder.format != "html":
        return
    static = Path(app.outdir) / "_static"
    from skinlab.plots.views import VIEW_JS

    (static / "skinlab-view.js").write_text(VIEW_JS.lstrip(), encoding="utf-8")
    # Sphinx copies static files only when some page is written: an edit of the CSS or JS alone
    # ("no targets are out of date") would not reach the book without this
    for src in STATIC.iterdir():
        dst = static / src.name
        if src.is_file() and (not dst.is_file() or dst.read_bytes() != src.read_bytes()):
            shutil.copy2(src, dst)
    es5 = getattr(app, "env_mathjax", None)
    if es5 is not None:
        copy_mathjax(es5, static)
    edition = getattr(app.config, "skinlab_edition", "student")
    drop = {tag for tag, owner in {"instructor-only": "instructor", "student-only": "student"}.items()
            if owner != edition}
    for path in (Path(app.outdir) / "_sources").rglob("*.ipynb"):
        notebook = json.loads(path.read_text(encoding="utf-8"))
        if strip_other_edition(notebook, drop):
            path.write_text(json.dumps(notebook, indent=1), encoding="utf-8")


def setup(app):
    app.connect("config-inited", _config_inited, priority=900)  # after Jupyter Book's own
    app.connect("builder-inited", _builder_inited)
    app.connect("doctree-resolved", _doctree_resolved)
    app.connect("build-finished", _build_finished)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
