"""The default split fractions are set once, ``skinlab.split.DEFAULT_FRACTIONS`` (issue #19).

Code reads the constant. What cannot read it is checked against it here:

* the docs (``docs/*.md``, ``README.md``) quote the numbers in prose;
* exercise 1 writes them as a literal: a student's answer runs where ``skinlab`` cannot be
  imported (the grading worker blocks it), so the task's signature carries the numbers;
* the book glues them from the constant, so no chapter may quote them.
"""

from __future__ import annotations

import ast
import json
import re
from pathlib import Path

import numpy as np
import pytest

from skinlab.grading.ex1_split import judges as checks
from skinlab.split import DEFAULT_FRACTIONS

ROOT = Path(__file__).resolve().parents[1]
NUMBER = r"(\d+(?:\.\d+)?|\.\d+)"
# "64/16/20", "64 / 16 / 20 %": three percentages; "(0.64, 0.16, 0.20)", "0.64,0.16,0.2": three fractions.
PERCENT_TRIPLE = re.compile(rf"(?<![\w.]){NUMBER}\s*/\s*{NUMBER}\s*/\s*{NUMBER}(?![\w.])")
FRACTION_TRIPLE = re.compile(rf"(?<![\w.]){NUMBER}\s*,\s*{NUMBER}\s*,\s*{NUMBER}(?![\w.])")


def split_fraction_mentions(text: str) -> list[tuple[str, tuple[float, float, float]]]:
    """Every train/val/test triple quoted in ``text``: (what is written, as fractions).

    A triple counts when it sums to 100 (percentages, slashes) or to 1 (fractions, commas): other
    triples ("lite0/1/2", three accuracies) are not split fractions.
    """
    found = []
    for pattern, total in ((PERCENT_TRIPLE, 100.0), (FRACTION_TRIPLE, 1.0)):
        for m in pattern.finditer(text):
            values = tuple(float(v) for v in m.groups())
            if abs(sum(values) - total) < 1e-6 * total:
                found.append((m.group(0), tuple(v / total for v in values)))
    return found


def test_the_scanner_finds_each_way_of_writing_the_fractions_and_nothing_else():
    text = ("a 64/16/20 split; 64 / 16 / 20 % of its images; fractions=(0.64,0.16,0.20), "
            "--fractions 0.7,0.1,0.2; EfficientNet-Lite0/1/2; 0.526 / 0.476 / 0.537; threshold 0.64; "
            "seeds 0, 1, 2; ISIC_0024306/7/8")
    assert [w for w, _ in split_fraction_mentions(text)] == [
        "64/16/20", "64 / 16 / 20", "0.64,0.16,0.20", "0.7,0.1,0.2"]
    assert split_fraction_mentions("(0.7, 0.1, 0.2)")[0][1] == pytest.approx((0.7, 0.1, 0.2))


def test_every_fraction_triple_in_the_docs_is_the_default():
    docs = sorted((ROOT / "docs").glob("*.md")) + [ROOT / "README.md"]
    seen = []
    for path in docs:
        for line_no, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            for written, fractions in split_fraction_mentions(line):
                seen.append(written)
                assert np.allclose(fractions, DEFAULT_FRACTIONS), (
                    f"{path.relative_to(ROOT)}:{line_no} quotes {written!r} as split fractions, but "
                    f"skinlab.split.DEFAULT_FRACTIONS is {DEFAULT_FRACTIONS}: update the text (or, if "
                    "these are not the default fractions, say so in other words)")
    assert seen, "no mention of the default fractions found in the docs: is the scanner still right?"


# ---------------------------------------------------------------------------- exercise 1

EX1_SOURCE = ROOT / "solutions" / "ex1_split" / "ex1_split.py"
EX1_NOTEBOOKS = (ROOT / "solutions" / "ex1_split" / "ex1_split.ipynb",
                 ROOT / "exercises" / "ex1_split" / "ex1_split.ipynb")


def _declared_defaults(source: str) -> list:
    """The ``fractions`` default of every ``split_by_lesion`` defined in ``source``."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.FunctionDef) and node.name == "split_by_lesion":
            args = node.args
            defaults = dict(zip([a.arg for a in args.args][-len(args.defaults):], args.defaults))
            found.append(ast.literal_eval(defaults["fractions"]))
    return found


def _cells(notebook: Path, kind: str) -> list[str]:
    cells = json.loads(notebook.read_text(encoding="utf-8"))["cells"]
    return ["".join(c["source"]) for c in cells if c["cell_type"] == kind]


def test_the_exercise_signature_declares_the_default_fractions():
    """Source, source notebook and release: the answer's default is the reference's."""
    declared = {"source": _declared_defaults(EX1_SOURCE.read_text(encoding="utf-8"))}
    for nb in EX1_NOTEBOOKS:
        # IPython-only lines (magics) would not parse; the exercise has none, so parse every cell
        declared[nb.relative_to(ROOT).as_posix()] = [
            d for cell in _cells(nb, "code") for d in _declared_defaults(cell)]
    for where, defaults in declared.items():
        assert len(defaults) == 1, f"{where}: expected one split_by_lesion, found {len(defaults)}"
        assert np.allclose(defaults[0], DEFAULT_FRACTIONS), (where, defaults[0], DEFAULT_FRACTIONS)


def test_the_exercise_text_quotes_the_default_fractions():
    # The text is the source's markdown (lines of "# ") and the release's markdown cells; test
    # cells may pass other fractions on purpose, so code is not scanned.
    texts = {"source": "\n".join(line for line in EX1_SOURCE.read_text(encoding="utf-8").splitlines()
                                 if line.startswith("# "))}
    texts["release"] = "\n".join(_cells(EX1_NOTEBOOKS[1], "markdown"))
    for where, text in texts.items():
        mentions = split_fraction_mentions(text)
        # the task's signature and the proportions sentence
        assert len(mentions) >= 2, (where, mentions)
        for written, fractions in mentions:
            assert np.allclose(fractions, DEFAULT_FRACTIONS), (where, written, DEFAULT_FRACTIONS)


def test_hidden_tests_draw_fractions_around_the_defaults():
    """The grading-time fractions (``_draw_fractions``) range over the defaults, so a hidden test
    can ask what the visible ones ask at other fractions on either side."""
    rng = np.random.default_rng(0)
    draws = np.array([checks._draw_fractions(rng) for _ in range(2000)])
    assert np.allclose(draws.sum(axis=1), 1)
    assert np.all(draws.min(axis=0) < np.asarray(DEFAULT_FRACTIONS)), draws.min(axis=0)
    assert np.all(np.asarray(DEFAULT_FRACTIONS) < draws.max(axis=0)), draws.max(axis=0)


# ---------------------------------------------------------------------------- the book


def test_the_book_glues_the_default_fractions_instead_of_quoting_them():
    chapters = sorted((ROOT / "book").glob("*.md"))
    quoted = {p.name: [w for w, f in split_fraction_mentions(p.read_text(encoding="utf-8"))
                       if np.allclose(f, DEFAULT_FRACTIONS)] for p in chapters}
    assert not any(quoted.values()), (
        f"chapters quote the default fractions: {quoted}; glue them from skinlab.split.DEFAULT_FRACTIONS "
        "(see book/03_splitting.md) or pass split.DEFAULT_FRACTIONS in code")
    # and what chapter 3 glues in, it glues on the page
    text = (ROOT / "book" / "03_splitting.md").read_text(encoding="utf-8")
    used = set(re.findall(r"\{glue:text\}`(default_\w+)`", text))
    glued = set(re.findall(r"""glue\("(\w+)",""", text))
    assert used and used <= glued, (used, glued)
