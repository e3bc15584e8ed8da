"""Graded exercises: the checks behind the autograded test cells, and the instructor's commands.

**Checks** (``check_*``): each test cell of ``exercises/exN_*`` calls one of them with the
student's function or class. A check runs it on small generated inputs (no dataset needed),
compares it with the reference implementation in ``skinlab`` and raises ``AssertionError`` with a
message in the student's words (which lesion leaked into which split, which layer has the wrong
shape, that gradients were not zeroed...). The checks live here, not inline in the notebooks, so
that a hidden test is one short line (hidden inputs, not hidden logic) and failures read the same
everywhere. Students can read this module, as they can read the reference: the course is open.

Every call into student code is guarded:

* an answer that uses the reference package (``import skinlab``, an alias, a wrapper, importlib,
  a subclass...) fails every check of its exercise with "write your own", found both by reading
  the answer (its cell's source and the globals it uses) and by watching which code runs while it
  is called (a trace hook);
* a call that has not returned after ``TIME_LIMIT_S`` seconds fails ("an infinite loop?"), and
  later checks of that function fail at once instead of waiting again.

**Instructor commands** (``python -m skinlab.grading release|grade``): nbgrader run headless; see
``docs/GRADING.md``. ``skinlab.feedback.HideHiddenTests`` is the feedback preprocessor that keeps hidden tests out
of the students' feedback.
"""

from __future__ import annotations

import ast
import contextlib
import copy
import csv
import importlib.util
import linecache
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import types
from pathlib import Path

import numpy as np

ASSIGNMENTS = ("ex1_split", "ex2_class_weights", "ex3_lenet", "ex4_training", "ex5_gradcam")
TIME_LIMIT_S = 10.0
"""Seconds one call of a student's function may take (the inputs are tiny: ms are normal)."""

# Which code an answer must not run: the reference module of its exercise (and, for Grad-CAM,
# the library the reference reproduces).
REFERENCE_MODULES = {
    "split_by_lesion": ("skinlab.split",),
    "median_frequency_weights": ("skinlab.balance",),
    "LeNet": ("skinlab.models",),
    "train_one_epoch": ("skinlab.engine",),
    "evaluate": ("skinlab.engine",),
    "grad_cam": ("skinlab.gradcam", "pytorch_grad_cam"),
}
_SELF = "skinlab.grading"


class ReferenceUsedError(AssertionError):
    """The answer calls the reference implementation instead of being the student's own."""


class TooSlowError(AssertionError):
    """A call to the student's code did not return within ``TIME_LIMIT_S``."""


class _TimeUp(BaseException):
    # BaseException: a student's ``except Exception`` must not swallow the time limit.
    pass


# The answers of one exercise share a verdict: a train_one_epoch that calls the reference
# costs evaluate's points too.
_EXERCISE_OF = {"train_one_epoch": "training", "evaluate": "training"}
_SIBLINGS = {"train_one_epoch": ("evaluate",), "evaluate": ("train_one_epoch",)}


class _Verdicts(dict):
    """Sticky verdicts (reference used / too slow) per exercise, for the life of the kernel."""

    def _key(self, name):
        return _EXERCISE_OF.get(name, name)

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
    for mod in REFERENCE_MODULES[name]:
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
    if modname == "skinlab" or (modname.startswith("skinlab.") and modname != _SELF):
        label = getattr(value, "__qualname__", getattr(value, "__name__", ""))
        return modname if isinstance(value, types.ModuleType) else f"{modname}.{label}"
    if modname.split(".")[0] == "pytorch_grad_cam":
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
        return module.split(".")[0] in ("skinlab", "pytorch_grad_cam") and module != _SELF

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
            if re.fullmatch(r"(skinlab|pytorch_grad_cam)(\.\w+)*", node.value.strip()) and forbidden(node.value.strip()):
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
    for sibling in _SIBLINGS.get(name, ()):
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


# ============================================================================ ex1: split_by_lesion

SPLITS = ("train", "val", "test")
# Lesions per class (rare classes ≥ 80 so that stratification can be told from luck) and the
# images a lesion can have; rare classes have one image per lesion, as most HAM10000 df and vasc
# lesions do, so a stratified split can hit their shares to within one image.
_DEMO_LESIONS = {"nv": 300, "mel": 100, "bkl": 100, "bcc": 90, "akiec": 80, "vasc": 80, "df": 80}
_MULTI_IMAGE = {"nv", "mel", "bkl"}


def make_lesion_metadata(seed: int = 0, scale: float = 1.0, max_images: int = 6):
    """HAM10000-like metadata (lesion_id, image_id, dx, age, sex) with rare classes, rows shuffled.

    The index is non-default (shuffled integers from 1000), so a split that ignores it shows.
    """
    import pandas as pd

    rng = np.random.default_rng(seed)
    rows = []
    lesion_numbers = rng.permutation(100_000)[:10_000]
    image_numbers = iter(rng.permutation(1_000_000)[:50_000])
    k = 0
    for dx, n_lesions in _DEMO_LESIONS.items():
        for _ in range(max(2, int(round(n_lesions * scale)))):
            lesion = f"HAM_{lesion_numbers[k]:07d}"
            k += 1
            n_images = 1
            if dx in _MULTI_IMAGE and rng.random() < 0.35:
                n_images = int(rng.integers(2, max_images + 1))
            for _ in range(n_images):
                rows.append((lesion, f"ISIC_{next(image_numbers):07d}", dx))
    df = pd.DataFrame(rows, columns=["lesion_id", "image_id", "dx"])
    df["age"] = rng.integers(5, 18, len(df)) * 5.0
    df["sex"] = rng.choice(["male", "female"], len(df))
    df = df.iloc[rng.permutation(len(df))]
    df.index = pd.Index(1000 + rng.permutation(len(df)), name=None)
    return df


def _run_split(fn, metadata, _on, **kwargs):
    import pandas as pd

    result = call("split_by_lesion", fn, metadata, _on=_on, **kwargs)
    if not isinstance(result, pd.Series):
        raise AssertionError(
            f"split_by_lesion should return a pandas Series of 'train'/'val'/'test'; got "
            f"{type(result).__name__}"
        )
    if len(result) != len(metadata):
        raise AssertionError(
            f"split_by_lesion returned {len(result)} labels for {len(metadata)} rows: every row "
            "(image) needs exactly one split"
        )
    if not result.index.equals(metadata.index):
        raise AssertionError(
            "the returned Series must be indexed like metadata (same labels, same order): "
            "build it with index=metadata.index. The metadata in this test has index "
            f"{list(metadata.index[:3])}..., yours starts {list(result.index[:3])}"
        )
    bad = result[~result.isin(SPLITS)]
    if len(bad):
        raise AssertionError(
            f"every value must be 'train', 'val' or 'test'; row {bad.index[0]!r} is {bad.iloc[0]!r} "
            f"({len(bad)} such rows)"
        )
    return result


def check_split_output(split_by_lesion, seed: int = 0, scale: float = 1.0):
    """A Series of split names, one per row, indexed like the metadata; the input untouched."""
    own_work("split_by_lesion", split_by_lesion)
    meta = make_lesion_metadata(seed, scale)
    before = meta.copy(deep=True)
    result = _run_split(split_by_lesion, meta, _on=f"metadata of {len(meta)} rows", seed=seed)
    missing = [s for s in SPLITS if s not in set(result)]
    if missing:
        raise AssertionError(f"no image was assigned to {missing}: all three splits must be used")
    _assert_untouched(meta, before)


