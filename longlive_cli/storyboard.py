"""Storyboard YAML -> validated :class:`Storyboard` -> generation :class:`Plan`.

A storyboard is a YAML mapping::

    seed: 42                 # optional int, 0 <= seed < 2**63
    resolution: 832x480      # optional "WxH", multiples of 16 in [16, 4096]
    fps: 16                  # optional, must be 16
    duration: 60s            # required, seconds (see parse_time for the syntax)
    prompts:                 # required, first at 0, strictly increasing, all before the end
      - at: 0s
        text: "A little boy ..."

Frame arithmetic (LongLive / Wan2.1): the model generates blocks of ``frames_per_block`` (3) latent
frames; the Wan VAE turns latent frame 0 into 1 video frame and every later latent frame into 4, so
``L`` latent frames give ``4L - 3`` video frames at 16 fps. A prompt takes effect at a block boundary.

Every rejection is a :class:`StoryboardError` whose message names the file, line, column and field
where known, says what is wrong and what to do about it.
"""

from __future__ import annotations

import bisect
import difflib
import math
import re
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from fractions import Fraction
from pathlib import Path
from typing import Any

import yaml
from yaml.constructor import ConstructorError
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

__all__ = [
    "DEFAULT_FPS",
    "DEFAULT_HEIGHT",
    "DEFAULT_WIDTH",
    "MAX_DURATION_S",
    "MAX_FILE_BYTES",
    "MAX_PROMPTS",
    "MAX_PROMPT_CHARS",
    "MAX_YAML_DEPTH",
    "MAX_YAML_LINES",
    "MAX_YAML_NODES",
    "MAX_YAML_WRITTEN_NODES",
    "Plan",
    "PromptSpec",
    "Segment",
    "Storyboard",
    "StoryboardError",
    "format_plan",
    "load_storyboard",
    "make_plan",
    "parse_resolution",
    "parse_storyboard",
    "parse_time",
]

DEFAULT_FPS = 16
DEFAULT_WIDTH = 832
DEFAULT_HEIGHT = 480
#: Longest video, in seconds. RoPE's temporal table has 1024 latent frames (~255 s) and LongLive was
#: trained and evaluated for up to 240 s.
MAX_DURATION_S = 240.0
MAX_FILE_BYTES = 1 << 20  # 1 MiB: a storyboard is a few KiB; anything larger is a mistake or hostile
MAX_YAML_NODES = 100_000  # counted with aliases expanded, so "billion laughs" documents are refused
MAX_YAML_DEPTH = 32  # a storyboard is 4 levels deep; PyYAML's composer recurses per level
MAX_PROMPTS = 1000
MAX_PROMPT_CHARS = 10_000  # UMT5 sees at most 512 tokens; 10k characters is far past that already
#: Nodes as written (an alias counts once), checked while composing. PyYAML's pure-Python parser costs
#: ~35 us per node, so the 100k expanded limit alone let a flat 1 MiB list or mapping run ~4 s before
#: failing. The largest valid storyboard has 1000 prompts x 7 nodes (the mapping, at/text keys and
#: values, a merge key and its alias) plus a dozen top-level nodes, ~7k; 10k leaves headroom and fails
#: a hostile file in ~0.4 s.
MAX_YAML_WRITTEN_NODES = 10_000
#: Line breaks, counted (in C) before parsing: the scanner spends ~1.4 us per line even on blank or
#: comment lines, which no node limit sees. 100 lines per prompt on average is far more than any
#: storyboard of at most 1000 prompts needs.
MAX_YAML_LINES = 100_000
_MAX_SCALAR_CHARS = 64  # numbers, times and resolutions; longer ones are junk (and 1:0:0:... is slow)
ROPE_MAX_LATENT_FRAMES = 1024
VAE_TEMPORAL_STRIDE = 4  # latent frame k > 0 -> 4 video frames
MIN_SIZE, MAX_SIZE, SIZE_MULTIPLE = 16, 4096, 16

_TOP_KEYS = ("seed", "resolution", "fps", "duration", "prompts")
_PROMPT_KEYS = ("at", "text")
_YAML_TAG_PREFIX = "tag:yaml.org,2002:"
_INT_TAG = "tag:yaml.org,2002:int"
_MERGE_TAG = "tag:yaml.org,2002:merge"
_MAP_TAG = "tag:yaml.org,2002:map"
_SEQ_TAG = "tag:yaml.org,2002:seq"
_UNSAFE_TAG_HINT = (
    "storyboards are plain YAML (yaml.safe_load): application tags such as !!python/... are refused, "
    "never run"
)


# --------------------------------------------------------------------------- errors


