"""A sandbox for every process that runs a student's code while grading: bubblewrap + rlimits.

``command`` builds the ``bwrap`` argv (a whitelisted, read-only view of the system; no network;
own pid/ipc/uts/user namespaces); ``popen``/``run`` start it with resource limits and, when we are
root, as a throw-away unprivileged uid. ``kernel_setup`` writes a ``python3`` kernelspec whose
kernel nbgrader starts through ``python sandbox.py kernel … -- <ipykernel argv>`` (ZeroMQ over ipc
sockets: TCP cannot cross the network namespace). docs/GRADING.md has the threat model.

Only the standard library is imported: the kernel launcher runs as a plain script (``python -I``),
so starting each kernel does not pay for importing ``skinlab``.
"""

from __future__ import annotations

import argparse
import ctypes
import json
import os
import resource
import secrets
import shutil
import stat
import subprocess
import sys
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Sequence


@dataclass(frozen=True)
class Limits:
    """Limits of each process in the sandbox (rlimits count per process, except ``processes``)."""

    memory_bytes: int = 6 << 30  # RLIMIT_DATA (malloc, tensors); RLIMIT_AS gets ADDRESS_SLACK more
    cpu_seconds: int = 600  # RLIMIT_CPU: all threads of a process together; SIGXCPU, then SIGKILL
    processes: int = 64  # RLIMIT_NPROC: tasks, i.e. threads too, of the whole sandbox
    file_bytes: int = 64 << 20  # RLIMIT_FSIZE: a larger write fails with EFBIG
    open_files: int = 512  # RLIMIT_NOFILE
    tmpfs_bytes: int = 256 << 20  # size of the sandbox's /tmp and of its /dev/shm (both RAM)
    output_bytes: int = 1 << 20  # kernel only: stdout/stderr characters per cell (outputs.py cuts more)