def _assert_untouched(meta, before):
    import pandas as pd

    if list(meta.columns) != list(before.columns):
        added = sorted(set(meta.columns) - set(before.columns))
        raise AssertionError(
            f"split_by_lesion modified its input: metadata now has columns {added or list(meta.columns)}; "
            "work on a copy (the caller's DataFrame must not change)"
        )
    try:
        pd.testing.assert_frame_equal(meta, before)
    except AssertionError:
        raise AssertionError(
            "split_by_lesion modified its input DataFrame (values, order or index changed): work "
            "on a copy, e.g. metadata.copy() or metadata[[...]]"
        ) from None


def find_lesion_leaks(metadata, split) -> dict:
    """{lesion_id: {split: n_images}} for lesions whose images are in more than one split."""
    table = (
        metadata.assign(_split=split.to_numpy()).groupby(["lesion_id", "_split"]).size().unstack(fill_value=0)
    )
    leaky = table[(table > 0).sum(axis=1) > 1]
    return {lesion: {s: int(n) for s, n in row.items() if n} for lesion, row in leaky.iterrows()}


def check_split_no_leak(split_by_lesion, seed: int = 0, fractions=(0.64, 0.16, 0.20), scale: float = 1.0, max_images: int = 6):
    """No lesion has images in two splits."""
    own_work("split_by_lesion", split_by_lesion)
    meta = make_lesion_metadata(seed, scale, max_images)
    result = _run_split(
        split_by_lesion, meta, _on=f"metadata of {len(meta)} rows, fractions={fractions}, seed={seed}",
        fractions=fractions, seed=seed,
    )
    leaks = find_lesion_leaks(meta, result)
    if leaks:
        multi = int((meta.groupby("lesion_id").size() > 1).sum())
        lesion, where = next(iter(leaks.items()))
        spread = ", ".join(f"{n} in {s}" for s, n in where.items())
        raise AssertionError(
            f"lesion {lesion} leaks: its {sum(where.values())} images are split across "
            f"{' and '.join(where)} ({spread}); {len(leaks)} of the {multi} lesions with "
            "several images leak like this. Split lesions, not images: all images of a lesion "
            "must go to the same split (group by lesion_id), else the test set contains "
            "near-copies of training images."
        )


def check_split_fractions(split_by_lesion, fractions=(0.64, 0.16, 0.20), seed: int = 0, tolerance: float = 0.02):
    """Each split holds its fraction of the images, within ``tolerance``."""
    own_work("split_by_lesion", split_by_lesion)
    meta = make_lesion_metadata(seed)
    result = _run_split(
        split_by_lesion, meta, _on=f"fractions={fractions}, seed={seed}", fractions=fractions, seed=seed
    )
    shares = result.value_counts(normalize=True)
    for name, target in zip(SPLITS, fractions):
        got = float(shares.get(name, 0.0))
        if abs(got - target) > tolerance:
            raise AssertionError(
                f"with fractions={tuple(fractions)} the {name} split holds {got:.1%} of the images; "
                f"expected {target:.0%} (±{tolerance:.0%}). Use the fractions argument "
                "(train, val, test), measured in images."
            )


def check_split_stratified(split_by_lesion, seed: int = 0, tolerance: float = 0.02):
    """Every class is spread over the splits in the target fractions (stratified by dx).

    A class may miss its target share by ``tolerance`` plus one of its largest lesions (a lesion
    cannot be cut in two).
    """
    own_work("split_by_lesion", split_by_lesion)
    meta = make_lesion_metadata(seed)
    fractions = (0.64, 0.16, 0.20)
    result = _run_split(split_by_lesion, meta, _on=f"seed={seed}", fractions=fractions, seed=seed)
    counts = meta.assign(_split=result.to_numpy()).groupby(["dx", "_split"]).size().unstack(fill_value=0)
    sizes = meta.groupby("lesion_id").size()
    largest = meta.drop_duplicates("lesion_id").set_index("lesion_id")["dx"].to_frame().assign(
        n=sizes).groupby("dx")["n"].max()
    worst = None
    for dx, row in counts.iterrows():
        n = row.sum()
        allowed = tolerance + largest[dx] / n
        for name, target in zip(SPLITS, fractions):
            share = row.get(name, 0) / n
            excess = abs(share - target) - allowed
            if excess > 0 and (worst is None or excess > worst[0]):
                worst = (excess, dx, name, share, target, n, allowed)
    if worst:
        _, dx, name, share, target, n, allowed = worst
        raise AssertionError(
            f"class {dx!r} ({n} images) has {share:.1%} of its images in {name}; expected "
            f"{target:.0%} (±{allowed:.1%}). Stratify by dx: split each class's lesions "
            "separately in the target fractions, so rare classes are present in every split "
            "in the same proportion."
        )


def check_split_deterministic(split_by_lesion, seed: int = 0):
    """Same seed, same split; another seed, another split; the input untouched."""
    own_work("split_by_lesion", split_by_lesion)
    meta = make_lesion_metadata(seed, scale=0.5)
    before = meta.copy(deep=True)
    first = _run_split(split_by_lesion, meta, _on=f"seed={seed}", seed=seed)
    _assert_untouched(meta, before)
    again = _run_split(split_by_lesion, meta, _on=f"seed={seed} (second call)", seed=seed)
    if not first.equals(again):
        raise AssertionError(
            f"two calls with seed={seed} gave different splits ({int((first != again).sum())} rows "
            "differ): draw all randomness from the seed, e.g. rng = np.random.default_rng(seed)"
        )
    other = _run_split(split_by_lesion, meta, _on=f"seed={seed + 1}", seed=seed + 1)
    if first.equals(other):
        raise AssertionError(
            f"seed={seed} and seed={seed + 1} gave the same split: use the seed argument for the "
            "shuffling instead of a fixed seed"
        )


# ============================================================================ ex2: median_frequency_weights


def _weights_reference(labels, num_classes):
    from skinlab.balance import median_frequency_weights

    return median_frequency_weights(labels, num_classes)


def _run_weights(fn, labels, num_classes, _on):
    import torch

    result = call("median_frequency_weights", fn, labels, num_classes, _on=_on)
    if not isinstance(result, torch.Tensor):
        raise AssertionError(
            f"median_frequency_weights should return a torch.Tensor (it is passed to "
            f"nn.CrossEntropyLoss(weight=...)); got {type(result).__name__}"
        )
    if result.dtype != torch.float32:
        raise AssertionError(
            f"the weights should be float32 (the dtype of the model's logits); got {result.dtype}"
        )
    if tuple(result.shape) != (num_classes,):
        raise AssertionError(
            f"expected one weight per class, shape ({num_classes},); got {tuple(result.shape)}"
        )
    return result


def check_weights_output(median_frequency_weights):
    """A float32 tensor of shape (num_classes,), from a list, a numpy array or a tensor of labels."""
    import torch

    own_work("median_frequency_weights", median_frequency_weights)
    labels = [0, 1, 1, 2, 2, 2, 3, 3, 3, 3]
    for kind, value in (
        ("a list", labels),
        ("a numpy array", np.array(labels)),
        ("a torch tensor", torch.tensor(labels)),
    ):
        _run_weights(median_frequency_weights, value, 4, _on=f"labels given as {kind}")


