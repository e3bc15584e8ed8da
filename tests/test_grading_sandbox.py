"""The grading sandbox (skinlab/grading/sandbox.py): each test is an attack and the defence that
stops it, run for real with bubblewrap (skipped only where the host cannot sandbox at all).

Student code here is small ``python -c`` programs run by the venv's interpreter inside
``sandbox.run``; the kernel tests start the sandboxed ipykernel through nbclient, as nbgrader does.
No test sends traffic anywhere: the network tests only connect to a listener of their own or to
a documentation address (192.0.2.1) that the sandbox has no route to.
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_notebook, new_output

from skinlab.grading import sandbox
from skinlab.grading.sandbox import Limits

REPO = Path(__file__).resolve().parents[1]
needs_bwrap = pytest.mark.skipif(sandbox.unavailable_reason() is not None,
                                 reason=f"cannot sandbox here: {sandbox.unavailable_reason()}")


@pytest.fixture
def short_tmp():
    """A folder with a short path: kernel_setup refuses one too long for a unix socket, and
    pytest's tmp_path is deep (deeper still under pytest-xdist, which `make check` uses)."""
    import tempfile

    folder = Path(tempfile.mkdtemp(prefix="sk-", dir="/tmp"))
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture
def course(tmp_path) -> Path:
    """A course folder next to the sandbox: solutions with hidden tests and a gradebook."""
    root = tmp_path / "course"
    (root / "solutions").mkdir(parents=True)
    (root / "solutions" / "x.py").write_text("ANSWER = 42  # BEGIN HIDDEN TESTS\n")
    (root / "gradebook.db").write_text("grades")
    return root


@pytest.fixture
def scratch(tmp_path) -> Path:
    d = tmp_path / "scratch"
    d.mkdir()
    return d


def py(code: str, scratch: Path, timeout: float = 60, **kw) -> subprocess.CompletedProcess:
    """Run ``python -c code`` sandboxed; its output as text."""
    return sandbox.run([sys.executable, "-c", code], scratch=scratch, timeout=timeout,
                       capture_output=True, text=True, **kw)


def ok(proc: subprocess.CompletedProcess) -> str:
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def test_unavailable_reason_names_the_missing_tool(monkeypatch):
    monkeypatch.setattr(sandbox.shutil, "which", lambda name: None)
    assert "bwrap" in sandbox._probe()


@needs_bwrap
def test_available_here():
    assert sandbox.unavailable_reason() is None


@needs_bwrap
def test_the_course_folder_is_invisible_unless_given_read_only(course, scratch):
    # Attack: read the solutions (hidden tests) or the gradebook next to the submission.
    code = """
import os, sys
for p in sys.argv[1:]:
    try:
        print(p, open(p).read())
    except OSError as exc:
        print(p, type(exc).__name__)
"""
    targets = [course / "solutions" / "x.py", course / "gradebook.db", REPO / "nbgrader_config.py",
               REPO / "solutions" / "ex1_split" / "ex1_split.ipynb", "/root/.bash_history", "/etc/shadow"]
    out = ok(sandbox.run([sys.executable, "-c", code, *map(str, targets)], scratch=scratch, timeout=60,
                         capture_output=True, text=True))
    assert "42" not in out and "grades" not in out
    assert out.count("FileNotFoundError") >= 5, out  # not even there: the view is a whitelist
    # Given read-only, a path is readable at its own path (and only that path).
    out = ok(sandbox.run([sys.executable, "-c", code, *map(str, targets[:2])], scratch=scratch, timeout=60,
                         ro=[course / "solutions"], capture_output=True, text=True))
    assert "ANSWER = 42" in out and "grades" not in out


@needs_bwrap
def test_writes_go_to_scratch_only(course, scratch):
    # Attack: overwrite a solution, the interpreter, system files, or plant files outside scratch.
    code = """
import sys
for p in sys.argv[1:]:
    try:
        open(p, "w").write("pwned")
        print(p, "written")
    except OSError as exc:
        print(p, __import__("errno").errorcode[exc.errno])
"""
    targets = [course / "solutions" / "x.py", Path(sys.prefix) / "pwned.py", "/etc/pwned", "/pwned",
               "/dev/pwned", str(course / "new.txt"), scratch / "mine.txt", "/tmp/mine.txt"]
    out = ok(sandbox.run([sys.executable, "-c", code, *map(str, targets)], scratch=scratch, timeout=60,
                         ro=[course / "solutions"], capture_output=True, text=True)).splitlines()
    result = dict(line.rsplit(" ", 1) for line in out)
    for p in targets[:5]:
        assert result[str(p)] in ("EROFS", "ENOENT", "EACCES"), out
    # Here the course lies in /tmp, which is the sandbox's own tmpfs: a write there stays inside.
    assert result[str(scratch / "mine.txt")] == result["/tmp/mine.txt"] == "written"
    assert (scratch / "mine.txt").read_text() == "pwned"  # scratch is the host folder
    assert (course / "solutions" / "x.py").read_text().startswith("ANSWER")
    assert not (course / "new.txt").exists() and not Path("/pwned").exists()


