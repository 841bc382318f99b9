"""Tests for longlive_cli.storyboard: time syntax, YAML validation with locations, and the plan."""

from __future__ import annotations

import math
import pickle
import textwrap
from dataclasses import replace

import pytest

from longlive_cli.geometry import WAN21
from longlive_cli.storyboard import (
    MAX_DURATION_S,
    Plan,
    PromptSpec,
    Storyboard,
    StoryboardError,
    format_plan,
    load_storyboard,
    loader,
    make_plan,
    parse_resolution,
    parse_storyboard,
    parse_time,
)

GOOD = """\
seed: 42
resolution: 832x480
fps: 16
duration: 60s
prompts:
  - at: 0s
    text: "A little boy walks in a park."
  - at: 10s
    text: "The boy starts to run."
  - at: 20s
    text: "The boy jumps."
  - at: 30s
    text: "The boy sits down."
"""


def doc(text: str) -> str:
    return textwrap.dedent(text).lstrip("\n")


def parse_err(text: str, path: str | None = "story.yaml") -> StoryboardError:
    with pytest.raises(StoryboardError) as info:
        parse_storyboard(doc(text), path=path)
    return info.value


def simple_sb(duration_s: float = 60.0, *times: float) -> Storyboard:
    times = times or (0.0,)
    prompts = tuple(PromptSpec(at_s=t, text=f"p{i}", line=None) for i, t in enumerate(times))
    return Storyboard(path=None, duration_s=duration_s, prompts=prompts)


# --------------------------------------------------------------------------- error formatting


def test_error_str_full_prefix():
    err = StoryboardError("bad.", path="story.yaml", line=7, column=5, field="prompts[1].at")
    assert str(err) == "story.yaml:7:5: prompts[1].at: bad."
    assert isinstance(err, ValueError)
    assert (err.path, err.line, err.column, err.field, err.message) == (
        "story.yaml",
        7,
        5,
        "prompts[1].at",
        "bad.",
    )


def test_error_str_partial_prefixes():
    assert str(StoryboardError("m", path="s.yaml")) == "s.yaml: m"
    assert str(StoryboardError("m", path="s.yaml", line=3)) == "s.yaml:3: m"
    assert str(StoryboardError("m", line=3, column=2, field="seed")) == "line 3, column 2: seed: m"
    assert str(StoryboardError("m", field="seed")) == "seed: m"
    assert str(StoryboardError("m")) == "m"


def test_error_pickles_with_location():
    err = StoryboardError("m", path="s.yaml", line=2, column=1, field="fps")
    again = pickle.loads(pickle.dumps(err))
    assert str(again) == str(err)


# --------------------------------------------------------------------------- parse_time


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        (12, 12.0),
        (12.5, 12.5),
        (0, 0.0),
        ("12", 12.0),
        ("12.5", 12.5),
        ("12s", 12.0),
        ("12.5s", 12.5),
        ("12.5S", 12.5),
        ("90 s", 90.0),
        (" 7s ", 7.0),
        (".5", 0.5),
        ("1:30", 90.0),
        ("0:05.5", 5.5),
        ("1:02:03", 3723.0),
        ("1m30s", 90.0),
        ("1M 30S", 90.0),
        ("1m30", 90.0),
        ("2m", 120.0),
        ("1h", 3600.0),
        ("0.1h", 360.0),
        ("1h2m3.5s", 3723.5),
        ("1.5m", 90.0),
    ],
)
def test_parse_time_accepts(value, seconds):
    assert parse_time(value, field="t") == seconds


@pytest.mark.parametrize(
    ("value", "needle"),
    [
        ("abc", "is not a time"),
        ("-3s", "negative"),
        (-3, "negative"),
        ("nan", "is not a time"),
        ("inf", "is not a time"),
        (math.nan, "finite"),
        (math.inf, "finite"),
        (10**400, "finite"),
        ("1:75", "seconds field"),
        ("1:60:00", "minutes field"),
        ("", "empty"),
        ("   ", "empty"),
        ("12ms", "is not a time"),
        ("s", "is not a time"),
        ("1e3", "is not a time"),
        (True, "boolean"),
        (None, "is not a time"),
        ([1], "is not a time"),
    ],
)
def test_parse_time_rejects(value, needle):
    with pytest.raises(StoryboardError) as info:
        parse_time(value, field="prompts[2].at")
    assert info.value.field == "prompts[2].at"
    assert str(info.value).startswith("prompts[2].at: ")
    assert needle in str(info.value)