def check_weights_values(median_frequency_weights, labels, num_classes: int):
    """Equal to w_c = median(f) / f_c with f_c = count_c / N (to 1e-6 relative)."""
    import torch

    own_work("median_frequency_weights", median_frequency_weights)
    labels = list(np.asarray(labels).tolist())
    expected = _weights_reference(labels, num_classes)
    counts = np.bincount(labels, minlength=num_classes)
    shown = labels if len(labels) <= 12 else f"{len(labels)} labels with counts {counts.tolist()}"
    got = _run_weights(median_frequency_weights, list(labels), num_classes, _on=f"labels={shown}")
    got = got.detach().cpu()
    if torch.allclose(got, expected, rtol=1e-6, atol=1e-6):
        return
    c = int((got - expected).abs().argmax())
    freq = counts / counts.sum()
    hint = ""
    if np.allclose(got.numpy(), 1 / freq, rtol=1e-4):
        hint = " Your weights are 1/f_c: multiply by the median frequency, so the median class weighs 1."
    elif np.allclose(got.numpy(), (1 / freq) / (1 / freq).sum(), rtol=1e-4):
        hint = " Your weights are normalised to sum to 1; normalise by the median frequency instead."
    elif np.allclose(got.numpy(), freq / np.median(freq), rtol=1e-4):
        hint = " Your weights are upside down (f_c / median): rare classes must get the larger weights."
    elif np.allclose(np.sort(got.numpy()), np.sort(expected.numpy()), rtol=1e-4):
        hint = " The values are right but in the wrong order: weight c must belong to class index c."
    raise AssertionError(
        f"for labels={shown} (num_classes={num_classes}): the weight of class {c} is "
        f"{float(got[c]):.6g}, expected {float(expected[c]):.6g} (off by {float(got[c] - expected[c]):+.3g}). "
        f"Expected all: {[round(float(v), 4) for v in expected]}, yours: {[round(float(v), 4) for v in got]}."
        + hint
    )


def check_weights_missing_class(median_frequency_weights, labels=(0, 0, 2, 2, 3), num_classes: int = 4):
    """A class without samples raises ValueError that names it."""
    own_work("median_frequency_weights", median_frequency_weights)
    counts = np.bincount(list(labels), minlength=num_classes)
    empty = [int(c) for c in np.flatnonzero(counts == 0)]
    try:
        result = call("median_frequency_weights", median_frequency_weights, list(labels), num_classes,
                      _on=f"labels={list(labels)}, num_classes={num_classes}")
    except ValueError as exc:
        if not all(str(c) in str(exc) for c in empty):
            raise AssertionError(
                f"the ValueError should name the empty class(es) {empty}; its message was: {exc}"
            ) from None
        return
    raise AssertionError(
        f"labels={list(labels)} with num_classes={num_classes} has no sample of class {empty}: "
        f"its frequency is 0 and its weight would be infinite. Raise a ValueError naming the "
        f"class instead (yours returned {result!r})."
    )


# ============================================================================ ex3: LeNet

_LENET_LAYERS = [  # (kind, in, out, kernel), in registration order
    ("Conv2d", 3, 6, 5),
    ("Conv2d", 6, 16, 5),
    ("Linear", 400, 120, None),
    ("Linear", 120, 84, None),
    ("Linear", 84, "num_classes", None),
]
_LENET_SHAPES = ["(B, 6, 28, 28)", "(B, 16, 10, 10)", "(B, 120)", "(B, 84)", "(B, num_classes)"]
_ORDINAL = ["1st", "2nd", "3rd", "4th", "5th", "6th", "7th"]


def lenet_parameter_count(num_classes: int = 7) -> int:
    """Hand count: conv weights k·k·in·out + out biases, linear in·out + out."""
    return (5 * 5 * 3 * 6 + 6) + (5 * 5 * 6 * 16 + 16) + (400 * 120 + 120) + (120 * 84 + 84) + (84 * num_classes + num_classes)


def _lenet_layers(model):
    import torch.nn as nn

    return [m for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]


def _describe(m):
    import torch.nn as nn

    if isinstance(m, nn.Conv2d):
        return f"Conv2d({m.in_channels}→{m.out_channels}, kernel {m.kernel_size[0]}x{m.kernel_size[1]}, stride {m.stride[0]}, padding {m.padding[0]})"
    return f"Linear({m.in_features}→{m.out_features})"


def check_lenet_layers(LeNet, num_classes: int = 7):
    """Two 5x5 convolutions (3→6, 6→16), then linear 400→120→84→num_classes, each output shaped right."""
    import torch
    import torch.nn as nn

    own_work("LeNet", LeNet)
    model = _construct("LeNet", LeNet, num_classes, _on=f"num_classes={num_classes}")
    layers = _lenet_layers(model)
    if len(layers) != 5:
        raise AssertionError(
            f"LeNet-5 has 2 convolutions and 3 linear layers; yours has {len(layers)} such layers: "
            + ", ".join(_describe(m) for m in layers)
        )
    for i, (m, (kind, cin, cout, k)) in enumerate(zip(layers, _LENET_LAYERS)):
        cout = num_classes if cout == "num_classes" else cout
        ok = type(m).__name__ == kind
        if ok and kind == "Conv2d":
            ok = (m.in_channels, m.out_channels, tuple(m.kernel_size), tuple(m.stride), tuple(m.padding)) == (cin, cout, (k, k), (1, 1), (0, 0))
        elif ok:
            ok = (m.in_features, m.out_features) == (cin, cout)
        if not ok:
            want = (f"Conv2d({cin}→{cout}, kernel {k}x{k}, stride 1, padding 0)" if kind == "Conv2d"
                    else f"Linear({cin}→{cout})")
            extra = " (16 channels x 5 x 5 after the second pooling = 400)" if cin == 400 else ""
            raise AssertionError(f"the {_ORDINAL[i]} layer should be {want}{extra}; yours is {_describe(m)}")
    outputs = {}
    def recorder(i):
        def hook(module, inputs, output):
            outputs.setdefault(i, tuple(output.shape))  # returns None: the output is kept

        return hook

    hooks = [m.register_forward_hook(recorder(i)) for i, m in enumerate(layers)]
    try:
        out = call("LeNet", model, torch.randn(2, 3, 32, 32), _on="a batch of 2 images 3x32x32")
    finally:
        for h in hooks:
            h.remove()
    expected = [(2, 6, 28, 28), (2, 16, 10, 10), (2, 120), (2, 84), (2, num_classes)]
    for i, want in enumerate(expected):
        if outputs.get(i) != want:
            raise AssertionError(
                f"the output of the {_ORDINAL[i]} layer ({_describe(layers[i])}) should have shape "
                f"{_LENET_SHAPES[i].replace('num_classes', str(num_classes))} for B=2; yours is {outputs.get(i)}"
                + (". Did you apply max-pooling (2x2) after each convolution?" if i == 1 else "")
            )
    if tuple(out.shape) != (2, num_classes):
        raise AssertionError(f"the model's output should be (2, {num_classes}); got {tuple(out.shape)}")


def check_lenet_parameters(LeNet):
    """61,751 parameters for 7 classes; which layer is off if not."""
    own_work("LeNet", LeNet)
    model = _construct("LeNet", LeNet, _on="LeNet() with the default num_classes")
    total = sum(p.numel() for p in model.parameters())
    expected = lenet_parameter_count(7)
    if total != expected:
        detail = "; ".join(
            f"{_describe(m)}: {sum(p.numel() for p in m.parameters())}" for m in _lenet_layers(model)
        )
        raise AssertionError(
            f"LeNet() should have {expected:,} parameters (7 classes); yours has {total:,}. "
            f"Per layer: {detail}. Expected: conv 456, conv 2,416, linear 48,120, 10,164, 595."
        )


