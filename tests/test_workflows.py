"""The GitHub Actions workflows in .github/workflows: linted, and the publishing facts checked.

* every workflow passes ``actionlint`` (any finding fails the test, with actionlint's output);
* ``publish-book.yml`` does what issue #23 asks, checked on the parsed YAML by
  :func:`publish_problems`: the students' edition (``_build/html``) is what Pages deploys, the
  instructors' edition only goes to a private artifact, the data comes from ``skinlab data
  download`` behind a cache step, the page audit (``--browser-check``) runs before the upload;
* every ``python -m skinlab...`` / ``skinlab ...`` / ``make ...`` command in a ``run:`` names a real
  entry: the command line is parsed by the module's own argparse parser (nothing runs), the
  ``make`` targets exist in the Makefile, and ``from skinlab... import`` names exist.

Each structural check is shown to fail on a mutated copy of the workflow.
"""

from __future__ import annotations

import argparse
import copy
import importlib
import re
import runpy
import shlex
import shutil
import subprocess
import sys
from contextlib import redirect_stderr, redirect_stdout
from io import StringIO
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
WORKFLOWS = ROOT / ".github" / "workflows"
PUBLISH = WORKFLOWS / "publish-book.yml"
STUDENT_HTML = "_build/html"
INSTRUCTOR_HTML = "_build/instructor/html"


# ---------------------------------------------------------------------------- helpers

def load(path: Path) -> dict:
    return yaml.safe_load(path.read_text())


def triggers(doc: dict) -> dict:
    on = doc.get("on", doc.get(True))  # YAML 1.1 reads a bare `on:` key as True
    if isinstance(on, str):
        return {on: None}
    if isinstance(on, list):
        return {name: None for name in on}
    return on or {}


def uses(step: dict, action: str) -> bool:
    return str(step.get("uses", "")).split("@")[0] == action


def steps_of(doc: dict):
    """(job id, index, step) for every step of every job."""
    for job_id, job in (doc.get("jobs") or {}).items():
        for i, step in enumerate(job.get("steps") or []):
            yield job_id, i, step


def run_lines(script: str) -> list[str]:
    """The shell commands of a ``run:`` block: continuation lines and quoted line breaks joined,
    comments dropped."""
    joined = re.sub(r"\\\n\s*", " ", script)
    commands, buffer = [], ""
    for line in joined.splitlines():
        if not buffer and (not line.strip() or line.strip().startswith("#")):
            continue
        buffer = f"{buffer}\n{line}" if buffer else line.strip()
        try:  # a quoted argument may span lines (python -c "..."): wait for its closing quote
            shlex.split(buffer, comments=True)
        except ValueError:
            continue
        commands.append(buffer)
        buffer = ""
    return commands + ([buffer] if buffer else [])


def mentions(step: dict, text: str) -> bool:
    return text in str(step.get("run", ""))


def bookbuild_edition(step: dict) -> str | None:
    """The edition a ``run:`` step builds or audits with skinlab.course.bookbuild, else None."""
    for line in run_lines(str(step.get("run", ""))):
        if "skinlab.course.bookbuild" in line or "skinlab.bookbuild" in line or line.startswith("make book"):
            if "--install-browser" in line:
                continue
            m = re.search(r"--edition[= ](\w+)", line)
            return m.group(1) if m else "student"
    return None


def path_of(step: dict) -> str:
    return str((step.get("with") or {}).get("path", "")).strip().rstrip("/")


# ---------------------------------------------------------------------------- the publishing facts