# --------------------------------------------------------------------------- parse_resolution


@pytest.mark.parametrize(
    ("value", "size"),
    [("832x480", (832, 480)), ("832X480", (832, 480)), (" 480 x 832 ", (480, 832)), ("16x4096", (16, 4096))],
)
def test_parse_resolution_accepts(value, size):
    assert parse_resolution(value) == size


@pytest.mark.parametrize(
    ("value", "needle"),
    [
        ("830x480", "multiple of 16"),
        ("832x0", "out of range"),
        ("4112x480", "out of range"),
        ("832", "WIDTHxHEIGHT"),
        ("axb", "WIDTHxHEIGHT"),
        ([832, 480], "WIDTHxHEIGHT"),
        (832, "WIDTHxHEIGHT"),
    ],
)
def test_parse_resolution_rejects(value, needle):
    with pytest.raises(StoryboardError) as info:
        parse_resolution(value)
    assert info.value.field == "resolution"
    assert needle in str(info.value)


def test_parse_resolution_suggests_nearest():
    with pytest.raises(StoryboardError, match="try 832"):
        parse_resolution("830x480")


# --------------------------------------------------------------------------- good storyboards


def test_parse_good_storyboard():
    sb = parse_storyboard(GOOD, path="story.yaml")
    assert sb.path == "story.yaml"
    assert sb.seed == 42
    assert (sb.width, sb.height, sb.fps) == (832, 480, 16)
    assert sb.duration_s == 60.0
    assert [p.at_s for p in sb.prompts] == [0.0, 10.0, 20.0, 30.0]
    assert sb.prompts[1].text == "The boy starts to run."
    assert [p.line for p in sb.prompts] == [6, 8, 10, 12]
    assert sb.prompts[1].column == 5


def test_defaults_and_null_optionals():
    sb = parse_storyboard(
        doc(
            """
            seed:
            resolution: null
            duration: 5
            prompts:
              - {at: 0, text: "  hi  "}
            """
        )
    )
    assert sb.seed is None
    assert (sb.width, sb.height, sb.fps) == (None, None, 16)  # no resolution: the model's native one
    assert sb.prompts == (PromptSpec(at_s=0.0, text="hi", line=5),)
    assert (make_plan(sb).width, make_plan(sb).height) == (832, 480)
    small = replace(WAN21, native_resolution=(128, 80))
    plan = make_plan(sb, small)
    assert (plan.width, plan.height) == (128, 80)
    assert (make_plan(parse_storyboard(GOOD), small).width) == 832  # the file wins


def test_yaml_sexagesimal_and_leading_zero_times():
    # YAML 1.1 reads 1:30 as 90 and 0:05.5 as 5.5 (fine); "010" would be octal 8, we read ten.
    sb = parse_storyboard(
        doc(
            """
            duration: 1:30
            prompts:
              - {at: 0, text: a}
              - {at: 0:05.5, text: b}
              - {at: 010, text: c}
              - {at: "01:20", text: d}
            """
        )
    )
    assert sb.duration_s == 90.0
    assert [p.at_s for p in sb.prompts] == [0.0, 5.5, 10.0, 80.0]


def test_anchors_aliases_and_merge_keys_work():
    sb = parse_storyboard(
        doc(
            """
            duration: 20s
            prompts:
              - &first {at: 0, text: &t "same words"}
              - {at: 10s, text: *t}
            """
        )
    )
    assert [p.text for p in sb.prompts] == ["same words", "same words"]
    merged = parse_storyboard(
        doc(
            """
            duration: 20s
            prompts:
              - &base {at: 0, text: base text}
              - <<: *base
                at: 10s
            """
        )
    )
    assert merged.prompts[1] == PromptSpec(at_s=10.0, text="base text", line=4)


def test_bom_and_block_text(tmp_path):
    path = tmp_path / "story.yaml"
    path.write_bytes(
        "\ufeff".encode()
        + doc(
            """
            duration: 5s
            prompts:
              - at: 0
                text: |
                  Un garçon
                  qui court.
            """
        ).encode()
    )
    sb = load_storyboard(path)
    assert sb.path == str(path)
    assert sb.prompts[0].text == "Un garçon\nqui court."


