"""Similarity report: per exercise, each answer against the references and every other answer.

Pairs scoring at least ``threshold`` go to ``similarity.csv`` and, side by side, to
``similarity.html``: evidence for a person to read; no score is ever changed. Answers are hostile:
notebooks are read as JSON, code is only parsed (:mod:`ast`), never run, the page is escaped.
"""

from __future__ import annotations

import ast
import csv
import html
import importlib.util
import io
import json
import os
import re
from pathlib import Path

from .exercise import exercises

# Measured in tests/test_grading_similarity.py and test_grading_similarity_padding.py: copies
# (renamed, reformatted, reordered, trimmed, padded with no-effect statements) score 0.71-1,
# independent correct answers at most 0.57 (two canonical training loops).
DEFAULT_THRESHOLD = 0.64
K = 8  # tokens per k-gram, under one statement (k = 5…20 tried: 8 separates copies best)
MIN_KGRAMS = 8  # fewer k-grams beyond the baseline: too little own code to compare
MAX_SOURCE, MAX_NOTEBOOK = 200_000, 50 * 2**20  # characters read: hostile input cannot stall it
# The lines of an untouched release stub: such an answer is never paired, even without templates.
_STUB = re.compile(r"(async def|def|class) .*:|pass|raise NotImplementedError(\(\))?|super\(\)\.__init__\(\)")


# Code two answers share without copying (MOSS's "base file"): the PyTorch tutorial's LeNet and
# training loop, which the exercise texts prescribe step by step. Without it independent
# canonical loops scored up to 0.68. Names do not matter (normalised away); statement forms do.
COMMON = {
    "ex3_lenet": """
class LeNet(nn.Module):
    def __init__(self, num_classes=7):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 6, 5); self.pool = nn.MaxPool2d(2, 2); self.conv2 = nn.Conv2d(6, 16, 5)
        self.fc1 = nn.Linear(16 * 5 * 5, 120); self.fc2 = nn.Linear(120, 84); self.fc3 = nn.Linear(84, num_classes)
    def forward(self, x):
        x = self.pool(F.relu(self.conv1(x))); x = self.pool(F.relu(self.conv2(x))); x = torch.flatten(x, 1)
        x = F.relu(self.fc1(x)); x = F.relu(self.fc2(x)); x = self.fc3(x)
        return x
""",
    "ex4_training": """
def train_one_epoch(model, loader, criterion, optimizer, device):
    model.train()
    for inputs, labels in loader:
        inputs, labels = inputs.to(device), labels.to(device); inputs = inputs.to(device); labels = labels.to(device)
        optimizer.zero_grad(); outputs = model(inputs); loss = criterion(outputs, labels); loss.backward(); optimizer.step()
def evaluate(model, loader, criterion, device):
    model.eval()
    with torch.no_grad():
        for inputs, labels in loader:
            inputs, labels = inputs.to(device), labels.to(device); inputs = inputs.to(device); labels = labels.to(device)
            outputs = model(inputs); loss = criterion(outputs, labels)
""",
}


def answer_source(notebook, unreadable=""):
    """The answer in one notebook: its nbgrader answer cells, joined; ``unreadable`` if no JSON."""
    try:
        with open(notebook, encoding="utf-8") as f:  # a larger file is cut short: invalid JSON
            cells = json.loads(f.read(MAX_NOTEBOOK))["cells"]
        return "\n\n".join(
            c["source"] if isinstance(c["source"], str) else "".join(c["source"])
            for c in cells
            if c.get("cell_type") == "code" and c.get("metadata", {}).get("nbgrader", {}).get("solution") is True
        )
    except (OSError, ValueError, KeyError, TypeError, AttributeError, RecursionError):
        return unreadable


