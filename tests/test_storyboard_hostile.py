"""Hostile and broken storyboards: every one is refused quickly with a clear, located StoryboardError.

Also property-based tests (hypothesis): any text, bytes or YAML-ish document either gives a Plan whose
invariants hold or raises StoryboardError, never another exception.
"""

from __future__ import annotations

import functools
import json
import math
import os
import random
import string
import subprocess
import time
from dataclasses import replace

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from longlive_cli.geometry import WAN21
from longlive_cli.storyboard import (
    MAX_DURATION_S,
    MAX_FILE_BYTES,
    MAX_PROMPT_CHARS,
    MAX_PROMPTS,
    Plan,
    PromptSpec,
    Storyboard,
    StoryboardError,
    format_plan,
    load_storyboard,
    loader,
    make_plan,
    parse_storyboard,
)

#: How many benign full scans of the largest allowed file refusing one hostile input may cost. Refusal
#: has to read up to the offending token with PyYAML's pure-Python scanner, so the slowest cases (a
#: 1 MiB prompt) cost about one such scan; quadratic or unbounded work (a 200k-space time string once
#: never finished) costs hundreds. A ratio, not seconds, so a slow or busy CI machine does not fail it.
SCAN_FACTOR = 4.0
MIN_TIME_LIMIT_S = 2.0  # below this, timer and scheduler noise would dominate the ratio
PATH = "hostile.yaml"
NEAR_LIMIT = MAX_FILE_BYTES - 64  # just under 1 MiB, so the size check does not fire first
MEDIUM = 128 * 1024  # long tokens whose cost is linear once fixed (the 1 MiB prompt shows the worst)

GOOD_TAIL = "duration: 5s\nprompts:\n  - {at: 0, text: hi}\n"


@functools.cache
def time_limit_s() -> float:
    """Seconds a refusal may take on this machine: ``SCAN_FACTOR`` x the median time PyYAML's
    pure-Python scanner takes to tokenise a benign document of ``MAX_FILE_BYTES`` (one plain scalar),
    measured once per test session, and at least ``MIN_TIME_LIMIT_S``."""
    benign = "a" * MAX_FILE_BYTES
    times = []
    for _ in range(3):
        start = time.perf_counter()
        for _token in yaml.scan(benign, Loader=yaml.SafeLoader):
            pass
        times.append(time.perf_counter() - start)
    return max(MIN_TIME_LIMIT_S, SCAN_FACTOR * sorted(times)[1])