def check_lenet_output(LeNet, num_classes: int = 7, batch: int = 5):
    """Output (batch, num_classes) on 3x32x32 images, for any num_classes; default 7."""
    import torch

    own_work("LeNet", LeNet)
    if num_classes == 7:
        model = _construct("LeNet", LeNet, _on="LeNet()")
    else:
        model = _construct("LeNet", LeNet, num_classes, _on=f"LeNet({num_classes})")
    out = call("LeNet", model, torch.randn(batch, 3, 32, 32), _on=f"a batch of {batch} images")
    if not isinstance(out, torch.Tensor) or tuple(out.shape) != (batch, num_classes):
        shape = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
        raise AssertionError(
            f"LeNet({num_classes}) on a batch of {batch} images should output ({batch}, {num_classes}) "
            f"logits; got {shape}" + (" — use the num_classes argument for the last layer" if num_classes != 7 else "")
        )


def check_lenet_logits(LeNet, seed: int = 0):
    """The model returns logits: no softmax (or log-softmax) at the end."""
    import torch

    own_work("LeNet", LeNet)
    torch.manual_seed(seed)
    model = _construct("LeNet", LeNet, _on="LeNet()")
    out = call("LeNet", model, 3 * torch.randn(8, 3, 32, 32), _on="a batch of 8 images").detach()
    if (out >= 0).all() and torch.allclose(out.sum(1), torch.ones(len(out)), atol=1e-4):
        raise AssertionError(
            "every output row is non-negative and sums to 1: your model ends with softmax. Return "
            "the raw scores (logits): nn.CrossEntropyLoss applies log-softmax itself"
        )
    if torch.allclose(out.exp().sum(1), torch.ones(len(out)), atol=1e-4):
        raise AssertionError(
            "your outputs are log-probabilities (they end with log_softmax): return the raw "
            "scores; nn.CrossEntropyLoss applies log-softmax itself"
        )


def _lenet_forward(params, x, relus=(True, True, True, True), pool="max"):
    import torch.nn.functional as F

    w1, b1, w2, b2, w3, b3, w4, b4, w5, b5 = params
    act = [F.relu if r else (lambda t: t) for r in relus]
    down = F.max_pool2d if pool == "max" else F.avg_pool2d
    x = down(act[0](F.conv2d(x, w1, b1)), 2)
    x = down(act[1](F.conv2d(x, w2, b2)), 2)
    x = x.flatten(1)
    x = act[2](F.linear(x, w3, b3))
    x = act[3](F.linear(x, w4, b4))
    return F.linear(x, w5, b5)


def _params_by_shape(model, num_classes):
    shapes = [(6, 3, 5, 5), (6,), (16, 6, 5, 5), (16,), (120, 400), (120,), (84, 120), (84,), (num_classes, 84), (num_classes,)]
    pool = list(model.parameters())
    chosen = []
    for shape in shapes:
        match = next((p for p in pool if tuple(p.shape) == shape), None)
        if match is None:
            raise AssertionError(
                f"your model has no parameter of shape {shape} (LeNet-5's layers, in order: "
                f"{shapes}): check the layer sizes first"
            )
        pool.remove(match)
        chosen.append(match)
    return chosen


def check_lenet_equivalent(LeNet, seed: int = 0, num_classes: int = 7, batch: int = 4):
    """With the same weights, the student's LeNet computes what the reference LeNet computes (1e-6)."""
    import torch
    from skinlab.models import LeNet as ReferenceLeNet

    own_work("LeNet", LeNet)
    torch.manual_seed(seed)
    model = _construct("LeNet", LeNet, num_classes, _on=f"LeNet({num_classes})")
    params = [p.detach().clone() for p in _params_by_shape(model, num_classes)]
    reference = ReferenceLeNet(num_classes)
    with torch.no_grad():
        for p, value in zip(reference.parameters(), params):
            p.copy_(value)
    x = torch.randn(batch, 3, 32, 32, generator=torch.Generator().manual_seed(seed))
    model.eval()
    with torch.no_grad():
        got = call("LeNet", model, x.clone(), _on=f"a batch of {batch} images").detach()
        want = reference.eval()(x.clone())
    if got.shape == want.shape and torch.allclose(got, want, atol=1e-6, rtol=1e-5):
        return
    diff = (got - want).abs().max().item() if got.shape == want.shape else float("nan")
    hint = ""
    with torch.no_grad():
        names = ["first convolution", "second convolution", "first linear layer", "second linear layer"]
        for i in range(4):
            relus = tuple(j != i for j in range(4))
            if got.shape == want.shape and torch.allclose(got, _lenet_forward(params, x, relus), atol=1e-5):
                hint = f" Your network has no ReLU after the {names[i]}."
        if got.shape == want.shape and torch.allclose(got, _lenet_forward(params, x, pool="avg"), atol=1e-5):
            hint = " You used average pooling; LeNet here uses max-pooling (nn.MaxPool2d(2))."
        if got.shape == want.shape and torch.allclose(got, torch.softmax(want, 1), atol=1e-5):
            hint = " Your model ends with softmax; return logits."
    raise AssertionError(
        f"with the same weights, your LeNet's outputs differ from LeNet-5's by up to {diff:.3g}. "
        "Check the order conv → ReLU → max-pool (twice), flatten, linear → ReLU, linear → ReLU, "
        "linear (no activation at the end)." + hint
    )


# ============================================================================ ex4: training loop


def _tiny_mlp(seed: int, dropout: float = 0.0, batchnorm: bool = True):
    """8 → 16 → 3 MLP, optionally with BatchNorm and Dropout, seeded."""
    import torch
    import torch.nn as nn

    torch.manual_seed(seed)
    layers = [nn.Linear(8, 16)]
    if batchnorm:
        layers.append(nn.BatchNorm1d(16))
    layers.append(nn.ReLU())
    if dropout:
        layers.append(nn.Dropout(dropout))
    layers.append(nn.Linear(16, 3))
    return nn.Sequential(*layers)


def _tiny_loader(seed: int, n: int = 26, batch_size: int = 8):
    """A DataLoader in a fixed order (no shuffling): n samples, a short last batch."""
    import torch
    from torch.utils.data import DataLoader, TensorDataset

    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 8, generator=g)
    y = torch.randint(0, 3, (n,), generator=g)
    return DataLoader(TensorDataset(x, y), batch_size=batch_size, shuffle=False)


def _as_number(value, what: str, name: str) -> float:
    import numbers

    import torch

    if isinstance(value, torch.Tensor):
        raise AssertionError(
            f"{name} should return Python numbers; its {what} is a tensor ({value!r}): use .item()"
        )
    if not isinstance(value, numbers.Real):
        raise AssertionError(f"{name} should return (mean_loss, accuracy) as numbers; its {what} is {value!r}")
    return float(value)


def _unpack(result, name: str):
    if not isinstance(result, tuple) or len(result) != 2:
        raise AssertionError(f"{name} should return a tuple (mean_loss, accuracy); got {result!r}")
    return _as_number(result[0], "mean loss", name), _as_number(result[1], "accuracy", name)


def _reference_train(model, loader, criterion, optimizer, zero_grad=True, train_mode=True):
    """The reference epoch, or a variant with a classic mistake (to name the student's)."""
    import torch

    if zero_grad and train_mode:
        from skinlab.engine import train_one_epoch

        return train_one_epoch(model, loader, criterion, optimizer, torch.device("cpu"))
    model.train(train_mode)
    total, correct, seen = 0.0, 0, 0
    for x, y in loader:
        if zero_grad:
            optimizer.zero_grad()
        logits = model(x)
        loss = criterion(logits, y)
        loss.backward()
        optimizer.step()
        total += loss.item() * len(y)
        correct += (logits.argmax(1) == y).sum().item()
        seen += len(y)
    return total / seen, correct / seen


def _max_param_diff(a, b) -> float:
    return max((p - q).abs().max().item() for p, q in zip(a.parameters(), b.parameters()))