def publish_problems(doc: dict) -> list[str]:
    """Everything wrong with the publishing workflow `doc` (parsed YAML), one line each."""
    problems: list[str] = []
    on = triggers(doc)
    push = on.get("push") or {}
    if "main" not in (push.get("branches") or []):
        problems.append("trigger: not run on push to main")
    if "workflow_dispatch" not in on:
        problems.append("trigger: no workflow_dispatch")
    if not doc.get("concurrency"):
        problems.append("concurrency: no concurrency group")
    jobs = doc.get("jobs") or {}
    for job_id, job in jobs.items():
        if not job.get("timeout-minutes"):
            problems.append(f"timeout: job {job_id} has no timeout-minutes")

    steps = list(steps_of(doc))
    pages_uploads = [(j, i, s) for j, i, s in steps if uses(s, "actions/upload-pages-artifact")]
    deploys = [(j, i, s) for j, i, s in steps if uses(s, "actions/deploy-pages")]
    artifacts = [(j, i, s) for j, i, s in steps if uses(s, "actions/upload-artifact")]

    # Pages: the students' edition, audited, and nothing else.
    if not deploys:
        problems.append("pages: no actions/deploy-pages step")
    if len(pages_uploads) != 1:
        problems.append(f"pages: {len(pages_uploads)} upload-pages-artifact steps, expected 1")
    for job_id, i, step in pages_uploads:
        if path_of(step) != STUDENT_HTML:
            problems.append(f"pages: uploads {path_of(step)!r}, not the students' edition {STUDENT_HTML!r}")
        job_steps = jobs[job_id]["steps"][:i]
        built = [bookbuild_edition(s) for s in job_steps if bookbuild_edition(s) and not mentions(s, "--browser-check")]
        if "student" not in built:
            problems.append("pages: the students' edition is not built before the Pages upload")
        if not any(mentions(s, "--browser-check") and bookbuild_edition(s) == "student" for s in job_steps):
            problems.append("audit: no page audit (--browser-check) of the students' edition before the Pages upload")
    for job_id, _, _ in deploys:
        job = jobs[job_id]
        perms = job.get("permissions") or doc.get("permissions") or {}
        if perms.get("pages") != "write" or perms.get("id-token") != "write":
            problems.append(f"pages: job {job_id} lacks permissions pages: write and id-token: write")
        needs = job.get("needs") or []
        needs = [needs] if isinstance(needs, str) else needs
        if not any(j in needs for j, _, _ in pages_uploads):
            problems.append(f"pages: job {job_id} does not wait for the job that uploads the site")
    for _, _, step in steps:
        if INSTRUCTOR_HTML in str(step) and not uses(step, "actions/upload-artifact") and "run" not in step:
            problems.append(f"instructor: {step.get('uses')} touches the instructors' edition")

    # The instructors' edition: built, then only a short-lived private artifact.
    if not any(bookbuild_edition(s) == "instructor" for _, _, s in steps):
        problems.append("instructor: the instructors' edition is never built")
    private = [s for _, _, s in artifacts if path_of(s) == INSTRUCTOR_HTML]
    if not private:
        problems.append("instructor: the instructors' edition is not uploaded with actions/upload-artifact")
    for step in private:
        days = (step.get("with") or {}).get("retention-days")
        if not isinstance(days, int) or days > 30:
            problems.append(f"instructor: artifact retention-days {days!r}, expected a short one (<= 30)")

    # The data: `skinlab data download` into a folder restored by a cache step first.
    downloads = [(j, i, s) for j, i, s in steps if re.search(r"skinlab data download", str(s.get("run", "")))]
    if not downloads:
        problems.append("data: no `skinlab data download` step")
    for job_id, i, _ in downloads:
        job = jobs[job_id]
        data_dir = str((job.get("env") or {}).get("HAM10000_DIR") or (doc.get("env") or {}).get("HAM10000_DIR") or "")
        caches = [s for s in job["steps"][:i] if uses(s, "actions/cache")
                  and data_dir and path_of(s) == data_dir.rstrip("/")]
        if not data_dir:
            problems.append(f"data: job {job_id} does not set HAM10000_DIR")
        elif not caches:
            problems.append(f"data: no actions/cache step for {data_dir} before the download")
        for cache in caches:
            key = str((cache.get("with") or {}).get("key", ""))
            if "${{" not in key:
                problems.append(f"data: the dataset cache key {key!r} never changes")
    return problems


# ---------------------------------------------------------------------------- real commands

class _Parsed(Exception):
    pass


def _makefile_targets() -> set[str]:
    text = (ROOT / "Makefile").read_text()
    return {m.group(1) for m in re.finditer(r"^([A-Za-z0-9_.-]+)\s*:(?!=)", text, re.M)}


