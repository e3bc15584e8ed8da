"""The page audit of the built book: what every page of it must be, checked per page.

* :func:`static_audit`, from the HTML files alone: alt text, picture weight, no script from a CDN,
  no machine path, progress bar or warning in the text;
* :func:`page_audit`, in headless Chromium (:mod:`skinlab.course.browser`) with the network off:
  formulas typeset, interactive views that switch, figures that enlarge, no sideways scroll;
* :func:`audit_book`: both on every page of a built edition, at desktop and phone width, plus
  :func:`~skinlab.course.browser.browser_check`'s screenshots (``python -m
  skinlab.course.bookbuild --browser-check``).
"""

from __future__ import annotations

import os
import re
import time
from pathlib import Path

from skinlab.course.browser import browser_check, chrome, wait_until_loaded
from skinlab.data.layout import ENV_VAR

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
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    driver = chrome(width, height, "--hide-scrollbars")
    results: dict[str, dict] = {}
    try:
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
            wait_until_loaded(driver, tries=100)
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


# the pages whose screenshots are kept: the front page and two chapters rich in figures
SCREENSHOT_PAGES = ("index.html", "book/08_training.html", "book/10_gradcam.html")


def audit_book(html_dir: Path) -> dict[str, list[str]]:
    """Every check of a built edition (its ``html/`` folder), per page: the screenshots' broken
    images and JavaScript errors, then the static audit of every page, then the page audit in
    the browser with the network off at desktop and at phone width."""
    out = Path(html_dir)
    problems = browser_check(list(SCREENSHOT_PAGES), html_dir=out)
    pages = ["index.html"] + sorted(p.relative_to(out).as_posix() for p in (out / "book").glob("*.html"))
    for page, lines in static_audit(out, pages).items():
        problems.setdefault(page, []).extend(lines)
    for (width, height), mobile in ((DESKTOP, False), (PHONE, True)):
        for page, result in page_audit(pages, out, width, height, offline=True, mobile=mobile).items():
            problems.setdefault(page, []).extend(f"{width}px: {line}" for line in result["problems"])
    return problems