# --------------------------------------------------------------------------- YAML-level rejections


def test_yaml_syntax_error_has_line_and_column():
    err = parse_err(
        """
        duration: 5s
        prompts:
          - at: 0
            text: "unterminated
        """
    )
    assert err.path == "story.yaml"
    assert err.line is not None and err.line >= 4
    assert err.column is not None
    assert "invalid YAML" in str(err)
    assert str(err).startswith(f"story.yaml:{err.line}:{err.column}: ")


def test_yaml_tab_indent_hint():
    err = parse_err("duration: 5\nprompts:\n\t- at: 0\n")
    assert err.line == 3
    assert "tabs" in str(err)


def test_control_character_rejected_with_location():
    err = parse_err("duration: 5\nx: a\x07b\n")
    assert (err.line, err.column) == (2, 5)
    assert "U+0007" in str(err)


def test_multiple_documents_rejected():
    err = parse_err("duration: 5\n---\nduration: 6\n")
    assert err.line == 2
    assert "single document" in str(err)


def test_empty_document():
    err = parse_err("# nothing\n")
    assert "empty" in str(err)


def test_top_level_must_be_mapping():
    err = parse_err("- at: 0\n  text: hi\n")
    assert err.line == 1
    assert "must be a mapping" in str(err)
    assert "duration" in str(err)


def test_unknown_top_level_key():
    err = parse_err(
        """
        duration: 5s
        sed: 3
        prompts:
          - {at: 0, text: hi}
        """
    )
    assert (err.line, err.column, err.field) == (2, 1, "sed")
    assert "unknown key 'sed'" in str(err)
    assert "seed, resolution, fps, duration, prompts" in str(err)
    assert "Did you mean 'seed'" in str(err)


def test_unknown_prompt_key():
    err = parse_err(
        """
        duration: 5s
        prompts:
          - at: 0
            txt: hi
        """
    )
    assert (err.line, err.field) == (4, "prompts[0]")
    assert "unknown key 'txt'" in str(err)
    assert "allowed keys: at, text" in str(err)


def test_duplicate_top_level_key():
    err = parse_err(
        """
        duration: 5s
        prompts:
          - {at: 0, text: hi}
        duration: 6s
        """
    )
    assert (err.line, err.field) == (4, "duration")
    assert "duplicate key 'duration'" in str(err)
    assert "line 1" in str(err)


def test_duplicate_prompt_key():
    err = parse_err(
        """
        duration: 5s
        prompts:
          - at: 0
            text: a
            text: b
        """
    )
    assert (err.line, err.field) == (5, "prompts[0].text")
    assert "duplicate key 'text'" in str(err)


def test_non_scalar_key_rejected():
    err = parse_err("? [a, b]\n: 1\nduration: 5\n")
    assert err.line == 1
    assert "plain names" in str(err)


def test_unsafe_tag_rejected():
    err = parse_err(
        """
        duration: 5s
        prompts:
          - {at: 0, text: !!python/object/apply:os.system ["echo hi"]}
        """
    )
    assert err.line == 3
    assert "invalid YAML" in str(err)


# --------------------------------------------------------------------------- guard rails


def test_billion_laughs_rejected_quickly():
    lines = ['a0: &a0 ["x", "x", "x", "x", "x", "x", "x", "x", "x", "x"]']
    for i in range(1, 10):
        refs = ", ".join([f"*a{i - 1}"] * 10)
        lines.append(f"a{i}: &a{i} [{refs}]")
    err = parse_err("\n".join(lines) + "\n")
    assert "100000 nodes" in str(err)


def test_recursive_alias_rejected():
    err = parse_err("duration: &d [*d]\n")
    assert "recursive alias" in str(err)
    assert err.line == 1


def test_node_count_limit_while_composing(monkeypatch):
    monkeypatch.setattr(loader, "MAX_YAML_NODES", 50)
    err = parse_err("x: [" + ", ".join(["1"] * 100) + "]\n")
    assert "more than 50 nodes" in str(err)
    assert err.line == 1


def test_deep_nesting_rejected_quickly():
    err = parse_err("x:\n  " + "[" * 5000 + "]" * 5000 + "\n")
    assert "nested more than 32 levels" in str(err)
    assert (err.line, err.column) == (2, 34)


