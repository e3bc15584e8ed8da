"""Build the course book (``make book``) and check it in a headless browser.

    python -m skinlab.bookbuild                    # build _build/html (warnings are errors)
    python -m skinlab.bookbuild path/to/course     # the course in another folder
    python -m skinlab.bookbuild --profile full     # the guide's settings (meant for a GPU)
    python -m skinlab.bookbuild --edition instructor  # _build/instructor/html, with the listings
    python -m skinlab.bookbuild --install-browser  # apt-get install chromium chromium-driver
    python -m skinlab.bookbuild --browser-check    # screenshots, broken images, JS errors, and the
                                                   # page audit (offline math and views, alt text,
                                                   # sideways scroll at 1280 and 390 px)

The course folder is the one holding the book's ``_config.yml``: the argument, else the current
folder (or the nearest one above it with ``_config.yml``). The chapters run on ``$HAM10000_DIR``
when set, else on the embedded synthetic sample (every page then says so). Execution is cached (``_build/.jupyter_cache``): an unchanged rebuild takes seconds.

Two editions (``--edition``, default ``$SKINLAB_EDITION``, else ``student``):

* ``student`` (the default, ``_build/html``): where a chapter would list a graded reference
  definition it shows the exercise box instead, and runs the reference without displaying it;
* ``instructor`` (``_build/instructor/html``): the same pages with the listings.

Both execute the same notebooks and share the execution cache: the edition is decided at Sphinx
level (``book/_ext/skinlab_editions.py``, config value ``skinlab_edition``), so building the
second edition after the first re-executes nothing.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

from skinlab.course import CONFIG_FILE, COURSE_ENV, course_root
from skinlab.course.profile import BOOK_BUILD_ENV, PROFILE_ENV, code_hash, current_profile, data_hash
from skinlab.data.layout import ENV_VAR

EDITIONS = ("student", "instructor")
EDITION_ENV = "SKINLAB_EDITION"
CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"


def current_edition(name: str | None = None) -> str:
    """The edition named ``name``, else ``$SKINLAB_EDITION``, else ``student``."""
    chosen = (name or os.environ.get(EDITION_ENV) or "student").strip().lower()
    if chosen not in EDITIONS:
        raise ValueError(f"{EDITION_ENV}={chosen!r}: unknown edition; expected one of {', '.join(EDITIONS)}")
    return chosen


def edition_dir(root: Path | None = None, edition: str = "student") -> Path:
    """Build folder of an edition (its ``html/`` and ``.doctrees/``): the students' edition is
    where ``jupyter-book build`` puts a book, ``_build/``; the instructors' is ``_build/instructor/``."""
    edition = current_edition(edition)
    build_dir = course_root(root) / "_build"
    return build_dir if edition == "student" else build_dir / edition


def html_dir(root: Path | None = None, edition: str = "student") -> Path:
    return edition_dir(root, edition) / "html"


BOOK_CODE_MODULES = ("data", "synthetic", "split", "balance", "presets", "models", "engine",
                     "metrics", "cache", "atomic", "pipeline", "course.profile", "plots", "gradcam")


def build_key(root: Path, profile) -> str:
    """What the executed outputs depend on besides the chapters' own code: profile, dataset,
    skinlab's source and the exercise notebooks (chapter 13 reads them)."""
    import hashlib

    from skinlab.data import resolve_data_dir

    source = resolve_data_dir(None, n_synthetic=profile.n_synthetic, progress=False)
    h = hashlib.sha256()
    for nb in sorted((root / "exercises").glob("*/*.ipynb")):
        h.update(nb.read_bytes())
    return (f"{profile.name}|{'synthetic' if source.synthetic else 'ham10000'}|{data_hash(source)}|"
            f"{code_hash(BOOK_CODE_MODULES)}|{h.hexdigest()[:8]}")


def _cache_key_file(root: Path) -> Path:
    return root / "_build" / ".skinlab-cache-key"


def _env_key_file(root: Path, edition: str) -> Path:
    return edition_dir(root, edition) / ".skinlab-build-key"


def _invalidate_if_changed(root: Path, key: str) -> bool:
    """Jupyter Book's cache knows only the notebooks' code, not the data or profile they ran on:
    when those changed since the last build, drop the cache (shared by both editions)."""
    key_file = _cache_key_file(root)
    if not key_file.is_file() and _env_key_file(root, "student").is_file():
        key_file = _env_key_file(root, "student")  # a _build/ from before the editions existed
    if key_file.is_file() and key_file.read_text() == key:
        return False
    shutil.rmtree(root / "_build" / ".jupyter_cache", ignore_errors=True)
    return True


