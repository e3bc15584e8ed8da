"""The book builds (quick profile, warnings as errors) and its pages are complete and clean.

Builds into the repository's ``_build`` through ``skinlab.bookbuild`` (what ``make book`` runs),
so a local rerun reuses the Jupyter cache. With ``HAM10000_DIR`` set the chapters run on
HAM10000, otherwise on the synthetic sample, and the pages must say which.
"""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import unquote, urlparse

import pytest
import yaml

from skinlab import bookbuild, profile

pytestmark = [pytest.mark.book, pytest.mark.slow]

ROOT = profile.REPO_ROOT
HTML = ROOT / "_build" / "html"
# Chapters without figures by design (text, tables, code).
NO_FIGURES = {"book/01_introduction", "book/06_lenet", "book/13_exercises"}


def toc_files() -> list[str]:
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    files = [toc["root"]]
    for part in toc.get("parts", []):
        files += [c["file"] for c in part["chapters"]]
    files += [c["file"] for c in toc.get("chapters", [])]
    return files


@pytest.fixture(scope="module")
def built() -> Path:
    rc = bookbuild.build(ROOT, profile="quick", strict=True)
    assert rc == 0, "jupyter-book build failed (warnings are errors): see the log above"
    return HTML


def _page(built: Path, name: str) -> str:
    path = built / f"{name}.html"
    assert path.is_file(), f"{path} was not built"
    return path.read_text(encoding="utf-8")


def _images(html: str) -> list[str]:
    return re.findall(r"<img\b[^>]*?\bsrc=\"([^\"]+)\"", html)


def test_toc_lists_thirteen_chapters_in_order():
    files = toc_files()
    assert len(files) == 13
    assert [int(Path(f).name[:2]) for f in files] == list(range(1, 14))
    for f in files:
        text = (ROOT / f"{f}.md").read_text()
        # without the jupytext header and kernelspec the code cells would not be executed
        assert "format_name: myst" in text and "kernelspec:" in text, f


def test_every_chapter_page_is_built(built):
    for name in toc_files():
        html = _page(built, name)
        assert "<h1" in html, f"{name}: no title"
    assert (built / "index.html").is_file()


def test_figures_exist(built):
    for name in toc_files():
        html = _page(built, name)
        page_dir = (built / name).parent
        sources = [s for s in _images(html) if "_static" not in s]  # logos and theme icons
        for src in sources:
            if src.startswith("data:image/"):
                assert len(src) > 200, f"{name}: an empty embedded image"
                continue
            target = (page_dir / unquote(urlparse(src).path)).resolve()
            assert target.is_file() and target.stat().st_size > 1000, f"{name}: missing image {src}"
        if name not in NO_FIGURES:
            assert sources, f"{name}: no figure rendered"


def test_no_error_output(built):
    for name in toc_files():
        html = _page(built, name)
        for marker in ("Traceback (most recent call last)", "output stderr", "output traceback",
                       'class="ansi-red-fg"'):
            assert marker not in html, f"{name}: error output ({marker!r}) in the page"
        assert not re.search(r"\"ename\"|\bename\b:", html), f"{name}: an error output in the page"


def test_synthetic_note_iff_not_on_real_data(built):
    synthetic = profile.data_source(profile.current_profile("quick")).synthetic
    for name in toc_files():
        html = _page(built, name)
        has_note = profile.SYNTHETIC_NOTE_CLASS in html
        assert has_note == synthetic, (
            f"{name}: synthetic-sample note {'missing' if synthetic else 'shown on real data'}")
        if not synthetic:
            assert "skinlab-run-note" in html, f"{name}: no note saying which data and profile it ran on"
        assert "Profile: <b>quick</b>" in html, f"{name}: does not say which profile it ran on"


def test_numbers_are_shown_with_the_baseline(built):
    html = _page(built, "book/09_evaluation")
    assert "majority baseline" in html and "balanced accuracy" in html
    html = _page(built, "book/11_transfer")
    assert "EfficientNet-Lite0" in html and "majority baseline" in html


@pytest.mark.skipif(not bookbuild.browser_available(),
                    reason="chromium/chromedriver missing: python -m skinlab.bookbuild --install-browser")
def test_pages_render_in_a_browser(built):
    pages = ["index.html", "book/01_introduction.html", "book/08_training.html", "book/10_gradcam.html"]
    problems = bookbuild.browser_check(pages, html_dir=built)
    bad = {page: lines for page, lines in problems.items() if lines}
    assert not bad, bad
    for page in pages:
        shot = bookbuild.SCREENSHOT_DIR / (page.replace("/", "_").rsplit(".", 1)[0] + ".png")
        assert shot.is_file() and shot.stat().st_size > 10_000, shot