def test_nesting_within_limit_is_a_normal_error():
    err = parse_err("x: " + "[" * 20 + "]" * 20 + "\n")
    assert "unknown key 'x'" in str(err)


def test_large_file_rejected_before_parsing(tmp_path):
    path = tmp_path / "big.yaml"
    path.write_bytes(b"# " + b"x" * (1 << 20) + b"\n")
    with pytest.raises(StoryboardError) as info:
        load_storyboard(path)
    assert info.value.path == str(path)
    assert "1024 KiB" in str(info.value)


def test_large_text_rejected():
    with pytest.raises(StoryboardError, match="larger than"):
        parse_storyboard("#" * ((1 << 20) + 1))


def test_non_utf8_rejected_with_location(tmp_path):
    path = tmp_path / "latin1.yaml"
    path.write_bytes("duration: 5s\nprompts:\n  - {at: 0, text: garçon}\n".encode("latin-1"))
    with pytest.raises(StoryboardError) as info:
        load_storyboard(path)
    assert info.value.line == 3
    assert "not valid UTF-8" in str(info.value)
    assert str(info.value).startswith(f"{path}:3:")


def test_missing_file(tmp_path):
    with pytest.raises(StoryboardError, match="file not found"):
        load_storyboard(tmp_path / "nope.yaml")


def test_directory_is_not_a_file(tmp_path):
    with pytest.raises(StoryboardError, match="directory"):
        load_storyboard(tmp_path)


def test_too_many_prompts():
    items = "\n".join(f"  - {{at: {i}, text: p}}" for i in range(1001))
    err = parse_err(f"duration: 240s\nprompts:\n{items}\n")
    assert (err.line, err.field) == (3, "prompts")
    assert "1000" in str(err)


def test_prompt_text_too_long():
    err = parse_err(f"duration: 5s\nprompts:\n  - at: 0\n    text: {'a' * 10_001}\n")
    assert (err.line, err.field) == (4, "prompts[0].text")
    assert "512 tokens" in str(err)


# --------------------------------------------------------------------------- field rejections


def test_duration_missing():
    err = parse_err("prompts:\n  - {at: 0, text: hi}\n")
    assert err.field == "duration"
    assert "missing" in str(err)
    assert str(err).startswith("story.yaml: duration: ")


@pytest.mark.parametrize(
    ("value", "needle"),
    [
        ("0", "greater than 0"),
        ("0s", "greater than 0"),
        ("-5", "negative"),
        ("abc", "is not a time"),
        ("true", "boolean"),
        ("[5]", "is not a time"),
        ("0.3s", "too short"),
        (".nan", "finite"),
    ],
)
def test_duration_rejected(value, needle):
    err = parse_err(f"seed: 1\nduration: {value}\nprompts:\n  - {{at: 0, text: hi}}\n")
    assert (err.line, err.column, err.field) == (2, 11, "duration")
    assert needle in str(err)


def test_duration_over_limit_explains():
    err = parse_err("duration: 4m1s\nprompts:\n  - {at: 0, text: hi}\n")
    assert (err.line, err.field) == (1, "duration")
    msg = str(err)
    assert "241s" in msg and "240s" in msg
    assert "1024 latent frames" in msg and "255 s" in msg
    assert "Split the story" in msg


def test_duration_minimum_block():
    # 0.375 s rounds half up to one block; just below gives none.
    assert make_plan(simple_sb(0.375)).num_blocks == 1
    with pytest.raises(StoryboardError, match=r"at least 0\.375s"):
        make_plan(simple_sb(0.37))


def test_prompts_missing():
    err = parse_err("duration: 5s\n")
    assert err.field == "prompts"
    assert "missing" in str(err)


@pytest.mark.parametrize(
    ("value", "needle"), [("[]", "at least one"), ("hello", "must be a list"), ("{at: 0}", "must be a list")]
)
def test_prompts_bad_shape(value, needle):
    err = parse_err(f"duration: 5s\nprompts: {value}\n")
    assert (err.line, err.field) == (2, "prompts")
    assert needle in str(err)


