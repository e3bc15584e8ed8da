"""The in-kernel guard: the answer must not use the reference, and each call has a time limit.

This runs in the student's kernel, so it is advice for the student, not a verdict: the verdict
is computed by :mod:`skinlab.grading.verifier`, in a process that never runs student code.
"""

from __future__ import annotations

import ast
import contextlib
import importlib.util
import linecache
import os
import re
import signal
import sys
import threading
import types

from . import exercise

TIME_LIMIT_S = 10.0
"""Seconds one call of a student's function may take (the inputs are tiny: ms are normal)."""

# Which code an answer must not run: each exercise declares it (``exercise.Exercise.answers``).
_SELF = "skinlab.grading"
_SELF_PREFIX = "skinlab.grading."


class ReferenceUsedError(AssertionError):
    """The answer calls the reference implementation instead of being the student's own."""


class TooSlowError(AssertionError):
    """A call to the student's code did not return within ``TIME_LIMIT_S``."""


class _TimeUp(BaseException):
    # BaseException: a student's ``except Exception`` must not swallow the time limit.
    pass


# The answers of one exercise share a verdict: a train_one_epoch that calls the reference
# costs evaluate's points too (``exercise.siblings``).


class _Verdicts(dict):
    """Sticky verdicts (reference used / too slow) per exercise, for the life of the kernel."""

    def _key(self, name):
        found = exercise.exercise_of(name)
        return found.id if found else name

    def __contains__(self, name):
        return super().__contains__(self._key(name))

    def __getitem__(self, name):
        return super().__getitem__(self._key(name))

    def __setitem__(self, name, message):
        super().__setitem__(self._key(name), message)


_VERDICTS = _Verdicts()  # the answer used the reference: per exercise
_TIMEOUTS: dict[str, str] = {}  # the answer did not return in time: per function


def reset() -> None:
    """Forget earlier verdicts (reference used / too slow); for tests of this module."""
    _VERDICTS.clear()
    _TIMEOUTS.clear()


# ============================================================================ the guard


def _reference_paths(name: str) -> tuple[str, ...]:
    paths = []
    for mod in exercise.reference_modules(name):
        try:
            spec = importlib.util.find_spec(mod)
        except (ImportError, ValueError):
            spec = None
        if spec is None:
            continue
        if spec.submodule_search_locations:  # a package: everything under it
            paths += [os.path.join(p, "") for p in spec.submodule_search_locations]
        elif spec.origin:
            paths.append(spec.origin)
    return tuple(paths)


def _fail(name: str, message: str, error=AssertionError):
    if error is TooSlowError:
        _TIMEOUTS[name] = message
    else:
        _VERDICTS[name] = message
    raise error(message)


def _reference_message(name: str, what: str) -> str:
    return (
        f"your {name} {what}: it uses the reference implementation in skinlab instead of your "
        f"own code, so this exercise scores 0. Write {name} yourself with numpy, pandas and torch "
        "(and do not import skinlab in your answer cell)."
    )


def _is_reference_object(value) -> str | None:
    """Dotted name of a skinlab module/function/class other than this module, else None."""
    if isinstance(value, types.ModuleType):
        modname = value.__name__
    else:
        modname = getattr(value, "__module__", None)
        if not isinstance(modname, str) or not (
            callable(value) or isinstance(value, type)
        ):
            return None
    if modname == "skinlab" or (modname.startswith("skinlab.") and modname != _SELF and not modname.startswith(_SELF_PREFIX)):
        label = getattr(value, "__qualname__", getattr(value, "__name__", ""))
        return modname if isinstance(value, types.ModuleType) else f"{modname}.{label}"
    if modname.split(".")[0] in exercise.blocked_packages() and modname.split(".")[0] != "skinlab":
        return f"{modname}.{getattr(value, '__qualname__', '')}"
    return None


def _code_objects(obj):
    """The code objects that make up a function, a functools.partial, a class's methods."""
    import functools

    seen = set()

    def walk_fn(fn):
        fn = inspect_unwrap(fn)
        if isinstance(fn, functools.partial):
            yield from walk_fn(fn.func)
            return
        code = getattr(fn, "__code__", None)
        if code is None or id(code) in seen:
            return
        seen.add(id(code))
        yield fn, code

    def inspect_unwrap(fn):
        while hasattr(fn, "__wrapped__") and fn.__wrapped__ is not fn:
            fn = fn.__wrapped__
        return getattr(fn, "__func__", fn)  # bound method → function

    if isinstance(obj, type):
        for klass in obj.__mro__:
            if klass.__module__ in ("builtins",) or klass.__module__.startswith("torch"):
                continue
            for attr in vars(klass).values():
                attr = getattr(attr, "__func__", attr)  # staticmethod/classmethod
                if callable(attr):
                    yield from walk_fn(attr)
    else:
        yield from walk_fn(obj)


def _nested_codes(code):
    yield code
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            yield from _nested_codes(const)