@needs_bwrap
def test_no_network(scratch):
    # Attack: reach a service of the host (Jupyter, a database) on 127.0.0.1, or the internet.
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    listener.settimeout(0.5)
    port = listener.getsockname()[1]
    code = f"""
import socket
for addr in [("127.0.0.1", {port}), ("192.0.2.1", 80)]:
    try:
        socket.create_connection(addr, timeout=5)
        print("connected")
    except OSError as exc:
        print(__import__("errno").errorcode[exc.errno])
"""
    out = ok(py(code, scratch)).split()
    assert out == ["ECONNREFUSED", "ENETUNREACH"]  # its own empty loopback; no route out
    with pytest.raises(socket.timeout):
        listener.accept()
    listener.close()


@needs_bwrap
def test_torch_works_inside(scratch):
    out = ok(py("import torch; x = torch.ones(64, 64); print(float((x @ x).sum()))", scratch, timeout=120))
    assert out.strip() == str(64.0 ** 3)


@needs_bwrap
def test_memory_bomb_ends_with_memory_error(scratch):
    # Attack: allocate without end. RLIMIT_DATA stops private memory (malloc, numpy, torch) and
    # RLIMIT_AS shared mappings, which RLIMIT_DATA does not count.
    code = """
import mmap
chunks = []
try:
    while True:
        chunks.append(bytearray(64 << 20))
except MemoryError:
    print("MemoryError after", len(chunks) * 64, "MB")
try:
    mmap.mmap(-1, 20 << 30)
except OSError as exc:
    print("mmap refused", exc.errno)
"""
    out = ok(py(code, scratch, limits=Limits(memory_bytes=512 << 20)))
    mb = int(out.split("after ")[1].split()[0])
    assert 0 < mb <= 512, out
    assert f"mmap refused {errno.ENOMEM}" in out


@needs_bwrap
@pytest.mark.slow  # burns CPU until the limit kills it
def test_cpu_loop_is_killed(scratch):
    # Attack: loop forever (ignoring the wall-clock timeout's SIGINT is easy; SIGXCPU/SIGKILL not).
    start = time.monotonic()
    proc = py("import signal; signal.signal(signal.SIGXCPU, signal.SIG_IGN)\nwhile True: pass", scratch,
              limits=Limits(cpu_seconds=1))
    assert proc.returncode in (128 + signal.SIGXCPU, 128 + signal.SIGKILL), proc  # bwrap: 128 + signal
    assert time.monotonic() - start < 30


@needs_bwrap
def test_fork_bomb_hits_the_process_limit(scratch):
    # Attack: fork without end (bounded here: at most 100 children, each exits after 2 s).
    code = """
import os, time
n = 0
for _ in range(100):
    try:
        pid = os.fork()
    except OSError as exc:
        print("refused after", n, __import__("errno").errorcode[exc.errno])
        break
    if pid == 0:
        time.sleep(2)
        os._exit(0)
    n += 1
"""
    out = ok(py(code, scratch, limits=Limits(processes=16)))
    assert "EAGAIN" in out and int(out.split("after ")[1].split()[0]) < 16, out


@needs_bwrap
def test_big_files_and_tmpfs_are_bounded(scratch):
    # Attack: fill the disk (a huge file in scratch) or the RAM (files in /tmp, /dev/shm, /dev).
    code = """
import sys
for path in sys.argv[1:]:
    try:
        with open(path, "wb") as f:
            for _ in range(64):
                f.write(b"x" * (1 << 20))
        print(path, "written")
    except OSError as exc:
        print(path, __import__("errno").errorcode[exc.errno])
"""
    paths = [str(scratch / "big"), "/tmp/big", "/dev/shm/big", "/dev/big"]
    proc = sandbox.run([sys.executable, "-c", code, *paths], scratch=scratch, timeout=60, capture_output=True,
                       text=True, limits=Limits(file_bytes=4 << 20, tmpfs_bytes=2 << 20))
    result = dict(line.split() for line in ok(proc).splitlines())
    assert result == {paths[0]: "EFBIG", paths[1]: "ENOSPC", paths[2]: "ENOSPC", paths[3]: "EROFS"}
    assert (scratch / "big").stat().st_size == 4 << 20


