"""What keys a cached result of the course: the ``skinlab`` modules some code imports, and a hash
of their source.

A run of the book (:mod:`skinlab.course.runcache`) and the book's executed pages
(:mod:`skinlab.course.bookbuild`) are reused as long as the code that made them is unchanged. Which
code that is, is read from the imports, never from a hand-written list (a list once left out
``skinlab.distributed``, whose sampler chapter 12 trains with, and cached runs went stale):
:func:`imported_modules` follows every ``skinlab`` import of the source, transitively, at module
level and inside functions alike, without importing anything (no torch: under a tenth of a second for the training path).
It over-approximates (an import in a branch never taken still counts), which costs at worst a
run trained again, never a stale one.
"""

from __future__ import annotations

import ast
import hashlib
import re
from pathlib import Path

PACKAGE = "skinlab"


def package_dir() -> Path:
    """The folder of this ``skinlab`` package, wherever it is installed."""
    return Path(__file__).resolve().parents[1]


def module_file(name: str, package: Path | None = None) -> Path | None:
    """The source file of module ``name`` (``skinlab`` or ``skinlab.x.y``) in the ``skinlab``
    folder ``package`` (default :func:`package_dir`): ``x/y.py`` or ``x/y/__init__.py``; ``None``
    when there is none (the name is an attribute, not a module)."""
    package = Path(package) if package is not None else package_dir()
    parts = name.split(".")
    if parts[0] != PACKAGE:
        return None
    base = package.joinpath(*parts[1:])
    if (base / "__init__.py").is_file():
        return base / "__init__.py"
    if len(parts) > 1 and base.with_suffix(".py").is_file():
        return base.with_suffix(".py")
    return None


def _with_parents(name: str) -> list[str]:
    """``skinlab.a.b`` -> ``skinlab``, ``skinlab.a``, ``skinlab.a.b``: importing a module runs its
    packages' ``__init__`` first."""
    parts = name.split(".")
    return [".".join(parts[:i]) for i in range(1, len(parts) + 1)]


def imports_in(tree: ast.AST, importer: str | None, package: Path) -> set[str]:
    """The ``skinlab`` modules the code ``tree`` imports (with their parent packages), anywhere
    in it: ``import skinlab.x``, ``from skinlab import x`` (``x`` a module or an attribute of
    ``skinlab``), ``from skinlab.x import y``, and relative imports of the module ``importer``."""
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            bases = [a.name for a in node.names]
            names: list[str] = []
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                if importer is None:
                    continue  # a relative import outside the package (a chapter) imports no skinlab
                file = module_file(importer, package)
                anchor = importer if file is not None and file.name == "__init__.py" else importer.rpartition(".")[0]
                anchor_parts = anchor.split(".")
                if node.level - 1 >= len(anchor_parts):
                    continue
                anchor = ".".join(anchor_parts[:len(anchor_parts) - (node.level - 1)])
                base = f"{anchor}.{node.module}" if node.module else anchor
            else:
                base = node.module or ""
            bases = [base]
            names = [f"{base}.{a.name}" for a in node.names if a.name != "*"]
        else:
            continue
        for name in bases + names:
            if name.split(".")[0] == PACKAGE and module_file(name, package) is not None:
                found.update(_with_parents(name))
    return found


def _imports_of_module(name: str, package: Path) -> set[str]:
    path = module_file(name, package)
    return imports_in(ast.parse(path.read_bytes(), filename=str(path)), name, package)


def imported_modules(roots, package: Path | None = None) -> tuple[str, ...]:
    """``roots`` (``skinlab`` module names) and every ``skinlab`` module they import, directly or
    not, sorted. A root that does not exist is an error: a typo must not shrink a cache key."""
    package = Path(package) if package is not None else package_dir()
    todo = []
    for root in roots:
        if module_file(root, package) is None:
            raise ValueError(f"{root}: no such module in {package}")
        todo += _with_parents(root)
    seen: set[str] = set()
    while todo:
        name = todo.pop()
        if name in seen or module_file(name, package) is None:
            continue  # done, or a package folder without __init__.py (no code of its own)
        seen.add(name)
        todo += sorted(_imports_of_module(name, package) - seen)
    return tuple(sorted(seen))


# A MyST code cell: ```{code-cell} (or a longer fence) ... the same fence.
_CODE_CELL = re.compile(r"^(?P<fence>`{3,})\{code-cell\}[^\n]*\n(?P<body>.*?)^(?P=fence)[ \t]*$", re.M | re.S)


def _cell_source(body: str) -> str:
    """The Python of a MyST code cell's body: without its options (``:key: value`` lines or a
    ``---`` YAML block at the top) and with IPython's ``%magic`` and ``!shell`` lines blanked."""
    lines = body.split("\n")
    if lines and lines[0].strip() == "---":
        end = next((i for i in range(1, len(lines)) if lines[i].strip() == "---"), 0)
        lines = lines[end + 1:]
    else:
        while lines and re.match(r"^:[\w-]+:", lines[0]):
            lines = lines[1:]
    return "\n".join("" if line.lstrip().startswith(("%", "!")) else line for line in lines)


def code_cells(chapter: Path) -> list[str]:
    """The Python source of each code cell of the MyST chapter ``chapter``, in order."""
    return [_cell_source(cell.group("body"))
            for cell in _CODE_CELL.finditer(Path(chapter).read_text(encoding="utf-8"))]


def chapter_imports(chapter: Path, package: Path | None = None) -> set[str]:
    """The ``skinlab`` modules the code cells of the MyST chapter ``chapter`` import."""
    package = Path(package) if package is not None else package_dir()
    found: set[str] = set()
    for i, source in enumerate(code_cells(chapter), 1):
        try:
            tree = ast.parse(source)
        except SyntaxError as e:
            raise ValueError(f"{chapter}: code cell {i} is not Python ({e.msg}, line {e.lineno})") from None
        found |= imports_in(tree, None, package)
    return found


def chapters_modules(chapters, package: Path | None = None) -> tuple[str, ...]:
    """Every ``skinlab`` module the chapters run: what their code cells import, transitively."""
    roots: set[str] = set()
    for chapter in chapters:
        roots |= chapter_imports(chapter, package)
    return imported_modules(sorted(roots), package)


def code_hash(modules, package: Path | None = None) -> str:
    """Short hash of the source of the ``skinlab`` modules ``modules`` (their file paths in the
    package and their bytes, in name order: the same for the same code wherever it is)."""
    package = Path(package) if package is not None else package_dir()
    h = hashlib.sha256()
    for name in sorted(set(modules)):
        path = module_file(name, package)
        if path is None:
            raise ValueError(f"{name}: no such module in {package}")
        h.update(path.relative_to(package).as_posix().encode() + b"\0" + path.read_bytes() + b"\0")
    return h.hexdigest()[:8]
