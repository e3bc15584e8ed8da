"""The grading worker: runs one student's notebook code and answers probe requests.

Started by :mod:`skinlab.grading.verifier` as a script (``python -I worker.py PROBES_DIR``),
inside the sandbox, never imported. It imports nothing from ``skinlab`` and ``skinlab`` is not
importable here: the reference implementations are out of reach of the student's code.

Protocol (one JSON line each way, see ``probe_base`` for the codec):

* stdin, first line: ``{"cells": [source, ...], "time_limit": s, "package": name, "blocked":
  [package, ...]}`` (``package``: the probes, ``<exercise>/probes.py`` and ``probe_base.py``); the worker
  runs the cells as a notebook would (in one ``__main__`` namespace, errors recorded, the
  "try it" cells skipped because ``NBGRADER_EXECUTION`` is set) and replies
  ``{"ready": true, "cell_errors": [...]}``.
* then per request ``{"probe": "ex2_class_weights.weights_values", "params": {...}}`` the reply
  is ``{"ok": data}``, ``{"error": {"type", "message", "answer", "on"}}`` (the student's code
  raised), ``{"timeout": {"answer", "on"}}`` or ``{"missing": message}``.

Replies go to a private copy of the original stdout; the student's prints go to /dev/null. The
student's code can still write anything anywhere in this process: the verifier treats every
reply as untrusted data and judges it against the reference itself.
"""

import builtins
import importlib
import importlib.abc
import json
import os
import re
import sys
import traceback
import types

class _NoReference(importlib.abc.MetaPathFinder):
    """Defence in depth (the sandbox already hides the files): the reference cannot be imported.

    The packages come from the verifier (``skinlab.grading.exercise.blocked_packages``)."""

    def __init__(self, blocked):
        self.blocked = tuple(blocked)

    def find_spec(self, fullname, path=None, target=None):
        if fullname.split(".")[0] in self.blocked:
            raise ModuleNotFoundError(
                f"No module named {fullname!r}: the reference package is not available while "
                "grading; write the answer yourself", name=fullname)
        return None


_MAGIC = re.compile(r"^(\s*)([%!].*)$", re.MULTILINE)


def _run_cells(cells, namespace) -> list:
    errors = []
    for i, source in enumerate(cells):
        source = _MAGIC.sub(r"\1pass  # \2", source)  # IPython magics and shell escapes: not Python
        try:
            exec(compile(source, f"<notebook cell {i + 1}>", "exec"), namespace)
        except BaseException as exc:  # noqa: BLE001 - a cell may even raise SystemExit
            errors.append({"cell": i + 1, "type": type(exc).__name__, "message": str(exc)[:500]})
    return errors


def main() -> int:
    probes_dir = sys.argv[1]
    replies = os.fdopen(os.dup(1), "w", buffering=1)
    requests = os.fdopen(os.dup(0), "r")
    devnull = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(devnull, fd)
    sys.stdin = open(os.devnull)
    sys.stdout = sys.stderr = open(os.devnull, "w")

    setup = json.loads(requests.readline())
    sys.path.insert(0, probes_dir)
    package = setup.get("package", "grading_probes")
    base = importlib.import_module(f"{package}.probe_base")
    sys.meta_path.insert(0, _NoReference(setup.get("blocked") or ("skinlab",)))
    os.environ["NBGRADER_EXECUTION"] = "autograde"

    main_module = types.ModuleType("__main__")
    main_module.__dict__["__builtins__"] = builtins
    sys.modules["__main__"] = main_module
    cell_errors = _run_cells(setup["cells"], main_module.__dict__)
    replies.write(base.encode({"ready": True, "cell_errors": cell_errors}) + "\n")

    call = base.timed_call(float(setup["time_limit"]))
    for line in requests:
        request = json.loads(line)
        exercise, probe_name = request["probe"].split(".")
        answers = dict(main_module.__dict__)
        try:
            probe = getattr(importlib.import_module(f"{package}.{exercise}.probes"), probe_name)
            reply = {"ok": probe(call, answers, **request["params"])}
        except base.TimeUp as exc:
            reply = {"timeout": {"answer": exc.args[0], "on": exc.args[1]}}
        except base.AnswerMissing as exc:
            reply = {"missing": str(exc)}
        except BaseException as exc:  # noqa: BLE001 - whatever the student's code raised
            frames = traceback.extract_tb(exc.__traceback__)
            own = [f for f in frames if f.filename.startswith("<notebook cell")]
            where = f" (line {own[-1].lineno} of {own[-1].filename[1:-1]})" if own else ""
            name, on = getattr(exc, "grading_call", ("", ""))
            reply = {"error": {"type": type(exc).__name__, "message": str(exc)[:1000] + where,
                               "answer": name, "on": on}}
        try:
            text = base.encode(reply)
        except (TypeError, ValueError) as exc:
            text = base.encode({"error": {"type": "TypeError", "message": f"unexpected result: {exc}"}})
        replies.write(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