class StoryboardError(ValueError):
    """A storyboard the tool cannot use. ``str(err)`` is the full human message.

    Attributes: ``message`` (what is wrong and what to do), ``path`` (file, or None), ``line`` and
    ``column`` (1-based, or None), ``field`` (e.g. ``"prompts[1].at"``, or None).

    ``str(err)`` looks like ``story.yaml:7:5: prompts[1].at: 12s is not before ...``: the location
    prefix holds whatever parts are known (``line 7, column 5: `` when there is no path).
    """

    def __init__(
        self,
        message: str,
        *,
        path: str | None = None,
        line: int | None = None,
        column: int | None = None,
        field: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.path = path
        self.line = line
        self.column = column
        self.field = field

    def __str__(self) -> str:
        prefix = ""
        if self.path is not None:
            parts = [self.path]
            if self.line is not None:
                parts.append(str(self.line))
                if self.column is not None:
                    parts.append(str(self.column))
            prefix = ":".join(parts) + ": "
        elif self.line is not None:
            prefix = (
                f"line {self.line}" + (f", column {self.column}" if self.column is not None else "") + ": "
            )
        if self.field:
            prefix += f"{self.field}: "
        return prefix + self.message

    def _locate(
        self, *, path: str | None = None, line: int | None = None, column: int | None = None
    ) -> StoryboardError:
        # Fill in only what the raiser did not know; the innermost raiser knows best.
        if self.path is None:
            self.path = path
        if self.line is None and line is not None:
            self.line, self.column = line, column
        return self


# --------------------------------------------------------------------------- small helpers


def _fmt_s(seconds: float) -> str:
    """Seconds for messages: ``12s``, ``12.5s``, ``10.3125s`` (no float noise)."""
    try:
        value = float(seconds)
    except OverflowError:  # an int beyond float range (hand-built storyboards, command-line values)
        return f"{_show_int(int(seconds))} seconds"
    if not math.isfinite(value) or abs(value) >= 1e15:
        return f"{value:.6g}s"
    text = f"{value:.6f}".rstrip("0").rstrip(".")
    return f"{text}s"


def _clip(text: str, limit: int = 60) -> str:
    """``repr(text)`` for messages, cut short (with the full length) when ``text`` is long."""
    if len(text) <= limit:
        return repr(text)
    return f"{text[: limit - 20]!r}... ({len(text)} characters)"


def _short_name(name: str, limit: int = 60) -> str:
    """A key as a field name in messages, cut short when long."""
    return name if len(name) <= limit else f"{name[: limit - 20]}..."


def _show_int(value: int) -> str:
    # str() of an int over 4300 digits raises ValueError (CPython's int_max_str_digits guard).
    if value.bit_length() <= 128:
        return str(value)
    digits = int(value.bit_length() * math.log10(2)) + 1
    return f"{'-' if value < 0 else ''}a number of about {digits} digits"


def _describe(value: Any) -> str:
    if value is None:
        return "empty (null)"
    if isinstance(value, bool):
        return f"{str(value).lower()} (a boolean)"
    if isinstance(value, str):
        return _clip(value)
    if isinstance(value, int):
        return _show_int(value)
    if isinstance(value, float):
        return str(value)
    if isinstance(value, (list, tuple)):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    return f"a {type(value).__name__}"


def _round_half_up(x: Fraction) -> int:
    # Exact arithmetic so that x.5 boundaries are not decided by float noise; Python's round() would
    # round half to even, the plan rounds half up (documented in make_plan).
    return math.floor(x + Fraction(1, 2))


# --------------------------------------------------------------------------- times

_NUM = r"(?:\d+(?:\.\d*)?|\.\d+)"
_UNIT_RE = re.compile(
    rf"(?:(?P<h>{_NUM})\s*h)?\s*(?:(?P<m>{_NUM})\s*m)?\s*(?:(?P<s>{_NUM})\s*s?)?",
    re.IGNORECASE,
)
_CLOCK_RE = re.compile(r"(?:(?P<h>\d+):(?P<m>\d{1,2})|(?P<m2>\d+)):(?P<s>\d{1,2}(?:\.\d*)?)")
_TIME_HELP = "Write seconds (12, 12.5, 12s), minutes and seconds (1:30, 1m30s, 2m) or hours (1h, 1:02:03)."


def parse_time(value: Any, *, field: str) -> float:
    """Parse a storyboard time and return it in seconds (float, finite, >= 0).

    Accepted: an int or float (seconds), or a string: ``"12"``, ``"12.5"``, ``"12s"``, ``"90 s"``,
    ``"1m30s"``, ``"2m"``, ``"1h"``, ``"1h2m3.5s"`` (units h/m/s, case-insensitive, optional spaces),
    ``"1:30"`` (m:ss) and ``"1:02:03"`` (h:mm:ss), with optional fractional seconds (``"0:05.5"``).
    In the clock forms the seconds (and, with hours, the minutes) must be below 60.

    Raises:
        StoryboardError: (with ``field`` set, no location) for a bool, a non-number/non-string, bad
            syntax, a negative value, NaN or infinity.
    """
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise StoryboardError(f"{_describe(value)} is not a time. {_TIME_HELP}", field=field)
    if isinstance(value, str):
        seconds = _parse_time_string(value, field=field)
    else:
        try:
            seconds = float(value)
        except OverflowError:
            seconds = math.inf
    if math.isnan(seconds) or math.isinf(seconds):
        raise StoryboardError(f"{_describe(value)} is not a finite time. {_TIME_HELP}", field=field)
    if seconds < 0:
        raise StoryboardError(f"{_describe(value)} is negative; times count from 0.", field=field)
    return seconds


def _parse_time_string(raw: str, *, field: str) -> float:
    text = raw.strip()
    if not text:
        raise StoryboardError(f"empty time. {_TIME_HELP}", field=field)
    if len(text) > _MAX_SCALAR_CHARS:
        # Also keeps the regular expressions below (whose optional parts backtrack) on short input.
        raise StoryboardError(f"{_clip(raw)} is not a time: far too long. {_TIME_HELP}", field=field)
    if text.startswith("-"):
        raise StoryboardError(f"{_clip(raw)} is negative; times count from 0.", field=field)
    # Decimal keeps "0.1h" == 360 exactly instead of 360.00000000000006.
    clock = _CLOCK_RE.fullmatch(text)
    if clock:
        hours = Decimal(clock["h"] or 0)
        minutes = Decimal(clock["m"] if clock["m"] is not None else clock["m2"])
        secs = Decimal(clock["s"])
        if secs >= 60:
            raise StoryboardError(
                f"{_clip(raw)}: the seconds field ({clock['s']}) must be below 60. {_TIME_HELP}", field=field
            )
        if clock["h"] is not None and minutes >= 60:
            raise StoryboardError(
                f"{_clip(raw)}: the minutes field ({clock['m']}) must be below 60. {_TIME_HELP}", field=field
            )
        return float(hours * 3600 + minutes * 60 + secs)
    units = _UNIT_RE.fullmatch(text)
    if units and any(units.group(g) is not None for g in ("h", "m", "s")):
        try:
            total = sum(
                (
                    Decimal(units.group(g)) * mult
                    for g, mult in (("h", 3600), ("m", 60), ("s", 1))
                    if units.group(g)
                ),
                Decimal(0),
            )
        except InvalidOperation:  # pragma: no cover - the regex only lets decimal numbers through
            raise StoryboardError(f"{_clip(raw)} is not a time. {_TIME_HELP}", field=field) from None
        return float(total)
    raise StoryboardError(f"{_clip(raw)} is not a time. {_TIME_HELP}", field=field)


# --------------------------------------------------------------------------- resolution / seed / fps

_RES_RE = re.compile(r"\s*(\d+)\s*[x×]\s*(\d+)\s*", re.IGNORECASE)


def parse_resolution(value: Any, *, field: str = "resolution") -> tuple[int, int]:
    """Parse ``"WxH"`` (also ``"832X480"``, spaces allowed) into ``(width, height)`` in pixels.

    Both must be multiples of 16 (the VAE downsamples by 8, the transformer patches 2x2 latents) and
    between 16 and 4096.

    Raises:
        StoryboardError: (with ``field`` set) for a non-string, bad syntax or an out-of-range size.
    """
    if not isinstance(value, str):
        raise StoryboardError(
            f"{_describe(value)} is not a resolution; write it as WIDTHxHEIGHT, e.g. 832x480.", field=field
        )
    match = _RES_RE.fullmatch(value) if len(value) <= _MAX_SCALAR_CHARS else None
    if not match:
        raise StoryboardError(
            f"{_clip(value)} is not a resolution; write it as WIDTHxHEIGHT, e.g. 832x480.", field=field
        )
    width, height = int(match[1]), int(match[2])
    _check_resolution(width, height, field=field)
    return width, height


def _check_resolution(width: Any, height: Any, *, field: str = "resolution", origin: str = "") -> None:
    for name, size in (("width", width), ("height", height)):
        if isinstance(size, bool) or not isinstance(size, int):
            raise StoryboardError(
                f"{name} {_describe(size)} is not an integer number of pixels{origin}.", field=field
            )
        if not MIN_SIZE <= size <= MAX_SIZE:
            raise StoryboardError(
                f"{name} {_show_int(size)} is out of range{origin}; use {MIN_SIZE} to {MAX_SIZE} pixels "
                f"(the model is trained at {DEFAULT_WIDTH}x{DEFAULT_HEIGHT}).",
                field=field,
            )
        if size % SIZE_MULTIPLE:
            nearest = max(MIN_SIZE, SIZE_MULTIPLE * round(size / SIZE_MULTIPLE))
            raise StoryboardError(
                f"{name} {size} is not a multiple of {SIZE_MULTIPLE}{origin} (the VAE downsamples by 8 and "
                f"the transformer patches 2x2 latents); try {nearest}.",
                field=field,
            )


def _check_seed(seed: Any, *, origin: str = "") -> None:
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise StoryboardError(
            f"{_describe(seed)} is not a seed{origin}; use a whole number from 0 to 2**63 - 1.", field="seed"
        )
    if not 0 <= seed < 2**63:
        raise StoryboardError(
            f"{_show_int(seed)} is out of range{origin}; use a whole number from 0 to 2**63 - 1.",
            field="seed",
        )


def _check_fps(fps: Any) -> None:
    if isinstance(fps, bool) or not isinstance(fps, int) or fps != DEFAULT_FPS:
        raise StoryboardError(
            f"{_describe(fps)} is not supported: LongLive/Wan2.1 generate at {DEFAULT_FPS} fps, so fps "
            f"must be {DEFAULT_FPS} (or left out). Re-time the video afterwards for another frame rate.",
            field="fps",
        )


# --------------------------------------------------------------------------- data


@dataclass(frozen=True)
class PromptSpec:
    """One storyboard prompt: starts at ``at_s`` seconds of video with ``text`` (stripped).

    ``line``/``column`` (1-based) locate the prompt entry in the YAML file, or are None when the
    storyboard did not come from YAML. ``column`` is not part of equality.
    """

    at_s: float
    text: str
    line: int | None
    column: int | None = field(default=None, compare=False)


@dataclass(frozen=True)
class Storyboard:
    """A parsed, validated storyboard.

    ``duration_s``: requested video length in seconds. ``prompts``: in time order, the first at 0 s.
    ``seed``: None means "pick one at random". ``width``/``height``: pixels, None when the file gives no
    resolution (the model's native one is used). ``fps``: video frames per
    second (always 16). ``path``: the file it came from, used to locate errors, or None.
    """

    path: str | None
    duration_s: float
    prompts: tuple[PromptSpec, ...]
    seed: int | None = None
    width: int | None = None
    height: int | None = None
    fps: int = DEFAULT_FPS


@dataclass(frozen=True)
class Segment:
    """The stretch of video generated under one prompt.

    ``requested_s``: the storyboard's ``at`` (seconds). ``latent_index``: ``round(at * fps / 4)``
    rounded half up (latent frames). ``start_block``: first block whose first latent frame is
    ``>= latent_index``; ``start_latent_frame = start_block * frames_per_block``.
    ``start_video_frame``: first video frame under this prompt (0 for latent frame 0, else
    ``4 * start_latent_frame - 3``); ``effective_s = start_video_frame / fps`` (seconds).
    ``end_block``: exclusive. ``num_video_frames``: video frames generated under this prompt.
    """

    index: int
    text: str
    requested_s: float
    latent_index: int
    start_block: int
    start_latent_frame: int
    start_video_frame: int
    effective_s: float
    end_block: int
    num_video_frames: int


@dataclass(frozen=True)
class Plan:
    """What will be generated: sizes in pixels, counts in latent frames, video frames and blocks.

    ``duration_s`` is the requested duration (seconds); the video itself lasts
    :attr:`video_duration_s` = ``num_video_frames / fps``.
    """

    width: int
    height: int
    fps: int
    seed: int | None
    duration_s: float
    frames_per_block: int
    num_latent_frames: int
    num_blocks: int
    num_video_frames: int
    segments: tuple[Segment, ...]

    @property
    def video_duration_s(self) -> float:
        """Length of the generated video in seconds (``num_video_frames / fps``)."""
        return self.num_video_frames / self.fps

    def segment_for_block(self, block: int) -> int:
        """Index of the segment whose prompt is active while generating ``block`` (0-based).

        Raises:
            IndexError: if ``block`` is not in ``range(num_blocks)``.
        """
        if not 0 <= block < self.num_blocks:
            raise IndexError(f"block {block} is outside the plan's {self.num_blocks} blocks")
        starts = [seg.start_block for seg in self.segments]
        return bisect.bisect_right(starts, block) - 1

    def switch_blocks(self) -> tuple[int, ...]:
        """Block indices where the prompt changes and the KV cache is re-cached (segments 1+ start_block)."""
        return tuple(seg.start_block for seg in self.segments[1:])


# --------------------------------------------------------------------------- YAML loading


class _TooManyNodes(Exception):
    def __init__(self, mark: Any) -> None:
        super().__init__()
        self.mark = mark


class _TooDeep(_TooManyNodes):
    pass


class _TooManyItems(_TooManyNodes):
    def __init__(self, mark: Any, *, prompts: bool) -> None:
        super().__init__(mark)
        self.prompts = prompts


class _BadScalar(Exception):
    """A scalar that PyYAML resolves to a number/date/bool but cannot (or should not) construct."""

    def __init__(self, message: str, node: Node) -> None:
        super().__init__(message)
        self.message = message
        self.node = node


def _checked_constructor(kind: str, construct: Any) -> Any:
    """Wrap a SafeConstructor method: bound the scalar's length, turn its crashes into _BadScalar.

    PyYAML's own constructors raise ValueError (``2001-13-45``, a 5000-digit int: CPython refuses to
    convert it), KeyError (``!!bool x``), IndexError (``!!int ''``), AttributeError (``!!timestamp x``)
    or OverflowError (a long sexagesimal float), and take quadratic time on ``1:0:0:0:...`` ints.
    """

    def checked(loader: yaml.SafeLoader, node: Node) -> Any:
        if isinstance(node, ScalarNode) and len(node.value) > _MAX_SCALAR_CHARS:
            raise _BadScalar(
                f"{_clip(node.value)} is far too long for {kind}; no storyboard value needs more than "
                f"{_MAX_SCALAR_CHARS} characters.",
                node,
            )
        try:
            return construct(loader, node)
        except yaml.YAMLError:
            raise
        except (ValueError, TypeError, LookupError, AttributeError, ArithmeticError) as exc:
            detail = f" ({exc})" if isinstance(exc, ValueError) and len(str(exc)) < 100 else ""
            shown = _clip(node.value) if isinstance(node, ScalarNode) else "this value"
            raise _BadScalar(f"{shown} is not {kind}{detail}.", node) from None

    return checked


class _Loader(yaml.SafeLoader):
    """SafeLoader that stops composing once the document has too many nodes, a list has more items than
    any storyboard list needs, or the nesting is too deep; its number, boolean and date constructors
    raise :class:`_BadScalar` instead of crashing."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._composed = 0
        self._depth = 0
        self._prompts_list: list[bool] = []  # per compose_node level: is it composing 'prompts'?

    def compose_node(self, parent: Node | None, index: Any) -> Node:
        # Stop early on huge flat documents instead of building hundreds of thousands of nodes, and on
        # deep nesting before PyYAML's recursive composer (and quadratic scanner) get slow or overflow.
        # An alias counts once here; _check_expanded_size counts what it stands for.
        self._composed += 1
        if self._composed > min(MAX_YAML_NODES, MAX_YAML_WRITTEN_NODES):
            raise _TooManyNodes(self.peek_event().start_mark)
        if self._depth >= MAX_YAML_DEPTH:
            raise _TooDeep(self.peek_event().start_mark)
        event = self.peek_event()
        tag = getattr(event, "tag", None)  # explicit tags only; aliases have none
        if tag not in (None, "!", _MERGE_TAG) and tag not in self.yaml_constructors:
            # Refuse !!python/... and application tags where they are written, whatever node they are
            # on: collections and keys are read node by node and never constructed, so the
            # constructor's own refusal would not see them.
            raise ConstructorError(
                None, None, f"the tag {_show_tag(tag)} is not allowed; {_UNSAFE_TAG_HINT}", event.start_mark
            )
        if isinstance(parent, SequenceNode) and isinstance(index, int) and index >= MAX_PROMPTS:
            # No storyboard list is longer than the prompts list; say so at once rather than parse on.
            raise _TooManyItems(parent.start_mark, prompts=self._prompts_list[-1])
        is_prompts = (
            self._depth == 1
            and isinstance(parent, MappingNode)
            and isinstance(index, ScalarNode)
            and index.value == "prompts"
        )
        self._depth += 1
        self._prompts_list.append(is_prompts)
        try:
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1
            self._prompts_list.pop()


for _tag, _kind in (
    ("int", "an integer"),
    ("float", "a number"),
    ("bool", "a boolean"),
    ("timestamp", "a date"),
):
    _full_tag = f"tag:yaml.org,2002:{_tag}"
    _Loader.add_constructor(
        _full_tag, _checked_constructor(_kind, yaml.SafeLoader.yaml_constructors[_full_tag])
    )


def _show_tag(tag: str) -> str:
    return _clip("!!" + tag[len(_YAML_TAG_PREFIX) :] if tag.startswith(_YAML_TAG_PREFIX) else tag)


def _too_big_message() -> str:
    return (
        f"the YAML document has more than {MAX_YAML_NODES} nodes (aliases expanded); a storyboard needs "
        "far fewer. Check for runaway anchors/aliases."
    )


def _too_many_written_message() -> str:
    limit = min(MAX_YAML_NODES, MAX_YAML_WRITTEN_NODES)
    return (
        f"the YAML document has more than {limit} nodes; a storyboard (at most {MAX_PROMPTS} prompts with "
        "'at' and 'text') needs far fewer. Is this the right file?"
    )


def _check_expanded_size(root: Node, *, path: str | None) -> None:
    """Count nodes and depth with aliases expanded (iteratively, memoised); reject cycles, huge
    expansions and alias chains nested deeper than MAX_YAML_DEPTH (PyYAML constructs recursively)."""
    limit = MAX_YAML_NODES
    sizes: dict[int, int] = {}
    depths: dict[int, int] = {}
    active: set[int] = set()  # nodes on the current DFS path: meeting one again is a recursive alias

    def children(node: Node) -> list[Node]:
        if isinstance(node, SequenceNode):
            return list(node.value)
        if isinstance(node, MappingNode):
            return [n for pair in node.value for n in pair]
        return []

    stack: list[tuple[Node, bool]] = [(root, False)]
    while stack:
        node, done = stack.pop()
        key = id(node)
        if done:
            active.discard(key)
            kids = children(node)
            # Capped so that a billion-laughs count stays a small int.
            sizes[key] = min(limit + 1, 1 + sum(sizes[id(c)] for c in kids))
            if sizes[key] > limit:
                mark = root.start_mark
                raise StoryboardError(
                    _too_big_message(), path=path, line=mark.line + 1, column=mark.column + 1
                )
            depths[key] = 1 + max((depths[id(c)] for c in kids), default=0)
            if depths[key] > MAX_YAML_DEPTH:
                mark = node.start_mark
                raise StoryboardError(
                    f"the YAML is nested more than {MAX_YAML_DEPTH} levels deep once its aliases are "
                    "expanded; a storyboard needs four. Check for chains of anchors/aliases.",
                    path=path,
                    line=mark.line + 1,
                    column=mark.column + 1,
                )
            continue
        if key in sizes:
            continue
        active.add(key)
        stack.append((node, True))
        for child in children(node):
            if id(child) in active:
                mark = child.start_mark
                raise StoryboardError(
                    "recursive alias: a node contains itself, which no storyboard field can use.",
                    path=path,
                    line=mark.line + 1,
                    column=mark.column + 1,
                )
            if id(child) not in sizes:
                stack.append((child, False))


def _yaml_error(exc: yaml.YAMLError, text: str, path: str | None) -> StoryboardError:
    if isinstance(exc, yaml.MarkedYAMLError):
        mark = exc.problem_mark or exc.context_mark
        problem = exc.problem or exc.context or "malformed YAML"
        message = f"invalid YAML: {problem}"
        if exc.context and exc.problem and exc.context_mark is not None:
            message += f" ({exc.context} at line {exc.context_mark.line + 1})"
        if "'\\t'" in problem:
            message += ". Indent with spaces; YAML does not allow tabs for indentation"
        message += "."
        if mark is None:
            return StoryboardError(message, path=path)
        return StoryboardError(message, path=path, line=mark.line + 1, column=mark.column + 1)
    if isinstance(exc, yaml.reader.ReaderError):
        pos = exc.position
        line = text.count("\n", 0, pos) + 1
        column = pos - (text.rfind("\n", 0, pos) + 1) + 1
        return StoryboardError(
            f"invalid YAML: {exc.reason} (found U+{exc.character:04X}); remove it.",  # type: ignore[str-format]
            path=path,
            line=line,
            column=column,
        )
    return StoryboardError(f"invalid YAML: {exc}", path=path)


class _Walker:
    """Turns the composed node tree into a Storyboard, keeping node locations for errors."""

    def __init__(self, loader: _Loader, path: str | None) -> None:
        self.loader = loader
        self.path = path
        self._checked_mappings: set[int] = set()

    def error(self, message: str, node: Node | None, field: str | None) -> StoryboardError:
        if node is None:
            return StoryboardError(message, path=self.path, field=field)
        mark = node.start_mark
        return StoryboardError(
            message, path=self.path, line=mark.line + 1, column=mark.column + 1, field=field
        )

    def value(self, node: Node, field: str) -> Any:
        # Sizes, depth and cycles were checked already, so constructing a value is bounded.
        try:
            return self.loader.construct_object(node, deep=True)
        except _BadScalar as exc:
            raise self.error(exc.message, exc.node, field) from None

    def number_or_text(self, node: Node, field: str) -> Any:
        # YAML 1.1 reads "010" as octal 8; a storyboard author means ten.
        if (
            isinstance(node, ScalarNode)
            and node.tag == _INT_TAG
            and len(node.value) <= _MAX_SCALAR_CHARS
            and re.fullmatch(r"0\d+", node.value)
        ):
            return int(node.value, 10)
        return self.value(node, field)

    def mapping(
        self, node: Node, field: str | None, allowed: tuple[str, ...]
    ) -> dict[str, tuple[Node, Node]]:
        where = field or "the storyboard"
        if not isinstance(node, MappingNode):
            raise self.error(
                f"{where} must be a mapping with the keys {', '.join(allowed)}; got {self._kind(node)}.",
                node,
                field,
            )
        self.plain_tag(node, _MAP_TAG, field)
        if id(node) not in self._checked_mappings:
            # Duplicates among the mapping's own keys; keys brought in by a merge (<<) may be overridden.
            seen: dict[str, Node] = {}
            for key_node, _ in node.value:
                if key_node.tag == _MERGE_TAG:
                    continue
                name = self.key_name(key_node, field)
                if name in seen:
                    first = seen[name].start_mark
                    raise self.error(
                        f"duplicate key {_clip(name)} (first given at line {first.line + 1}, column "
                        f"{first.column + 1}); keep one of them.",
                        key_node,
                        self.join(field, _short_name(name)),
                    )
                seen[name] = key_node
            self.loader.flatten_mapping(node)
            self._checked_mappings.add(id(node))
        result: dict[str, tuple[Node, Node]] = {}
        for key_node, value_node in node.value:
            name = self.key_name(key_node, field)
            if name not in allowed:
                close = difflib.get_close_matches(name, allowed, n=1)
                hint = f" Did you mean {close[0]!r}?" if close else ""
                raise self.error(
                    f"unknown key {_clip(name)}; allowed keys: {', '.join(allowed)}.{hint}",
                    key_node,
                    field or _short_name(name),
                )
            result[name] = (key_node, value_node)
        return result

    def key_name(self, node: Node, field: str | None) -> str:
        if not isinstance(node, ScalarNode):
            raise self.error(f"keys must be plain names, not {self._kind(node)}.", node, field)
        return str(node.value)

    def plain_tag(self, node: Node, expected: str, field: str | None) -> None:
        # Lists and mappings are read node by node, never constructed, so a tag on one would otherwise
        # be silently ignored; refuse it like a tag on a value.
        if node.tag != expected:
            kind = "list" if expected == _SEQ_TAG else "mapping"
            raise self.error(
                f"the tag {_show_tag(node.tag)} is not allowed here; write a plain YAML {kind}.", node, field
            )

    @staticmethod
    def join(field: str | None, name: str) -> str:
        return f"{field}.{name}" if field else name

    @staticmethod
    def _kind(node: Node) -> str:
        if isinstance(node, MappingNode):
            return "a mapping"
        if isinstance(node, SequenceNode):
            return "a list"
        return f"the value {_clip(node.value)}" if node.value != "" else "an empty value"

    def located(self, exc: StoryboardError, node: Node) -> StoryboardError:
        mark = node.start_mark
        return exc._locate(path=self.path, line=mark.line + 1, column=mark.column + 1)

    def storyboard(self, root: Node) -> Storyboard:
        top = self.mapping(root, None, _TOP_KEYS)
        kwargs: dict[str, Any] = {}

        def given(name: str) -> Node | None:
            # A present-but-null optional key means "use the default".
            if name not in top:
                return None
            node = top[name][1]
            if isinstance(node, ScalarNode) and node.tag == "tag:yaml.org,2002:null":
                return None
            return node

        if (node := given("seed")) is not None:
            seed = self.number_or_text(node, "seed")
            try:
                _check_seed(seed)
            except StoryboardError as exc:
                raise self.located(exc, node) from None
            kwargs["seed"] = seed
        if (node := given("resolution")) is not None:
            try:
                kwargs["width"], kwargs["height"] = parse_resolution(self.value(node, "resolution"))
            except StoryboardError as exc:
                raise self.located(exc, node) from None
        if (node := given("fps")) is not None:
            fps = self.value(node, "fps")
            try:
                _check_fps(fps)
            except StoryboardError as exc:
                raise self.located(exc, node) from None
            kwargs["fps"] = fps
        fps = kwargs.get("fps", DEFAULT_FPS)

        if "duration" not in top:
            raise StoryboardError(
                "missing; say how long the video is, e.g. 'duration: 60s'.", path=self.path, field="duration"
            )
        node = top["duration"][1]
        try:
            duration_s = parse_time(self.number_or_text(node, "duration"), field="duration")
            _check_duration(duration_s, fps=fps, frames_per_block=3)
        except StoryboardError as exc:
            raise self.located(exc, node) from None

        if "prompts" not in top:
            raise StoryboardError(
                "missing; add a list of prompts, e.g. 'prompts: [{at: 0s, text: \"...\"}]'.",
                path=self.path,
                field="prompts",
            )
        prompts = self.prompts(top["prompts"][1])
        return Storyboard(path=self.path, duration_s=duration_s, prompts=prompts, **kwargs)

    def prompts(self, node: Node) -> tuple[PromptSpec, ...]:
        if not isinstance(node, SequenceNode):
            raise self.error(
                f"must be a list of entries with 'at' and 'text'; got {self._kind(node)}.", node, "prompts"
            )
        self.plain_tag(node, _SEQ_TAG, "prompts")
        if not node.value:
            raise self.error("needs at least one prompt, starting at 0s.", node, "prompts")
        if len(node.value) > MAX_PROMPTS:
            raise self.error(
                f"{len(node.value)} prompts is more than the limit of {MAX_PROMPTS}; "
                "split the story into several videos.",
                node,
                "prompts",
            )
        specs = []
        for i, item in enumerate(node.value):
            field_name = f"prompts[{i}]"
            entry = self.mapping(item, field_name, _PROMPT_KEYS)
            for required in _PROMPT_KEYS:
                if required not in entry:
                    raise self.error(
                        f"missing key {required!r}; each prompt needs 'at' and 'text'.", item, field_name
                    )
            at_node = entry["at"][1]
            try:
                at_s = parse_time(self.number_or_text(at_node, f"{field_name}.at"), field=f"{field_name}.at")
            except StoryboardError as exc:
                raise self.located(exc, at_node) from None
            text_node = entry["text"][1]
            try:
                text = _check_text(self.value(text_node, f"{field_name}.text"), field=f"{field_name}.text")
            except StoryboardError as exc:
                raise self.located(exc, text_node) from None
            mark = item.start_mark
            specs.append(PromptSpec(at_s=at_s, text=text, line=mark.line + 1, column=mark.column + 1))
        return tuple(specs)


def _check_text(value: Any, *, field: str) -> str:
    """Return the stripped prompt text or raise StoryboardError."""
    if not isinstance(value, str):
        raise StoryboardError(
            f"{_describe(value)} is not a prompt; the text must be a string (put it in quotes).", field=field
        )
    text = value.strip()
    if not text:
        raise StoryboardError("the prompt text is empty; describe what should be on screen.", field=field)
    if len(text) > MAX_PROMPT_CHARS:
        raise StoryboardError(
            f"the prompt is {len(text)} characters, more than the limit of {MAX_PROMPT_CHARS}; the text "
            "encoder (UMT5) reads at most 512 tokens, so shorten it.",
            field=field,
        )
    return text


def _count_line_breaks(text: str) -> int:
    # YAML line breaks: LF, CR, CRLF (one break), NEL, LS, PS. str.count runs in C: ~1 ms per MiB.
    breaks = text.count("\n") + text.count("\r") - text.count("\r\n")
    return breaks + text.count("\x85") + text.count("\u2028") + text.count("\u2029")


def parse_storyboard(text: str | bytes, *, path: str | None = None) -> Storyboard:
    """Parse and validate storyboard YAML ``text``; ``path`` is only used to locate errors.

    ``text`` may also be the file's bytes (UTF-8, optional BOM). Only ``yaml.safe_load`` features are
    understood: a ``!!python/...`` or other application tag is an error, never executed.
    Validates everything :func:`make_plan` would with the file's own values, so a storyboard that
    parses also plans.

    Resource limits, all checked before the work they bound: 1 MiB of text, 100 000 lines (counted
    before parsing), 10 000 YAML nodes as written, 1000 items in any list and 32 levels of nesting
    (checked while composing, so a hostile file fails within a fraction of a second), 100 000 nodes and
    32 levels with aliases expanded ("billion laughs"), 64 characters for a number, time or resolution.

    Raises:
        StoryboardError: for text over a limit above, invalid YAML or UTF-8, recursive aliases, and any
            storyboard rule broken (see the module docs). Never another exception for any input text.
    """
    if isinstance(text, (bytes, bytearray)):
        text = _decode(bytes(text), path)
    if len(text) > MAX_FILE_BYTES or len(text.encode("utf-8", "surrogatepass")) > MAX_FILE_BYTES:
        raise StoryboardError(
            f"the storyboard is larger than {MAX_FILE_BYTES // 1024} KiB; a storyboard needs far less.",
            path=path,
        )
    if text.startswith("\ufeff"):
        text = text[1:]
    lines = _count_line_breaks(text)
    if lines > MAX_YAML_LINES:
        raise StoryboardError(
            f"the storyboard has {lines} lines, more than the limit of {MAX_YAML_LINES}; a storyboard of "
            f"at most {MAX_PROMPTS} prompts needs far fewer. Is this the right file?",
            path=path,
        )
    try:
        loader = _Loader(text)  # the reader rejects control characters here
    except yaml.YAMLError as exc:
        raise _yaml_error(exc, text, path) from None
    try:
        try:
            root = loader.get_single_node()
        except _TooDeep as exc:
            raise StoryboardError(
                f"the YAML is nested more than {MAX_YAML_DEPTH} levels deep; a storyboard needs four.",
                path=path,
                line=exc.mark.line + 1,
                column=exc.mark.column + 1,
            ) from None
        except _TooManyItems as exc:
            if exc.prompts:
                message, field_name = (
                    f"more than {MAX_PROMPTS} prompts, the limit; split the story into several videos.",
                    "prompts",
                )
            else:
                message, field_name = (
                    f"a list of more than {MAX_PROMPTS} items; no storyboard list needs that many (the "
                    f"longest, 'prompts', holds at most {MAX_PROMPTS}).",
                    None,
                )
            mark = exc.mark
            raise StoryboardError(
                message, path=path, line=mark.line + 1, column=mark.column + 1, field=field_name
            ) from None
        except _TooManyNodes as exc:
            raise StoryboardError(
                _too_many_written_message(), path=path, line=exc.mark.line + 1, column=exc.mark.column + 1
            ) from None
        except RecursionError:  # pragma: no cover - the depth limit fires first
            raise StoryboardError("the YAML is nested too deeply.", path=path) from None
        except yaml.YAMLError as exc:
            raise _yaml_error(exc, text, path) from None
        if root is None:
            raise StoryboardError(
                "the storyboard is empty; it needs at least 'duration' and 'prompts'.", path=path, line=None
            )
        _check_expanded_size(root, path=path)
        try:
            sb = _Walker(loader, path).storyboard(root)
        except yaml.YAMLError as exc:  # constructor errors (bad tags, bad merges)
            raise _yaml_error(exc, text, path) from None
        except _BadScalar as exc:  # pragma: no cover - _Walker.value turns these into StoryboardError
            mark = exc.node.start_mark
            raise StoryboardError(
                exc.message, path=path, line=mark.line + 1, column=mark.column + 1
            ) from None
    finally:
        loader.dispose()
    make_plan(sb)  # cross-field rules (times vs duration, block collisions); errors carry prompt lines
    return sb


def load_storyboard(path: str | Path) -> Storyboard:
    """Read a storyboard file (UTF-8, optional BOM, at most 1 MiB) and validate it.

    Raises:
        StoryboardError: if the file cannot be read, is over 1 MiB (checked before parsing), is not
            UTF-8, or breaks any rule of :func:`parse_storyboard`; the message names path:line:col.
    """
    shown = str(path)
    try:
        with open(path, "rb") as f:
            # Read one byte past the limit: stat sizes lie for pipes and special files.
            data = f.read(MAX_FILE_BYTES + 1)
    except FileNotFoundError:
        raise StoryboardError("file not found.", path=shown) from None
    except IsADirectoryError:
        raise StoryboardError("is a directory, not a storyboard file.", path=shown) from None
    except OSError as exc:
        raise StoryboardError(f"cannot read the file: {exc.strerror or exc}.", path=shown) from None
    except ValueError:  # e.g. a NUL character in the path
        raise StoryboardError("is not a usable file name.", path=repr(shown)) from None
    if len(data) > MAX_FILE_BYTES:
        raise StoryboardError(
            f"the file is larger than {MAX_FILE_BYTES // 1024} KiB; a storyboard needs far less.", path=shown
        )
    return parse_storyboard(_decode(data, shown), path=shown)


_UTF16_32_BOMS = (b"\xff\xfe", b"\xfe\xff", b"\x00\x00\xfe\xff")


def _decode(data: bytes, path: str | None) -> str:
    """UTF-8 (optional BOM) bytes -> str, or StoryboardError at the first bad byte's line:column."""
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        column = exc.start - (data.rfind(b"\n", 0, exc.start) + 1) + 1
        hint = "; it looks like UTF-16 or UTF-32" if data.startswith(_UTF16_32_BOMS) else ""
        raise StoryboardError(
            f"the file is not valid UTF-8 (byte 0x{data[exc.start]:02x}){hint}; save it as UTF-8.",
            path=path,
            line=line,
            column=column,
        ) from None


# --------------------------------------------------------------------------- plan


def _check_duration(duration_s: Any, *, fps: int, frames_per_block: int, origin: str = "") -> int:
    """Validate a duration in seconds and return the number of latent frames L."""
    if (
        isinstance(duration_s, bool)
        or not isinstance(duration_s, (int, float))
        or (isinstance(duration_s, float) and not math.isfinite(duration_s))
    ):
        raise StoryboardError(
            f"{_describe(duration_s)} is not a duration in seconds{origin}.", field="duration"
        )
    if duration_s <= 0:
        raise StoryboardError(
            f"{_fmt_s(duration_s)} is not a length{origin}; the duration must be greater than 0.",
            field="duration",
        )
    if duration_s > MAX_DURATION_S:
        raise StoryboardError(
            f"{_fmt_s(duration_s)} is longer than the maximum of {_fmt_s(MAX_DURATION_S)}{origin}. The "
            f"model's positional table covers {ROPE_MAX_LATENT_FRAMES} latent frames (about 255 s) and "
            f"LongLive was trained and evaluated for up to {MAX_DURATION_S:g} s. "
            "Split the story into several videos.",
            field="duration",
        )
    block_video_frames = VAE_TEMPORAL_STRIDE * frames_per_block
    blocks = _round_half_up(Fraction(duration_s) * fps / block_video_frames)
    if blocks < 1:
        minimum = Fraction(block_video_frames, 2 * fps)
        raise StoryboardError(
            f"{_fmt_s(duration_s)} is too short to generate anything{origin}: the video is made of blocks of "
            f"{frames_per_block} latent frames ({block_video_frames} video frames, "
            f"{_fmt_s(block_video_frames / fps)} at {fps} fps). Use at least {_fmt_s(float(minimum))}.",
            field="duration",
        )
    return blocks * frames_per_block


def make_plan(
    sb: Storyboard,
    *,
    frames_per_block: int = 3,
    seed: int | None = None,
    width: int | None = None,
    height: int | None = None,
    duration_s: float | None = None,
    default_resolution: tuple[int, int] = (DEFAULT_WIDTH, DEFAULT_HEIGHT),
) -> Plan:
    """Turn a storyboard into the generation plan (blocks, latent frames, prompt switch points).

    ``seed``, ``width``/``height`` (pixels) and ``duration_s`` (seconds), when not None, override the
    storyboard's values (command-line options win) and are validated like the file's values; the
    prompts are then re-checked against the new duration. ``default_resolution`` ``(width, height)``
    in pixels applies when neither the storyboard nor an override gives one: the model's native size.

    Arithmetic, with ``fps`` = 16 and ``B = frames_per_block`` (latent frames per block, 3):

    * latent frames ``L = B * round(duration * fps / (4 * B))``; video frames ``4L - 3``;
      blocks ``L / B``. 60 s -> L 240, 957 video frames, 80 blocks; 5 s -> L 21, 81 frames.
    * a prompt at ``t`` seconds has latent index ``s = round(t * fps / 4)`` and takes effect at the
      first block starting at latent frame ``>= s``: 10 s -> 40 -> block 14 (latent 42, video frame
      165, 10.3125 s).

    Both roundings are half up (x.5 -> x+1), computed exactly on the float's value, not Python's
    round-half-to-even: a prompt exactly between two latent frames goes to the later one, and a
    duration exactly between two block counts gets the longer video.

    Raises:
        StoryboardError: for an invalid seed, resolution, fps or duration (over 240 s, or too short
            for one block), no prompts or more than 1000, an empty/non-string/over-long text, a first
            prompt not at 0, times not strictly increasing, a prompt at or after the end of the video
            or landing after the last block, or two prompts taking effect at the same block. Prompt
            errors carry the storyboard's path and the prompt's line.
        ValueError: if ``frames_per_block`` is not a positive int.
    """
    if isinstance(frames_per_block, bool) or not isinstance(frames_per_block, int) or frames_per_block < 1:
        raise ValueError(f"frames_per_block must be a positive int, got {frames_per_block!r}")
    fpb = frames_per_block
    path = sb.path
    _check_fps(sb.fps)
    fps = sb.fps

    # File values are located at the file; command-line values are not.
    def checked(fn: Any, *args: Any, override: bool, **kwargs: Any) -> Any:
        try:
            return fn(*args, origin=" (given on the command line)" if override else "", **kwargs)
        except StoryboardError as exc:
            raise exc._locate(path=None if override else path) from None

    the_seed = sb.seed if seed is None else seed
    if the_seed is not None:
        checked(_check_seed, the_seed, override=seed is not None)
    file_width, file_height = (sb.width, sb.height) if sb.width is not None else default_resolution
    the_width = file_width if width is None else width
    the_height = file_height if height is None else height
    checked(_check_resolution, the_width, the_height, override=width is not None or height is not None)
    duration = sb.duration_s if duration_s is None else duration_s
    dur_origin = " (given on the command line)" if duration_s is not None else ""
    num_latent = checked(
        _check_duration, duration, override=duration_s is not None, fps=fps, frames_per_block=fpb
    )
    num_blocks = num_latent // fpb
    num_video = VAE_TEMPORAL_STRIDE * num_latent - 3

    prompts = sb.prompts
    if not prompts:
        raise StoryboardError("needs at least one prompt, starting at 0s.", path=path, field="prompts")
    if len(prompts) > MAX_PROMPTS:
        raise StoryboardError(
            f"{len(prompts)} prompts is more than the limit of {MAX_PROMPTS}; "
            "split the story into several videos.",
            path=path,
            field="prompts",
        )

    block_s = VAE_TEMPORAL_STRIDE * fpb / fps
    starts: list[tuple[int, int]] = []  # (latent_index, start_block)
    times: list[float] = []  # parsed prompt times (hand-built storyboards may hold "1:30" strings)
    for i, p in enumerate(prompts):
        fname = f"prompts[{i}].at"

        def fail(message: str, *, p: PromptSpec = p, fname: str = fname) -> StoryboardError:
            return StoryboardError(message, path=path, line=p.line, column=p.column, field=fname)

        try:
            _check_text(p.text, field=f"prompts[{i}].text")
            at = parse_time(p.at_s, field=fname)
        except StoryboardError as exc:
            raise exc._locate(path=path, line=p.line, column=p.column) from None
        if i == 0 and at != 0:
            raise fail(f"the first prompt must start at 0s, not {_fmt_s(at)}: every frame needs a prompt.")
        if i > 0 and at <= times[-1]:
            prev = prompts[i - 1]
            where = f", line {prev.line}" if prev.line is not None else ""
            raise fail(
                f"{_fmt_s(at)} is not after prompts[{i - 1}].at ({_fmt_s(times[-1])}{where}); prompt times "
                "must be strictly increasing. Reorder the prompts or fix the times."
            )
        if at >= duration:
            raise fail(
                f"{_fmt_s(at)} is not before the end of the video (duration {_fmt_s(duration)}{dur_origin}). "
                "Move the prompt earlier or make the video longer."
            )
        latent_index = _round_half_up(Fraction(at) * fps / VAE_TEMPORAL_STRIDE)
        start_block = -(-latent_index // fpb)  # ceil: switches happen only at block starts
        if start_block >= num_blocks:
            # Latest time whose latent index still rounds into the last block.
            latest = ((num_blocks - 1) * fpb + Fraction(1, 2)) * VAE_TEMPORAL_STRIDE / fps
            raise fail(
                f"{_fmt_s(at)} would take effect at block {start_block}, after the last block (block "
                f"{num_blocks - 1}; {_fmt_s(num_video / fps)} of video for duration {_fmt_s(duration)}"
                f"{dur_origin}). Move the prompt before {_fmt_s(float(latest))} or make the video longer."
            )
        if starts and starts[-1][1] == start_block:
            prev = prompts[i - 1]
            where = f" (line {prev.line})" if prev.line is not None else ""
            # Earliest time whose latent index rounds past this block's first frame.
            earliest = (start_block * fpb + Fraction(1, 2)) * VAE_TEMPORAL_STRIDE / fps
            raise fail(
                f"prompts[{i - 1}]{where} at {_fmt_s(times[-1])} and prompts[{i}] at {_fmt_s(at)} would both "
                f"take effect at block {start_block}. Prompts switch only at block boundaries (every {fpb} "
                f"latent frames = {VAE_TEMPORAL_STRIDE * fpb} video frames = {_fmt_s(block_s)} at {fps} "
                f"fps), at most one switch per block. Move prompts[{i}] to {_fmt_s(float(earliest))} or "
                "later, or merge the two."
            )
        starts.append((latent_index, start_block))
        times.append(at)

    def video_frame(block: int) -> int:
        latent = block * fpb
        return 0 if latent == 0 else VAE_TEMPORAL_STRIDE * latent - 3

    segments = []
    for i, (p, at, (latent_index, start_block)) in enumerate(zip(prompts, times, starts, strict=True)):
        end_block = starts[i + 1][1] if i + 1 < len(starts) else num_blocks
        first = video_frame(start_block)
        end = video_frame(end_block) if end_block < num_blocks else num_video
        segments.append(
            Segment(
                index=i,
                text=p.text,
                requested_s=at,
                latent_index=latent_index,
                start_block=start_block,
                start_latent_frame=start_block * fpb,
                start_video_frame=first,
                effective_s=first / fps,
                end_block=end_block,
                num_video_frames=end - first,
            )
        )
    return Plan(
        width=the_width,
        height=the_height,
        fps=fps,
        seed=the_seed,
        duration_s=float(duration),
        frames_per_block=fpb,
        num_latent_frames=num_latent,
        num_blocks=num_blocks,
        num_video_frames=num_video,
        segments=tuple(segments),
    )


def format_plan(plan: Plan, *, text_width: int = 60) -> str:
    """Render the plan as a plain-text table (no trailing newline).

    One header line (resolution, fps, requested duration in seconds, latent frames, video frames and
    their length, blocks, seed), a column header, then one line per segment: index, requested and
    effective start (seconds, 2 decimals), start block, video frames, prompt (whitespace collapsed,
    cut to ``text_width`` characters).
    """
    seed = "random" if plan.seed is None else str(plan.seed)
    lines = [
        f"{plan.width}x{plan.height} @ {plan.fps} fps, duration {plan.duration_s:.2f} s -> "
        f"{plan.num_video_frames} video frames ({plan.video_duration_s:.2f} s), "
        f"{plan.num_latent_frames} latent frames, {plan.num_blocks} blocks of {plan.frames_per_block}, "
        f"seed {seed}",
        f"{'#':>4}  {'requested':>10}  {'effective':>10}  {'block':>5}  {'frames':>6}  prompt",
    ]
    for seg in plan.segments:
        text = " ".join(seg.text.split())
        if len(text) > text_width:
            text = text[: max(text_width - 3, 0)] + "..."
        lines.append(
            f"{seg.index:>4}  {seg.requested_s:>9.2f}s  {seg.effective_s:>9.2f}s  "
            f"{seg.start_block:>5}  {seg.num_video_frames:>6}  {text}"
        )
    return "\n".join(lines)