def _argv_of(line: str) -> tuple[str, list[str]] | None:
    """(module, argv) of a skinlab command line, else None."""
    words = shlex.split(line, comments=True)
    if not words:
        return None
    exe = Path(words[0]).name
    if exe == "skinlab":
        return "skinlab", words[1:]
    if re.fullmatch(r"python(3(\.\d+)?)?", exe) and len(words) >= 3 and words[1] == "-m" \
            and (words[2] == "skinlab" or words[2].startswith("skinlab.")):
        return words[2], words[3:]
    return None


def _check_cli(module: str, argv: list[str]) -> str | None:
    """None when `module`'s own argparse parser accepts `argv` (nothing is run), else the error."""
    original = argparse.ArgumentParser.parse_args

    def parse_only(self, args=None, namespace=None):
        original(self, args, namespace)
        raise _Parsed

    saved_argv = sys.argv
    sys.argv, err = [module, *argv], StringIO()
    argparse.ArgumentParser.parse_args = parse_only
    try:
        with redirect_stderr(err), redirect_stdout(StringIO()):
            runpy.run_module(module, run_name="__main__", alter_sys=False)
    except _Parsed:
        return None
    except SystemExit as exc:  # argparse: unknown command or flag, bad choice (or --help: 0)
        return None if exc.code in (0, None) else (err.getvalue().strip().splitlines() or ["?"])[-1]
    except ImportError as exc:
        return f"cannot import {module}: {exc}"
    finally:
        argparse.ArgumentParser.parse_args = original
        sys.argv = saved_argv
    return "it ran past argument parsing without parsing any arguments"


def command_problems(doc: dict) -> list[str]:
    """Every `run:` command calling skinlab or make that names no real entry, one line each."""
    problems: list[str] = []
    targets = _makefile_targets()
    for job_id, _, step in steps_of(doc):
        script = str(step.get("run", ""))
        for line in run_lines(script):
            words = shlex.split(line, comments=True)
            if words and words[0] == "make":
                for target in (w for w in words[1:] if not w.startswith("-") and "=" not in w):
                    if target not in targets:
                        problems.append(f"{job_id}: `{line}`: no Makefile target {target!r}")
                continue
            parsed = _argv_of(line)
            if parsed:
                error = _check_cli(*parsed)
                if error:
                    problems.append(f"{job_id}: `{line}`: {error}")
        for mod, names in re.findall(r"from\s+(skinlab[\w.]*)\s+import\s+([\w, ]+)", script):
            try:
                module = importlib.import_module(mod)
            except ImportError as exc:
                problems.append(f"{job_id}: cannot import {mod}: {exc}")
                continue
            for name in (n.strip() for n in names.split(",") if n.strip()):
                if not hasattr(module, name):
                    problems.append(f"{job_id}: {mod} has no {name!r}")
    return problems


# ---------------------------------------------------------------------------- the tests

def _actionlint() -> str | None:
    return shutil.which("actionlint") or next(
        (str(p) for p in [Path(sys.executable).parent / "actionlint"] if p.is_file()), None)


def test_workflows_exist():
    assert PUBLISH.is_file()


@pytest.mark.parametrize("workflow", sorted(WORKFLOWS.glob("*.y*ml")), ids=lambda p: p.name)
def test_actionlint(workflow):
    exe = _actionlint()
    if exe is None:
        pytest.skip("actionlint is not installed (see docs/PUBLISHING.md)")
    result = subprocess.run([exe, "-no-color", str(workflow)], capture_output=True, text=True, cwd=ROOT)
    assert result.returncode == 0, f"actionlint found problems in {workflow.name}:\n{result.stdout}{result.stderr}"


def test_publish_workflow_facts():
    assert publish_problems(load(PUBLISH)) == []


@pytest.mark.parametrize("workflow", sorted(WORKFLOWS.glob("*.y*ml")), ids=lambda p: p.name)
def test_run_commands_name_real_entries(workflow):
    assert command_problems(load(workflow)) == []


# ---------------------------------------------------------------------------- each check can fail

def _step(doc, predicate):
    return next(s for _, _, s in steps_of(doc) if predicate(s))