def check_train_matches(train_one_epoch, seed: int = 0, n: int = 26, batch_size: int = 8, momentum: float = 0.9):
    """After one epoch the parameters equal the reference's (same start, same batches; 1e-6)."""
    import torch

    own_work("train_one_epoch", train_one_epoch)

    def setup():
        model = _tiny_mlp(seed)
        opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=momentum)
        return model, opt

    ref_model, ref_opt = setup()
    ref_loss, ref_acc = _reference_train(ref_model, _tiny_loader(seed, n, batch_size), torch.nn.CrossEntropyLoss(), ref_opt)
    model, opt = setup()
    model.eval()  # the student's function must switch to training mode itself
    result = call("train_one_epoch", train_one_epoch, model, _tiny_loader(seed, n, batch_size),
                  torch.nn.CrossEntropyLoss(), opt, torch.device("cpu"),
                  _on=f"{n} samples in batches of {batch_size}")
    diff = _max_param_diff(model, ref_model)
    if diff > 1e-6:
        fresh, _ = setup()
        if _max_param_diff(model, fresh) == 0:
            raise AssertionError(
                "the parameters did not change during the epoch: call loss.backward() and then "
                "optimizer.step() for every batch"
            )
        for variant, message in (
            (dict(zero_grad=False), "gradients were not zeroed: call optimizer.zero_grad() before "
             "each loss.backward(), otherwise every step also applies the gradients of all earlier batches"),
            (dict(train_mode=False), "the model was in evaluation mode while training (BatchNorm "
             "used its running statistics): call model.train() at the start of train_one_epoch"),
        ):
            m, o = setup()
            _reference_train(m, _tiny_loader(seed, n, batch_size), torch.nn.CrossEntropyLoss(), o, **variant)
            if _max_param_diff(model, m) < 1e-6:
                raise AssertionError(message)
        raise AssertionError(
            f"after one epoch your parameters differ from the reference's by up to {diff:.3g} "
            "(same model, same batches, same optimizer). Each batch: zero the gradients, forward, "
            "loss, backward, optimizer.step(); one pass over the loader."
        )
    loss, acc = _unpack(result, "train_one_epoch")
    if abs(loss - ref_loss) > 1e-6 * max(1.0, abs(ref_loss)) or abs(acc - ref_acc) > 1e-6:
        raise AssertionError(
            f"the parameters are right, but train_one_epoch returned (loss={loss:.6g}, "
            f"accuracy={acc:.6g}); expected ({ref_loss:.6g}, {ref_acc:.6g}): the per-sample mean "
            "of the losses computed during the epoch, and the fraction of samples predicted right"
        )


def _per_sample_expectations(model, loader, criterion):
    import torch

    with torch.no_grad():
        losses, correct, batch_means = [], 0, []
        for x, y in loader:
            logits = model(x)
            losses.append(criterion(logits, y).item() * len(y))
            batch_means.append(criterion(logits, y).item())
            correct += (logits.argmax(1) == y).sum().item()
    n = len(loader.dataset)
    return sum(losses) / n, correct / n, float(np.mean(batch_means))


def _explain_means(name, loss, acc, want_loss, want_acc, mean_of_means, n, batch_size):
    if abs(loss - want_loss) > 1e-5 * max(1, abs(want_loss)):
        hint = ""
        if abs(loss - mean_of_means) < 1e-5:
            last = n % batch_size
            hint = (f" You averaged the batch means; the last batch has only {last} samples, so it "
                    f"must weigh {last}/{n}: add loss.item() * batch_size and divide by {n} at the end.")
        elif abs(loss - want_loss * n) < 1e-3 * n:
            hint = " That is the sum over samples: divide by the number of samples."
        raise AssertionError(
            f"{name} returned mean loss {loss:.6g}; expected {want_loss:.6g} (the mean over the {n} "
            f"samples, batches of {batch_size})." + hint
        )
    if abs(acc - want_acc) > 1e-6:
        hint = " Return a fraction in [0, 1], not a percentage." if abs(acc - 100 * want_acc) < 1e-4 else ""
        raise AssertionError(
            f"{name} returned accuracy {acc:.6g}; expected {want_acc:.6g} (correct predictions / "
            f"{n} samples)." + hint
        )


def check_train_returns(train_one_epoch, seed: int = 0, n: int = 26, batch_size: int = 8):
    """Returns (mean loss per sample, accuracy); a short last batch weighs by its size.

    The learning rate is 0, so the returned numbers depend on the averaging alone.
    """
    import torch

    own_work("train_one_epoch", train_one_epoch)
    model = _tiny_mlp(seed, batchnorm=False)
    want_loss, want_acc, mean_of_means = _per_sample_expectations(model, _tiny_loader(seed, n, batch_size), torch.nn.CrossEntropyLoss())
    opt = torch.optim.SGD(model.parameters(), lr=0.0)
    result = call("train_one_epoch", train_one_epoch, model, _tiny_loader(seed, n, batch_size),
                  torch.nn.CrossEntropyLoss(), opt, torch.device("cpu"),
                  _on=f"{n} samples in batches of {batch_size}")
    loss, acc = _unpack(result, "train_one_epoch")
    _explain_means("train_one_epoch", loss, acc, want_loss, want_acc, mean_of_means, n, batch_size)


def _record_modes(model):
    import torch

    seen = []
    handle = model.register_forward_pre_hook(
        lambda mod, inp: seen.append((mod.training, torch.is_grad_enabled()))
    )
    return seen, handle


def check_train_mode(train_one_epoch, seed: int = 0):
    """The model is in training mode during the epoch (it may be in eval mode when called)."""
    import torch

    own_work("train_one_epoch", train_one_epoch)
    model = _tiny_mlp(seed, dropout=0.5).eval()
    opt = torch.optim.SGD(model.parameters(), lr=0.01)
    seen, handle = _record_modes(model)
    try:
        call("train_one_epoch", train_one_epoch, model, _tiny_loader(seed), torch.nn.CrossEntropyLoss(),
             opt, torch.device("cpu"), _on="a model that starts in eval mode")
    finally:
        handle.remove()
    if not seen:
        raise AssertionError("train_one_epoch never called the model")
    if not all(training for training, _ in seen):
        raise AssertionError(
            "the model was in evaluation mode while training, so Dropout and BatchNorm behaved as "
            "at test time: call model.train() at the start of train_one_epoch"
        )
    if not all(grad for _, grad in seen):
        raise AssertionError("gradients were disabled during training: do not use torch.no_grad() in train_one_epoch")


def check_evaluate_matches(evaluate, seed: int = 0, n: int = 26, batch_size: int = 8):
    """(mean loss per sample, accuracy) in eval mode, equal to the reference's (1e-6)."""
    import torch
    from skinlab.engine import evaluate as reference_evaluate

    own_work("evaluate", evaluate)
    model = _tiny_mlp(seed, dropout=0.5)
    _warm_batchnorm(model, seed)
    model.train()
    want_loss, want_acc = reference_evaluate(copy.deepcopy(model), _tiny_loader(seed + 1, n, batch_size), torch.nn.CrossEntropyLoss(), torch.device("cpu"))
    probe = copy.deepcopy(model).eval()
    _, _, mean_of_means = _per_sample_expectations(probe, _tiny_loader(seed + 1, n, batch_size), torch.nn.CrossEntropyLoss())
    torch.manual_seed(seed)
    result = call("evaluate", evaluate, model, _tiny_loader(seed + 1, n, batch_size), torch.nn.CrossEntropyLoss(),
                  torch.device("cpu"), _on=f"{n} samples in batches of {batch_size}")
    loss, acc = _unpack(result, "evaluate")
    if abs(loss - want_loss) > 1e-5 * max(1, abs(want_loss)) and abs(loss - mean_of_means) > 1e-5:
        raise AssertionError(
            f"evaluate returned mean loss {loss:.6g}; expected {want_loss:.6g}. Is the model in "
            "evaluation mode (model.eval(): Dropout off, BatchNorm uses its running statistics)?"
        )
    _explain_means("evaluate", loss, acc, want_loss, want_acc, mean_of_means, n, batch_size)