def _heartbeat_stops(path: Path) -> bool:
    before = path.stat().st_size
    time.sleep(0.6)
    return path.stat().st_size == before


_DAEMON = """
import os, sys, time
if os.fork() == 0:
    os.setsid()
    if os.fork() == 0:  # a daemon: no parent, own session, survives its starter
        with open("beat", "a") as f:
            while True:
                f.write("."); f.flush(); time.sleep(0.05)
    os._exit(0)
time.sleep(0.5)
"""


def _sandbox_processes(scratch: Path) -> list[str]:
    """Live host processes of the sandbox's uid (root only: that uid is the sandbox's alone).

    Zombies do not count: bwrap's outer process exits as soon as the command has, before its
    in-namespace reaper (pid 1) is reaped, and a container whose own pid 1 never reaps orphans
    keeps that dead process's entry (no memory, no CPU) until the container ends.
    """
    uid = scratch.stat().st_uid
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            status = Path(f"/proc/{pid}/status").read_text()
        except OSError:
            continue
        if status.split("\nUid:")[1].split()[0] == str(uid) and "\nState:\tZ" not in status:
            found.append(pid)
    return found


@needs_bwrap
def test_a_daemon_dies_with_the_sandbox(scratch):
    # Attack: leave a process running after grading (setsid + double fork).
    start = time.monotonic()
    ok(py(_DAEMON, scratch))
    assert time.monotonic() - start < 20  # run() did not wait for the daemon
    assert (scratch / "beat").stat().st_size > 0 and _heartbeat_stops(scratch / "beat")
    if os.getuid() == 0:
        assert _sandbox_processes(scratch) == []


@needs_bwrap
def test_timeout_kills_the_whole_sandbox(scratch):
    with pytest.raises(subprocess.TimeoutExpired):
        py(_DAEMON + "time.sleep(300)\n", scratch, timeout=3)
    assert _heartbeat_stops(scratch / "beat")
    if os.getuid() == 0:
        assert _sandbox_processes(scratch) == []


@needs_bwrap
@pytest.mark.slow
def test_hide_empties_a_package(scratch):
    # Attack: import the reference implementation (skinlab) or a library the exercise re-implements.
    site = next(p for p in map(Path, sys.path) if (p / "pytorch_grad_cam").is_dir())
    code = """
try:
    from pytorch_grad_cam import GradCAM
    print("imported")
except ImportError:
    print("ImportError")
try:
    import skinlab
    print("imported")
except ImportError:
    print("ImportError")
"""
    assert ok(py(code, scratch, hide=[site / "pytorch_grad_cam"])).split() == ["ImportError", "ImportError"]
    assert ok(py(code, scratch, ro=[REPO / "skinlab"])).split() == ["imported", "imported"]


# ---- the nbgrader kernel -----------------------------------------------------------------------

def _execute(nb, tmp_path, monkeypatch, limits: Limits, cwd: Path):
    """Run ``nb`` as nbgrader does (nbclient, its KernelManager built from nbgrader's config)."""
    from nbclient import NotebookClient
    from traitlets.config.loader import KVArgParseConfigLoader

    env, args = sandbox.kernel_setup(tmp_path / "work", ro=[REPO / "skinlab"], limits=limits)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("NBGRADER_EXECUTION", "autograde")
    config = KVArgParseConfigLoader(args).load_config()
    client = NotebookClient(nb, kernel_name="python3", timeout=60, allow_errors=True, config=config,
                            resources={"metadata": {"path": str(cwd)}})
    client.execute()
    return nb