def _static_reference_use(name: str, obj) -> str | None:
    """Why ``obj`` visibly is, or uses, skinlab's reference (None if it does not)."""
    if isinstance(obj, type):
        for klass in obj.__mro__:
            ref = _is_reference_object(klass)
            if ref:
                return f"is (or inherits from) {ref}"
    ref = _is_reference_object(obj)
    if ref:
        return f"is {ref}"
    forbidden = _reference_paths(name)
    cell_files = set()
    for fn, code in _code_objects(obj):
        if forbidden and code.co_filename.startswith(forbidden):
            return f"is defined in {code.co_filename}"
        cell_files.add(code.co_filename)
        glb = getattr(fn, "__globals__", {})
        for sub in _nested_codes(code):
            for var in sub.co_names:
                if var in glb:
                    ref = _is_reference_object(glb[var])
                    if ref:
                        return f"uses {ref}"
        # Closures: a wrapper built around the reference.
        for cell in getattr(fn, "__closure__", None) or ():
            try:
                ref = _is_reference_object(cell.cell_contents)
            except ValueError:  # empty cell
                continue
            if ref:
                return f"wraps {ref}"
    for filename in cell_files:
        source = "".join(linecache.getlines(filename))
        why = _source_mentions_skinlab(source) if source else None
        if why:
            return why
    return None


def _source_mentions_skinlab(source: str) -> str | None:
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return None
    def forbidden(module: str) -> bool:
        return module.split(".")[0] in exercise.blocked_packages() and module != _SELF

    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if forbidden(alias.name):
                    return f"imports {alias.name}"
        elif isinstance(node, ast.ImportFrom):
            if node.module and forbidden(node.module) and not (
                node.module == "skinlab" and all(a.name == "grading" for a in node.names)
            ):
                return f"imports from {node.module}"
        elif isinstance(node, ast.Constant) and isinstance(node.value, str):
            # A module path in a string: importlib.import_module("skinlab.split") and the like.
            if re.fullmatch(r"\w+(\.\w+)*", node.value.strip()) and forbidden(node.value.strip()):
                return f"names the module {node.value!r}"
    return None


def own_work(name: str, obj) -> None:
    """Fail if ``obj`` (the student's answer called ``name``) is or visibly uses the reference."""
    if name in _VERDICTS:
        raise ReferenceUsedError(_VERDICTS[name])
    if name in _TIMEOUTS:
        raise TooSlowError(_TIMEOUTS[name])
    if obj is None:
        raise AssertionError(f"{name} is not defined: run your answer cell first")
    why = _static_reference_use(name, obj)
    if why:
        _fail(name, _reference_message(name, why), ReferenceUsedError)
    # The other answer of the same exercise, as the notebook defined it.
    main = sys.modules.get("__main__")
    for sibling in exercise.siblings(name):
        other = getattr(main, sibling, None)
        why = _static_reference_use(sibling, other) if callable(other) else None
        if why:
            _fail(name, _reference_message(sibling, why), ReferenceUsedError)


@contextlib.contextmanager
def _watch_reference(name: str):
    """Record the first call into the reference code while the block runs (a trace hook)."""
    forbidden = _reference_paths(name)
    hits: list[str] = []
    verdicts: dict = {}

    # A global trace function runs once per new Python frame (returning None skips line
    # tracing), much cheaper than a profiler that also sees every C call.
    def tracer(frame, event, arg):
        code = frame.f_code
        bad = verdicts.get(code)
        if bad is None:
            bad = verdicts[code] = bool(forbidden) and code.co_filename.startswith(forbidden)
        if bad and not hits:
            hits.append(f"{os.path.basename(code.co_filename)[:-3]}.{code.co_name}")
        return None

    previous = sys.gettrace()
    sys.settrace(tracer)
    try:
        yield hits
    finally:
        sys.settrace(previous)


@contextlib.contextmanager
def _time_limit(seconds: float):
    usable = hasattr(signal, "setitimer") and threading.current_thread() is threading.main_thread()
    if not usable:  # Windows or a worker thread: the kernel's cell timeout still applies
        yield
        return

    def on_alarm(signum, frame):
        raise _TimeUp()

    previous = signal.signal(signal.SIGALRM, on_alarm)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def call(name: str, fn, *args, _on: str = "", **kwargs):
    """Call the student's ``fn`` (answer ``name``) under the guard; ``_on`` describes the input."""
    if name in _VERDICTS or name in _TIMEOUTS:
        own_work(name, fn)
    with _watch_reference(name) as hits:
        try:
            with _time_limit(TIME_LIMIT_S):
                result = fn(*args, **kwargs)
        except _TimeUp:
            _fail(
                name,
                f"your {name} did not finish within {TIME_LIMIT_S:g} s{' on ' + _on if _on else ''} "
                "(the inputs are tiny: it should take milliseconds). An infinite loop? "
                f"The remaining tests of {name} are skipped.",
                TooSlowError,
            )
        except Exception as exc:
            if hits:
                _fail(name, _reference_message(name, f"calls {hits[0]}"), ReferenceUsedError)
            if _on and hasattr(exc, "add_note"):
                exc.add_note(f"(raised by your {name} on {_on})")
            raise
    if hits:
        _fail(name, _reference_message(name, f"calls {hits[0]}"), ReferenceUsedError)
    return result


def _construct(name: str, cls, *args, _on: str = ""):
    """Instantiate the student's class under the guard, and check it is an nn.Module."""
    import torch

    model = call(name, cls, *args, _on=_on)
    if not isinstance(model, torch.nn.Module):
        raise AssertionError(f"{name}(...) should create a torch.nn.Module; got {type(model).__name__}")
    return model