def _warm_batchnorm(model, seed):
    """Give BatchNorm running statistics that differ from the batch statistics."""
    import torch

    g = torch.Generator().manual_seed(seed + 99)
    model.train()
    with torch.no_grad():
        for _ in range(3):
            model(2 + 3 * torch.randn(16, 8, generator=g))


def check_evaluate_mode(evaluate, seed: int = 0):
    """Eval mode and no autograd graph while evaluating; no parameter gets a .grad."""
    import torch

    own_work("evaluate", evaluate)
    model = _tiny_mlp(seed, dropout=0.5).train()
    seen, handle = _record_modes(model)
    try:
        call("evaluate", evaluate, model, _tiny_loader(seed), torch.nn.CrossEntropyLoss(), torch.device("cpu"),
             _on="a model that starts in training mode")
    finally:
        handle.remove()
    if not seen:
        raise AssertionError("evaluate never called the model")
    if any(training for training, _ in seen):
        raise AssertionError(
            "the model was in training mode during evaluate (Dropout active, BatchNorm using batch "
            "statistics): call model.eval() first"
        )
    if any(grad for _, grad in seen):
        raise AssertionError(
            "evaluate ran the model with gradients enabled: wrap the loop in `with torch.no_grad():` "
            "(no autograd graph: less memory, faster)"
        )
    if any(p.grad is not None for p in model.parameters()):
        raise AssertionError("evaluate created parameter gradients (.grad): do not call backward() when evaluating")


def check_evaluate_changes_nothing(evaluate, seed: int = 0):
    """Parameters and BatchNorm running statistics are the same after evaluate."""
    import torch

    own_work("evaluate", evaluate)
    model = _tiny_mlp(seed, dropout=0.5)
    _warm_batchnorm(model, seed)
    model.train()
    before = copy.deepcopy(model.state_dict())
    call("evaluate", evaluate, model, _tiny_loader(seed), torch.nn.CrossEntropyLoss(), torch.device("cpu"),
         _on="a model with BatchNorm")
    for key, value in model.state_dict().items():
        if not torch.equal(value, before[key]):
            what = ("BatchNorm running statistics" if "running" in key or "num_batches" in key
                    else "parameters")
            raise AssertionError(
                f"evaluate changed the model's {what} ({key}): "
                + ("the model was in training mode, so BatchNorm updated its statistics on the "
                   "evaluation data; call model.eval()" if what != "parameters"
                   else "evaluation must never update the model (no optimizer, no backward)")
            )


# ============================================================================ ex5: Grad-CAM


def _tiny_cnn(seed: int):
    """conv(3→4, 3x3, pad 1) → ReLU → conv(4→5, 3x3) → ReLU → global average → linear(5→3)."""
    import torch
    import torch.nn as nn

    torch.manual_seed(seed)
    return nn.Sequential(
        nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.Conv2d(4, 5, 3), nn.ReLU(),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(5, 3),
    ).eval()


def _cam_case(kind: str, seed: int):
    """(model, image (3, H, W), target layer, description)."""
    import torch

    g = torch.Generator().manual_seed(seed)
    if kind == "lenet":
        from skinlab.models import LeNet

        torch.manual_seed(seed)
        model = LeNet(7).eval()
        return model, torch.randn(3, 32, 32, generator=g), model.features.conv2, "LeNet, target layer features.conv2, a 3x32x32 image"
    model = _tiny_cnn(seed)
    return model, torch.randn(3, 12, 16, generator=g), model[2], "a small CNN, target layer its 2nd conv, a 3x12x16 image"


def _hook_counts(model):
    return [
        (len(m._forward_hooks), len(m._forward_pre_hooks), len(m._backward_hooks),
         len(getattr(m, "_backward_pre_hooks", {})))
        for m in model.modules()
    ]


def _cam_variant(model, image, layer, class_idx, relu=True, align_corners=False, softmax=False):
    """Grad-CAM by hand, with optional classic mistakes (to name the student's)."""
    import torch
    import torch.nn.functional as F

    store = {}
    handle = layer.register_forward_hook(lambda m, i, o: store.__setitem__("a", o))
    try:
        logits = model(image.unsqueeze(0))
    finally:
        handle.remove()
    scores = torch.softmax(logits, 1) if softmax else logits
    (grad,) = torch.autograd.grad(scores[0, class_idx], store["a"])
    with torch.no_grad():
        cam = (grad.mean((2, 3), keepdim=True) * store["a"]).sum(1, keepdim=True)
        if relu:
            cam = cam.clamp_min(0)
        cam = (cam - cam.min()) / (1e-7 + (cam - cam.min()).max())
        cam = F.interpolate(cam, size=image.shape[-2:], mode="bilinear", align_corners=align_corners)
        cam = (cam - cam.min()) / (1e-7 + (cam - cam.min()).max())
    return cam[0, 0].numpy()


def _run_cam(fn, model, image, layer, class_idx, what):
    import torch

    if class_idx is None:
        result = call("grad_cam", fn, model, image.clone(), layer, _on=what)
    else:
        result = call("grad_cam", fn, model, image.clone(), layer, class_idx, _on=f"{what}, class_idx={class_idx}")
    if isinstance(result, torch.Tensor):
        raise AssertionError("grad_cam should return a numpy array (use .detach().cpu().numpy()); got a tensor")
    if not isinstance(result, np.ndarray):
        raise AssertionError(f"grad_cam should return a numpy array (H, W); got {type(result).__name__}")
    want = tuple(image.shape[-2:])
    if result.shape != want:
        raise AssertionError(
            f"for {what} the heat map should have the image's shape (H, W) = {want}; yours is "
            f"{result.shape}: upsample the CAM to the input's height and width (in that order)"
        )
    if not np.isfinite(result).all():
        raise AssertionError(f"the heat map for {what} contains NaN or infinite values: add a small eps (1e-7) when dividing")
    if result.min() < -1e-6:
        raise AssertionError(
            f"the heat map has negative values (minimum {result.min():.3g}): apply ReLU to the "
            "weighted sum of activation maps before normalising, then min-max scale to [0, 1]"
        )
    if result.max() > 1 + 1e-5:
        raise AssertionError(f"the heat map should lie in [0, 1]; its maximum is {result.max():.4g}: min-max normalise it")
    return result


def check_cam_output(grad_cam, kind: str = "lenet", seed: int = 0):
    """A numpy array with the image's (H, W), values in [0, 1], maximum 1."""
    own_work("grad_cam", grad_cam)
    model, image, layer, what = _cam_case(kind, seed)
    cam = _run_cam(grad_cam, model, image, layer, 1, what)
    if cam.max() < 1 - 1e-4 and cam.max() > 0:
        raise AssertionError(f"the heat map's maximum is {cam.max():.4g}: min-max normalise so that it reaches 1")