def reference_sources(exercise: str, course) -> dict[str, str]:
    """``{label: source}``: ``"solution"`` (the solution notebook's answer cells) and the package
    code, labelled by module: what ``inspect.getsource`` gives, cut out with :mod:`ast`."""
    refs = {"solution": answer_source(Path(course) / "solutions" / exercise / f"{exercise}.ipynb")}
    declared = exercises().get(exercise)  # the package code the book prints, and what a copy inlines
    module, names = declared.prints if declared else (None, ())
    spec = importlib.util.find_spec(module) if module else None
    if spec and spec.origin:
        text = Path(spec.origin).read_text(encoding="utf-8")
        nodes = {n.name: n for n in ast.parse(text).body if hasattr(n, "name")}
        refs[module] = "\n\n\n".join(ast.get_source_segment(text, nodes[n]) for n in names if n in nodes)
    return {label: src for label, src in refs.items() if src}


def _is_noise(stmt: ast.stmt) -> bool:
    # Imports: in the stub, or say little. A bare string (docstring or not) is a comment.
    value = getattr(stmt, "value", None)
    return isinstance(stmt, (ast.Import, ast.ImportFrom)) or isinstance(stmt, ast.Expr) and (
        isinstance(value, ast.JoinedStr) or isinstance(value, ast.Constant) and isinstance(value.value, str))


def _pure(expr) -> bool:
    # Reading it does nothing: a constant, a name, an attribute chain on a name, a tuple of these.
    if isinstance(expr, ast.Tuple):
        return all(_pure(e) for e in expr.elts)
    while isinstance(expr, ast.Attribute):
        expr = expr.value
    return isinstance(expr, (ast.Constant, ast.Name))


def _without_effect(stmts: list, dead: set, local: bool = True) -> list:
    """``stmts`` without statements that do nothing: padding that would otherwise break every
    k-gram around it. Gone: ``pass``, bare constants, names and attribute reads, ``x = x``,
    ``if False:`` (``if True:`` becomes its body), ``if x: pass``, ``while False:``, code after
    ``return``/``raise``/``break``/``continue``, and, in a function (``local``), stores of such values to names never
    read (``dead``) and their ``del``: a class body's store makes an attribute, a module's a global."""
    out = []
    for s in stmts:
        if isinstance(s, ast.If) and isinstance(s.test, ast.Constant):
            out += _without_effect(s.body if s.test.value else s.orelse, dead, local)
            continue
        if isinstance(s, ast.While) and isinstance(s.test, ast.Constant) and not s.test.value:
            out += _without_effect(s.orelse, dead, local)
            continue
        names = [t for t in getattr(s, "targets", ()) if isinstance(t, ast.Name)]
        if (isinstance(s, ast.Pass) or isinstance(s, ast.Expr) and _pure(s.value)
                or isinstance(s, ast.If) and _pure(s.test) and not _without_effect(s.body + s.orelse, dead, local)
                or isinstance(s, ast.Assign) and len(names) == 1 == len(s.targets)
                and isinstance(s.value, ast.Name) and s.value.id == names[0].id
                or local and isinstance(s, (ast.Assign, ast.Delete)) and len(names) == len(s.targets)
                and all(n.id in dead for n in names) and (isinstance(s, ast.Delete) or _pure(s.value))):
            continue
        out.append(s)
        if isinstance(s, (ast.Return, ast.Raise, ast.Break, ast.Continue)):
            break
    return out


def _drop_without_effect(tree: ast.AST) -> None:
    read = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load)}
    dead = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name) and not isinstance(n.ctx, ast.Load)} - read
    functions = (ast.FunctionDef, ast.AsyncFunctionDef)
    local = {id(n) for f in ast.walk(tree) if isinstance(f, functions) for n in ast.walk(f) if n is f
             or not isinstance(n, ast.ClassDef)}
    for node in ast.walk(tree):  # parents first: a spliced if-body is pruned when spliced
        for field in ("body", "orelse", "finalbody"):
            stmts = getattr(node, field, None)
            if isinstance(stmts, list) and stmts and isinstance(stmts[0], ast.stmt):
                kept = _without_effect(stmts, dead, id(node) in local)
                setattr(node, field, kept or ([] if field != "body" else [ast.Pass()]))