IOPUB_TIMEOUT = 120  # seconds a cell's late output is waited for (nbclient's default: 4)


def _wait_for_all_output() -> None:
    """Make the book's notebook execution wait for every output of a cell, or fail.

    nbclient waits ``iopub_timeout`` seconds (4 by default) for the outputs a kernel sends after its
    reply, then moves on with only a log line: on a loaded machine chapter 9 lost both its figures
    that way (2026-11-29), and the page was built without them. MyST-NB passes no client options,
    so its executor is wrapped here (in the build's own process)."""
    import functools

    from jupyter_cache.executors import utils

    if not getattr(utils.executenb, "_skinlab_patient", False):
        patient = functools.partial(utils.executenb, iopub_timeout=IOPUB_TIMEOUT, raise_on_iopub_timeout=True)
        patient._skinlab_patient = True
        utils.executenb = patient


def _sphinx_build(spec: str) -> int:
    """Child process of :func:`build`: what ``jupyter-book build`` does, with the output folders,
    the shared execution cache and the edition given explicitly (its CLI can set none of them)."""
    from jupyter_book.sphinx import build_sphinx

    _wait_for_all_output()

    s = json.loads(spec)
    root = Path(s["root"])
    result = build_sphinx(
        root, Path(s["html"]), doctreedir=Path(s["doctrees"]), noconfig=True,
        path_config=str(root / "_config.yml"), use_external_toc=True,
        confoverrides={"external_toc_path": (root / "_toc.yml").as_posix(), "latex_individualpages": False,
                       "skinlab_edition": s["edition"], "nb_execution_cache_path": s["cache"]},
        builder="html", warningiserror=s["strict"], keep_going=s["strict"], freshenv=s["fresh"])
    if isinstance(result, BaseException):
        print(f"the Sphinx build failed: {result!r}", file=sys.stderr, flush=True)
        return 1
    return int(result or 0)


def build(root: Path | None = None, profile: str | None = None, strict: bool = True,
          extra_args: list[str] | None = None, edition: str | None = None) -> int:
    """Build one edition of the book of the course in ``root`` (default :func:`course_root`)
    (edition default ``$SKINLAB_EDITION``, else the students'); returns the build's exit status
    (0 = success). ``extra_args`` may hold ``--all`` (re-read every page; execution stays cached)."""
    root = course_root(root)
    if not (root / CONFIG_FILE).is_file():
        raise SystemExit(f"{root} holds no {CONFIG_FILE}: run in the course folder or pass it as an argument")
    chosen = current_profile(profile)  # fails early on a bad profile name
    edition = current_edition(edition)
    if importlib.util.find_spec("jupyter_book") is None:
        raise SystemExit("jupyter-book is not installed: run `make install` (pip install -e '.[book]')")
    unknown = [a for a in extra_args or [] if a != "--all"]
    if unknown:
        raise ValueError(f"unsupported build arguments {unknown}: only --all")
    key = build_key(root, chosen)
    dropped = _invalidate_if_changed(root, key)
    env_key = _env_key_file(root, edition)
    # this edition's pages were read with other outputs (other data, profile or cache): re-read all
    fresh = dropped or "--all" in (extra_args or []) or not (env_key.is_file() and env_key.read_text() == key)
    out = edition_dir(root, edition)
    env = dict(os.environ)
    env[BOOK_BUILD_ENV] = "1"
    env[PROFILE_ENV] = chosen.name
    env[EDITION_ENV] = edition
    env[COURSE_ENV] = str(root)  # the kernels run in book/: they find the course (runs, exercises) here
    # The kernel must be this environment's python, and nbgrader/jupyter tools on PATH.
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    # One compute thread per kernel unless told otherwise: the book's small models gain little
    # from a second core, and on a busy machine two spinning OpenMP threads per process made
    # LeNet epochs ~10x slower (measured: 3 s vs 31 s per epoch under a load of 12 on 2 cores).
    env.setdefault("OMP_NUM_THREADS", "1")
    # Figures must go to the page: the kernels need the inline backend even when the caller
    # (e.g. pytest's conftest) exported MPLBACKEND=Agg.
    env["MPLBACKEND"] = "module://matplotlib_inline.backend_inline"
    spec = json.dumps({"root": str(root), "html": str(out / "html"), "doctrees": str(out / ".doctrees"),
                       "cache": str(root / "_build" / ".jupyter_cache"), "edition": edition,
                       "strict": strict, "fresh": fresh})
    cmd = [sys.executable, "-c", "import sys; from skinlab.course.bookbuild import _sphinx_build; "
           "sys.exit(_sphinx_build(sys.argv[1]))", spec]
    data = env.get(ENV_VAR) or f"synthetic sample ({ENV_VAR} not set)"
    print(f"building the book ({edition}s' edition): profile {env[PROFILE_ENV]}, data {data}", flush=True)
    t0 = time.perf_counter()
    rc = subprocess.call(cmd, cwd=root, env=env)
    # The cache now holds outputs for this key only (failed notebooks are not cached), and this
    # edition's pages were read from them.
    for key_file in (_cache_key_file(root), env_key):
        key_file.parent.mkdir(parents=True, exist_ok=True)
        key_file.write_text(key)
    print(f"the book build exited with {rc} after {time.perf_counter() - t0:.0f} s; "
          f"HTML in {out / 'html'}", flush=True)
    return rc