def test_prompt_not_a_mapping():
    err = parse_err("duration: 5s\nprompts:\n  - just text\n")
    assert (err.line, err.field) == (3, "prompts[0]")
    assert "must be a mapping" in str(err)


@pytest.mark.parametrize("missing", ["at", "text"])
def test_prompt_missing_key(missing):
    other = "text: hi" if missing == "at" else "at: 0"
    err = parse_err(f"duration: 5s\nprompts:\n  - {other}\n")
    assert (err.line, err.field) == (3, "prompts[0]")
    assert f"missing key '{missing}'" in str(err)


def test_first_prompt_must_be_at_zero():
    err = parse_err("duration: 5s\nprompts:\n  - {at: 1s, text: hi}\n")
    assert (err.line, err.column, err.field) == (3, 5, "prompts[0].at")
    assert "must start at 0s" in str(err)


def test_prompt_times_strictly_increasing():
    err = parse_err(
        """
        duration: 30s
        prompts:
          - {at: 0, text: a}
          - {at: 10s, text: b}
          - {at: 10s, text: c}
        """
    )
    assert (err.line, err.field) == (5, "prompts[2].at")
    assert "strictly increasing" in str(err)
    assert "line 4" in str(err)


def test_prompt_at_or_after_end():
    err = parse_err(
        """
        seed: 1
        duration: 10s
        prompts:
          - at: 0s
            text: a
          - at: 12s
            text: b
        """
    )
    assert str(err) == (
        "story.yaml:6:5: prompts[1].at: 12s is not before the end of the video (duration 10s). "
        "Move the prompt earlier or make the video longer."
    )


def test_prompt_after_last_block():
    # 10 s -> L 39, 13 blocks; 9.9 s -> latent 40 -> block 14 > last block 12.
    err = parse_err("duration: 10s\nprompts:\n  - {at: 0, text: a}\n  - {at: 9.9, text: b}\n")
    assert (err.line, err.field) == (4, "prompts[1].at")
    assert "after the last block" in str(err)
    assert "last block (block 12;" in str(err)
    assert "before 9.125s" in str(err)
    # The suggested bound is exact: just under it works, at it does not.
    assert make_plan(simple_sb(10.0, 0.0, 9.12)).segments[1].start_block == 12
    with pytest.raises(StoryboardError, match="after the last block"):
        make_plan(simple_sb(10.0, 0.0, 9.125))


def test_two_prompts_in_one_block():
    err = parse_err(
        """
        duration: 30s
        prompts:
          - {at: 0, text: a}
          - {at: 10s, text: b}
          - {at: 10.5s, text: c}
        """
    )
    msg = str(err)
    assert (err.line, err.field) == (5, "prompts[2].at")
    assert "prompts[1] (line 4)" in msg and "prompts[2]" in msg
    assert "block 14" in msg
    assert "every 3 latent frames = 12 video frames = 0.75s at 16 fps" in msg
    assert "at most one switch per block" in msg
    assert "10.625s or later" in msg
    # The suggested time really is the earliest that works.
    ok = make_plan(simple_sb(30.0, 0.0, 10.0, 10.625))
    assert ok.switch_blocks() == (14, 15)


@pytest.mark.parametrize(
    ("value", "needle"),
    [("123", "is not a prompt"), ("[a, b]", "is not a prompt"), ('"   "', "empty"), ("", "is not a prompt")],
)
def test_prompt_text_rejected(value, needle):
    err = parse_err(f"duration: 5s\nprompts:\n  - at: 0\n    text: {value}\n")
    assert err.field == "prompts[0].text"
    assert err.line in (3, 4)  # an empty value is located at the end of its line
    assert needle in str(err)


@pytest.mark.parametrize(
    ("value", "needle"),
    [
        ("-1", "out of range"),
        (str(2**63), "out of range"),
        ("true", "not a seed"),
        ("1.5", "not a seed"),
        ('"7"', "not a seed"),
    ],
)
def test_seed_rejected(value, needle):
    err = parse_err(f"duration: 5s\nseed: {value}\nprompts:\n  - {{at: 0, text: hi}}\n")
    assert (err.line, err.column, err.field) == (2, 7, "seed")
    assert needle in str(err)


def test_seed_bounds_accepted():
    for seed in (0, 2**63 - 1):
        assert parse_storyboard(f"duration: 5s\nseed: {seed}\nprompts: [{{at: 0, text: hi}}]\n").seed == seed


