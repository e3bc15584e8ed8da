"""Build the course book (``make book``) and check it in a headless browser.

    python -m skinlab.bookbuild                    # build _build/html (warnings are errors)
    python -m skinlab.bookbuild --profile full     # the guide's settings (meant for a GPU)
    python -m skinlab.bookbuild --install-browser  # apt-get install chromium chromium-driver
    python -m skinlab.bookbuild --browser-check    # screenshots + broken images / JS errors

The chapters run on ``$HAM10000_DIR`` when set, else on the embedded synthetic sample (every page
then says so). Execution is cached (``_build/.jupyter_cache``): an unchanged rebuild takes seconds.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

from skinlab.profile import BOOK_BUILD_ENV, PROFILE_ENV, REPO_ROOT, code_hash, current_profile, data_hash

HTML_DIR = REPO_ROOT / "_build" / "html"
SCREENSHOT_DIR = REPO_ROOT / "_build" / "screenshots"
CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"


def _jupyter_book() -> list[str]:
    exe = Path(sys.executable).parent / "jupyter-book"
    if exe.is_file():
        return [str(exe)]
    found = shutil.which("jupyter-book")
    if found is None:
        raise SystemExit("jupyter-book is not installed: run `make install` (pip install -e '.[book]')")
    return [found]


BOOK_CODE_MODULES = ("data", "synthetic", "split", "balance", "presets", "models", "engine",
                     "metrics", "cache", "pipeline", "profile", "plots", "gradcam")


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


def _invalidate_if_changed(root: Path, key: str) -> bool:
    """Jupyter Book's cache knows only the notebooks' code, not the data or profile they ran on:
    when those changed since the last build, drop the cache and rebuild every page."""
    key_file = root / "_build" / ".skinlab-build-key"
    if key_file.is_file() and key_file.read_text() == key:
        return False
    shutil.rmtree(root / "_build" / ".jupyter_cache", ignore_errors=True)
    return True


def build(root: Path = REPO_ROOT, profile: str | None = None, strict: bool = True,
          extra_args: list[str] | None = None) -> int:
    """Run ``jupyter-book build`` on ``root``; returns its exit status (0 = success)."""
    root = Path(root)
    chosen = current_profile(profile)  # fails early on a bad profile name
    key = build_key(root, chosen)
    fresh = _invalidate_if_changed(root, key)
    env = dict(os.environ)
    env[BOOK_BUILD_ENV] = "1"
    env[PROFILE_ENV] = chosen.name
    # The kernel must be this environment's python, and nbgrader/jupyter tools on PATH.
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    # One compute thread per kernel unless told otherwise: the book's small models gain little
    # from a second core, and on a busy machine two spinning OpenMP threads per process made
    # LeNet epochs ~10x slower (measured: 3 s vs 31 s per epoch under a load of 12 on 2 cores).
    env.setdefault("OMP_NUM_THREADS", "1")
    # Figures must go to the page: the kernels need the inline backend even when the caller
    # (e.g. pytest's conftest) exported MPLBACKEND=Agg.
    env["MPLBACKEND"] = "module://matplotlib_inline.backend_inline"
    cmd = _jupyter_book() + ["build", str(root), "--builder", "html"]
    if strict:
        cmd += ["-W", "--keep-going"]
    cmd += extra_args or []
    if fresh and "--all" not in cmd:
        cmd.append("--all")
    data = env.get("HAM10000_DIR") or "synthetic sample (HAM10000_DIR not set)"
    print(f"building the book: profile {env[PROFILE_ENV]}, data {data}", flush=True)
    t0 = time.perf_counter()
    rc = subprocess.call(cmd, cwd=root, env=env)
    # The cache now holds outputs for this key only (failed notebooks are not cached).
    key_file = root / "_build" / ".skinlab-build-key"
    key_file.parent.mkdir(parents=True, exist_ok=True)
    key_file.write_text(key)
    print(f"jupyter-book exited with {rc} after {time.perf_counter() - t0:.0f} s; "
          f"HTML in {root / '_build' / 'html'}", flush=True)
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


def browser_check(pages: list[str], html_dir: Path = HTML_DIR, out_dir: Path = SCREENSHOT_DIR,
                  width: int = 1280, height: int = 1600) -> dict[str, list[str]]:
    """Open ``pages`` (paths relative to ``html_dir``) in headless Chromium.

    Saves a screenshot of each under ``out_dir`` and returns ``{page: [problems]}``: images that
    did not load (``naturalWidth`` 0) and JavaScript errors from the console.
    """
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


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m skinlab.bookbuild", description=__doc__.split("\n")[0])
    p.add_argument("--profile", choices=("quick", "full", "smoke"), default=None,
                   help="default: $SKINLAB_PROFILE, else quick")
    p.add_argument("--no-strict", dest="strict", action="store_false", help="don't treat warnings as errors")
    p.add_argument("--all", action="store_true", help="rebuild every page (jupyter-book --all)")
    p.add_argument("--install-browser", action="store_true", help="apt-get install chromium chromium-driver")
    p.add_argument("--browser-check", action="store_true",
                   help="screenshot the built index and chapters; fail on broken images or JS errors")
    args = p.parse_args(argv)
    if args.install_browser:
        install_browser()
        return 0
    if args.browser_check:
        if not browser_available():
            print("chromium/chromedriver missing: run python -m skinlab.bookbuild --install-browser",
                  file=sys.stderr)
            return 2
        problems = browser_check(["index.html", "book/08_training.html", "book/10_gradcam.html"])
        bad = {k: v for k, v in problems.items() if v}
        for page, lines in bad.items():
            for line in lines:
                print(f"{page}: {line}", file=sys.stderr)
        return 1 if bad else 0
    return build(profile=args.profile, strict=args.strict, extra_args=["--all"] if args.all else None)


if __name__ == "__main__":
    sys.exit(main())