# --------------------------------------------------------------------------- browser check


def install_browser() -> None:
    """Install Debian's chromium and chromium-driver when missing (needs root and apt)."""
    if Path(CHROMIUM).is_file() and Path(CHROMEDRIVER).is_file():
        print(f"{CHROMIUM} and {CHROMEDRIVER} are installed")
        return
    if shutil.which("apt-get") is None:
        raise SystemExit("no apt-get here: install chromium and chromedriver with your package manager")
    sudo = [] if os.geteuid() == 0 else ["sudo"]
    subprocess.check_call(sudo + ["apt-get", "update"])
    subprocess.check_call(sudo + ["apt-get", "install", "-y", "chromium", "chromium-driver"],
                          env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"})


def browser_available() -> bool:
    return Path(CHROMIUM).is_file() and Path(CHROMEDRIVER).is_file()


_IGNORED_CONSOLE = (
    # The book works offline: scripts from CDNs (ipywidgets' html-manager, require.js, MathJax)
    # fail to load there. That is a network failure, not a JavaScript error of the page.
    "net::ERR_",
    "Failed to load resource",
    # pydata-sphinx-theme console.error()s this when a file:// page has no stored light/dark
    # mode yet, then falls back to "auto": a log line, not a failure.
    "Got invalid theme mode",
)


def screenshot_dir(html_dir: Path) -> Path:
    """Where :func:`browser_check` puts its screenshots: ``screenshots/`` beside ``html/``."""
    return Path(html_dir).parent / "screenshots"


def browser_check(pages: list[str], html_dir: Path, out_dir: Path | None = None,
                  width: int = 1280, height: int = 1600) -> dict[str, list[str]]:
    """Open ``pages`` (paths relative to ``html_dir``) in headless Chromium.

    Saves a screenshot of each under ``out_dir`` (default :func:`screenshot_dir`) and returns
    ``{page: [problems]}``: images that did not load (``naturalWidth`` 0) and JavaScript errors
    from the console.
    """
    out_dir = Path(out_dir) if out_dir is not None else screenshot_dir(html_dir)
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                f"--window-size={width},{height}", "--allow-file-access-from-files"):
        opts.add_argument(arg)
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    out_dir.mkdir(parents=True, exist_ok=True)
    problems: dict[str, list[str]] = {}
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=opts)
    try:
        driver.set_page_load_timeout(60)
        for page in pages:
            found: list[str] = []
            path = (html_dir / page).resolve()
            if not path.is_file():
                problems[page] = [f"{path} does not exist"]
                continue
            driver.get(path.as_uri())
            # let lazy images and scripts finish
            for _ in range(50):
                if driver.execute_script("return document.readyState") == "complete":
                    break
                time.sleep(0.1)
            driver.execute_script("""
                const imgs = Array.from(document.images);
                imgs.forEach(i => { i.loading = 'eager'; });
                window.scrollTo(0, document.body.scrollHeight); window.scrollTo(0, 0);
            """)
            deadline = time.time() + 20
            while time.time() < deadline and not driver.execute_script(
                    "return Array.from(document.images).every(i => i.complete)"):
                time.sleep(0.2)
            broken = driver.execute_script(
                "return Array.from(document.images).filter(i => i.naturalWidth === 0)"
                ".map(i => i.currentSrc || i.src)")
            found += [f"image did not load: {src}" for src in broken]
            n_images = driver.execute_script("return document.images.length")
            for entry in driver.get_log("browser"):
                msg = entry.get("message", "")
                if entry.get("level") == "SEVERE" and entry.get("source") != "network" \
                        and not any(s in msg for s in _IGNORED_CONSOLE):
                    found.append(f"JavaScript error: {msg}")
            shot = out_dir / (page.replace("/", "_").rsplit(".", 1)[0] + ".png")
            driver.save_screenshot(str(shot))
            print(f"{page}: {n_images} images, screenshot {shot}", flush=True)
            problems[page] = found
    finally:
        driver.quit()
    return problems