@pytest.mark.parametrize(
    ("value", "needle"),
    [("830x480", "multiple of 16"), ("832", "WIDTHxHEIGHT"), ("[832, 480]", "WIDTHxHEIGHT")],
)
def test_resolution_rejected_in_file(value, needle):
    err = parse_err(f"duration: 5s\nresolution: {value}\nprompts:\n  - {{at: 0, text: hi}}\n")
    assert (err.line, err.field) == (2, "resolution")
    assert needle in str(err)


@pytest.mark.parametrize("value", ["24", "16.0", "true", '"16"'])
def test_fps_must_be_16(value):
    err = parse_err(f"fps: {value}\nduration: 5s\nprompts:\n  - {{at: 0, text: hi}}\n")
    assert (err.line, err.field) == (1, "fps")
    assert "generate at 16 fps" in str(err)


def test_prompt_time_syntax_error_located():
    err = parse_err("duration: 5s\nprompts:\n  - {at: 0, text: a}\n  - {at: 1:75, text: b}\n")
    assert (err.line, err.column, err.field) == (4, 10, "prompts[1].at")
    assert "seconds field" in str(err)


# --------------------------------------------------------------------------- the plan


def test_plan_60s_reference_numbers():
    plan = make_plan(parse_storyboard(GOOD, path="story.yaml"))
    assert isinstance(plan, Plan)
    assert (plan.num_latent_frames, plan.num_video_frames, plan.num_blocks) == (240, 957, 80)
    assert plan.frames_per_block == 3
    assert (plan.width, plan.height, plan.fps, plan.seed, plan.duration_s) == (832, 480, 16, 42, 60.0)
    assert plan.video_duration_s == 957 / 16
    seg = plan.segments
    assert [s.latent_index for s in seg] == [0, 40, 80, 120]
    assert [s.start_block for s in seg] == [0, 14, 27, 40]
    assert [s.start_latent_frame for s in seg] == [0, 42, 81, 120]
    assert [s.start_video_frame for s in seg] == [0, 165, 321, 477]
    assert seg[1].effective_s == 10.3125
    assert [s.end_block for s in seg] == [14, 27, 40, 80]
    assert [s.num_video_frames for s in seg] == [165, 156, 156, 480]
    assert sum(s.num_video_frames for s in seg) == plan.num_video_frames
    assert [s.index for s in seg] == [0, 1, 2, 3]
    assert seg[2].text == "The boy jumps." and seg[2].requested_s == 20.0
    assert plan.switch_blocks() == (14, 27, 40)


def test_plan_5s():
    plan = make_plan(simple_sb(5.0))
    assert (plan.num_latent_frames, plan.num_video_frames, plan.num_blocks) == (21, 81, 7)
    assert plan.segments[0].num_video_frames == 81
    assert plan.switch_blocks() == ()


def test_plan_max_duration():
    plan = make_plan(simple_sb(MAX_DURATION_S))
    assert (plan.num_latent_frames, plan.num_blocks, plan.num_video_frames) == (960, 320, 3837)


def test_segment_for_block():
    plan = make_plan(parse_storyboard(GOOD))
    assert [plan.segment_for_block(b) for b in (0, 13, 14, 26, 27, 39, 40, 79)] == [0, 0, 1, 1, 2, 2, 3, 3]
    for bad in (-1, 80):
        with pytest.raises(IndexError):
            plan.segment_for_block(bad)


def test_round_half_up_for_duration_and_prompts():
    # 1.125 s * 16 / 12 = 1.5 blocks -> 2 (round-half-even would give 2 too); 1.875 s -> 2.5 -> 3 (even: 2).
    assert make_plan(simple_sb(1.875)).num_blocks == 3
    assert make_plan(simple_sb(0.375)).num_blocks == 1  # 0.5 -> 1 (even: 0)
    # Prompt at 10.125 s -> latent 40.5 -> 41 (even: 40); at 10.375 s -> 41.5 -> 42.
    plan = make_plan(simple_sb(30.0, 0.0, 10.125, 20.0))
    assert plan.segments[1].latent_index == 41
    assert make_plan(simple_sb(30.0, 0.0, 10.375)).segments[1].latent_index == 42
    # A latent index exactly on a block start is used as is.
    assert make_plan(simple_sb(30.0, 0.0, 30 / 4 * 4 / 4)).segments[1].start_block == 10


