"""Similarity that padding does not beat (issue #20, item 4).

The reference solution of each exercise, copied and disguised by program: own names renamed, a
statement without effect after every statement (a bare name, a constant, an attribute read, a
docstring, ``pass``, ``x = x``, ``if False:``, a dead store and its ``del``), comprehensions
written out as loops, independent statements swapped. Every disguised copy must still be a correct
answer (it passes the exercise's checks) and must be listed; the independent answers of
tests/test_grading_similarity.py must still not be.
Run ``python tests/test_grading_similarity_padding.py`` to print the scores.
"""

from __future__ import annotations

import ast
import functools
import itertools
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from test_grading_similarity import (  # noqa: E402
    CHECKS, EXERCISES, INDEPENDENT, PASSED_ON, REFERENCES, TEMPLATES, run_answer, score, score_table)

from skinlab.grading import similarity as sim  # noqa: E402

BODIES = ("body", "orelse", "finalbody")


def _imported(tree) -> set[str]:
    return {(a.asname or a.name).split(".")[0] for n in ast.walk(tree)
            if isinstance(n, (ast.Import, ast.ImportFrom)) for a in n.names}


def rename(tree: ast.Module) -> ast.Module:
    """Every local variable (not an argument, function or import) gets another name."""
    args = {a.arg for a in ast.walk(tree) if isinstance(a, ast.arg)}
    stored = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name) and not isinstance(n.ctx, ast.Load)}
    mine = stored - args - _imported(tree) - {"DEFAULT_FRACTIONS", "_"}
    for node in ast.walk(tree):
        if isinstance(node, ast.Name) and node.id in mine:
            node.id = f"my_{node.id}_x"
    return tree


def loops(tree: ast.Module) -> ast.Module:
    """``t = [e for x in it if c]`` becomes ``t = []`` and a for loop appending to t."""
    for node in ast.walk(tree):
        for field in BODIES:
            stmts = getattr(node, field, None)
            if not isinstance(stmts, list):
                continue
            out = []
            for s in stmts:
                comp = getattr(s, "value", None)
                if (isinstance(s, ast.Assign) and len(s.targets) == 1 and isinstance(s.targets[0], ast.Name)
                        and isinstance(comp, ast.ListComp) and len(comp.generators) == 1):
                    name, gen = s.targets[0].id, comp.generators[0]
                    inner = ast.parse(f"{name}.append(ELT)").body[0]
                    inner.value.args = [comp.elt]
                    for cond in reversed(gen.ifs):
                        inner = ast.If(test=cond, body=[inner], orelse=[])
                    out += [ast.parse(f"{name} = []").body[0],
                            ast.For(target=gen.target, iter=gen.iter, body=[inner], orelse=[])]
                else:
                    out.append(s)
            setattr(node, field, out)
    return ast.fix_missing_locations(tree)


def _writes_reads(stmt):
    writes = {n.id for n in ast.walk(stmt) if isinstance(n, ast.Name) and not isinstance(n.ctx, ast.Load)}
    reads = {n.id for n in ast.walk(stmt) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load)}
    return writes, reads


def reorder(tree: ast.Module) -> ast.Module:
    """Swaps each pair of adjacent assignments to plain names that do not depend on each other."""
    def plain(s):
        targets = s.targets if isinstance(s, ast.Assign) else [s.target] if isinstance(s, ast.AugAssign) else None
        return targets is not None and all(isinstance(n, ast.Name) for t in targets for n in ast.walk(t)
                                           if not isinstance(n, (ast.Tuple, ast.Store, ast.Load)))

    for node in ast.walk(tree):
        for field in BODIES:
            stmts = getattr(node, field, None)
            if not isinstance(stmts, list):
                continue
            i = 0
            while i + 1 < len(stmts):
                a, b = stmts[i], stmts[i + 1]
                (wa, ra), (wb, rb) = _writes_reads(a), _writes_reads(b)
                if plain(a) and plain(b) and not wa & (wb | rb) and not wb & ra:
                    stmts[i], stmts[i + 1] = b, a
                    i += 2
                else:
                    i += 1
    return tree


def pad(tree: ast.Module) -> ast.Module:
    """A statement without effect after every statement, of a kind that cycles."""
    module = sorted(_imported(tree) - {"annotations"})[0]

    def fillers(function):
        arg = function.args.args[-1].arg if function and function.args.args else None
        kinds = [f"{module}.__name__"] if function else []  # imported by the time the function runs
        kinds += ["None", "'''a note'''", "pass", "0", "...",
                 "if False:\n    print('debug')", "if 0:\n    raise SystemExit", "_scratch = None\ndel _scratch"]
        if arg:
            kinds += [arg, f"{arg} = {arg}", f"{arg}.__class__"]
        return itertools.cycle([ast.parse(k).body for k in kinds])

    def visit(node, function, filler):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            function, filler = node, fillers(node)
        for field in BODIES:
            stmts = getattr(node, field, None)
            if isinstance(stmts, list) and stmts and isinstance(stmts[0], ast.stmt):
                padded = []
                for s in stmts:
                    visit(s, function, filler)
                    padded += [s, *next(filler)]
                setattr(node, field, padded)
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.ExceptHandler, ast.match_case)):
                visit(child, function, filler)

    visit(tree, None, fillers(None))
    return ast.fix_missing_locations(tree)