# --------------------------------------------------------------------------- page audit

MAX_IMAGE_BYTES = 300_000  # no picture of the book may weigh more (files and embedded images)
PHONE = (390, 844)
DESKTOP = (1280, 900)
# alt text that says nothing about the picture: a file name or path, or a placeholder
_USELESS_ALT = re.compile(r"(\.(png|jpe?g|svg|gif)$)|(^_images/)|(^\.\./)|(^(image|figure|img|png)$)", re.I)


def static_audit(html_dir: Path, pages: list[str]) -> dict[str, list[str]]:
    """What can be checked without a browser, per page: every picture of the content has alt text
    that is not a file path, no picture (file or embedded) weighs more than
    :data:`MAX_IMAGE_BYTES`, MathJax is served with the book (no CDN), and no machine path or
    progress bar shows in the text."""
    import base64
    import html as html_lib

    from skinlab.data.source import cache_dir

    home = str(Path.home())
    # the data folder and the synthetic sample's: where the builder keeps data, not a reader's
    data_dirs = [(str(Path(p).resolve()), "the data folder's path")
                 for p in (os.environ.get(ENV_VAR), cache_dir()) if p]
    problems: dict[str, list[str]] = {}
    for page in pages:
        path = Path(html_dir) / page
        text = path.read_text(encoding="utf-8")
        found = []
        article = text.split('<article class="bd-article"', 1)[-1].split("</article>", 1)[0]
        for tag in re.findall(r"<img\b[^>]*>", article):
            src = html_lib.unescape((re.search(r'\bsrc="([^"]*)"', tag) or [None, ""])[1])
            alt = html_lib.unescape((re.search(r'\balt="([^"]*)"', tag) or [None, ""])[1]).strip()
            name = src[:40] + "..." if src.startswith("data:") else src
            if not alt or _USELESS_ALT.search(alt) or alt == src:
                found.append(f"image {name} has no alt text saying what it shows (alt={alt!r})")
            if src.startswith("data:"):
                size = len(base64.b64decode(src.split(",", 1)[1]))
            else:
                target = (path.parent / src.split("#")[0].split("?")[0]).resolve()
                size = target.stat().st_size if target.is_file() else 0
            if size > MAX_IMAGE_BYTES:
                found.append(f"image {name} weighs {size:,} bytes, over {MAX_IMAGE_BYTES:,}")
        for src in re.findall(r'<script[^>]*\bsrc="([^"]*)"', text):
            if re.match(r"(https?:)?//", src):
                found.append(f"script from the network: {src}")
        visible = html_lib.unescape(re.sub(r"<[^>]+>", " ", re.sub(r"(?s)<(script|style)\b.*?</\1>", "", article)))
        for marker, what in ((home + "/", "a path under the builder's home"),
                             (str(Path(html_dir).resolve().parents[1]) + "/", "a path of the course folder"),
                             *data_dirs,
                             ("it/s]", "a progress bar"), ("Warning:", "a warning"), ("warnings.warn", "a warning")):
            if marker and marker in visible:
                found.append(f"{what} in the page: ...{visible[max(0, visible.index(marker) - 40):visible.index(marker) + 60]!r}...")
        problems[page] = found
    return problems