def _canonicalise(tree: ast.AST) -> None:
    """Drops imports, docstrings, annotations and statements without effect, masks prose, and
    renames what the answer defines: its functions, classes, arguments and variables become ``v1``, ``v2``, …, the
    attributes its classes define (methods, what they set on self) ``a1``, …, in order of first
    appearance. Imported and builtin names stay: ``np.bincount`` or ``F.relu`` tell answers apart."""
    _drop_without_effect(tree)
    imported, bound, attrs, selves = set(), set(), set(), set()
    defs = (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.ExceptHandler)
    for node in ast.walk(tree):
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            imported.update((a.asname or a.name).split(".")[0] for a in node.names)
        elif isinstance(node, defs) or isinstance(node, ast.Name) and not isinstance(node.ctx, ast.Load):
            bound.add(getattr(node, "name", None) or getattr(node, "id", None))
        elif isinstance(node, ast.arg):
            bound.add(node.arg)
        if isinstance(node, ast.ClassDef):  # its methods, and its methods' first argument (self)
            methods = [f for f in node.body if isinstance(f, (ast.FunctionDef, ast.AsyncFunctionDef))]
            attrs.update(f.name for f in methods)
            selves.update(f.args.args[0].arg for f in methods if f.args.args)
    attrs.update(n.attr for n in ast.walk(tree) if isinstance(n, ast.Attribute)
                 and not isinstance(n.ctx, ast.Load) and isinstance(n.value, ast.Name) and n.value.id in selves)
    dunder = re.compile(r"__\w+__")  # protocol names (__init__) are not the student's choice
    own = {"v": {n for n in bound - imported if n and not dunder.fullmatch(n)},
           "a": {a for a in attrs if not dunder.fullmatch(a)}}
    renamed: dict[tuple[str, str], str] = {}

    def new(name, kind="v"):
        if name not in own[kind]:
            return name
        return renamed.setdefault((kind, name), f"{kind}{1 + sum(k == kind for k, _ in renamed)}")

    for node in sorted(ast.walk(tree), key=lambda n: (getattr(n, "lineno", 0), getattr(n, "col_offset", 0))):
        if isinstance(node, ast.Name):
            node.id = new(node.id)
        elif isinstance(node, ast.arg):
            node.arg, node.annotation = new(node.arg), None
        elif isinstance(node, defs) and node.name:
            node.name = new(node.name)
        elif isinstance(node, ast.Attribute):
            node.attr = new(node.attr, "a")
        elif isinstance(node, ast.Constant) and isinstance(node.value, (str, bytes)):
            # Identifier-like strings ("lesion_id", "bilinear") are API; others are prose.
            node.value = node.value if re.fullmatch(r"[A-Za-z_][\w.]{0,30}", str(node.value)) else "S"
        elif isinstance(node, ast.JoinedStr):
            node.values = [ast.Constant("S")]
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            node.returns = None
        for field in ("body", "orelse", "finalbody"):
            stmts = getattr(node, field, None)
            if isinstance(stmts, list) and stmts:
                setattr(node, field, [s for s in stmts if not _is_noise(s)] or [ast.Pass()])


def canonical_code(source: str) -> str:
    """The answer as canonical code: one statement a line, own names renamed, no comments."""
    source = source[:MAX_SOURCE].encode("utf-8", "replace").decode("utf-8")  # JSON allows lone surrogates
    try:
        tree = ast.parse(source)
        _canonicalise(tree)
        return ast.unparse(tree).replace("f'S'", "'S'")  # prose is prose, formatted or not
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        # Not Python (an unfinished answer): the plain lines, without comments and indentation.
        lines = (re.sub(r"#.*", "", line).strip() for line in source.splitlines())
        return "\n".join(line for line in lines if line)