DISGUISES = {
    "renamed, padded, loops": (rename, loops, pad),  # the copy
    "renamed, reordered": (rename, reorder),
    "renamed, reordered, padded, loops": (rename, reorder, loops, pad),
    "padded only": (pad,),
}


@functools.lru_cache(maxsize=None)
def disguised(exercise: str, how: str) -> str:
    tree = ast.parse(REFERENCES[exercise]["solution"])
    for step in DISGUISES[how]:
        tree = step(tree)
    return ast.unparse(tree)


def independent_scores(exercise):
    return [(pair, s) for e, kind, pair, s in score_table() if e == exercise and kind == "independent"]


@pytest.mark.parametrize("exercise", EXERCISES)
@pytest.mark.parametrize("how", DISGUISES)
def test_disguised_copies_are_listed(exercise, how):
    source = disguised(exercise, how)
    assert len(source.splitlines()) > len(REFERENCES[exercise]["solution"].splitlines()) or "padded" not in how
    assert score(exercise, source, REFERENCES[exercise]["solution"]) >= sim.DEFAULT_THRESHOLD + 0.04


@pytest.mark.parametrize("exercise", EXERCISES)
def test_padding_is_removed_by_the_normaliser(exercise):
    # Padded and unpadded copies normalise to the same tokens: the filler has no weight at all.
    padded = disguised(exercise, "padded only")
    assert padded.count("\n") > 1.5 * REFERENCES[exercise]["solution"].count("\n")
    assert sim.canonical_code(padded) == sim.canonical_code(REFERENCES[exercise]["solution"])
    code = sim.canonical_code(disguised(exercise, "renamed, reordered, padded, loops"))
    assert not {"debug", "SystemExit", "pass", "__name__", "__class__"} & set(sim._TOKEN.findall(code))
    unpadded = ast.parse(REFERENCES[exercise]["solution"])
    for step in (rename, reorder, loops):
        unpadded = step(unpadded)
    assert code == sim.canonical_code(ast.unparse(unpadded))


@pytest.mark.parametrize("exercise", EXERCISES)
def test_independent_answers_stay_unlisted_with_a_margin(exercise):
    for pair, s in independent_scores(exercise):
        assert s <= sim.DEFAULT_THRESHOLD - 0.04, (pair, s)


def test_statements_with_effect_are_kept():
    code = sim.canonical_code('''
def f(x, out):
    x = x
    out.append(x)
    x = x + 1
    print(x)
    x.grad
    if True:
        y = x
    if False:
        y = 0
    else:
        y = 1
    while 0:
        y = 2
    if out:
        pass
    if y:
        ...
    else:
        "a docstring"
    seen = 0
    del seen
    unused = x.detach()
    del y
    return y
    x.grad = None
''')
    assert code.splitlines() == ["def v1(v2, v3):", "    v3.append(v2)", "    v2 = v2 + 1", "    print(v2)",
                                 "    v4 = v2", "    v4 = 1", "    v5 = v2.detach()", "    del v4", "    return v4"]
    assert sim.canonical_code("def f(x):\n    if x.y():\n        pass\n") == "def v1(v2):\n    if v2.y():\n        pass"


def test_class_attributes_and_module_constants_are_kept():
    code = sim.canonical_code("class A:\n    n = 3\n    'doc'\nLIMIT = 5\n"
                              "def f():\n    class B:\n        m = 7\n    return B\n")
    assert "3" in code and "5" in code and "7" in code and "doc" not in code


@pytest.mark.slow
@pytest.mark.parametrize("exercise", EXERCISES)
def test_disguised_copies_are_correct_answers(exercise):
    from skinlab import grading

    for how in DISGUISES:
        grading.reset()
        ns = run_answer(disguised(exercise, how))
        for name, check in CHECKS[exercise]:
            getattr(grading, check)(ns[name])
    grading.reset()


if __name__ == "__main__":
    for e in EXERCISES:
        for how in DISGUISES:
            print(f"{e:18} {score(e, disguised(e, how), REFERENCES[e]['solution']):.3f}  {how}")
        pair, s = max(independent_scores(e), key=lambda p: p[1])
        print(f"{e:18} {s:.3f}  highest independent: {pair}")