_VIEW_JS_CHECK = """
const out = [];
const views = Array.from(document.querySelectorAll('[data-skinlab-view]'));
function shown(v) { return Array.from(v.querySelectorAll('img[data-key]')).filter(i => !i.hidden); }
views.forEach((v, n) => {
  const sel = Array.from(v.querySelectorAll('select[data-axis]'));
  const first = shown(v);
  if (first.length !== 1) { out.push(`view ${n}: ${first.length} pictures shown at first, expected 1`); return; }
  if (first[0].getBoundingClientRect().width < 50) out.push(`view ${n}: its picture is not visible`);
  sel.forEach((s, axis) => {
    if (s.disabled) { out.push(`view ${n}: control ${axis} is disabled (the view script did not run)`); return; }
    if (s.options.length < 2) return;
    const before = shown(v)[0];
    s.selectedIndex = (s.selectedIndex + 1) % s.options.length;
    s.dispatchEvent(new Event('change', {bubbles: true}));
    const after = shown(v);
    const key = sel.map(x => x.value).join('|');
    if (after.length !== 1) out.push(`view ${n}, control ${axis}: ${after.length} pictures shown`);
    else if (after[0].getAttribute('data-key') !== key) out.push(`view ${n}, control ${axis}: shows ${after[0].getAttribute('data-key')}, chose ${key}`);
    else if (after[0].src === before.src) out.push(`view ${n}, control ${axis}: the picture did not change`);
    else if (after[0].getBoundingClientRect().width < 50) out.push(`view ${n}, control ${axis}: the new picture is not visible`);
  });
});
return [views.length, out];
"""


