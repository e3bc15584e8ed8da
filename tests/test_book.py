"""The book builds (quick profile, warnings as errors) and its pages are complete and clean.

Builds into the repository's ``_build`` through ``skinlab.course.bookbuild`` (what ``make book`` runs),
so a local rerun reuses the Jupyter cache. With ``HAM10000_DIR`` set the chapters run on
HAM10000, otherwise on the synthetic sample, and the pages must say which.

Both editions are built once per session: the students' (the default, ``built``), then the
instructors' (``built_instructor``, from the same execution cache). The students' edition must
show the exercise box of each graded definition and nowhere contain its reference source (pages,
``_sources``, downloads, search index); the instructors' edition must list it.
"""

from __future__ import annotations

import ast
import html as html_lib
import importlib
import inspect
import json
import re
import shutil
import sys
import textwrap
from pathlib import Path
from urllib.parse import unquote, urlparse

import pytest
import yaml

from skinlab.course import audit, bookbuild, browser, profile
from skinlab.course.page import SYNTHETIC_NOTE_CLASS

pytestmark = [pytest.mark.book, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[1]  # the course: this repository
HTML = ROOT / "_build" / "html"
# Chapters without figures by design (text, tables, code).
NO_FIGURES = {"book/13_exercises"}
# Chapters with an interactive view (skinlab.plots.views), switched in the browser
VIEWS = {"book/05_images": 1, "book/10_gradcam": 1}


def toc_files() -> list[str]:
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    files = [toc["root"]]
    for part in toc.get("parts", []):
        files += [c["file"] for c in part["chapters"]]
    files += [c["file"] for c in toc.get("chapters", [])]
    return files


@pytest.fixture(scope="module")
def built() -> Path:
    """The students' edition (the default one)."""
    rc = bookbuild.build(ROOT, profile="quick", strict=True, edition="student")
    assert rc == 0, "jupyter-book build failed (warnings are errors): see the log above"
    return HTML


@pytest.fixture(scope="module")
def built_instructor(built) -> Path:
    """The instructors' edition, built after the students' one: it re-executes nothing."""
    rc = bookbuild.build(ROOT, profile="quick", strict=True, edition="instructor")
    assert rc == 0, "the instructors' edition failed to build: see the log above"
    return bookbuild.html_dir(ROOT, "instructor")


def _page(built: Path, name: str) -> str:
    path = built / f"{name}.html"
    assert path.is_file(), f"{path} was not built"
    return path.read_text(encoding="utf-8")


def _images(html: str) -> list[str]:
    return re.findall(r"<img\b[^>]*?\bsrc=\"([^\"]+)\"", html)


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
        has_note = SYNTHETIC_NOTE_CLASS in html
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


@pytest.mark.skipif(not browser.browser_available(),
                    reason="chromium/chromedriver missing: python -m skinlab.course.bookbuild --install-browser")
def test_pages_render_in_a_browser(built):
    pages = ["index.html", "book/01_introduction.html", "book/08_training.html", "book/10_gradcam.html"]
    problems = browser.browser_check(pages, html_dir=built)
    bad = {page: lines for page, lines in problems.items() if lines}
    assert not bad, bad
    for page in pages:
        shot = browser.screenshot_dir(built) / (page.replace("/", "_").rsplit(".", 1)[0] + ".png")
        assert shot.is_file() and shot.stat().st_size > 10_000, shot


# --------------------------------------------------------------------------- pages for every reader


def _all_pages() -> list[str]:
    return ["index.html"] + [f"{name}.html" for name in toc_files()]


def test_pages_have_alt_text_light_images_and_no_machine_paths(built):
    problems = audit.static_audit(built, _all_pages())
    bad = {page: lines for page, lines in problems.items() if lines}
    assert not bad, bad
    # every figure of a cell output is a captioned figure whose alt text is its caption
    for name in toc_files():
        html = _page(built, name)
        for fig in re.findall(r'(?s)<figure class="align-default"[^>]*>.*?</figure>', html):
            alt = html_lib.unescape(re.search(r'alt="([^"]*)"', fig)[1])
            caption = _text(re.search(r"(?s)<figcaption>.*?</figcaption>", fig)[0])
            caption = re.sub(r"^\s*Fig\.\s*\d+\s*", "", caption).strip()  # the figure's number
            assert alt and alt.split()[:6] == caption.split()[:6], (name, alt, caption)
        if name not in NO_FIGURES:
            assert "<figcaption>" in html, f"{name}: no captioned figure"


def test_math_is_served_with_the_book(built):
    pages = [_page(built, name) for name in toc_files()]
    with_math = [p for p in pages if 'class="math' in p]
    assert len(with_math) >= 3
    for page in with_math:
        srcs = re.findall(r'<script[^>]*src="([^"]*tex-chtml\.js[^"]*)"', page)
        assert srcs and not srcs[0].startswith(("http", "//")), srcs
    assert (built / "_static" / "mathjax" / "tex-chtml.js").stat().st_size > 500_000
    assert list((built / "_static" / "mathjax" / "output" / "chtml" / "fonts" / "woff-v2").glob("*.woff"))


def test_views_hold_every_picture_and_no_widget_needs_a_kernel(built):
    for name in toc_files():
        html = _page(built, name)
        assert html.count("data-skinlab-view=") == VIEWS.get(name, 0), name
        assert "application/vnd.jupyter.widget-view+json" not in html, f"{name}: an ipywidgets view"
    html = _page(built, "book/10_gradcam")
    keys = re.findall(r'data-key="([^"]+)"', html)
    assert len({k.split("|")[1] for k in keys}) == 7 and {k.split("|")[2] for k in keys} >= {"jet", "cividis"}
    assert (built / "_static" / "skinlab-view.js").is_file()


def test_no_launch_buttons_without_a_repository(built):
    config = yaml.safe_load((ROOT / "_config.yml").read_text())
    assert config["launch_buttons"]["binderhub_url"] and config["launch_buttons"]["colab_url"]
    if not config.get("repository", {}).get("url") and not __import__("os").environ.get("SKINLAB_REPOSITORY_URL"):
        for name in toc_files():
            assert "mybinder.org" not in _page(built, name) and "colab.research" not in _page(built, name)


def test_launch_buttons_with_a_repository(built, tmp_path):
    """With a repository URL (here $SKINLAB_REPOSITORY_URL) every chapter gets Binder and Colab
    buttons for its notebook, and the notebooks offered for download hold no instructor-only cell.
    Built from the execution cache into a separate folder (re-executes nothing)."""
    import os
    import subprocess

    spec = json.dumps({"root": str(ROOT), "html": str(tmp_path / "html"), "doctrees": str(tmp_path / "doctrees"),
                       "cache": str(ROOT / "_build" / ".jupyter_cache"), "edition": "student",
                       "strict": True, "fresh": True})
    env = {**os.environ, "SKINLAB_REPOSITORY_URL": "https://github.com/example/skinlab",
           "SKINLAB_PROFILE": "quick", "SKINLAB_BOOK_BUILD": "1"}
    rc = subprocess.call([sys.executable, "-c", "import sys; from skinlab.course.bookbuild import _sphinx_build; "
                          "sys.exit(_sphinx_build(sys.argv[1]))", spec], cwd=ROOT, env=env)
    assert rc == 0
    html_dir = tmp_path / "html"
    for name in toc_files():
        page = (html_dir / f"{name}.html").read_text(encoding="utf-8")
        assert f"https://mybinder.org/v2/gh/example/skinlab/main?urlpath=lab/tree/{name}.md" in page, name
        assert f"https://colab.research.google.com/github/example/skinlab/blob/main/{name}.md" in page, name
    lines = {d: characteristic_lines(d) for _, defs, _ in GRADED.values() for d in defs}
    notebooks = list((html_dir / "_sources").rglob("*.ipynb"))
    assert len(notebooks) == len(toc_files())
    for nb in notebooks:
        text = nb.read_text(encoding="utf-8")
        assert "instructor-only" not in text, nb.name
        for dotted, code_lines in lines.items():
            assert not [line for line in code_lines if line in text], f"{nb.name} shows {dotted}"


@pytest.mark.skipif(not browser.browser_available(),
                    reason="chromium/chromedriver missing: python -m skinlab.course.bookbuild --install-browser")
@pytest.mark.parametrize("device", ["desktop", "phone"])
def test_pages_work_offline_at_desktop_and_phone_width(built, device):
    """Network off: formulas typeset, every view changes its picture on each control, a figure
    enlarges on click, nothing scrolls sideways, no output line is cut off."""
    width, height = audit.DESKTOP if device == "desktop" else audit.PHONE
    results = audit.page_audit(_all_pages(), built, width, height, offline=True, mobile=device == "phone")
    bad = {page: r["problems"] for page, r in results.items() if r["problems"]}
    assert not bad, bad
    for name, n in VIEWS.items():
        assert results[f"{name}.html"]["views"] == n, f"{name}: the view was not found in the browser"
    assert sum(r["math"] for r in results.values()) >= 20  # the formulas were there to check


# --------------------------------------------------------------------------- the two editions

# chapter -> (its graded exercise, the reference definitions it uses, those it lists for instructors)
GRADED = {
    "book/03_splitting": ("ex1_split", ["split.split_by_lesion"], ["split.split_by_lesion"]),
    "book/04_imbalance": ("ex2_class_weights", ["balance.median_frequency_weights"],
                          ["balance.median_frequency_weights"]),
    "book/06_lenet": ("ex3_lenet", ["models.LeNet"], ["models.LeNet"]),
    "book/08_training": ("ex4_training", ["engine.train_one_epoch", "engine.evaluate"],
                         ["engine.train_one_epoch"]),
    "book/10_gradcam": ("ex5_gradcam", ["gradcam.grad_cam"], ["gradcam.grad_cam"]),
}


def _definition(dotted: str):
    module, name = dotted.rsplit(".", 1)
    return getattr(importlib.import_module(f"skinlab.{module}"), name)


def _book_sources() -> str:
    return "\n".join(p.read_text(encoding="utf-8") for p in sorted((ROOT / "book").glob("*.md")))


def characteristic_lines(dotted: str) -> list[str]:
    """Lines of the reference's body, read from skinlab now: code only (no signature, docstring,
    comment), long enough to be its own, and not written in a chapter's own code."""
    source = textwrap.dedent(inspect.getsource(_definition(dotted)))
    lines = source.splitlines()
    skip = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            skip.update(range(node.lineno, node.body[0].lineno))  # decorators handled below
            first = node.body[0]
            if isinstance(first, ast.Expr) and isinstance(getattr(first, "value", None), ast.Constant) \
                    and isinstance(first.value.value, str):
                skip.update(range(first.lineno, first.end_lineno + 1))
    chapters = _book_sources()
    found = []
    for i, line in enumerate(lines, start=1):
        code = line.strip()
        if i in skip or not code or code.startswith(("#", "@")) or len(code) < 20 or code in chapters:
            continue
        found.append(code)
    assert len(found) >= 2, f"{dotted}: too few characteristic lines to check ({found})"
    return found


_PLAIN_QUOTES = str.maketrans({"\u2018": "'", "\u2019": "'", "\u201c": '"', "\u201d": '"'})


def _text(page: str) -> str:
    """What a reader sees of an HTML page (tags stripped, entities decoded)."""
    return html_lib.unescape(re.sub(r"<[^>]+>", "", page))


def _search_index(html_dir: Path) -> dict:
    raw = (html_dir / "searchindex.js").read_text(encoding="utf-8")
    return json.loads(raw[raw.index("(") + 1: raw.rindex(")")])


def _doc_terms(index: dict, docname: str) -> set[str]:
    doc = index["docnames"].index(docname)
    terms = set()
    for key in ("terms", "titleterms"):
        for term, docs in index[key].items():
            if doc == docs or (isinstance(docs, list) and doc in docs):
                terms.add(term)
    return terms


def _index_forms(text: str) -> set[str]:
    """The search-index terms Sphinx would make of ``text`` (its English splitter and stemmer)."""
    from sphinx.search.en import SearchEnglish

    lang = SearchEnglish({})
    forms = set()
    for word in lang.split(text):
        forms.add(lang.stem(word).lower())
        forms.add(word.lower())
    return forms


def test_students_edition_shows_each_exercise_box(built, book_extension):
    ext = book_extension("skinlab_editions")
    for chapter, (exercise, _, _) in GRADED.items():
        page = _page(built, chapter)
        assert page.count(f'id="exercise-{exercise}"') == 1, f"{chapter}: no exercise box for {exercise}"
        box = page[page.index(f'id="exercise-{exercise}"'):]
        box = re.split(r'<div class="cell[ "]|<section', box)[0]
        text = _text(box).translate(_PLAIN_QUOTES)
        facts = ext.read_exercise(ROOT, exercise)
        assert facts.title.lower() in text.lower(), f"{chapter}: the box does not name the exercise"
        for skeleton in facts.skeletons:  # the signature(s) to write
            assert skeleton.splitlines()[0] in text, f"{chapter}: signature missing from the box"
        for _, what in facts.tests:  # what the tests check
            assert what.replace("`", "") in text, f"{chapter}: the box does not say what is checked ({what})"
        # the link to the notebook: the student release, downloadable from the built book
        links = re.findall(r'href="([^"]*/' + re.escape(exercise) + r'\.ipynb)"', box)
        assert links, f"{chapter}: no link to {exercise}.ipynb in the box"
        target = (built / chapter).parent / unquote(links[0])
        assert target.is_file(), f"{chapter}: the notebook link {links[0]} is broken"
        assert target.read_bytes() == (ROOT / "exercises" / exercise / f"{exercise}.ipynb").read_bytes()
        assert "NotImplementedError" in target.read_text(), "the link must hand out the student version"
    assert "students\u2019 edition" in _text(_page(built, "book/01_introduction"))


def test_students_edition_never_contains_the_reference(built):
    lines = {d: characteristic_lines(d) for _, defs, _ in GRADED.values() for d in defs}
    files = [p for p in built.rglob("*") if p.is_file()
             and p.suffix in {".html", ".js", ".txt", ".md", ".ipynb", ".json", ".py"}]
    assert any(p.parts[-3:-1] == ("_sources", "book") for p in files), "no _sources to check"
    for path in files:
        content = path.read_text(encoding="utf-8", errors="replace")
        if path.suffix == ".html":
            content = _text(content)
        for dotted, code_lines in lines.items():
            leaked = [line for line in code_lines if line in content]
            assert not leaked, f"{path.relative_to(built)} shows the reference {dotted}: {leaked[:2]}"
    # nor its words in the search index, beyond those the page shows anyway
    index = _search_index(built)
    for chapter, (_, defs, _) in GRADED.items():
        shown = _index_forms(_text(_page(built, chapter)))
        hidden = set().union(*(_index_forms("\n".join(lines[d])) for d in defs)) - shown
        indexed = _doc_terms(index, chapter) & hidden
        assert not indexed, \
            f"{chapter}: the search index holds words of the reference listing: {sorted(indexed)[:8]}"


def test_instructors_edition_lists_the_reference(built, built_instructor):
    student_index, index = _search_index(built), _search_index(built_instructor)
    for chapter, (exercise, _, listed) in GRADED.items():
        page = _page(built_instructor, chapter)
        text = _text(page)
        assert f'id="exercise-{exercise}"' in page, f"{chapter}: the instructors' edition lost the box"
        for dotted in listed:
            missing = [line for line in characteristic_lines(dotted) if line not in text]
            assert not missing, f"{chapter}: the instructors' edition does not list {dotted}: {missing[:2]}"
            words = _index_forms("\n".join(characteristic_lines(dotted)))
            gained = (_doc_terms(index, chapter) - _doc_terms(student_index, chapter)) & words
            assert gained, f"{chapter}: the listing of {dotted} is not in the instructors' search index"
        for marker in ("Traceback (most recent call last)", "output stderr", "output traceback"):
            assert marker not in page, f"{chapter}: error output in the instructors' edition"
    assert "instructors\u2019 edition" in _text(_page(built_instructor, "book/01_introduction"))
    # same pages in both editions
    assert sorted(p.relative_to(built_instructor).as_posix() for p in built_instructor.rglob("book/*.html")) \
        == sorted(p.relative_to(built).as_posix() for p in built.rglob("book/*.html"))


# --------------------------------------------------------------------------- the course's learning design
# (what the chapter sources must hold, read without a build, is tests/test_book_sources.py)

def _chapter_source(name: str) -> str:
    return (ROOT / f"{name}.md").read_text(encoding="utf-8")


def test_questions_render_as_dropdowns(built):
    for name in toc_files():
        html = _page(built, name)
        n_questions = len(re.findall(r"^:::\{dropdown\}", _chapter_source(name), re.M))
        assert html.count('<details class="sd-sphinx-override sd-dropdown') == n_questions >= 3, \
            f"{name}: not every answer is a dropdown"


# The guide this course grew from: the blog post and its notebook (both found from a stored copy of
# the notebook's repository, whose README links the post).
GUIDE_LINKS = ("https://medium.com/@SohamMazumder/2a043a1beb59",
               "https://github.com/IFL-CAMP/SLClassificationAnEducationalCode-MEC2019")


def test_chapter_one_names_and_links_the_guide(built):
    html = _page(built, "book/01_introduction")
    text = _reader_text(html)
    assert "Skin Lesion Classification — An Educational Guide" in text
    assert all(name in text for name in ("Mazumder", "Czempiel", "Burwinkel", "Keicher", "Technical University of Munich"))
    hrefs = {html_lib.unescape(h) for h in re.findall(r'href="([^"]+)"', html)}  # Sphinx writes @ as &#64;
    for url in GUIDE_LINKS:
        assert url in hrefs, f"chapter 1 does not link {url}"


def test_class_order_departure_reports_the_runs_chapter_four_trains(built):
    # Chapter 4 trains LeNet with the weight list in value_counts() order: the box's sentence (also
    # shown in chapter 1) must give the recalls of the table printed above it.
    html4 = _page(built, "book/04_imbalance")
    text4 = _reader_text(html4)
    said = re.search(r"trained \d+ epochs with the misordered list, the validation recall of LeNet for "
                     r"(?:vasc is (\d\.\d\d) against (\d\.\d\d)|vasc cannot be measured)"
                     r".*?balanced accuracy (\d\.\d{3}) against (\d\.\d{3})", text4)
    assert said, "chapter 4: the measured class-order sentence is missing"
    rows = {m.group(1): [float(v) if v != "NaN" else None for v in m.group(2, 3)] for m in re.finditer(
        r"<th>(vasc|balanced accuracy)</th>\s*<td>([\d.]+|NaN)</td>\s*<td>([\d.]+|NaN)</td>",
        html4[html4.index('id="what-the-mistake-costs"'):])}  # the recall table, not the weights table
    right, wrong = rows["balanced accuracy"]
    assert (float(said.group(3)), float(said.group(4))) == (round(wrong, 3), round(right, 3))
    if said.group(1):
        assert (float(said.group(1)), float(said.group(2))) == (round(rows["vasc"][1], 2), round(rows["vasc"][0], 2))
    straight = lambda t: t.replace("\u2019", "'")  # the glued copy in chapter 1 escapes smart quotes
    assert straight(said.group(0)) in straight(_reader_text(_page(built, "book/01_introduction"))), \
        "chapter 1 quotes another run"


# --------------------------------------------------------------------------- the synthetic-sample edition

# Claims true of HAM10000 only (each was once in the book beside synthetic numbers): none may appear
# in the book built on the synthetic sample. (pattern, what it claims)
HAM10000_ONLY_CLAIMS = [
    (r"\bone real training image", "a synthetic image called a real one (chapter 5)"),
    (r"\btwo dozen\b", "'two dozen df images' beside the page's own count (chapter 9)"),
    (r"\bfar too cautious\b", "a fixed verdict on the learning rate (chapter 7)"),
    (r"This is why the course's LeNet uses", "a fixed conclusion of the learning-rate plot (chapter 7)"),
    (r"[Ee]arly stopping\W+is built in", "early stopping claimed where the best checkpoint is kept (chapter 8)"),
    (r"go with which classes: nevi are often", "HAM10000's confirmation methods stated as this page's (chapter 2)"),
    (r"\b6,400 training images", "a training-set size the quick run does not use (chapter 11)"),
]


@pytest.fixture(scope="module")
def built_synthetic(built, tmp_path_factory) -> Path:
    """The students' edition built on the synthetic sample, built once: the build above when it ran
    on the synthetic sample (no HAM10000_DIR), else a build of a copy of the course without it."""
    if profile.data_source(profile.current_profile("quick")).synthetic:
        return built
    copy = tmp_path_factory.mktemp("synthetic") / "course"
    shutil.copytree(ROOT, copy, ignore=shutil.ignore_patterns(
        "_build", ".git", ".venv", "*.egg-info", "__pycache__", ".pytest_cache", ".hypothesis", "runs",
        "grades", "submitted", "autograded", "feedback", "release", "gradebook.db"))
    with pytest.MonkeyPatch.context() as mp:
        mp.delenv("HAM10000_DIR", raising=False)
        rc = bookbuild.build(copy, profile="quick", strict=True, edition="student")
    assert rc == 0, "the book failed to build on the synthetic sample: see the log above"
    return bookbuild.html_dir(copy, "student")


def _reader_text(html: str) -> str:
    """The page's text without the synthetic-sample banner (which names HAM10000 on purpose)."""
    html = re.sub(r'<div class="admonition warning ' + SYNTHETIC_NOTE_CLASS + r'">.*?</div>', "", html, flags=re.S)
    return re.sub(r"\s+", " ", _text(html))


@pytest.mark.parametrize("pattern, claim", HAM10000_ONLY_CLAIMS)
def test_synthetic_build_makes_no_ham10000_only_claim(built_synthetic, pattern, claim):
    for name in toc_files():
        html = _page(built_synthetic, name)
        assert SYNTHETIC_NOTE_CLASS in html, f"{name}: not built on the synthetic sample"
        found = re.search(pattern, _reader_text(html))
        assert not found, f"{name}: {claim}: ...{found.group(0)}..."


def test_synthetic_build_prose_follows_its_numbers(built_synthetic):
    from skinlab import data, split

    # chapter 9: the rare-class sentence counts the test images of this split
    meta = data.load_metadata(profile.data_source(profile.current_profile("quick")).root) \
        if profile.data_source(profile.current_profile("quick")).synthetic else None
    text9 = _reader_text(_page(built_synthetic, "book/09_evaluation"))
    claim = re.search(r"with (\d+) `?(\w+)`? images, one image more or less", text9)
    assert claim, "chapter 9: the rare-class sentence is missing"
    if meta is not None:
        parts = split.split_by_lesion(meta, fractions=split.DEFAULT_FRACTIONS, seed=0)
        counts = meta.loc[parts == "test", "dx"].value_counts()
        assert int(claim.group(1)) == int(counts[claim.group(2)]) == int(counts.min()), claim.group(0)
    # chapter 8: "not yet overfitting, more epochs would help" only when the kept epoch is near the end
    text8 = _reader_text(_page(built_synthetic, "book/08_training"))
    kept = re.search(r"kept: epoch (\d+) of (\d+)", text8)
    assert kept, "chapter 8: the kept epoch is not printed"
    best, n = int(kept.group(1)), int(kept.group(2))
    if "not yet overfitting" in text8:
        assert best >= n - 2, f"chapter 8 says 'not yet overfitting' beside a best epoch of {best} of {n}"
    # chapter 7: the learning-rate verdict names the rate the validation table ranks first
    text7 = _reader_text(_page(built_synthetic, "book/07_loss_optimiser"))
    assert "validation balanced accuracy came from a learning rate of" in text7
    assert "test" not in re.search(r"The table gives each learning rate.s best validation epoch.*?In \d+ epochs",
                                   text7, re.S).group(0).lower(), "chapter 7 compares learning rates on test"
