"""Headless Chromium for checking the built book: install it, start it, and look at pages.

    python -m skinlab.course.bookbuild --install-browser   # apt-get install chromium chromium-driver

:func:`chrome` starts the driver every browser check of the book uses (this one's
:func:`browser_check`, and :func:`skinlab.course.audit.page_audit`); :func:`browser_check` opens
pages, saves a screenshot of each and reports images that did not load and JavaScript errors.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
INSTALL_HINT = "python -m skinlab.course.bookbuild --install-browser"


def install_browser() -> None:
    """Install Debian's chromium and chromium-driver when missing (needs root and apt)."""
    if browser_available():
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


def chrome(width: int, height: int, *extra_args: str, console_log: bool = False):
    """A headless Chromium driver with a ``width`` x ``height`` window that may read ``file://``
    pages; ``console_log`` keeps the browser console for ``driver.get_log("browser")``."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                f"--window-size={width},{height}", "--allow-file-access-from-files", *extra_args):
        opts.add_argument(arg)
    if console_log:
        opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=opts)
    driver.set_page_load_timeout(60)
    return driver


def wait_until_loaded(driver, tries: int = 50) -> None:
    """Wait (``tries`` x 0.1 s at most) for the page's ``readyState`` to become complete."""
    for _ in range(tries):
        if driver.execute_script("return document.readyState") == "complete":
            return
        time.sleep(0.1)


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
    out_dir.mkdir(parents=True, exist_ok=True)
    problems: dict[str, list[str]] = {}
    driver = chrome(width, height, console_log=True)
    try:
        for page in pages:
            found: list[str] = []
            path = (html_dir / page).resolve()
            if not path.is_file():
                problems[page] = [f"{path} does not exist"]
                continue
            driver.get(path.as_uri())
            wait_until_loaded(driver)  # let lazy images and scripts finish
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
