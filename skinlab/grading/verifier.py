"""The verdict, computed where student code never runs.

For one submitted notebook, the verifier (this process: trusted) reads the exercise's test cells
from the *source* notebook (``solutions/<id>/<id>.ipynb``, never the student's copy), starts a
worker process (``worker.py``, sandboxed) that runs the notebook's code, and for every
``check_*`` call of every test cell sends the worker a probe request and judges the plain data
that comes back against the reference implementation (``checking.Check.judge``). Hidden tests
use inputs drawn at grading time from the batch seed, so the hidden-test source is no help.

A test cell scores its points when all its checks pass, else 0, as nbgrader scores it. When the
worker dies, hangs or is killed by a sandbox limit, the check it was running fails with the reason
and a fresh worker takes the next one.
"""

from __future__ import annotations

import os
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from . import testcells
from .checking import CHECKS
from . import exercise
from .probe_base import decode, encode

HERE = Path(__file__).resolve().parent
CELLS_LIMIT_S = 120.0  # the notebook's own cells (imports, definitions): generous
MARGIN_S = 15.0  # beyond a probe's own time limit before the worker is killed
MAX_STARTS = 8  # worker starts per notebook (each death of the worker costs one)
MAX_REPLY_BYTES = 64 << 20
NOTEBOOK_BUDGET_S = 300.0  # all the worker time one notebook may take, restarts included
_REFERENCE_BLOCKED = "the reference package is not available while grading"  # worker._NoReference


# ------------------------------------------------------------------ the worker


class WorkerDied(AssertionError):
    pass


def _worker_env(scratch: Path) -> dict:
    env = {"PATH": os.path.dirname(sys.executable) + ":/usr/bin:/bin", "HOME": str(scratch),
           "LANG": "C.UTF-8", "PYTHONDONTWRITEBYTECODE": "1", "PYTHONHASHSEED": "0",
           "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "MPLBACKEND": "Agg",
           "NBGRADER_EXECUTION": "autograde"}
    return env


def _hidden_packages() -> list[Path]:
    """Installed copies of the reference the worker must not see (an editable skinlab lives in
    the course folder, which the sandbox does not show at all)."""
    import importlib.util

    hide = []
    for name in exercise.blocked_packages():
        spec = importlib.util.find_spec(name)
        for loc in (spec.submodule_search_locations or []) if spec else []:
            if "site-packages" in loc or "dist-packages" in loc:
                hide.append(Path(loc))
    return hide


def _copy_probes(target: Path) -> None:
    """The worker's probes package: ``probe_base.py`` and each exercise's ``probes.py``, laid out
    as in this package (``<exercise>/probes.py`` imports ``..probe_base``), without the judges."""
    target.mkdir()
    (target / "__init__.py").write_text("")
    shutil.copy(HERE / "probe_base.py", target / "probe_base.py")
    for name in exercise.folders():
        (target / name).mkdir()
        (target / name / "__init__.py").write_text("")
        shutil.copy(HERE / name / "probes.py", target / name / "probes.py")