_TOKEN = re.compile(r"[A-Za-z_]\w*|\d[\w.]*|\S")
# Placeholder numbers go for comparing: with them, swapping two independent assignments would
# renumber, and so change, every later line.
_NUMBER = re.compile(r"\b([va])\d+\b")


def _tokens(canonical: str) -> list[str]:
    return [t for line in canonical.splitlines() for t in _TOKEN.findall(_NUMBER.sub(r"\1", line)) + ["\n"]]


def normalise(source: str) -> list[str]:
    """Tokens of :func:`canonical_code`, placeholders unnumbered; a line break is a token."""
    return _tokens(canonical_code(source))


def kgrams(tokens: list[str], k: int = K) -> set[int]:
    """Hashes of every run of k tokens (all of them: answers are short, winnowing saves nothing)."""
    return {hash(tuple(tokens[i:i + k])) for i in range(max(len(tokens) - k + 1, 1))} if tokens else set()


def baseline(exercise: str, stub: str = "") -> set[int]:
    """k-grams that are no evidence of copying: the release stub's and :data:`COMMON`'s."""
    return kgrams(normalise(stub)) | kgrams(normalise(COMMON.get(exercise, "")))


def similarity(a_tokens, b_tokens, ignore: set[int] = frozenset()) -> float:
    """Share of the smaller answer's k-grams (from tokens, or a k-gram set) found in the other.

    k-gram sets ignore the order of statements and functions; an insertion breaks only the
    k-grams around it. Dividing by the smaller set (containment) rather than the union (Jaccard)
    finds a copy of part of the long package code, or one padded with more code, and is still
    symmetric. On the fixtures it separated copies from independent answers by 0.14, Jaccard and
    Dice by 0.05; difflib is order-sensitive and quadratic. ``ignore`` goes first.
    """
    a = (a_tokens if isinstance(a_tokens, (set, frozenset)) else kgrams(a_tokens)) - ignore
    b = (b_tokens if isinstance(b_tokens, (set, frozenset)) else kgrams(b_tokens)) - ignore
    return len(a & b) / min(len(a), len(b)) if a and b else 0.0


def report(answers: dict, references: dict, out_dir, threshold: float = DEFAULT_THRESHOLD,
           templates: dict | None = None) -> dict:
    """Compare ``answers[exercise][student]`` with ``references[exercise][label]`` and with each
    other; write ``similarity.csv`` and ``similarity.html`` into ``out_dir``. ``templates``:
    ``{exercise: the release stub's answer}``, not counted. Answers with too little code of their
    own (the stub, "") are not paired. Returns ``{"csv", "html", "rows", "not_compared"}``."""
    found, not_compared = [], []  # found: (row, [(source, canonical) of its two answers])
    for exercise in sorted(set(answers) | set(references)):
        ignore = baseline(exercise, (templates or {}).get(exercise, ""))
        # Keyed by (kind, name): a student called "reference:solution" stays a student.
        docs = {("reference", f"reference:{label}"): src for label, src in sorted(references.get(exercise, {}).items())}
        docs.update((("student", str(s)), src) for s, src in sorted(answers.get(exercise, {}).items()))
        canon = {key: canonical_code(src or "") for key, src in docs.items()}
        prints = {key: fp for key, code in canon.items() if len(fp := kgrams(_tokens(code)) - ignore) >= MIN_KGRAMS
                  and not all(_STUB.fullmatch(line.strip()) for line in code.splitlines() if line.strip())}
        not_compared += [(exercise, k[1]) for k in canon if k not in prints and k[0] == "student"]
        keys = list(prints)  # references first
        for i, first in enumerate(keys):
            for second in (k for k in keys[i + 1:] if k[0] == "student"):
                score = similarity(prints[first], prints[second])
                if score >= threshold:
                    pair = (second, first) if first[0] == "reference" else (first, second)  # student first
                    row = dict(exercise=exercise, first=pair[0][1], second=pair[1][1], score=round(score, 3),
                               kind="reference" if first[0] == "reference" else "students")
                    found.append((row, [(docs[k], canon[k]) for k in pair]))
    found.sort(key=lambda f: (-f[0]["score"], f[0]["exercise"], f[0]["first"], f[0]["second"]))
    (out_dir := Path(out_dir)).mkdir(parents=True, exist_ok=True)
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=["exercise", "first", "second", "score", "kind"])
    writer.writeheader()
    writer.writerows(row for row, _ in found)
    return {"csv": _write_atomic(out_dir / "similarity.csv", buf.getvalue()),
            "html": _write_atomic(out_dir / "similarity.html", _html(found, not_compared, threshold)),
            "rows": [row for row, _ in found], "not_compared": not_compared}