def page_audit(pages: list[str], html_dir: Path, width: int, height: int, offline: bool = True,
               mobile: bool = False) -> dict[str, dict]:
    """Open ``pages`` in headless Chromium with a viewport of ``width`` x ``height`` (``mobile``:
    as a phone) and, with ``offline``, the network off; per page returns ``{"problems": [...],
    "views": n, "math": n, "figures": n}``.

    Checks: nothing scrolls the page sideways and no output line is cut off; every formula is
    typeset by MathJax; every interactive view changes its picture when each control is
    changed (its select's next option, as a click does); a figure enlarges on click and closes
    with Escape.
    """
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                f"--window-size={width},{height}", "--allow-file-access-from-files", "--hide-scrollbars"):
        opts.add_argument(arg)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=opts)
    results: dict[str, dict] = {}
    try:
        driver.set_page_load_timeout(60)
        driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", {
            "width": width, "height": height, "deviceScaleFactor": 1, "mobile": mobile})
        if offline:
            driver.execute_cdp_cmd("Network.enable", {})
            driver.execute_cdp_cmd("Network.emulateNetworkConditions", {
                "offline": True, "latency": 0, "downloadThroughput": -1, "uploadThroughput": -1})
        for page in pages:
            found: list[str] = []
            path = (Path(html_dir) / page).resolve()
            driver.get(path.as_uri())
            for _ in range(100):
                if driver.execute_script("return document.readyState") == "complete":
                    break
                time.sleep(0.1)
            # formulas: wait for MathJax to typeset them, then every one must be typeset
            n_math = driver.execute_script("return document.querySelectorAll('.math').length")
            if n_math:
                deadline = time.time() + 30
                while time.time() < deadline and not driver.execute_script(
                        "return !!(window.MathJax && MathJax.startup && MathJax.startup.document"
                        " && document.querySelectorAll('.math mjx-container').length"
                        " >= document.querySelectorAll('.math').length)"):
                    time.sleep(0.2)
                raw = driver.execute_script(
                    "return Array.from(document.querySelectorAll('.math'))"
                    ".filter(m => !m.querySelector('mjx-container')).map(m => m.textContent.slice(0, 40))")
                if raw:
                    found.append(f"{len(raw)} of {n_math} formulas not rendered (raw TeX), e.g. {raw[0]!r}")
            n_views, view_problems = driver.execute_script(_VIEW_JS_CHECK)
            found += view_problems
            # against the device's width: a phone browser widens its layout viewport (innerWidth)
            # to fit content that overflows, which would hide the overflow
            page_width = driver.execute_script(
                "return Math.max(document.documentElement.scrollWidth, document.body.scrollWidth)")
            if page_width > width + 1:
                wide = driver.execute_script("""
                    const w = arguments[0];
                    return Array.from(document.querySelectorAll('body *'))
                      .filter(e => e.getBoundingClientRect().right > w + 1)
                      .slice(-3).map(e => e.tagName + '.' + e.className);""", width)
                found.append(f"the page scrolls sideways: {page_width} px wide on a {width} px "
                             f"screen (e.g. {wide})")
            cut = driver.execute_script("""
                return Array.from(document.querySelectorAll('.cell_output pre'))
                  .filter(p => p.scrollWidth > p.clientWidth + 1 && getComputedStyle(p).whiteSpace === 'pre')
                  .map(p => p.textContent.slice(0, 40));""")
            found += [f"an output line is cut off: {c!r}" for c in cut]
            figures = driver.find_elements(By.CSS_SELECTOR, ".cell_output img")
            if figures:
                fig = figures[0]
                driver.execute_script("arguments[0].scrollIntoView({block: 'center'})", fig)
                shown_width = fig.size["width"]
                fig.click()
                boxes = driver.find_elements(By.CSS_SELECTOR, ".skinlab-lightbox img")
                if not boxes:
                    found.append("clicking a figure does not enlarge it")
                else:
                    big, left = driver.execute_script(
                        "const r = arguments[0].getBoundingClientRect(); return [r.width, r.left]", boxes[0])
                    natural = driver.execute_script("return arguments[0].naturalWidth", fig)
                    if natural > shown_width + 2 and big <= shown_width:
                        found.append(f"the enlarged figure is not larger ({big:.0f} px vs {shown_width} px)")
                    if left < -1:  # out of reach: scrolling cannot show it
                        found.append(f"the enlarged figure's left {-left:.0f} px are cut off")
                    driver.switch_to.active_element.send_keys(Keys.ESCAPE)
                    if driver.find_elements(By.CSS_SELECTOR, ".skinlab-lightbox"):
                        found.append("Escape does not close the enlarged figure")
            results[page] = {"problems": found, "views": n_views, "math": n_math, "figures": len(figures)}
            print(f"{page} at {width}px: {n_math} formulas, {n_views} views, {len(figures)} figures, "
                  f"{len(found)} problems", flush=True)
    finally:
        driver.quit()
    return results


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m skinlab.bookbuild", description=__doc__.split("\n")[0])
    p.add_argument("course", nargs="?", default=None,
                   help=f"the course folder, holding {CONFIG_FILE} (default: the current folder)")
    p.add_argument("--profile", choices=("quick", "full", "smoke"), default=None,
                   help="default: $SKINLAB_PROFILE, else quick")
    p.add_argument("--no-strict", dest="strict", action="store_false", help="don't treat warnings as errors")
    p.add_argument("--edition", choices=EDITIONS, default=None,
                   help="student (default: $SKINLAB_EDITION, else student; _build/html): exercise boxes "
                        "instead of the graded reference listings; instructor (_build/instructor/html): "
                        "with the listings")
    p.add_argument("--all", action="store_true", help="re-read every page (execution stays cached)")
    p.add_argument("--install-browser", action="store_true", help="apt-get install chromium chromium-driver")
    p.add_argument("--browser-check", action="store_true",
                   help="screenshot the built index and chapters; fail on broken images, JS errors, missing "
                        "alt text, pictures over 300 kB, math or views that do not work offline, sideways "
                        "scroll at 1280 or 390 px")
    args = p.parse_args(argv)
    if args.install_browser:
        install_browser()
        return 0
    if args.browser_check:
        if not browser_available():
            print("chromium/chromedriver missing: run python -m skinlab.bookbuild --install-browser",
                  file=sys.stderr)
            return 2
        out = html_dir(args.course, current_edition(args.edition))
        problems = browser_check(["index.html", "book/08_training.html", "book/10_gradcam.html"], html_dir=out)
        # every page: alt text, picture weight, no CDN or machine path; then in the browser with
        # the network off, at desktop and phone width
        pages = ["index.html"] + sorted(p.relative_to(out).as_posix() for p in (out / "book").glob("*.html"))
        for page, lines in static_audit(out, pages).items():
            problems.setdefault(page, []).extend(lines)
        for (width, height), mobile in ((DESKTOP, False), (PHONE, True)):
            for page, result in page_audit(pages, out, width, height, offline=True, mobile=mobile).items():
                problems.setdefault(page, []).extend(f"{width}px: {line}" for line in result["problems"])
        bad = {k: v for k, v in problems.items() if v}
        for page, lines in bad.items():
            for line in lines:
                print(f"{page}: {line}", file=sys.stderr)
        return 1 if bad else 0
    return build(args.course, profile=args.profile, strict=args.strict, extra_args=["--all"] if args.all else None,
                 edition=args.edition)


if __name__ == "__main__":
    sys.exit(main())
