"""The docs' guards: README stays short and runs CI's test command; the Markdown checks of CI catch a spliced
table, a table row stranded in a paragraph and a list that Python-Markdown renders as text."""

from __future__ import annotations

import importlib.util
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
CONFIG = ".ci/markdown/pymarkdown.json"


def _fenced_commands(text: str) -> list[str]:
    return [line for block in re.findall(r"```sh\n(.*?)```", text, re.S) for line in block.splitlines()]


def test_readme_is_short_and_runs_the_ci_test_command():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    ci = (ROOT / ".ci/run").read_text(encoding="utf-8")
    assert len(readme.splitlines()) <= 250
    commands = _fenced_commands(readme)
    test_lines = [c for c in commands if "pytest" in c]
    assert test_lines == ['pip install torch==2.13.0 && pip install -e ".[test]" && python -m pytest -q']
    # CI installs the same torch pin and runs the same test command.
    assert "pip install --quiet torch==2.13.0\n" in ci
    assert "\npython -m pytest -q\n" in ci
    assert any(
        c.startswith("pip install torch==2.13.0 && pip install -e . && longlive generate") for c in commands
    )


def _lint(tmp_path: Path, text: str) -> subprocess.CompletedProcess[str]:
    pytest.importorskip("pymarkdown", reason="the docs extra is not installed")
    page = tmp_path / "page.md"
    page.write_text(text, encoding="utf-8")
    return subprocess.run(
        [sys.executable, "-m", "pymarkdown", "--config", CONFIG, "scan", str(page)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
    )


TABLE = "# T\n\n| a | b |\n| --- | --- |\n| 1 | 2 |\n"


def test_markdown_lint_passes_a_good_table(tmp_path):
    result = _lint(tmp_path, TABLE)
    assert result.returncode == 0, result.stdout + result.stderr


def test_markdown_lint_fails_two_tables_glued_together(tmp_path):
    glued = TABLE + "| x | y | z |\n| --- | --- | --- |\n| 1 | 2 | 3 |\n"
    result = _lint(tmp_path, glued)
    assert result.returncode == 1 and "MD056" in result.stdout


def test_markdown_lint_fails_a_table_cut_by_a_paragraph(tmp_path):
    cut = TABLE + "\nA paragraph that was spliced in,\n| 3 | 4 |\n"
    result = _lint(tmp_path, cut)
    assert result.returncode == 1 and "PML900" in result.stdout


def _check_rendered():
    pytest.importorskip("markdown", reason="the docs extra is not installed")
    spec = importlib.util.spec_from_file_location("check_rendered", ROOT / ".ci/markdown/check_rendered.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_render_check_finds_a_list_python_markdown_leaves_in_a_paragraph(tmp_path):
    check = _check_rendered()
    good, bad = tmp_path / "good.md", tmp_path / "bad.md"
    good.write_text("# T\n\nText:\n\n- an item\n", encoding="utf-8")
    bad.write_text("# T\n\nText:\n- an item\n\n| `a\\|b` | c |\n| --- | --- |\n", encoding="utf-8")
    (tmp_path / "site").mkdir()
    assert check.main([str(tmp_path / "site"), str(good)]) == 0
    findings = check.findings(check.markdown.markdown(bad.read_text(), extensions=["tables"]))
    assert len(findings) == 2 and "paragraph" in findings[0] and "pipe" in findings[1]