class Worker:
    """One sandboxed worker process for one notebook; restarted after it dies."""

    def __init__(self, cells: list[str], *, time_limit: float, sandboxed: bool, limits=None):
        self.cells, self.time_limit, self.sandboxed, self.limits = cells, time_limit, sandboxed, limits
        self.proc = None
        self.starts = 0
        self.broken = ""  # why no worker can run this notebook (its cells time out): sticky
        self.started_at = None
        self.cell_errors: list[dict] = []
        self._buffer = b""
        self.tmp = Path(tempfile.mkdtemp(prefix="skinlab-worker-"))
        self.tmp.chmod(0o755)  # the sandbox's unprivileged uid must reach its scratch folder below

    def _start(self):
        if self.broken:
            raise WorkerDied(self.broken)
        if self.starts >= MAX_STARTS:
            raise WorkerDied(f"the grading process running your code died {MAX_STARTS} times; the remaining tests are not run")
        self.starts += 1
        scratch = self.tmp / f"run{self.starts}"
        scratch.mkdir()
        _copy_probes(scratch / "grading_probes")
        shutil.copy(HERE / "worker.py", scratch / "worker.py")
        argv = [sys.executable, "-I", str(scratch / "worker.py"), str(scratch)]
        io = dict(stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        if self.sandboxed:
            from . import sandbox

            kwargs = {"limits": self.limits} if self.limits is not None else {}
            self.proc = sandbox.popen(argv, scratch=scratch, hide=_hidden_packages(),
                                      env=_worker_env(scratch), **kwargs, **io)
        else:
            self.proc = subprocess.Popen(argv, cwd=scratch, env=_worker_env(scratch),
                                         start_new_session=True, **io)
        self._buffer = b""
        self._send({"cells": self.cells, "time_limit": self.time_limit, "package": "grading_probes",
                    "blocked": list(exercise.blocked_packages())})
        try:
            ready = self._receive(CELLS_LIMIT_S, "while running your notebook's cells")
        except TimeoutError:
            self.broken = (
                f"your notebook's cells took longer than {CELLS_LIMIT_S:g} s to run in the grader (imports and "
                "definitions take seconds): move slow experiments out of the notebook, or skip them while "
                "grading with `if \"NBGRADER_EXECUTION\" not in os.environ:`")
            raise WorkerDied(self.broken) from None
        if not isinstance(ready, dict) or ready.get("ready") is not True:
            raise WorkerDied("the grading process sent an unexpected reply while starting")
        errors = ready.get("cell_errors")
        self.cell_errors = [e for e in errors if isinstance(e, dict)] if isinstance(errors, list) else []

    def _send(self, message):
        try:
            self.proc.stdin.write((encode(message) + "\n").encode())
            self.proc.stdin.flush()
        except (BrokenPipeError, OSError):
            pass  # the reply side reports the death

    def _receive(self, timeout: float, during: str):
        deadline = time.monotonic() + timeout
        fd = self.proc.stdout.fileno()
        while b"\n" not in self._buffer:
            left = deadline - time.monotonic()
            if left <= 0:
                self.kill()
                raise TimeoutError(during)
            ready, _, _ = select.select([fd], [], [], left)
            if not ready:
                continue
            chunk = os.read(fd, 1 << 20)
            if not chunk:
                self._died(during)
            self._buffer += chunk
            if len(self._buffer) > MAX_REPLY_BYTES:
                self.kill()
                raise WorkerDied(f"the grading process sent more than {MAX_REPLY_BYTES >> 20} MB {during}")
        line, self._buffer = self._buffer.split(b"\n", 1)
        try:
            return decode(line.decode("utf-8"))
        except (ValueError, UnicodeDecodeError) as exc:
            self.kill()
            raise WorkerDied(f"the grading process sent an unreadable reply {during} ({exc})") from None

    def _died(self, during: str):
        try:
            code = self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.kill()
            code = self.proc.returncode
        self.proc = None
        if code is not None and code < 0:
            name = signal.Signals(-code).name
            why = {"SIGKILL": " (killed: out of memory, or a sandbox limit)",
                   "SIGXCPU": " (the CPU-time limit)", "SIGXFSZ": " (the file-size limit)"}.get(name, "")
            raise WorkerDied(f"the grading process running your code was ended by {name}{why} {during}")
        raise WorkerDied(f"the grading process running your code exited (code {code}) {during}: "
                         "does your code call sys.exit, os._exit or kill its own process?")

    def observe(self, probe: str, params: dict):
        self.started_at = self.started_at or time.monotonic()
        if time.monotonic() - self.started_at > NOTEBOOK_BUDGET_S:
            self.kill()
            self.broken = (f"grading your notebook took over {NOTEBOOK_BUDGET_S:g} s of the grader's time "
                           "(restarts after your code ended its process included); the remaining tests are not run")
            raise WorkerDied(self.broken)
        if self.proc is None or self.proc.poll() is not None:
            self.proc = None
            self._start()
        self._send({"probe": probe, "params": params})
        return self._receive(self.time_limit + MARGIN_S, "during this test")

    def kill(self):
        if self.proc is not None:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
            try:
                self.proc.kill()
            except ProcessLookupError:
                pass
            self.proc.wait()
            self.proc = None

    def close(self):
        self.kill()
        shutil.rmtree(self.tmp, ignore_errors=True)


# ------------------------------------------------------------------ judging


def _missing_message(message: str, cell_errors: list[dict]) -> str:
    for err in cell_errors:
        text = f"{err.get('type')}: {err.get('message')}"
        blocked = exercise.blocked_packages()
        if any(name in text for name in blocked):
            return (f"your answer uses the reference implementation (it imports {' or '.join(blocked)}), "
                    "which is not available while grading, so it scores 0 here. "
                    f"Write it yourself. (cell {err.get('cell')}: {text[:300]})")
    if cell_errors:
        err = cell_errors[-1]
        return f"{message}. Cell {err.get('cell')} of your notebook raised {err.get('type')}: {str(err.get('message'))[:300]}"
    return str(message)


class RemoteObserver:
    """``observe`` for the judges: the probe runs in the worker, the reply is plain data."""

    def __init__(self, worker: Worker, answers: tuple[str, ...], timeouts: dict):
        self.worker, self.answers, self.timeouts = worker, answers, timeouts

    def __call__(self, probe: str, **params):
        for name in self.answers:
            if name in self.timeouts:
                raise AssertionError(self.timeouts[name])
        try:
            reply = self.worker.observe(probe, params)
        except TimeoutError:
            message = (f"your {self.answers[0]} did not finish within {self.worker.time_limit:g} s "
                       "(the inputs are tiny: it should take milliseconds), and ignored the time limit. "
                       f"An infinite loop? The remaining tests of {self.answers[0]} are skipped.")
            self.timeouts[self.answers[0]] = message
            raise AssertionError(message) from None
        if not isinstance(reply, dict):
            raise AssertionError("the grading process sent an unexpected reply")
        if "ok" in reply:
            return reply["ok"]
        if "timeout" in reply:
            info = reply["timeout"] if isinstance(reply["timeout"], dict) else {}
            name = str(info.get("answer") or self.answers[0])
            on = f" on {info['on']}" if info.get("on") else ""
            message = (f"your {name} did not finish within {self.worker.time_limit:g} s{on} (the "
                       "inputs are tiny: it should take milliseconds). An infinite loop? "
                       f"The remaining tests of {name} are skipped.")
            self.timeouts[name] = message
            raise AssertionError(message)
        if "missing" in reply:
            raise AssertionError(_missing_message(str(reply["missing"]), self.worker.cell_errors))
        info = reply.get("error") if isinstance(reply.get("error"), dict) else {}
        name = str(info.get("answer") or self.answers[0])
        on = f" on {info['on']}" if info.get("on") else ""
        if _REFERENCE_BLOCKED in str(info.get("message", "")):
            # The answers of one exercise share this verdict (as in the kernel): a train_one_epoch
            # that calls the reference costs evaluate's points too.
            message = (f"your {name} uses the reference implementation (it imports skinlab), which is not "
                       f"available while grading, so this exercise scores 0. Write {name} yourself.")
            for answer in (name, *exercise.siblings(name)):
                self.timeouts.setdefault(answer, message)
            raise AssertionError(message)
        raise AssertionError(f"your {name} raised {info.get('type', 'an error')}{on}: {str(info.get('message', ''))[:1000]}")


@dataclass
class CellVerdict:
    grade_id: str
    points: float
    max_points: float
    message: str  # "" when passed
    # What this cell's points take on the word of the process that ran the student's code
    # (``Check.self_report`` of its checks); "" when they rest on recomputed values alone.
    self_report: str = ""


def self_reports(test) -> str:
    """The ``self_report`` phrases of a test cell's checks, in order, each once."""
    phrases = []
    for call in test.calls:
        phrase = CHECKS[call.check].self_report if call.check in CHECKS else ""
        if phrase and phrase not in phrases:
            phrases.append(phrase)
    return "; ".join(phrases)


def verify(exercise: str, source_nb, submitted_nb, *, seed: int, sandboxed: bool,
           time_limit: float = 10.0, limits=None) -> list[CellVerdict]:
    """Points per test cell of one submitted notebook (both notebooks as parsed JSON dicts)."""
    import torch

    torch.set_num_threads(1)  # the same arithmetic as the one-thread worker
    worker = Worker(testcells.worker_cells(source_nb, submitted_nb), time_limit=time_limit,
                    sandboxed=sandboxed, limits=limits)
    timeouts: dict[str, str] = {}
    verdicts = []
    try:
        for test in testcells.test_cells(source_nb):
            message = ""
            for index, call in enumerate(test.calls):
                spec = CHECKS[call.check]
                params = testcells.call_params(exercise, test, index, call, seed)
                try:
                    spec.judge(RemoteObserver(worker, spec.answers, timeouts), **params)
                except WorkerDied as exc:
                    message = str(exc)
                except AssertionError as exc:
                    message = str(exc) or f"{call.check} failed"
                except Exception as exc:  # noqa: BLE001 - a reply the judge could not read
                    message = f"{call.check}: your answer's result could not be checked ({type(exc).__name__}: {exc})"
                if message:
                    if call.hidden:
                        message = f"(hidden test) {message}"
                    break
            verdicts.append(CellVerdict(test.grade_id, 0.0 if message else test.points, test.points, message,
                                        self_reports(test)))
    finally:
        worker.close()
    return verdicts
