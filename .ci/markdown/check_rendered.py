"""Check Markdown as Python-Markdown (MkDocs) renders it: no list or table row left inside a paragraph, no
``\\|`` shown in code.

CommonMark (GitHub, the linter) lets a list start right after a paragraph line; Python-Markdown does not, and
renders ``- item`` lines as text of the paragraph. A table cut off by a paragraph renders its rows as text
too. Usage: ``python .ci/markdown/check_rendered.py SITE_DIR FILE.md...``: every ``*.html`` page under
SITE_DIR (a built site) and every FILE.md rendered here with the ``tables`` extension. Exit 1 on a finding.
"""

from __future__ import annotations

import html
import re
import sys
from pathlib import Path

import markdown

_PARAGRAPH = re.compile(r"<p>(.*?)</p>", re.S)
_STRAY = re.compile(r"^\s*(?:[-*+] |\d+\. |\|.*\|\s*$)", re.M)
_CODE = re.compile(r"<code>(.*?)</code>", re.S)


def findings(page: str) -> list[str]:
    """The first line of each paragraph of ``page`` (HTML) that holds a list item or a table row, and each
    code span that shows ``\\|``."""
    found = []
    for body in _PARAGRAPH.findall(page):
        lines = body.split("\n")
        for line in lines[1:]:  # a paragraph may start with "- " only if it was written escaped
            if _STRAY.match(line):
                text = html.unescape(re.sub(r"<[^>]+>", "", line)).strip()[:100]
                found.append(f"a list item or table row renders as paragraph text: {text!r}")
                break
    # GitHub drops the backslash of a table's escaped pipe inside code; Python-Markdown shows it.
    for code in _CODE.findall(page):
        if "\\|" in code:
            found.append(f"code shows a backslash-escaped pipe: {html.unescape(code)[:80]!r}")
    return found


def main(argv: list[str]) -> int:
    """Check the site folder and the Markdown files named in ``argv``; print each finding."""
    site, files = Path(argv[0]), argv[1:]
    pages = {str(p): p.read_text(encoding="utf-8") for p in sorted(site.rglob("*.html"))}
    for name in files:
        text = Path(name).read_text(encoding="utf-8")
        pages[name] = markdown.markdown(text, extensions=["tables", "fenced_code"])
    bad = 0
    for name, page in pages.items():
        for line in findings(page):
            print(f"{name}: {line}")
            bad += 1
    print(f"checked {len(pages)} pages: {bad} finding(s)")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