def test_switch_blocks_with_other_block_size():
    plan = make_plan(simple_sb(10.0, 0.0, 5.0), replace(WAN21, frames_per_block=4))
    # L = 4 * round(160 / 16) = 40; 5 s -> latent 20 -> block 5 (latent 20, video frame 77).
    assert (plan.num_latent_frames, plan.num_blocks) == (40, 10)
    assert plan.segments[1].start_block == 5
    assert plan.segments[1].start_video_frame == 77


def test_frames_per_block_must_be_positive():
    with pytest.raises(ValueError, match="frames_per_block"):
        make_plan(simple_sb(), replace(WAN21, frames_per_block=0))


# --------------------------------------------------------------------------- overrides


def test_overrides_win():
    sb = parse_storyboard(GOOD)
    plan = make_plan(sb, seed=7, width=480, height=832, duration_s=40.0)
    assert (plan.seed, plan.width, plan.height, plan.duration_s) == (7, 480, 832, 40.0)
    assert plan.num_latent_frames == 159
    assert make_plan(sb).seed == 42


def test_override_seed_validated():
    with pytest.raises(StoryboardError) as info:
        make_plan(parse_storyboard(GOOD, path="story.yaml"), seed=-1)
    assert info.value.field == "seed"
    assert info.value.path is None
    assert "command line" in str(info.value)


def test_override_resolution_validated():
    with pytest.raises(StoryboardError, match="multiple of 16") as info:
        make_plan(parse_storyboard(GOOD), width=830)
    assert info.value.field == "resolution"


@pytest.mark.parametrize(
    ("duration", "needle"), [(0.0, "greater than 0"), (300.0, "240s"), (math.nan, "not a duration")]
)
def test_override_duration_validated(duration, needle):
    with pytest.raises(StoryboardError, match=needle) as info:
        make_plan(parse_storyboard(GOOD), duration_s=duration)
    assert info.value.field == "duration"


def test_override_duration_shorter_than_prompt():
    with pytest.raises(StoryboardError) as info:
        make_plan(parse_storyboard(GOOD, path="story.yaml"), duration_s=25.0)
    err = info.value
    assert (err.path, err.line, err.field) == ("story.yaml", 12, "prompts[3].at")
    assert "duration 25s (given on the command line)" in str(err)


def test_make_plan_validates_hand_built_storyboards():
    with pytest.raises(StoryboardError, match="must start at 0s"):
        make_plan(simple_sb(10.0, 1.0))
    with pytest.raises(StoryboardError, match="at least one prompt"):
        make_plan(Storyboard(path=None, duration_s=5.0, prompts=()))
    with pytest.raises(StoryboardError, match="fps"):
        make_plan(Storyboard(path=None, duration_s=5.0, prompts=simple_sb().prompts, fps=24))
    with pytest.raises(StoryboardError, match="empty"):
        make_plan(Storyboard(path=None, duration_s=5.0, prompts=(PromptSpec(0.0, " ", None),)))


# --------------------------------------------------------------------------- format_plan


def test_format_plan():
    plan = make_plan(parse_storyboard(GOOD))
    text = format_plan(plan)
    lines = text.splitlines()
    assert len(lines) == 2 + len(plan.segments)
    header = lines[0]
    for needle in (
        "832x480",
        "16 fps",
        "60.00 s",
        "240 latent frames",
        "957 video frames",
        "80 blocks",
        "seed 42",
    ):
        assert needle in header
    assert "requested" in lines[1] and "effective" in lines[1]
    row = lines[3]
    assert "10.00s" in row and "10.31s" in row and " 14 " in row and "156" in row
    assert "The boy starts to run." in row
    assert "20.00s" in lines[4] and "20.06s" in lines[4]
    assert "30.00s" in lines[5] and "29.81s" in lines[5]


def test_format_plan_random_seed_and_long_text():
    sb = Storyboard(path=None, duration_s=5.0, prompts=(PromptSpec(0.0, "word " * 40 + "\nend", None),))
    text = format_plan(make_plan(sb))
    assert "seed random" in text
    last = text.splitlines()[-1]
    assert last.endswith("...") and "\n" not in last