@needs_bwrap
def test_nbgrader_kernel_runs_sandboxed(course, monkeypatch, short_tmp):
    notebook_dir = course / "autograded" / "alice" / "ex1"
    notebook_dir.mkdir(parents=True)
    cells = [
        f"open({str(course / 'solutions' / 'x.py')!r}).read()",  # the course is not there
        "import socket; socket.create_connection(('192.0.2.1', 80), timeout=5)",
        "import os; print(os.environ['NBGRADER_EXECUTION'], os.getcwd() == os.environ['HOME'], os.listdir('.'))",
        f"open({str(notebook_dir / 'planted.py')!r}, 'w')",  # nor its own autograded folder
        "from skinlab.grading import check_split_output; print(callable(check_split_output))",  # the checks are
        "for _ in range(1000): print('x' * 10_000)",  # a flood, cut in the kernel
        _DAEMON.replace('"beat"', "os.environ['HOME'] + '/beat'"),
    ]
    nb = _execute(new_notebook(cells=[new_code_cell(c) for c in cells]), short_tmp, monkeypatch,
                  Limits(output_bytes=5_000), cwd=notebook_dir)
    outputs = [c.outputs for c in nb.cells]
    assert outputs[0][0].ename == "FileNotFoundError"
    assert outputs[1][0].ename == "OSError" and "unreachable" in outputs[1][0].evalue
    assert outputs[2][0].text == "autograde True ['.ipython']\n"  # its own empty HOME (IPython's startup)
    assert outputs[3][0].ename in ("FileNotFoundError", "OSError")
    assert outputs[4][0].text == "True\n"
    flood = "".join(o.text for o in outputs[5])
    assert len(flood) < 6_000 and "[output truncated: more than 5000 characters]" in flood
    assert os.listdir(notebook_dir) == []
    # The kernel and its daemon are gone once nbclient shut it down; its sockets are cleaned up.
    beat = next((short_tmp / "work" / "sandboxes").glob("kernel-*/home/beat"))
    assert _heartbeat_stops(beat)
    assert os.listdir(short_tmp / "work" / "runtime") == []


@needs_bwrap
def test_kernel_is_interrupted_by_message(tmp_path, monkeypatch, scratch, short_tmp):
    # nbgrader interrupts a cell past Execute.timeout; a signal would not reach into the sandbox.
    from nbclient import NotebookClient
    from traitlets.config.loader import KVArgParseConfigLoader

    env, args = sandbox.kernel_setup(short_tmp / "work", ro=[])
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    nb = new_notebook(cells=[new_code_cell("import time; time.sleep(60)"), new_code_cell("print('next')")])
    client = NotebookClient(nb, kernel_name="python3", timeout=3, interrupt_on_timeout=True, allow_errors=True,
                            config=KVArgParseConfigLoader(args).load_config(),
                            resources={"metadata": {"path": str(scratch)}})
    start = time.monotonic()
    client.execute()
    assert time.monotonic() - start < 30
    assert nb.cells[1].outputs[0].text == "next\n"


# ---- LimitOutputBytes ---------------------------------------------------------------------------

def _limit(nb, **kw):
    from skinlab.grading.outputs import LimitOutputBytes

    return LimitOutputBytes(**kw).preprocess(nb, {})[0]


def test_output_flood_is_cut_per_cell_and_per_notebook():
    def flood():  # 1 MB in 100 outputs, as a print loop gives
        return [new_output("stream", name="stdout", text="x" * 10_000) for _ in range(100)]

    nb = new_notebook(cells=[new_code_cell("flood", outputs=flood()) for _ in range(20)])
    nb = _limit(nb, max_cell_bytes=20_000, max_notebook_bytes=200_000)
    kept = [sum(len(o.text) for o in c.outputs[:-1]) for c in nb.cells]
    assert kept[:10] == [20_000] * 10 and kept[10:] == [0] * 10
    assert nb.cells[0].outputs[-1] == new_output("stream", name="stdout", text="[output truncated: 980000 bytes]\n")
    assert len(nbformat.writes(nb)) < 2_000_000  # from 20 MB of output
    assert nbformat.validate(nb) is None


def test_cutting_never_changes_what_nbgrader_grades():
    # nbgrader fails a test cell on an error output or a stderr stream: both must stay.
    big = "Q" * 50_000
    nb = new_notebook(cells=[new_code_cell("t", outputs=[
        new_output("stream", name="stdout", text=big),
        new_output("stream", name="stderr", text=big),
        new_output("error", ename="E" * 10_000, evalue=big, traceback=[big, big]),
        new_output("display_data", data={"text/plain": big, "text/html": big, "image/png": "i" * 1000}),
    ])])
    before = [(o.output_type, o.get("name")) for o in nb.cells[0].outputs]
    nb = _limit(nb, max_cell_bytes=1_000)
    after = [(o.output_type, o.get("name")) for o in nb.cells[0].outputs]
    assert after == before + [("stream", "stdout")]
    out = nb.cells[0].outputs
    assert out[0].text == "Q" * 1_000 and out[1].text == "" and len(out[2].ename) == 200
    assert set(out[3].data) == {"text/plain", "image/png"}  # HTML cannot be cut: dropped; images apart
    assert json.dumps(nb).count("Q") == 1_000
    # Running it again (nbgrader loads its config twice) changes nothing.
    again = _limit(nbformat.from_dict(json.loads(json.dumps(nb))), max_cell_bytes=1_000)
    assert again == nb