def check_cam_matches(grad_cam, kind: str = "lenet", seed: int = 0, class_idx: int | None = 1):
    """Equal to the reference Grad-CAM (as pytorch-grad-cam computes it) to 1e-5."""
    from skinlab.gradcam import grad_cam as reference_grad_cam

    own_work("grad_cam", grad_cam)
    model, image, layer, what = _cam_case(kind, seed)
    target = class_idx
    if target is None:
        import torch

        with torch.no_grad():
            target = int(model(image.unsqueeze(0)).argmax())
    want = reference_grad_cam(model, image.clone(), layer, target)
    got = _run_cam(grad_cam, model, image, layer, class_idx, what)
    diff = float(np.abs(got - want).max())
    if diff <= 1e-5:
        return
    hint = ""
    for variant, message in (
        (dict(relu=False), "apply ReLU to the weighted sum of activation maps before normalising: "
         "only positive evidence for the class belongs in the map"),
        (dict(align_corners=True), "upsample with F.interpolate(..., mode='bilinear', align_corners=False)"),
        (dict(softmax=True), "take the gradient of the raw logit of the class, not of its softmax probability"),
    ):
        if np.abs(got - _cam_variant(model, image, layer, target, **variant)).max() < 1e-4:
            hint = " Fix: " + message + "."
            break
    raise AssertionError(
        f"for {what} and class {target} your heat map differs from Grad-CAM's by up to {diff:.3g} "
        "(at most 1e-5 allowed). Recipe: weights = spatial mean of d logit / d activations per "
        "channel; cam = ReLU(sum of weights x activations); min-max; bilinear upsample "
        "(align_corners=False); min-max again." + hint
    )


def check_cam_argmax(grad_cam, kind: str = "lenet", seed: int = 0):
    """class_idx=None explains the predicted class (the argmax of the logits)."""
    import torch

    own_work("grad_cam", grad_cam)
    model, image, layer, what = _cam_case(kind, seed)
    with torch.no_grad():
        logits = model(image.unsqueeze(0))[0]
    top = int(logits.argmax())
    default = _run_cam(grad_cam, model, image, layer, None, what)
    explicit = _run_cam(grad_cam, model, image, layer, top, what)
    if np.abs(default - explicit).max() > 1e-5:
        raise AssertionError(
            f"with class_idx=None the heat map should explain the predicted class {top} (the "
            "argmax of the logits), i.e. equal grad_cam(..., class_idx={top}); yours differs"
        )


def check_cam_hooks_removed(grad_cam, kind: str = "lenet", seed: int = 0):
    """No hook stays registered on any module after grad_cam returns."""
    own_work("grad_cam", grad_cam)
    model, image, layer, what = _cam_case(kind, seed)
    before = _hook_counts(model)
    _run_cam(grad_cam, model, image, layer, 0, what)
    _run_cam(grad_cam, model, image, layer, 1, what)
    if _hook_counts(model) != before:
        raise AssertionError(
            "hooks are still registered on the model after grad_cam returned: keep the handles "
            "returned by register_forward_hook / register_full_backward_hook and call "
            ".remove() on each (in a finally: block), else every later forward pass runs them again"
        )


# ============================================================================ nbgrader: commands


def _env() -> dict:
    """nbgrader calls `alembic` and starts `python` kernels: this interpreter's bin/ goes first."""
    env = dict(os.environ)
    env["PATH"] = os.path.dirname(sys.executable) + os.pathsep + env.get("PATH", "")
    env.setdefault("PYTHONUNBUFFERED", "1")
    return env


