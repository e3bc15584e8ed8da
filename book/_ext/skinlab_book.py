"""Sphinx extension of the skinlab book: drop duplicate inline scripts from the built pages.

sphinx-thebe 0.3 (and sphinx-togglebutton) register their inline configuration scripts each time
Sphinx reads documents, and a Jupyter Book 1 build can do that twice, so every page declared
``const THEBE_JS_URL`` twice: "Uncaught SyntaxError: Identifier 'THEBE_JS_URL' has already been
declared" in the browser console. After the build, the second copy of each identical inline
``<script>`` line is removed from every HTML page.
"""

import re
from pathlib import Path

_INLINE_SCRIPT = re.compile(r"^\s*<script>.*</script>\s*$")


def dedupe_inline_scripts(html: str) -> str:
    seen, out = set(), []
    for line in html.splitlines(keepends=True):
        if _INLINE_SCRIPT.match(line):
            key = line.strip()
            if key in seen:
                continue
            seen.add(key)
        out.append(line)
    return "".join(out)


def _build_finished(app, exception):
    if exception is not None or app.builder.format != "html":
        return
    for page in Path(app.outdir).rglob("*.html"):
        text = page.read_text(encoding="utf-8")
        fixed = dedupe_inline_scripts(text)
        if fixed != text:
            page.write_text(fixed, encoding="utf-8")


def setup(app):
    app.connect("build-finished", _build_finished)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