def report_for_course(course, notebooks: dict, out_dir, threshold: float = DEFAULT_THRESHOLD) -> dict:
    """:func:`report` for ``notebooks[(student, exercise)]`` = the path of a submitted notebook,
    with the references and stubs of ``course`` (``solutions/``, ``exercises/``). Adds
    ``"unreadable"``: ``(student, exercise)`` of notebooks that are not JSON notebooks."""
    course = Path(course)
    answers, unreadable = {}, []
    for (student, exercise), path in sorted(notebooks.items()):
        source = answer_source(path, unreadable=None)
        if source is None:
            unreadable.append((student, exercise))
        answers.setdefault(exercise, {})[student] = source or ""
    references = {e: reference_sources(e, course) for e in answers}
    templates = {e: answer_source(course / "exercises" / e / f"{e}.ipynb") for e in answers}
    return {**report(answers, references, out_dir, threshold, templates), "unreadable": unreadable}


def _write_atomic(path: Path, text: str) -> Path:
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        tmp.write_text(text, encoding="utf-8", errors="backslashreplace", newline="")  # lone surrogates
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


_STYLE = """body{font-family:sans-serif;margin:1em}table{width:100%;table-layout:fixed}td{vertical-align:top}
pre{font-size:12px;white-space:pre-wrap;margin:0}.same{background:#ffe08a}h2{font-size:1.05em;margin-top:2em}"""


def _side(canonical: str, other: str) -> str:
    # A line is marked when the other answer has the same canonical line (up to numbering).
    key = lambda line: _NUMBER.sub(r"\1", line).strip()  # noqa: E731
    others = {key(line) for line in other.splitlines()}
    return "<pre>" + "\n".join(
        f'<span class="same">{html.escape(line)}</span>' if key(line) in others and len(key(line)) > 12
        else html.escape(line) for line in canonical.splitlines()) + "</pre>"


def _html(found, not_compared, threshold) -> str:
    esc = html.escape
    parts = [f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>Similarity report</title>"
             f"<style>{_STYLE}</style></head><body><h1>Similarity report</h1>"
             f"<p>{len(found)} pair(s) scoring at least {threshold:.2f}: evidence to read, not a verdict; "
             "no score was changed. Shown: the canonical code (no comments or docstrings, own names "
             "as v1, v2, …), lines found in both answers marked; the original answers below.</p>"]
    if not_compared:
        parts.append("<p>Not compared (too little code beyond the release stub and COMMON idioms): "
                     + esc(", ".join(f"{s} ({e})" for e, s in not_compared)) + "</p>")
    for n, (row, ((a, ca), (b, cb))) in enumerate(found, 1):
        parts.append(f"<h2 id='pair{n}'>{n}. {esc(row['exercise'])}: {esc(row['first'])} and "
                     f"{esc(row['second'])}, score {row['score']:.3f} ({esc(row['kind'])})</h2>"
                     f"<table><tr><td>{_side(ca, cb)}</td><td>{_side(cb, ca)}</td></tr></table>"
                     "<details><summary>original answers</summary><table><tr>"
                     f"<td><pre>{esc(a)}</pre></td><td><pre>{esc(b)}</pre></td></tr></table></details>")
    parts.append("</body></html>\n")
    return "\n".join(parts)