def nbgrader(course: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    """Run ``nbgrader ARGS`` in ``course`` with this environment; raise with its log on failure."""
    cmd = [sys.executable, "-m", "nbgrader", *args]
    proc = subprocess.run(cmd, cwd=course, env=_env(), capture_output=True, text=True)
    if check and proc.returncode != 0:
        raise RuntimeError(f"`nbgrader {' '.join(args)}` failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    return proc


def _course_dir(path) -> Path:
    course = Path(path or ".").resolve()
    if not (course / "nbgrader_config.py").is_file():
        raise SystemExit(
            f"{course} has no nbgrader_config.py: run from the repository root or pass --course-dir"
        )
    return course


def release(course=None, assignments=ASSIGNMENTS) -> list[Path]:
    """Regenerate ``exercises/<id>/`` from ``solutions/<id>/`` for each assignment (--force)."""
    course = _course_dir(course)
    assignments = list(assignments)
    nbgrader(course, "generate_assignment", _pattern(assignments), "--force", "--log-level=WARN")
    return [course / "exercises" / aid / f"{aid}.ipynb" for aid in assignments]


def _pattern(assignments) -> str:
    """One nbgrader call handles several assignments through a glob (~2.5 s saved per id)."""
    assignments = sorted(assignments)
    if len(assignments) == 1:
        return assignments[0]
    digits = [a[2] for a in assignments]
    if any(not (a.startswith("ex") and a[2:3].isdigit() and a[3:4] == "_") for a in assignments) or \
            len(set(digits)) != len(digits):
        raise ValueError(f"no glob covers exactly {assignments}")
    return f"ex[{''.join(digits)}]_*"


# Seconds each notebook takes to autograde on one core (docs/PERFORMANCE.md): most of it is the
# kernel importing torch (and torch._dynamo, which the first optimizer or hook pulls in).
GRADING_COST = {"ex1_split": 8.0, "ex2_class_weights": 6.5, "ex3_lenet": 5.5, "ex4_training": 9.0, "ex5_gradcam": 5.5}


def grading_batches(assignments, jobs: int) -> list[str]:
    """Globs for ``jobs`` parallel nbgrader calls, balanced by ``GRADING_COST`` (largest first)."""
    groups: list[list[str]] = [[] for _ in range(max(1, min(jobs, len(assignments))))]
    for aid in sorted(assignments, key=lambda a: (-GRADING_COST.get(a, 6.0), a)):
        min(groups, key=lambda g: sum(GRADING_COST.get(a, 6.0) for a in g)).append(aid)
    return [_pattern(g) for g in groups if g]


def _nbgrader_parallel(course: Path, calls: list[list[str]]) -> list[tuple[list[str], subprocess.CompletedProcess]]:
    """Run the nbgrader commands ``calls`` at once (a thread waiting on each); every (args, result)."""
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=max(1, len(calls))) as pool:
        return list(zip(calls, pool.map(lambda args: nbgrader(course, *args, check=False), calls)))


def _register_students(course: Path, students) -> None:
    """Create the gradebook and its students before parallel calls, which would race to do it."""
    from nbgrader.api import Gradebook

    with Gradebook(f"sqlite:///{course / 'gradebook.db'}", course_id="skinlab") as gb:
        for student in students:
            gb.update_or_create_student(student)


def _export_grades(course: Path, path: Path) -> None:
    """``nbgrader export`` in this process (its CSV plugin; saves starting nbgrader once more)."""
    from nbgrader.api import Gradebook
    from nbgrader.plugins.export import CsvExportPlugin

    tmp = path.with_name(f".{path.name}.tmp")
    with Gradebook(f"sqlite:///{course / 'gradebook.db'}", course_id="skinlab") as gb:
        CsvExportPlugin(to=str(tmp)).export(gb)
    os.replace(tmp, path)


def default_jobs() -> int:
    """Parallel nbgrader calls: one per core, at most one per assignment."""
    return max(1, min(os.cpu_count() or 1, len(ASSIGNMENTS)))


def find_tampering(release_nb, submitted_nb) -> list[tuple[str, str]]:
    """[(grade_id, problem)] for locked/test cells of the release that were deleted or edited."""
    import nbformat

    rel = nbformat.read(str(release_nb), as_version=4)
    try:
        sub = nbformat.read(str(submitted_nb), as_version=4)
    except Exception as exc:  # unreadable JSON is tampering of its own kind
        return [("(notebook)", f"unreadable: {exc}")]
    by_id = {}
    for cell in sub.cells:
        gid = cell.get("metadata", {}).get("nbgrader", {}).get("grade_id")
        if gid:
            by_id.setdefault(gid, []).append(cell)
    problems = []
    for cell in rel.cells:
        meta = cell.get("metadata", {}).get("nbgrader", {})
        gid = meta.get("grade_id")
        if not gid or not (meta.get("locked") or meta.get("grade")) or meta.get("solution"):
            continue
        copies = by_id.get(gid, [])
        if not copies:
            problems.append((gid, "deleted"))
            continue
        if len(copies) > 1:
            problems.append((gid, "duplicated"))
        other = copies[0]
        if other.source.strip() != cell.source.strip():
            problems.append((gid, "edited"))
        elif {k: other["metadata"].get("nbgrader", {}).get(k) for k in ("grade", "points", "locked")} != {
            k: meta.get(k) for k in ("grade", "points", "locked")
        }:
            problems.append((gid, "metadata changed"))
    return problems


def _cell_scores(course: Path, assignments) -> list[dict]:
    from nbgrader.api import Gradebook

    rows = []
    with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gb:
        for aid in assignments:
            for student in gb.students:
                try:
                    submission = gb.find_submission(aid, student.id)
                except Exception:
                    continue
                for nb in submission.notebooks:
                    for grade in nb.grades:
                        rows.append(dict(student_id=student.id, assignment=aid, grade_id=grade.name,
                                         score=grade.score, max_score=grade.max_score))
    return rows


def grade(submissions, course=None, out=None, assignments=None, jobs: int | None = None) -> dict:
    """Autograde a folder ``<student>/<assignment>/<assignment>.ipynb``; returns output paths.

    Copies the submissions into ``<course>/submitted/``, autogrades them (all students at once,
    the assignments split over ``jobs`` parallel nbgrader calls), writes feedback HTML without hidden tests, exports ``grades.csv`` (plus
    a ``tampered`` column), ``tampered.csv`` and ``scores_by_test.csv`` into ``out``.
    ``jobs`` defaults to one per core, at most one per assignment.
    """
    course = _course_dir(course)
    submissions = Path(submissions).resolve()
    out = Path(out or course / "grades").resolve()
    out.mkdir(parents=True, exist_ok=True)
    if not submissions.is_dir():
        raise SystemExit(f"no such folder: {submissions}")
    found: dict[str, list[str]] = {}
    tampered = []
    for student_dir in sorted(p for p in submissions.iterdir() if p.is_dir()):
        for aid in assignments or ASSIGNMENTS:
            nb = student_dir / aid / f"{aid}.ipynb"
            if not nb.is_file():
                continue
            dest = course / "submitted" / student_dir.name / aid
            if dest.exists():
                shutil.rmtree(dest)
            shutil.copytree(student_dir / aid, dest)
            found.setdefault(aid, []).append(student_dir.name)
            release_nb = course / "exercises" / aid / f"{aid}.ipynb"
            for gid, problem in find_tampering(release_nb, nb):
                tampered.append(dict(student_id=student_dir.name, assignment=aid, grade_id=gid, problem=problem))
    if not found:
        raise SystemExit(f"no submissions found in {submissions} (expected <student>/<id>/<id>.ipynb, ids {', '.join(ASSIGNMENTS)})")
    # Everything in submitted/ is (re)graded: nbgrader's model of "the class". The assignments are
    # autograded, then given feedback, in ``jobs`` parallel nbgrader calls (each notebook's kernel
    # keeps one core busy, mostly importing torch). A notebook nbgrader cannot grade (broken JSON,
    # cells it cannot match) makes its call exit 1 after grading all the others: log it and go on,
    # so one submission cannot stop the batch.
    jobs = default_jobs() if jobs is None else jobs
    if jobs < 1:
        raise ValueError(f"--jobs {jobs}: expected 1 or more")
    _register_students(course, sorted(p.name for p in (course / "submitted").iterdir() if p.is_dir()))
    problems = []
    batches = grading_batches(found, jobs)
    for step in ("autograde", "generate_feedback"):  # feedback needs every grade of its notebook
        calls = [[step, batch, "--force", "--log-level=WARN"] for batch in batches]
        for args, proc in _nbgrader_parallel(course, calls):
            if proc.returncode != 0:
                problems.append(f"$ nbgrader {' '.join(args[:2])}  (exit {proc.returncode})\n{proc.stdout}{proc.stderr}")
    errors_log = out / "nbgrader_errors.log"
    errors_log.write_text("\n".join(problems))
    if problems:
        print(f"warning: nbgrader reported problems with some submissions; see {errors_log}", file=sys.stderr)
    grades_csv = out / "grades.csv"
    _export_grades(course, grades_csv)
    _write_csv(out / "tampered.csv", tampered, ["student_id", "assignment", "grade_id", "problem"])
    flags = {}
    for row in tampered:
        flags.setdefault((row["student_id"], row["assignment"]), []).append(f"{row['grade_id']} {row['problem']}")
    with open(grades_csv, newline="") as f:
        rows = list(csv.DictReader(f))
    for row in rows:
        row["tampered"] = "; ".join(flags.get((row["student_id"], row["assignment"]), []))
    _write_csv(grades_csv, rows, list(rows[0].keys()) if rows else ["tampered"])
    _write_csv(out / "scores_by_test.csv", _cell_scores(course, list(found)),
               ["student_id", "assignment", "grade_id", "score", "max_score"])
    return {"grades": grades_csv, "tampered": out / "tampered.csv", "scores_by_test": out / "scores_by_test.csv",
            "feedback": course / "feedback", "errors": errors_log}


def _write_csv(path: Path, rows: list[dict], fields: list[str]) -> None:
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=fields)
        writer.writeheader()
        writer.writerows(rows)


def main(argv=None) -> int:
    """``python -m skinlab.grading release|grade SUBMISSIONS`` (also ``skinlab grade``)."""
    import argparse

    p = argparse.ArgumentParser(prog="python -m skinlab.grading", description="Release and grade the skinlab exercises with nbgrader (headless).")
    p.add_argument("--course-dir", default=None, help="folder with nbgrader_config.py (default: current folder)")
    sub = p.add_subparsers(dest="command", required=True)
    r = sub.add_parser("release", help="regenerate exercises/ from solutions/ (nbgrader generate_assignment --force)")
    r.add_argument("assignments", nargs="*", metavar="ID", help=f"assignment ids (default: all of {', '.join(ASSIGNMENTS)})")
    g = sub.add_parser("grade", help="autograde a folder of submissions <student>/<id>/<id>.ipynb")
    g.add_argument("submissions", help="folder of <student>/<id>/<id>.ipynb")
    g.add_argument("--out", default=None, help="where the CSV files go (default: COURSE/grades)")
    g.add_argument("--jobs", type=int, default=None,
                   help=f"assignments autograded at once (default: one per core, here {default_jobs()})")
    args = p.parse_args(argv)
    unknown = [a for a in getattr(args, "assignments", None) or [] if a not in ASSIGNMENTS]
    if unknown:
        p.error(f"unknown assignment {unknown[0]!r}; choose from {', '.join(ASSIGNMENTS)}")
    if getattr(args, "jobs", None) is not None and args.jobs < 1:
        p.error(f"--jobs {args.jobs}: expected 1 or more")
    try:
        if args.command == "release":
            for path in release(args.course_dir, args.assignments or ASSIGNMENTS):
                print(path)
        else:
            paths = grade(args.submissions, args.course_dir, args.out, jobs=args.jobs)
            for key, path in paths.items():
                print(f"{key}: {path}")
    except RuntimeError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