def fill(unit: str, prefix: str = "", suffix: str = "", size: int = NEAR_LIMIT) -> str:
    """``prefix + unit * n + suffix``, ``size`` characters or just under (all ASCII)."""
    return prefix + unit * ((size - len(prefix) - len(suffix)) // len(unit)) + suffix


def refused(source: str | bytes, *needles: str, path: str = PATH) -> StoryboardError:
    """Parse ``source``; assert a StoryboardError naming ``path`` and every needle, within the limit."""
    start = time.perf_counter()
    with pytest.raises(StoryboardError) as info:
        parse_storyboard(source, path=path)
    elapsed = time.perf_counter() - start
    err = info.value
    assert elapsed < time_limit_s(), f"took {elapsed:.2f}s: {err}"
    message = str(err)
    assert message.startswith(f"{path}:"), message
    for needle in needles:
        assert needle in message, message
    assert len(message) < 1000, f"message is {len(message)} characters long"
    return err


def refused_file(tmp_path, data: bytes, *needles: str) -> StoryboardError:
    path = tmp_path / "hostile.yaml"
    path.write_bytes(data)
    start = time.perf_counter()
    with pytest.raises(StoryboardError) as info:
        load_storyboard(path)
    elapsed = time.perf_counter() - start
    err = info.value
    assert elapsed < time_limit_s(), f"took {elapsed:.2f}s: {err}"
    assert str(err).startswith(f"{path}:"), str(err)
    for needle in needles:
        assert needle in str(err), str(err)
    return err


def located(err: StoryboardError, line: int, column: int | None = None) -> None:
    assert err.line == line, str(err)
    if column is not None:
        assert err.column == column, str(err)
    prefix = f"{err.path}:{err.line}:{err.column}: "
    assert str(err).startswith(prefix), str(err)


# --------------------------------------------------------------------------- size and shape


def test_file_over_one_mib_refused_before_reading_it_all(tmp_path):
    path = tmp_path / "huge.yaml"
    with open(path, "wb") as f:
        f.truncate(64 * MAX_FILE_BYTES)  # 64 MiB, sparse
    start = time.perf_counter()
    with pytest.raises(StoryboardError, match="larger than 1024 KiB"):
        load_storyboard(path)
    assert time.perf_counter() - start < time_limit_s()


def test_text_over_one_mib_refused():
    refused("a" * (MAX_FILE_BYTES + 1), "larger than 1024 KiB")
    refused("é" * (MAX_FILE_BYTES // 2 + 1), "larger than 1024 KiB")  # counted in UTF-8 bytes


_FLAT = {
    "flat flow list": (lambda: fill("1, ", "x: [", "1]\n"), ("more than 1000 items",), 1),
    "flat block list": (lambda: fill("- 1\n", "x:\n"), ("lines", "more than the limit of 100000"), None),
    "blank lines": (lambda: fill("\n", GOOD_TAIL), ("lines",), None),
    "carriage returns": (lambda: fill("\r", GOOD_TAIL), ("lines",), None),
    "comment lines": (lambda: fill("#\n", GOOD_TAIL), ("lines",), None),
    "aliases": (lambda: fill("*a, ", "a: &a x\nb: [", "*a]\n"), ("more than 1000 items",), 2),
}


@pytest.mark.parametrize("name", list(_FLAT))
def test_huge_flat_documents_refused_quickly(name):
    make, needles, line = _FLAT[name]
    text = make()
    assert len(text.encode()) <= MAX_FILE_BYTES
    err = refused(text, *needles)
    if line is not None:
        assert err.line == line and err.column is not None


@pytest.mark.parametrize("flow", [False, True], ids=["block", "flow"])
def test_many_keys_refused_at_the_node_limit(flow):
    if flow:
        text = "x: {" + ", ".join(f"k{i}: {i}" for i in range(20_000)) + "}\n"
    else:
        text = "".join(f"k{i}: {i}\n" for i in range(60_000))
    err = refused(text, "more than 10000 nodes", "1000 prompts")
    assert err.line is not None and err.line <= 5001


def test_ten_thousand_prompts_refused_quickly():
    items = "".join(f"  - {{at: {i * 0.02:.2f}, text: prompt {i}}}\n" for i in range(10_000))
    err = refused(f"duration: 240s\nprompts:\n{items}", "more than 1000 prompts")
    assert (err.line, err.column, err.field) == (3, 3, "prompts")


def test_largest_storyboard_shape_passes_the_yaml_limits():
    # 1000 prompts, each with a merge key: the most nodes a storyboard needs (MAX_YAML_WRITTEN_NODES)
    # pass the list and node limits. At 16 fps and 3-frame blocks, 240 s has only 320 blocks, so the
    # plan then refuses two prompts in one block; 320 prompts one block apart make a plan.
    items = "".join(f"  - {{<<: *base, at: {i * 0.24:.2f}}}\n" for i in range(1, MAX_PROMPTS))
    text = f"duration: 240s\nprompts:\n  - &base {{at: 0, text: same}}\n{items}"
    refused(text, "would both take effect at block")
    spaced = "".join(f"  - {{at: {i * 0.75}, text: p{i}}}\n" for i in range(320))
    assert len(make_plan(parse_storyboard(f"duration: 240s\nprompts:\n{spaced}")).segments) == 320


@pytest.mark.parametrize(
    ("text", "line", "column"),
    [
        ("x: " + "[" * 400_000 + "]" * 400_000 + "\n", 1, 35),
        ("x: " + "{a: " * 100_000 + "1" + "}" * 100_000 + "\n", 1, 125),
        ("".join(" " * i + "a:\n" for i in range(1000)), 32, 32),
        ("".join(" " * i + "-\n" for i in range(1000)), 33, 33),
    ],
    ids=["flow lists", "flow maps", "block maps", "block lists"],
)
def test_deep_nesting_refused_quickly(text, line, column):
    located(refused(text, "nested more than 32 levels"), line, column)


def test_billion_laughs_refused_quickly():
    lines = ['lol0: &lol0 "lol"'] + [
        f"lol{i}: &lol{i} [{', '.join([f'*lol{i - 1}'] * 9)}]" for i in range(1, 12)
    ]
    lines.append("duration: 5\nprompts: [{at: 0, text: *lol11}]")
    refused("\n".join(lines) + "\n", "100000 nodes", "aliases")


def test_quadratic_aliases_refused():
    # Each list refers to the previous one twice: 2**n nodes once expanded.
    lines = ["a0: &a0 [x, x]"] + [f"a{i}: &a{i} [*a{i - 1}, *a{i - 1}]" for i in range(1, 40)]
    refused("\n".join(lines) + "\n", "100000 nodes")


def test_alias_chain_nested_deeper_than_the_limit_once_expanded():
    # Written depth is 3, but expanded the text is 400 lists deep: PyYAML would recurse 400 times.
    chain = ", ".join(f"&a{i} [*a{i - 1}]" if i else "&a0 [1]" for i in range(400))
    err = refused(f"duration: 5\nprompts: [{{at: 0, text: [{chain}]}}]\n", "nested more than 32 levels")
    assert err.line == 2


def test_merge_key_chain_refused():
    items = "".join(f"  - &a{i} {{<<: *a{i - 1}, text: t}}\n" for i in range(1, 200))
    refused(f"duration: 5\nprompts:\n  - &a0 {{at: 0, text: t}}\n{items}", "nested more than 32 levels")


def test_recursive_alias_refused():
    refused("duration: 5\nprompts: &p [{at: 0, text: *p}]\n", "recursive alias")


# --------------------------------------------------------------------------- long tokens


def test_one_mib_prompt_refused_quickly():
    err = refused(fill("a", "duration: 5\nprompts:\n  - at: 0\n    text: ", "\n"), "characters", "10000")
    assert (err.line, err.column, err.field) == (4, 11, "prompts[0].text")


def test_prompt_just_over_the_limit_and_at_it():
    refused(f"duration: 5\nprompts:\n  - {{at: 0, text: {'b' * (MAX_PROMPT_CHARS + 1)}}}\n", "10001")
    sb = parse_storyboard(f"duration: 5\nprompts:\n  - {{at: 0, text: {'b' * MAX_PROMPT_CHARS}}}\n")
    assert len(sb.prompts[0].text) == MAX_PROMPT_CHARS


@pytest.mark.parametrize(
    ("text", "needles"),
    [
        (fill("x", "# ", "\n", MEDIUM), ("empty",)),
        (fill(" ", "", "\n", MEDIUM), ("empty",)),
        (fill("k", "? ", "\n: 1\n", MEDIUM), ("unknown key",)),
        # 1:00:00:... took 19 s for 1 MiB (quadratic) then crashed; now refused by its length.
        (fill(":00", "duration: 1", "\n", MEDIUM), ("far too long for an integer",)),
        (fill(":00", "duration: 1", ".5\n", MEDIUM), ("far too long for a number",)),  # was OverflowError
        (fill("7", "duration: ", "\n", MEDIUM), ("far too long",)),  # over CPython's 4300-digit int limit
        (fill("f", "seed: 0x", "\n" + GOOD_TAIL, MEDIUM), ("far too long",)),
        (fill(" ", 'duration: "1h', 'x"\n', MEDIUM), ("not a time", "far too long")),  # cubic regex
        (fill("1", 'resolution: "', 'x16"\n' + GOOD_TAIL, MEDIUM), ("not a resolution",)),
    ],
    ids=["comment", "spaces", "key", "sexagesimal", "sexagesimal float", "digits", "hex", "time", "res"],
)
def test_long_tokens_refused_quickly_with_short_messages(text, needles):
    refused(text, *needles)


# --------------------------------------------------------------------------- bytes


def test_binary_junk_refused(tmp_path):
    rng = random.Random(1234)
    for size in (1, 100, 64 * 1024, NEAR_LIMIT):
        refused_file(tmp_path, rng.randbytes(size))


@pytest.mark.parametrize(
    "alphabet",
    [
        string.printable,
        string.ascii_letters + " \n",
        "".join(map(chr, range(0xA0, 0x2000))) + " \n",
        "ab: -\n",
    ],
    ids=["printable", "words", "unicode", "yaml-ish"],
)
def test_text_junk_refused(alphabet):
    rng = random.Random(99)
    refused("".join(rng.choices(alphabet, k=MEDIUM)))


def test_utf8_control_characters_refused_with_location(tmp_path):
    err = refused_file(tmp_path, b"duration: 5\nprompts:\n  - {at: 0, text: a\x00b}\n", "U+0000")
    assert (err.line, err.column) == (3, 20)
    err = refused_file(tmp_path, bytes(range(1, 32)) * 100)
    assert err.line is not None


@pytest.mark.parametrize(
    ("data", "needles", "line"),
    [
        ("duration: 5s\nprompts:\n  - {at: 0, text: garçon}\n".encode("latin-1"), ("byte 0xe7",), 3),
        (GOOD_TAIL.encode("utf-16"), ("UTF-16",), 1),
        (b"duration: 5\n\xc3(\n", ("byte 0xc3",), 2),
        (b"duration: 5\n\xed\xa0\x80\n", ("byte 0xed",), 2),  # an encoded surrogate
    ],
)
def test_non_utf8_refused_with_location(tmp_path, data, needles, line):
    err = refused_file(tmp_path, data, *needles)
    assert err.line == line


def test_bytes_accepted_by_parse_storyboard():
    assert parse_storyboard(b"\xef\xbb\xbf" + GOOD_TAIL.encode()).duration_s == 5.0
    refused(b"duration: \xff\n", "not valid UTF-8")


def test_unusable_file_name():
    with pytest.raises(StoryboardError, match="not a usable file name"):
        load_storyboard("story\0.yaml")


# --------------------------------------------------------------------------- locations


@pytest.mark.parametrize(
    ("text", "line", "column", "needle"),
    [
        ('duration: 5s\nprompts:\n  - at: 0\n    text: "open\n', 5, 1, "invalid YAML"),
        ("duration: 5s\nprompts: [{at: 0, text: a}\n", 3, 1, "invalid YAML"),
        ("duration: 5s\n  prompts: []\n", 2, 10, "invalid YAML"),
        ("duration: *nope\n", 1, 11, "undefined alias"),
        ("duration: &a 1\nprompts: &a []\n", 2, 10, "duplicate anchor"),
        ("duration: 5\nprompts: [{at: 0, text: !!set {a}}]\n", 2, 25, "set"),
        ("duration: 5\n<<: 3\nprompts: []\n", 2, 5, "invalid YAML"),
        ("duration: 5\n---\nprompts: []\n", 2, 1, "single document"),
    ],
)
def test_yaml_syntax_errors_are_located(text, line, column, needle):
    located(refused(text, needle), line, column)


@pytest.mark.parametrize(
    ("text", "line", "column", "field", "needle"),
    [
        ("duration: 5s\nduration: 6s\nprompts: [{at: 0, text: a}]\n", 2, 1, "duration", "duplicate key"),
        ("duration: 5\nprompts:\n  - {at: 0, at: 1, text: a}\n", 3, 13, "prompts[0].at", "duplicate key"),
        ("duration: 5\nprompts: [{at: 0, text: a}]\nprompts: []\n", 3, 1, "prompts", "duplicate key"),
        ("duration: -5\nprompts: [{at: 0, text: a}]\n", 1, 11, "duration", "negative"),
        ("duration: .nan\nprompts: [{at: 0, text: a}]\n", 1, 11, "duration", "finite"),
        ("duration: -.inf\nprompts: [{at: 0, text: a}]\n", 1, 11, "duration", "finite"),
        ("duration: 1e999\nprompts: [{at: 0, text: a}]\n", 1, 11, "duration", "not a time"),
        ("duration: 1000000\nprompts: [{at: 0, text: a}]\n", 1, 11, "duration", "longer than the maximum"),
        ("duration: 2001-13-45\nprompts: [{at: 0, text: a}]\n", 1, 11, "duration", "not a date"),
        ("duration: !!bool maybe\nprompts: [{at: 0, text: a}]\n", 1, 11, "duration", "not a boolean"),
        ("duration: !!int ''\nprompts: [{at: 0, text: a}]\n", 1, 11, "duration", "not an integer"),
        ("duration: !!float x\nprompts: [{at: 0, text: a}]\n", 1, 11, "duration", "not a number"),
        (
            "duration: 5\nprompts:\n  - {at: 0, text: a}\n  - {at: -1s, text: b}\n",
            4,
            10,
            "prompts[1].at",
            "negative",
        ),
        (
            "duration: 5\nprompts:\n  - {at: 0, text: a}\n  - {at: .nan, text: b}\n",
            4,
            10,
            "prompts[1].at",
            "finite",
        ),
        (
            "duration: 5\nprompts:\n  - {at: 0, text: a}\n  - {at: 5s, text: b}\n",
            4,
            5,
            "prompts[1].at",
            "end",
        ),
        (
            "duration: 5\nprompts:\n  - {at: 0, text: a}\n  - {at: 1h, text: b}\n",
            4,
            5,
            "prompts[1].at",
            "end",
        ),
        (
            "duration: 5\nprompts:\n  - {at: 0, text: a}\n  - {at: 4.9, text: b}\n",
            4,
            5,
            "prompts[1].at",
            "last block",
        ),
        (
            "duration: 5\nprompts:\n  - {at: 0, text: a}\n  - {at: 9999999999999999999999, text: b}\n",
            4,
            5,
            "prompts[1].at",
            "end",
        ),
        (
            "duration: 5\nprompts:\n  - {at: 0, text: a}\n"
            "  - {at: 0x7fffffffffffffffffffffffffffffff, text: b}\n",
            4,
            5,
            "prompts[1].at",
            "end",
        ),
        (
            "seed: 0x" + "f" * 60 + "\nduration: 5\nprompts: [{at: 0, text: a}]\n",
            1,
            7,
            "seed",
            "out of range",
        ),
        ("duration: 5\nprompts: [{at: 0, text: a}]\nsede: 1\n", 3, 1, "sede", "Did you mean 'seed'"),
    ],
)
def test_schema_errors_are_located(text, line, column, field, needle):
    err = refused(text, needle)
    located(err, line, column)
    assert err.field == field


def test_long_unknown_key_is_shortened_in_the_message():
    err = refused("duration: 5\n? " + "k" * 100_000 + "\n: 1\nprompts: [{at: 0, text: a}]\n", "unknown key")
    assert err.field is not None and len(err.field) <= 60
    assert "100000 characters" in str(err)


# --------------------------------------------------------------------------- unsafe tags


@pytest.mark.parametrize(
    "value",
    [
        '!!python/object/apply:os.system ["touch {marker}"]',
        '!!python/object/apply:subprocess.check_call [["touch", "{marker}"]]',
        "!!python/name:os.system",
        '!!python/object/new:os.system ["touch {marker}"]',
        "!!python/object:builtins.object {{}}",
        '!<tag:yaml.org,2002:python/object/apply:os.system> ["touch {marker}"]',
    ],
)
def test_python_tags_are_errors_and_never_run(tmp_path, monkeypatch, value):
    def forbidden(*args, **kwargs):
        raise AssertionError("the storyboard ran a command")

    monkeypatch.setattr(os, "system", forbidden)
    monkeypatch.setattr(subprocess, "Popen", forbidden)
    marker = tmp_path / "pwned"
    text = f"duration: 5\nprompts:\n  - at: 0\n    text: {value.format(marker=marker)}\n"
    err = refused(text, "invalid YAML", "python")
    assert err.line == 4
    assert not marker.exists()


@pytest.mark.parametrize(
    ("text", "line", "column"),
    [
        ("duration: 5\nprompts:\n  - !!python/object/apply:os.system {at: 0, text: a}\n", 3, 5),
        ("--- !!python/object/apply:os.system\nduration: 5\nprompts: [{at: 0, text: a}]\n", 1, 5),
        ("duration: 5\nprompts: !!python/tuple [{at: 0, text: a}]\n", 2, 10),
        ("duration: 5\n!!python/name:os.system prompts: [{at: 0, text: a}]\n", 2, 1),
        ("duration: 5\nprompts: [{<<: !!python/object:os.system {at: 0}, text: a}]\n", 2, 16),
        ("%TAG !p! tag:yaml.org,2002:python/\n---\nduration: !p!name:os.system\n", 3, 11),
        ("duration: !<tag:yaml.org,2002:python/name:os.system> 5\n", 1, 11),
        ("duration: 5\nprompts: [{at: 0, text: !custom a}]\n", 2, 25),
    ],
)
def test_python_tags_on_any_node_are_errors(text, line, column):
    # Lists, mappings and keys are never constructed, so these tags are refused while composing.
    located(refused(text, "invalid YAML", "is not allowed", "never run"), line, column)


def test_safe_but_meaningless_tags_on_lists_are_errors():
    err = refused("duration: 5\nprompts: !!omap [{at: 0}]\n", "'!!omap' is not allowed here")
    assert err.field == "prompts"


# --------------------------------------------------------------------------- make_plan inputs


def _one_prompt(at=0.0) -> Storyboard:
    return Storyboard(path=None, duration_s=5.0, prompts=(PromptSpec(at, "a", None),))


@pytest.mark.parametrize(
    ("overrides", "field", "needle"),
    [
        ({"duration_s": 10**400}, "duration", "longer than the maximum"),  # beyond float range
        ({"duration_s": -(10**400)}, "duration", "greater than 0"),
        ({"seed": 10**5000}, "seed", "about 5001 digits"),  # str() of it would raise ValueError
        ({"width": 10**5000}, "resolution", "out of range"),
        ({"duration_s": math.nan}, "duration", "not a duration"),
        ({"duration_s": "60s"}, "duration", "not a duration"),
    ],
)
def test_make_plan_huge_or_odd_overrides(overrides, field, needle):
    with pytest.raises(StoryboardError, match=needle) as info:
        make_plan(_one_prompt(), **overrides)
    assert info.value.field == field


def test_make_plan_hand_built_string_times():
    sb = Storyboard(
        path=None, duration_s=120.0, prompts=(PromptSpec("0", "a", None), PromptSpec("1:30", "b", None))
    )
    plan = make_plan(sb)
    assert [seg.requested_s for seg in plan.segments] == [0.0, 90.0]
    bad = Storyboard(
        path=None, duration_s=120.0, prompts=(PromptSpec("0", "a", None), PromptSpec("0s", "b", None))
    )
    with pytest.raises(StoryboardError, match="strictly increasing"):
        make_plan(bad)
    with pytest.raises(StoryboardError, match="finite"):
        make_plan(_one_prompt(10**400))


# --------------------------------------------------------------------------- property-based

# A storyboard YAML is built from raw scalar tokens (unquoted: YAML decides their type) so that the
# parser sees ints, floats, sexagesimals, dates, nulls, booleans and strings, valid and not.


def unicode_text(min_size: int = 0, max_size: int = 40) -> st.SearchStrategy[str]:
    """Any code points (lone surrogates included), mostly ASCII. Built from integers rather than
    st.text() so hypothesis need not build its Unicode table (~2 s on a fresh checkout)."""
    code_points = st.one_of(st.integers(0, 127), st.integers(0, 0x10FFFF))
    return st.lists(code_points, min_size=min_size, max_size=max_size).map(lambda cs: "".join(map(chr, cs)))


_NUMBER = st.one_of(
    st.integers(-5, 300).map(str),
    st.floats(-5, 300, allow_nan=False).map(lambda x: f"{x:.4g}"),
    st.integers(-(10**30), 10**30).map(str),
)
_TIME = st.one_of(
    _NUMBER,
    st.builds(lambda m, s: f"{m}:{s:02d}", st.integers(0, 5), st.integers(0, 75)),
    st.builds(
        lambda h, m, s: f"{h}:{m:02d}:{s:02d}", st.integers(0, 1), st.integers(0, 70), st.integers(0, 70)
    ),
    st.builds(
        lambda x, u: f"{x}{u}", st.integers(-3, 300), st.sampled_from(["s", "m", "h", "S", " s", "ms"])
    ),
    st.builds(lambda m, s: f"{m}m{s}s", st.integers(0, 5), st.integers(0, 90)),
    st.sampled_from(
        [
            ".nan",
            ".NaN",
            ".inf",
            "-.inf",
            "nan",
            "inf",
            "1e400",
            "1e3",
            "-0",
            "0",
            "010",
            "0x1f",
            "0o17",
            "0b101",
            "1_000",
            "''",
            '""',
            "~",
            "null",
            "true",
            "no",
            "[1]",
            "{a: 1}",
            "2001-01-01",
            "2001-13-45",
            '"12s"',
            "'1:30'",
            "!!int 5",
            "!!float 1",
            "!!str 5",
            "!!bool x",
            "*nope",
            "1:2:3:4",
            "1h2m3.5s",
            " 7 s",
            "1.5.2",
            "--1",
            "+3",
            "1:30.5",
            "'" + "9" * 80 + "'",
        ]
    ),
)
_TEXT = st.one_of(
    st.sampled_from(
        [
            "a boy runs",
            "'single'",
            "|",
            ">",
            "123",
            "''",
            "' '",
            "null",
            "[a, b]",
            "{x: y}",
            "!!binary aGk=",
            "2001-01-01",
            "true",
            "'" + "w" * (MAX_PROMPT_CHARS + 1) + "'",
        ]
    ),
    unicode_text().map(json.dumps),  # JSON strings are YAML double-quoted scalars
    st.text(alphabet="ab :#-,[]{}&*!|>'\"", min_size=1, max_size=12),
)
_RESOLUTION = st.one_of(
    st.builds(
        lambda w, h, x: f"{w}{x}{h}",
        st.integers(0, 300).map(lambda n: n * 16),
        st.integers(-1, 300).map(lambda n: n * 16),
        st.sampled_from(["x", "X", " x ", "×", "*"]),
    ),
    st.builds("{}x{}".format, st.integers(0, 5000), st.integers(0, 5000)),
    st.sampled_from(["832x480", "480x832", "832", "[832, 480]", "null", "x", "0x10", "16x16"]),
)
_SEED = st.one_of(
    st.integers(-5, 2**64).map(str),
    st.sampled_from(["null", "1.5", "true", "'7'", "0x7fffffffffffffff", "-0"]),
)
_FPS = st.sampled_from(["16", "24", "16.0", "'16'", "null", "0x10", "020"])
_EXTRA_KEY = st.sampled_from(["sed", "prompt", "duratoin", "x", "at", "text", "seed", "<<", "? [a]", "''"])


def _mapping(pairs: list[tuple[str, str]], flow: bool, indent: str) -> str:
    if flow:
        return "{" + ", ".join(f"{k}: {v}" for k, v in pairs) + "}"
    return f"\n{indent}".join(f"{k}: {v}" for k, v in pairs) if pairs else "{}"


_GOOD_TEXT = st.one_of(
    st.sampled_from(["a boy runs", "'single quoted'", '"double: quoted"', "rain, then sun"]),
    unicode_text(min_size=1).filter(str.strip).map(json.dumps),
)


@st.composite
def _prompt(draw, at: str | None = None, clean: bool = False) -> str:
    pairs = []
    if clean or draw(st.integers(0, 9)) > 0:
        pairs.append(("at", at if at is not None else draw(_TIME)))
    if clean or draw(st.integers(0, 9)) > 0:
        pairs.append(("text", draw(_GOOD_TEXT if clean else _TEXT)))
    if not clean and draw(st.integers(0, 9)) == 0:
        pairs.append((draw(_EXTRA_KEY), draw(_TIME)))
    pairs = draw(st.permutations(pairs)) if draw(st.booleans()) else pairs
    if draw(st.booleans()):
        return "  - " + _mapping(pairs, True, "")
    return "  - " + _mapping(pairs, False, "    ")


@st.composite
def sane_documents(draw) -> str:
    """Mostly-valid storyboards: distinct whole-second times before the end (often a real Plan)."""
    duration = draw(st.integers(1, int(MAX_DURATION_S)))
    times = sorted(draw(st.sets(st.integers(1, duration - 1), max_size=8))) if duration > 1 else []
    style = draw(st.sampled_from(["{}", "{}s", "0:{:02d}", "{}.0"]))

    def show(t: int) -> str:
        return style.format(t) if style != "0:{:02d}" or t < 60 else str(t)

    lines = []
    if draw(st.booleans()):
        lines.append(f"seed: {draw(st.integers(0, 2**63 - 1))}")
    if draw(st.booleans()):
        lines.append(f"resolution: {draw(st.sampled_from(['832x480', '480x832', '16x16', '4096x16']))}")
    lines.append(f"duration: {show(duration)}")
    lines.append("prompts:")
    lines += [draw(_prompt(at="0", clean=True))] + [draw(_prompt(at=show(t), clean=True)) for t in times]
    return "\n".join(lines) + "\n"


@st.composite
def wild_documents(draw) -> str:
    """YAML-ish storyboards from random parts: any key may be missing, wrong, duplicated or extra."""
    parts = []
    for key, values in (("seed", _SEED), ("resolution", _RESOLUTION), ("fps", _FPS), ("duration", _TIME)):
        for _ in range(draw(st.sampled_from([1, 1, 1, 0, 2] if key == "duration" else [0, 0, 1, 2]))):
            parts.append(f"{key}: {draw(values)}")
    if draw(st.integers(0, 5)) == 0:
        parts.append(f"{draw(_EXTRA_KEY)}: {draw(_TIME)}")
    kind = draw(st.sampled_from(["block", "block", "flow", "empty", "scalar", "missing"]))
    prompts = draw(st.lists(_prompt(), max_size=12))
    if kind == "block" and prompts:
        parts.append("prompts:\n" + "\n".join(prompts))
    elif kind == "flow":
        parts.append("prompts: [" + ", ".join(p.strip()[2:] for p in prompts if "\n" not in p) + "]")
    elif kind == "empty":
        parts.append("prompts: []")
    elif kind == "scalar":
        parts.append(f"prompts: {draw(_TEXT)}")
    parts = draw(st.permutations(parts))
    return "\n".join(parts) + "\n"


@st.composite
def mutated_documents(draw) -> str:
    """A (mostly) valid document with one random edit: a cut, an insertion or a duplicated line."""
    text = draw(sane_documents())
    at = draw(st.integers(0, len(text)))
    edit = draw(st.sampled_from(["cut", "insert", "duplicate", "truncate"]))
    if edit == "cut":
        return text[:at] + text[at + draw(st.integers(1, 20)) :]
    if edit == "insert":
        return text[:at] + draw(st.text(alphabet=" \t\n:-,[]{}&*!|>'\"#?%@`\\x0", max_size=6)) + text[at:]
    if edit == "duplicate":
        lines = text.splitlines(keepends=True)
        i = draw(st.integers(0, len(lines) - 1))
        return "".join(lines[: i + 1] + lines[i:])
    return text[:at]


def check_plan(plan: Plan, *, frames_per_block: int = 3, num_prompts: int | None = None) -> None:
    """The invariants of every plan make_plan returns."""
    fpb = frames_per_block
    segs = plan.segments
    assert plan.frames_per_block == fpb
    assert plan.fps == 16
    assert 0 < plan.duration_s <= MAX_DURATION_S
    assert plan.num_latent_frames > 0 and plan.num_latent_frames % fpb == 0
    assert plan.num_blocks * fpb == plan.num_latent_frames
    assert plan.num_video_frames == 4 * plan.num_latent_frames - 3
    # The video is the requested duration rounded to whole blocks (half a block either way at most).
    assert abs(4 * plan.num_latent_frames / plan.fps - plan.duration_s) <= 4 * fpb / plan.fps / 2 + 1e-9
    assert 1 <= len(segs) <= MAX_PROMPTS
    if num_prompts is not None:
        assert len(segs) == num_prompts
    assert segs[0].start_block == 0 and segs[0].start_latent_frame == 0 and segs[0].start_video_frame == 0
    assert segs[0].requested_s == 0
    for i, seg in enumerate(segs):
        assert seg.index == i
        assert 0 <= seg.start_block < plan.num_blocks
        assert seg.start_latent_frame == seg.start_block * fpb
        assert seg.start_latent_frame % fpb == 0  # switches only on block boundaries
        assert seg.latent_index <= seg.start_latent_frame < seg.latent_index + fpb
        expected_first = 0 if seg.start_latent_frame == 0 else 4 * seg.start_latent_frame - 3
        assert seg.start_video_frame == expected_first
        assert seg.effective_s == seg.start_video_frame / plan.fps
        assert 0 <= seg.effective_s < plan.video_duration_s
        assert 0 <= seg.requested_s < plan.duration_s
        assert seg.num_video_frames > 0
        assert isinstance(seg.text, str) and seg.text.strip() and len(seg.text.strip()) <= MAX_PROMPT_CHARS
        if i + 1 < len(segs):
            assert seg.start_block < segs[i + 1].start_block
            assert seg.requested_s < segs[i + 1].requested_s
            assert seg.end_block == segs[i + 1].start_block
        else:
            assert seg.end_block == plan.num_blocks
        for block in {seg.start_block, seg.end_block - 1}:
            assert plan.segment_for_block(block) == i
    assert sum(seg.num_video_frames for seg in segs) == plan.num_video_frames
    assert plan.switch_blocks() == tuple(seg.start_block for seg in segs[1:])
    assert len(format_plan(plan).splitlines()) == 2 + len(segs)


def check_error(err: StoryboardError, text: str | None = None, path: str | None = PATH) -> None:
    message = str(err)
    assert err.message and message.endswith(err.message)
    if path is not None:
        assert err.path == path and message.startswith(f"{path}:"), message
    if err.line is not None and text is not None:
        breaks = sum(text.count(c) for c in "\n\r\x85\u2028\u2029")
        assert 1 <= err.line <= breaks + 2, message
        assert err.column is None or err.column >= 1
    assert len(message) < 2000


def parse_and_plan(text: str | bytes) -> Plan | None:
    """parse_storyboard then make_plan; None after a (checked) StoryboardError."""
    try:
        sb = parse_storyboard(text, path=PATH)
    except StoryboardError as err:
        check_error(err, text if isinstance(text, str) else None)
        return None
    plan = make_plan(sb)  # a storyboard that parses also plans
    check_plan(plan, num_prompts=len(sb.prompts))
    assert [seg.requested_s for seg in plan.segments] == [p.at_s for p in sb.prompts]
    assert plan.seed == sb.seed
    return plan


_SETTINGS = settings(
    max_examples=100,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


@_SETTINGS
@given(
    st.one_of(
        unicode_text(max_size=300),
        st.text(alphabet=" \n\t-:[]{},&*!|>'\"#?%@0123456789.smhx<a", max_size=200),
    )
)
def test_any_text_gives_a_plan_or_a_storyboard_error(text):
    parse_and_plan(text)


@settings(_SETTINGS, max_examples=50)
@given(st.binary(max_size=300))
def test_any_bytes_give_a_plan_or_a_storyboard_error(data):
    parse_and_plan(data)


@settings(_SETTINGS, max_examples=120)
@given(st.one_of(sane_documents(), wild_documents(), mutated_documents()))
def test_yamlish_documents_give_a_valid_plan_or_a_storyboard_error(text):
    parse_and_plan(text)


def test_sane_documents_mostly_plan():
    # The generator above must really reach valid plans, not only errors.
    plans = []

    @settings(max_examples=40, deadline=None, database=None)
    @given(sane_documents())
    def collect(text):
        plans.append(parse_and_plan(text))

    collect()
    assert sum(plan is not None for plan in plans) >= len(plans) // 3


_ANY_TIME = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.integers(-(10**6), 10**6),
    st.integers(),
    st.sampled_from(["0", "1:30", "2m", "-1", "nan", "12s", "", "1h", None, True, [1]]),
)


@st.composite
def hand_built(draw) -> tuple[Storyboard, dict]:
    duration = draw(st.one_of(st.floats(0, MAX_DURATION_S + 10), _ANY_TIME))
    n = draw(st.integers(0, 12))
    if draw(st.booleans()):
        times: list = [0.0, *sorted(draw(st.lists(st.floats(0.01, 250), max_size=n)))]
    else:
        times = draw(st.lists(_ANY_TIME, max_size=n))
    texts = st.one_of(
        unicode_text(max_size=20), st.sampled_from(["a", " ", 3, None, "x" * (MAX_PROMPT_CHARS + 1)])
    )
    prompts = tuple(
        PromptSpec(at_s=t, text=draw(texts), line=draw(st.none() | st.integers(1, 99))) for t in times
    )
    sizes = st.one_of(st.none(), st.integers(0, 300).map(lambda n: n * 16), st.integers(), st.just(True))
    sb = Storyboard(
        path=draw(st.none() | st.just(PATH)),
        duration_s=duration,
        prompts=prompts,
        seed=draw(st.none() | st.integers(-5, 2**64) | st.integers()),
        width=draw(sizes),
        height=draw(sizes),
        fps=draw(st.sampled_from([16, 16, 24, 0])),
    )
    overrides = {
        "seed": draw(st.none() | st.integers(-5, 2**64)),
        "width": draw(sizes),
        "height": draw(sizes),
        "duration_s": draw(st.none() | st.floats(0, 300) | _ANY_TIME),
        "frames_per_block": draw(st.sampled_from([3, 3, 1, 2, 4])),
    }
    return sb, overrides


@settings(_SETTINGS, max_examples=80)
@given(hand_built())
def test_make_plan_gives_a_valid_plan_or_a_storyboard_error(case):
    sb, overrides = case
    try:
        geometry = replace(WAN21, frames_per_block=overrides["frames_per_block"])
        plan = make_plan(sb, geometry, **{k: v for k, v in overrides.items() if k != "frames_per_block"})
    except StoryboardError as err:
        check_error(err, path=None)
        return
    check_plan(plan, frames_per_block=overrides["frames_per_block"], num_prompts=len(sb.prompts))
    if overrides["seed"] is not None:
        assert plan.seed == overrides["seed"]
    if overrides["duration_s"] is not None:
        assert plan.duration_s == overrides["duration_s"]
    assert not math.isnan(plan.duration_s)


def test_module_limits_are_consistent():
    # The written-node limit must fit the largest storyboard (see its comment) and stay below the
    # expanded one (an alias counts once written, at least once expanded).
    assert 7 * MAX_PROMPTS + 20 < loader.MAX_YAML_WRITTEN_NODES <= loader.MAX_YAML_NODES
