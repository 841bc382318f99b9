"""A pymarkdown rule (plugin): a table row (a line that starts and ends with ``|``) inside a paragraph.

Such a line renders as text, not as a table row: the table it belongs to was cut off by a paragraph (a
Markdown table ends at the first line that is not a row), or it lost its header and delimiter rows. The
built-in rules do not see it, since it is no table to them (MD056 checks only rows of a table).
"""

from __future__ import annotations

import re

from pymarkdown.plugin_manager.plugin_details import PluginDetailsV2
from pymarkdown.plugin_manager.plugin_scan_context import PluginScanContext
from pymarkdown.plugin_manager.rule_plugin import RulePlugin
from pymarkdown.tokens.markdown_token import MarkdownToken

_ROW = re.compile(r"^\s*\|.*\|\s*$")


class RuleStrayTableRow(RulePlugin):
    """Reports each line of a paragraph that looks like a table row."""

    def __init__(self) -> None:
        super().__init__()
        self.__paragraph_lines: set[int] = set()

    def get_details(self) -> PluginDetailsV2:
        """The rule's id (PML900), name and description."""
        return PluginDetailsV2(
            plugin_name="stray-table-row",
            plugin_id="PML900",
            plugin_enabled_by_default=True,
            plugin_description="Table row inside a paragraph (a table cut off or without its header)",
            plugin_version="0.1.0",
            plugin_url="https://pymarkdown.readthedocs.io/en/latest/plugins/",
            plugin_supports_fix=False,
        )

    def starting_new_file(self) -> None:
        """Forget the previous file's paragraphs."""
        self.__paragraph_lines = set()

    def next_token(self, context: PluginScanContext, token: MarkdownToken) -> None:
        """Record the lines each paragraph spans (tokens are scanned before lines)."""
        if token.is_paragraph:
            whitespace = getattr(token, "extracted_whitespace", "") or ""
            count = whitespace.count("\n") + 1
            self.__paragraph_lines.update(range(token.line_number, token.line_number + count))

    def next_line(self, context: PluginScanContext, line: str) -> None:
        """Report a paragraph line that starts and ends with ``|``."""
        if context.line_number in self.__paragraph_lines and _ROW.match(line):
            self.report_next_line_error(context, 1)
