"""What every probe shares: answers, the time-limited call, the plain-data codec.

The codec is the only way data leaves the worker: JSON whose arrays are numeric numpy arrays
(base64 of their bytes). The verifier decodes it with :func:`decode`, which builds nothing but
dicts, lists, strings, numbers and numeric arrays, so no object of the student's ever reaches
the trusted side.
"""

from __future__ import annotations

import base64
import json
import signal
import threading

import numpy as np

# Array dtypes allowed across the boundary (no object arrays: they could hold anything).
_DTYPES = {"bool", "int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64",
           "float16", "float32", "float64"}


class AnswerMissing(AssertionError):
    """The notebook defines no object with the answer's name."""


class TimeUp(BaseException):
    # BaseException: a student's ``except Exception`` must not swallow the time limit. (One
    # that swallows BaseException too is stopped from outside: the verifier kills the worker.)
    pass


def answer(answers: dict, name: str):
    value = answers.get(name)
    if value is None:
        raise AnswerMissing(f"{name} is not defined: run (or fix) your answer cell first")
    return value


def timed_call(seconds: float):
    """A ``call(name, fn, *args, _on='', **kwargs)`` that raises :class:`TimeUp` after ``seconds``."""

    def call(name, fn, *args, _on: str = "", **kwargs):
        usable = hasattr(signal, "setitimer") and threading.current_thread() is threading.main_thread()
        if not usable:  # only the verifier's wall-clock limit applies
            return fn(*args, **kwargs)

        def on_alarm(signum, frame):
            raise TimeUp(name, _on)

        previous = signal.signal(signal.SIGALRM, on_alarm)
        signal.setitimer(signal.ITIMER_REAL, seconds)
        try:
            return fn(*args, **kwargs)
        except Exception as exc:
            try:  # which answer raised, on which input: for the message the student reads
                exc.grading_call = (name, _on)
            except AttributeError:
                pass
            raise
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, previous)

    return call


def type_name(value) -> str:
    return type(value).__name__


def to_plain(value):
    """A tensor / array / number as plain data (tensors as numpy arrays; None for other objects)."""
    try:
        import torch

        if isinstance(value, torch.Tensor):
            return value.detach().cpu().numpy().copy()
    except ImportError:  # pragma: no cover - torch is always there in this course
        pass
    if isinstance(value, np.ndarray) and value.dtype.name in _DTYPES:
        return value.copy()
    if isinstance(value, (bool, int, float, str)) or value is None:
        return value
    if isinstance(value, (np.integer, np.floating, np.bool_)):
        return value.item()
    return None


# ------------------------------------------------------------------------------------ codec


def _default(obj):
    if isinstance(obj, np.ndarray):
        if obj.dtype.name not in _DTYPES:
            raise TypeError(f"array of dtype {obj.dtype} cannot leave the worker")
        arr = np.ascontiguousarray(obj)
        return {"__ndarray__": arr.dtype.name, "shape": list(arr.shape),
                "data": base64.b64encode(arr.tobytes()).decode("ascii")}
    if isinstance(obj, (np.integer, np.floating, np.bool_)):
        return obj.item()
    if isinstance(obj, (set, frozenset)):
        return sorted(obj, key=repr)
    raise TypeError(f"{type(obj).__name__} cannot leave the worker")


def encode(value) -> str:
    """One line of JSON (tuples become lists)."""
    return json.dumps(value, default=_default, separators=(",", ":"))


def _object_hook(obj):
    if "__ndarray__" in obj:
        dtype = obj["__ndarray__"]
        if dtype not in _DTYPES:
            raise ValueError(f"unexpected array dtype {dtype!r}")
        shape = tuple(int(n) for n in obj["shape"])
        data = base64.b64decode(obj["data"], validate=True)
        arr = np.frombuffer(data, dtype=dtype)
        if arr.size != int(np.prod(shape, dtype=np.int64)):
            raise ValueError("array data does not match its shape")
        return arr.reshape(shape).copy()
    return obj


def decode(line: str):
    return json.loads(line, object_hook=_object_hook)


def roundtrip(value):
    """What the verifier would see of ``value``: the in-kernel path judges the same plain data."""
    return decode(encode(value))