def _pages_upload(doc):
    return _step(doc, lambda s: uses(s, "actions/upload-pages-artifact"))


def _instructor_artifact(doc):
    return _step(doc, lambda s: uses(s, "actions/upload-artifact"))


def _drop(doc, predicate):
    for job in doc["jobs"].values():
        job["steps"] = [s for s in job["steps"] if not predicate(s)]


def _set(mapping, key, value):
    mapping[key] = value


def _no_trigger(doc, name):
    triggers(doc).pop(name)


MUTATIONS = {
    "pages-deploys-instructor": (lambda d: _set(_pages_upload(d)["with"], "path", INSTRUCTOR_HTML),
                                 "not the students' edition"),
    "no-deploy": (lambda d: _drop(d, lambda s: uses(s, "actions/deploy-pages")), "no actions/deploy-pages"),
    "instructor-also-on-pages": (
        lambda d: d["jobs"]["build"]["steps"].append(
            {"uses": "actions/upload-pages-artifact@v3", "with": {"path": INSTRUCTOR_HTML}}),
        "2 upload-pages-artifact steps"),
    "instructor-not-artifact": (lambda d: _drop(d, lambda s: uses(s, "actions/upload-artifact")),
                                "not uploaded with actions/upload-artifact"),
    "instructor-long-retention": (lambda d: _set(_instructor_artifact(d)["with"], "retention-days", 90),
                                  "retention-days"),
    "instructor-not-built": (lambda d: _drop(d, lambda s: bookbuild_edition(s) == "instructor"),
                             "never built"),
    "student-not-built": (lambda d: _drop(d, lambda s: bookbuild_edition(s) == "student"
                                          and not mentions(s, "--browser-check")),
                          "not built before the Pages upload"),
    "no-audit": (lambda d: _drop(d, lambda s: mentions(s, "--browser-check")), "--browser-check"),
    "no-download": (lambda d: _drop(d, lambda s: mentions(s, "skinlab data download")), "no `skinlab data download`"),
    "no-data-cache": (lambda d: _drop(d, lambda s: uses(s, "actions/cache") and "ham10000" in path_of(s)),
                      "no actions/cache step"),
    "static-cache-key": (lambda d: _set(_step(d, lambda s: uses(s, "actions/cache") and "ham10000" in path_of(s))
                                        ["with"], "key", "ham10000"), "never changes"),
    "no-pages-permission": (lambda d: d["jobs"]["deploy"]["permissions"].pop("id-token"), "id-token: write"),
    "no-push-trigger": (lambda d: _no_trigger(d, "push"), "push to main"),
    "no-dispatch": (lambda d: _no_trigger(d, "workflow_dispatch"), "workflow_dispatch"),
    "no-concurrency": (lambda d: d.pop("concurrency"), "concurrency"),
    "no-timeout": (lambda d: d["jobs"]["build"].pop("timeout-minutes"), "timeout-minutes"),
}


@pytest.mark.parametrize("name", sorted(MUTATIONS))
def test_publish_check_catches(name):
    mutate, expected = MUTATIONS[name]
    doc = copy.deepcopy(load(PUBLISH))
    mutate(doc)
    problems = publish_problems(doc)
    assert any(expected in p for p in problems), problems


COMMAND_MUTATIONS = {
    "unknown-subcommand": ("python -m skinlab data download", "python -m skinlab data fetch"),
    "unknown-flag": ("--browser-check", "--audit"),
    "bad-edition": ("--edition instructor", "--edition teacher"),
    "unknown-module": ("python -m skinlab.course.bookbuild --edition student\n",
                       "python -m skinlab.course.buildbook --edition student\n"),
    "unknown-make-target": ("run: make browser", "run: make chromium"),
    "unknown-import": ("select_ham10000_files", "select_files"),
}


@pytest.mark.parametrize("name", sorted(COMMAND_MUTATIONS))
def test_command_check_catches(name):
    old, new = COMMAND_MUTATIONS[name]
    text = PUBLISH.read_text()
    assert old in text
    assert command_problems(yaml.safe_load(text.replace(old, new, 1))) != []
