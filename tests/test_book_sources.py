"""The chapter sources (``book/*.md``, ``_toc.yml``) and the exercises' links to them, read
without building the book: these run in ``make check``, unlike ``tests/test_book.py`` (marked
``book`` and ``slow``), which builds the pages and checks them."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

try:
    from test_book import GRADED, ROOT, _chapter_source, toc_files
except ImportError:  # pytest run with tests/ as a package
    from tests.test_book import GRADED, ROOT, _chapter_source, toc_files


def test_toc_lists_thirteen_chapters_in_order():
    files = toc_files()
    assert len(files) == 13
    assert [int(Path(f).name[:2]) for f in files] == list(range(1, 14))
    for f in files:
        text = (ROOT / f"{f}.md").read_text()
        # without the jupytext header and kernelspec the code cells would not be executed
        assert "format_name: myst" in text and "kernelspec:" in text, f


@pytest.mark.parametrize("name", toc_files())
def test_chapter_opens_with_objectives_and_ends_with_questions(name):
    text = _chapter_source(name)
    top = re.search(r"```\{admonition\} In this chapter\n(.*?)\n```", text, re.S)
    assert top, f"{name}: no 'In this chapter' box"
    assert text.index(top.group(0)) < text.index("```{code-cell}"), f"{name}: the objectives are not at the top"
    objectives = re.findall(r"^\d+\. ", top.group(1), re.M)
    assert 3 <= len(objectives) <= 5, f"{name}: {len(objectives)} objectives (3-5 expected)"
    assert "**Time:**" in top.group(1) and "**Assumes:**" in top.group(1), f"{name}: time or prerequisites missing"
    assert "## Summary" in text and "## Check your understanding" in text, f"{name}: no summary or questions"
    tail = text[text.index("## Check your understanding"):]
    questions = re.findall(r"^:::\{dropdown\} \d+\. .+\?$", tail, re.M)
    assert 3 <= len(questions) <= 5, f"{name}: {len(questions)} questions (3-5 expected)"
    assert text.index("## Summary") > text.rindex("```{code-cell}"), f"{name}: the summary is not at the end"


def test_each_exercise_links_back_to_its_chapter():
    for chapter, (exercise, _, _) in GRADED.items():
        for folder in ("solutions", "exercises"):
            nb = json.loads((ROOT / folder / exercise / f"{exercise}.ipynb").read_text())
            first = "".join(nb["cells"][0]["source"])
            links = re.findall(r"\]\(\.\./\.\./(book/[^)]+)\.md\)", first)
            assert links == [chapter], f"{folder}/{exercise}: links {links}, expected its chapter {chapter}"
            assert (ROOT / f"{links[0]}.md").is_file()
        assert f"`{exercise}`" in _chapter_source(chapter), f"{chapter} does not name its exercise {exercise}"