# RLIMIT_AS bounds what RLIMIT_DATA does not count (MAP_SHARED memory, e.g. mmap.mmap(-1, n)); not
# at memory_bytes: torch (CUDA build) maps ~3.6 GB of libraries, malloc arenas reserve more.
ADDRESS_SLACK = 8 << 30
# Read-only system folders; not /opt, /home, /srv, /var, /root, /run, /sys (other people's files on a
# shared machine). The interpreter's folders, sys.prefix and sys.base_prefix, are bound explicitly.
SYSTEM_DIRS = ("/usr", "/etc", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32")
# What the kernel launcher passes on from nbgrader's environment, the rest is dropped (with
# JPY_PARENT_PID ipykernel would exit at once: inside the pid namespace its parent is pid 1).
KERNEL_ENV = ("NBGRADER_EXECUTION", "OMP_NUM_THREADS", "MKL_NUM_THREADS", "PYTHONHASHSEED", "MPLBACKEND")
# An IPython startup file in each kernel's HOME cuts a print loop at the source (else nbgrader reads
# gigabytes, times out and grades nothing of the notebook). Advisory: the student's code runs in
# that process and could undo it; outputs.py bounds what is stored.
KERNEL_STARTUP = """\
def _cap_output(limit):
    import sys
    count = [0]
    get_ipython().events.register("pre_run_cell", lambda *_: count.__setitem__(0, 0))
    for stream in (sys.stdout, sys.stderr):
        def write(text, _write=stream.write):
            before, count[0] = count[0], count[0] + len(text)
            if count[0] <= limit:
                return _write(text)
            if before <= limit:
                _write(text[:limit - before] + f"\\n[output truncated: more than {limit} characters]\\n")
            return len(text)
        stream.write = write
_cap_output(%d)
del _cap_output
"""

_reason_cache: list = []


def unavailable_reason() -> str | None:
    """Why this host cannot sandbox (one line), or None; probes once per process."""
    if not _reason_cache:
        _reason_cache.append(_probe())
    return _reason_cache[0]


def _probe() -> str | None:
    if not shutil.which("bwrap"):
        return "bubblewrap (bwrap) is not installed (apt-get install bubblewrap)"
    with tempfile.TemporaryDirectory(prefix="sandbox-probe-") as tmp:
        try:  # the real thing: this interpreter, limits, uid change, shadowed folders
            proc = run([sys.executable, "-I", "-S", "-c", "pass"], scratch=Path(tmp), timeout=60,
                       capture_output=True, text=True)
        except (OSError, subprocess.SubprocessError) as exc:
            return f"bwrap cannot start here: {exc}"
    last = (proc.stderr.strip().splitlines() or [f"exit status {proc.returncode}"])[-1]
    return f"bwrap cannot sandbox here (user namespaces off?): {last}" if proc.returncode else None


def command(argv: Sequence, *, scratch: Path, cwd: Path | None = None, ro: Sequence[Path] = (),
            rw: Sequence[Path] = (), hide: Sequence[Path] = (), env: dict | None = None,
            limits: Limits | None = None, binds: Sequence[tuple[Path, Path]] = ()) -> list[str]:
    """The bwrap argv running ``argv`` sandboxed (no limits, no uid change: see ``popen``).

    ``ro``/``rw``: paths shown read-only/read-write at their own paths; ``binds``: (host path,
    sandbox path) pairs, read-write; ``hide``: a folder shows empty (a package in it imports as
    an empty namespace package, ``from pkg import x`` fails), a file cannot be opened (EACCES).
    """
    size = str((limits or Limits()).tmpfs_bytes)
    scratch = os.path.abspath(scratch)
    cmd = [shutil.which("bwrap") or "bwrap",
           # --unshare-all: network, pid, ipc, uts, cgroup (and user when not setuid); user
           # explicitly, as --disable-userns needs it (no nested namespaces: no mounting inside).
           "--unshare-all", "--unshare-user", "--disable-userns", "--die-with-parent",
           "--new-session",  # no TIOCSTI into the grader's terminal
           "--cap-drop", "ALL", "--uid", "1000", "--gid", "1000",  # what it sees; really: see popen
           "--hostname", "sandbox", "--proc", "/proc", "--dev", "/dev",
           # tmpfs is RAM: sized; /dev itself read-only, else files there would be unbounded RAM
           "--size", size, "--tmpfs", "/dev/shm", "--remount-ro", "/dev", "--size", size, "--tmpfs", "/tmp"]
    for d in SYSTEM_DIRS:  # merged-/usr systems: /bin, /lib… are symlinks; keep them symlinks
        if os.path.islink(d):
            cmd += ["--symlink", os.readlink(d), d]
        elif os.path.isdir(d):
            cmd += ["--ro-bind", d, d]
    for p in dict.fromkeys(os.path.abspath(p) for p in (sys.prefix, sys.base_prefix, *ro)):
        cmd += ["--ro-bind", p, p]
    for src, dest in [*((p, p) for p in rw), (scratch, scratch), *binds]:
        cmd += ["--bind", os.path.abspath(src), os.path.abspath(dest)]
    for p in map(os.path.abspath, hide):
        cmd += ["--tmpfs", p, "--remount-ro", p] if os.path.isdir(p) else ["--ro-bind", "/dev/null", p]
    # The root is bwrap's tmpfs, owned by the sandbox uid: read-only, so files go to scratch or /tmp.
    cmd += ["--remount-ro", "/", "--chdir", os.path.abspath(cwd or scratch), "--clearenv"]
    base = {"PATH": f"{sys.prefix}/bin:/usr/local/bin:/usr/bin:/bin", "HOME": scratch, "TMPDIR": "/tmp",
            "LANG": os.environ.get("LANG") or "C.UTF-8", "USER": "student", "LOGNAME": "student",
            # torch starts a thread per core, and threads count as processes: on a many-core
            # machine its default would hit the process limit (a kernel has ~14 tasks of its own).
            "OMP_NUM_THREADS": str(max(1, min(os.cpu_count() or 1, (limits or Limits()).processes // 4)))}
    for key, value in {**base, **(env or {})}.items():
        cmd += ["--setenv", key, str(value)]
    return [*cmd, "--", *map(str, argv)]


def _prepare(limits: Limits, owned: Sequence, visible: Sequence) -> dict:
    """In the parent: pick the uid, give it the writable folders; what the child must do."""
    if os.getuid() != 0:
        # No other uid to switch to: RLIMIT_NPROC counts all our tasks, so allow ours + processes.
        return {"uid": None, "nproc": _tasks(os.getuid()) + limits.processes, "shadow": {}}
    # Root is exempt from RLIMIT_NPROC (the kernel never limits uid 0), so the sandbox runs as a
    # fresh uid: its process count is its own (not shared with other sandboxes), it owns nothing.
    uid = 0x70000000 + secrets.randbelow(1 << 24)
    for p in owned:
        os.chown(p, uid, uid)
    return {"uid": uid, "nproc": limits.processes, "shadow": _shadows(visible)}


def _shadows(paths) -> dict[str, list[str]]:
    """{folder the sandbox uid cannot traverse (e.g. /root, 0700): [bind sources below it]}.

    bwrap resolves every bind source as the unprivileged uid, so e.g. a pyenv interpreter in
    /root/.pyenv could not be bound; ``_enter`` covers such folders, in a mount namespace of its
    own (the host sees nothing), with a tmpfs holding only those sources.
    """
    out: dict[str, list[str]] = {}
    for p in dict.fromkeys(os.path.realpath(p) for p in paths):
        parts = Path(p).parts
        for i in range(2, len(parts)):
            top = os.path.join(*parts[:i])
            if not os.stat(top).st_mode & stat.S_IXOTH:
                out.setdefault(top, []).append(p)
                break
    return out


def _tasks(uid: int) -> int:
    """Tasks (threads) of real uid ``uid`` now: what RLIMIT_NPROC counts."""
    count = 0
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            fields = dict(line.split(":", 1) for line in open(f"/proc/{pid}/status"))
            count += int(fields["Threads"]) if int(fields["Uid"].split()[0]) == uid else 0
        except (OSError, ValueError, KeyError):
            continue
    return count


def _enter(limits: Limits, plan: dict) -> None:
    """In the child, before exec'ing bwrap: shadow mounts, rlimits, then drop root."""
    if plan["shadow"]:
        _shadow_mounts(plan["shadow"])
    caps = {resource.RLIMIT_DATA: limits.memory_bytes, resource.RLIMIT_AS: limits.memory_bytes + ADDRESS_SLACK,
            resource.RLIMIT_CPU: limits.cpu_seconds, resource.RLIMIT_NPROC: plan["nproc"],
            resource.RLIMIT_FSIZE: limits.file_bytes, resource.RLIMIT_NOFILE: limits.open_files,
            resource.RLIMIT_CORE: 0}
    for res, soft in caps.items():
        hard = soft + 5 if res == resource.RLIMIT_CPU else soft  # CPU: SIGXCPU, then SIGKILL 5 s later
        top = resource.getrlimit(res)[1]  # never raise a hard limit (that needs CAP_SYS_RESOURCE)
        resource.setrlimit(res, (soft, hard) if top == resource.RLIM_INFINITY else (min(soft, top), min(hard, top)))
    if plan["uid"] is not None:
        os.setgroups([])
        os.setresgid(plan["uid"], plan["uid"], plan["uid"])
        os.setresuid(plan["uid"], plan["uid"], plan["uid"])


_CLONE_NEWNS, _MS_BIND, _MS_REC, _MS_PRIVATE = 0x20000, 0x1000, 0x4000, 0x40000
_libc = ctypes.CDLL(None, use_errno=True)  # loaded here: the child of a threaded parent must not dlopen


def _shadow_mounts(shadow: dict) -> None:
    def check(result, what):
        if result != 0:  # e.g. root without CAP_SYS_ADMIN (a default Docker container)
            raise OSError(ctypes.get_errno(), f"sandbox: {what}: {os.strerror(ctypes.get_errno())}")

    check(_libc.unshare(_CLONE_NEWNS), "unshare(CLONE_NEWNS)")
    check(_libc.mount(b"none", b"/", None, _MS_REC | _MS_PRIVATE, None), "make / private")
    for top, sources in shadow.items():
        fds = [os.open(p, os.O_PATH) for p in sources]  # opened before the tmpfs hides them
        check(_libc.mount(b"tmpfs", top.encode(), b"tmpfs", 0, b"mode=0755,size=64k"), f"tmpfs on {top}")
        for p, fd in zip(sources, fds):
            is_dir = stat.S_ISDIR(os.fstat(fd).st_mode)
            os.makedirs(p if is_dir else os.path.dirname(p), 0o755, exist_ok=True)
            if not is_dir:
                open(p, "w").close()
            check(_libc.mount(f"/proc/self/fd/{fd}".encode(), p.encode(), None, _MS_BIND | _MS_REC, None), f"bind {p}")
            os.close(fd)


def _sources(ro, rw, scratch, binds) -> list:
    return [*(d for d in SYSTEM_DIRS if os.path.isdir(d) and not os.path.islink(d)), sys.prefix,
            sys.base_prefix, *ro, *rw, scratch, *(src for src, _ in binds)]


def popen(argv: Sequence, *, scratch: Path, limits: Limits = Limits(), cwd: Path | None = None,
          ro: Sequence[Path] = (), rw: Sequence[Path] = (), hide: Sequence[Path] = (),
          env: dict | None = None, binds: Sequence[tuple[Path, Path]] = (), **popen_kwargs) -> subprocess.Popen:
    """``subprocess.Popen`` of ``command(...)`` with ``limits`` applied before bwrap starts.

    As root, the sandbox runs as a fresh uid, and ``scratch``, ``rw`` and the ``binds`` sources
    are chown'ed to it (the folders themselves, not their contents: give each run a fresh scratch).
    """
    cmd, pre = _launch(argv, scratch, limits, cwd, ro, rw, hide, env, binds, popen_kwargs.pop("preexec_fn", None))
    return subprocess.Popen(cmd, preexec_fn=pre, **popen_kwargs)


def run(argv: Sequence, *, timeout: float, **same) -> subprocess.CompletedProcess:
    """``subprocess.run`` of ``popen``'s sandbox (same arguments): on timeout bwrap is killed, and
    with it (pid namespace, --die-with-parent) everything in the sandbox; TimeoutExpired follows."""
    names = ("scratch", "limits", "cwd", "ro", "rw", "hide", "env", "binds", "preexec_fn")
    cmd, pre = _launch(argv, **{k: same.pop(k) for k in names if k in same})
    return subprocess.run(cmd, preexec_fn=pre, timeout=timeout, **same)


def _launch(argv, scratch, limits=Limits(), cwd=None, ro=(), rw=(), hide=(), env=None, binds=(), preexec_fn=None):
    plan = _prepare(limits, [scratch, *rw, *(src for src, _ in binds)], _sources(ro, rw, scratch, binds))
    cmd = command(argv, scratch=scratch, cwd=cwd, ro=ro, rw=rw, hide=hide, env=env, limits=limits, binds=binds)

    def pre():
        _enter(limits, plan)
        if preexec_fn:
            preexec_fn()

    return cmd, pre


# ---- nbgrader's kernel -------------------------------------------------------------------------

def kernel_setup(workdir: Path, *, ro: Sequence[Path], limits: Limits = Limits(),
                 pythonpath: Sequence[Path] = ()) -> tuple[dict, list[str]]:
    """Make nbgrader run its ``python3`` kernels sandboxed: (env to add, nbgrader arguments).

    Writes ``workdir/kernels/python3/kernel.json``; each kernel then sees the system, the
    interpreter, ``ro`` (e.g. the skinlab package folder, not the course root) and an empty
    scratch folder as its cwd and HOME. ``pythonpath`` goes first on each kernel's import path
    (its ``PYTHONPATH``; e.g. the folder above the skinlab package the grader runs, so that the
    kernel imports that one and not the one an editable install points at): only what ``ro``
    binds below it is visible there. Use a fresh ``workdir`` per grading call and remove it
    afterwards (it holds each kernel's scratch and log under ``workdir/sandboxes``).
    """
    workdir = Path(workdir).resolve()
    ip = workdir / "runtime" / "kernel"
    if len(str(ip)) > 90:  # a unix socket path has at most 107 bytes
        raise ValueError(f"kernel_setup: {workdir} is too long a path for unix sockets")
    for d in ("kernels/python3", "runtime", "sandboxes"):
        (workdir / d).mkdir(mode=0o700, parents=True, exist_ok=True)
    launcher = [sys.executable, "-I", os.path.abspath(__file__), "kernel", "--work", str(workdir),
                "--limits", json.dumps(asdict(limits)), *(a for p in ro for a in ("--ro", str(Path(p).resolve()))),
                *(a for p in pythonpath for a in ("--pythonpath", str(Path(p).resolve())))]
    spec = {"argv": [*launcher, "--", sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
            "display_name": "Python 3 (sandboxed)", "language": "python",
            # Interrupts as a control message: a signal to bwrap's process group would not reach
            # the kernel, which bwrap puts in a session (and pid namespace) of its own.
            "interrupt_mode": "message", "metadata": {}}
    (workdir / "kernels/python3/kernel.json").write_text(json.dumps(spec, indent=1))
    old = os.environ.get("JUPYTER_PATH")
    env = {"JUPYTER_PATH": os.pathsep.join(filter(None, [str(workdir), old])),
           "JUPYTER_RUNTIME_DIR": str(workdir / "runtime")}
    # nbgrader's Execute (nbclient) makes its KernelManager with nbgrader's config, so these reach
    # it: ZeroMQ over unix sockets <ip>-<n>, which a bind mount carries into the sandbox. The ip
    # must be absolute: nbclient's default, "kernel-ipc", is relative to two different cwds.
    return env, ["--KernelManager.transport=ipc", f"--KernelManager.ip={ip}"]


def _kernel_main(args) -> None:
    """Start ipykernel sandboxed (exec's bwrap, so the kernel manager's pid is bwrap's)."""
    cmd = list(args.cmd)
    at = cmd.index("-f") + 1
    conn = Path(cmd[at])
    info = json.loads(conn.read_text())
    ip = Path(info.get("ip", ""))
    if info.get("transport") != "ipc" or not ip.is_absolute():
        sys.exit("sandboxed kernel: needs --KernelManager.transport=ipc and an absolute "
                 "--KernelManager.ip (kernel_setup's arguments): TCP cannot leave the sandbox")
    limits = Limits(**json.loads(args.limits)) if args.limits else Limits()
    # Each kernel gets a socket folder of its own, bound where the shared one is, so it sees its
    # own connection file and sockets only; symlinks show the host where its sockets are.
    private = Path(tempfile.mkdtemp(prefix="kernel-", dir=args.work / "sandboxes"))
    runtime, home = private / "runtime", private / "home"
    startup = home / ".ipython" / "profile_default" / "startup"
    runtime.mkdir()
    startup.mkdir(parents=True)
    (startup / "00-grading-output.py").write_text(KERNEL_STARTUP % limits.output_bytes)
    shutil.copy(conn, runtime / conn.name)
    cmd[at] = str(ip.parent / conn.name)
    for port in ("shell", "iopub", "stdin", "control", "hb"):
        os.symlink(runtime / f"{ip.name}-{info[port + '_port']}", f"{ip}-{info[port + '_port']}")
    env = {k: os.environ[k] for k in KERNEL_ENV if k in os.environ}
    if args.pythonpath:
        env["PYTHONPATH"] = os.pathsep.join(map(str, args.pythonpath))
    binds = [(runtime, ip.parent)]
    owned = [runtime, runtime / conn.name, home, *startup.parents[:3], startup]  # IPython writes there
    plan = _prepare(limits, owned, _sources(args.ro, (), home, binds))
    argv = command(cmd, scratch=home, ro=args.ro, env=env, limits=limits, binds=binds)
    # The kernel's own stdout/stderr (start-up errors, raw fd writes) go to a bounded log file,
    # not into nbgrader's output, which a caller may be capturing in memory.
    log = os.open(private / "kernel.log", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    for fd in (1, 2):
        os.dup2(log, fd)
    os.chdir("/")
    _enter(limits, plan)
    os.execv(argv[0], argv)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m skinlab.grading.sandbox")
    sub = parser.add_subparsers(dest="what", required=True)
    k = sub.add_parser("kernel", help="run a kernel argv (-- python -m ipykernel_launcher -f FILE) sandboxed")
    k.add_argument("--ro", action="append", type=Path, default=[], help="read-only path (repeatable)")
    k.add_argument("--pythonpath", action="append", type=Path, default=[],
                   help="folder first on the kernel's import path (repeatable)")
    k.add_argument("--limits", help="Limits as JSON")
    k.add_argument("--work", type=Path, required=True, help="kernel_setup's folder")
    k.add_argument("cmd", nargs="+")
    sub.add_parser("check", help="say whether this host can sandbox (exit status 1 if not)")
    args = parser.parse_args(argv)
    if args.what == "kernel":
        _kernel_main(args)
    print(unavailable_reason() or "sandbox available")
    sys.exit(unavailable_reason() is not None)


if __name__ == "__main__":
    main()
