"""The storyboard's rules, one check per rule, and the data a storyboard holds.

Every rule is checked here and only here, whether the value came from YAML (:mod:`.loader`, which
locates the error at the value's node), a hand-built :class:`Storyboard` or a command-line override
(:mod:`.plan`). The model's numbers (frame rate, block size, strides, native resolution, longest video)
come from a :class:`~longlive_cli.geometry.Geometry`, :data:`~longlive_cli.geometry.WAN21` by default.

Rules: ``seed`` a whole number in ``[0, 2**63)``; ``resolution`` ``WxH`` pixels, multiples of
``geometry.pixel_multiple`` (16) in ``[pixel_multiple, 4096]``; ``fps`` equal to ``geometry.fps`` (16);
``duration`` seconds, positive, at most ``geometry.max_duration_s`` (240 s) and at least half a block
(it rounds to whole blocks); 1 to 1000 prompts, each a non-empty text of at most 10 000 characters; prompt
times (seconds) with the first at 0, strictly increasing, before the end of the video, taking effect
before the last block ends and at most one switch per block. A prompt's ``text`` may instead be a list of 1 to
:data:`MAX_WEIGHTED_TEXTS` weighted texts (positive, finite weights; normalised to sum 1 when blended); its
``blend`` is ``linear`` or ``slerp`` (slerp blends two texts at most); its ``transition`` (a time, not on the
first prompt) must end before the next prompt starts.

Every check raises :class:`StoryboardError` with ``field`` set and no location; callers add the path,
line and column they know. Torch-free.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from decimal import Decimal, InvalidOperation
from fractions import Fraction
from typing import Any

from ..geometry import WAN21, Geometry
from .errors import StoryboardError, _clip, _describe, _fmt_s, _show_int

__all__ = [
    "BLENDS",
    "MAX_PROMPTS",
    "MAX_PROMPT_CHARS",
    "MAX_SIZE",
    "MAX_WEIGHTED_TEXTS",
    "PromptSpec",
    "PromptTiming",
    "Storyboard",
    "WeightedText",
    "check_blend",
    "check_blend_parts",
    "check_cut",
    "check_duration",
    "check_fps",
    "check_image_path",
    "check_prompt_count",
    "check_prompt_text",
    "check_prompts",
    "check_resolution",
    "check_seed",
    "check_transition",
    "check_weight",
    "check_weighted_count",
    "parse_resolution",
    "parse_time",
]

MAX_PROMPTS = 1000
MAX_PROMPT_CHARS = 10_000  # UMT5 sees at most 512 tokens; 10k characters is far past that already
MAX_SIZE = 4096  # pixels, either side; the smallest size is one pixel_multiple
MAX_WEIGHTED_TEXTS = 8  # texts blended into one prompt's conditioning (each is encoded and kept)
#: How a prompt's weighted texts, and a transition into it, are blended (:mod:`longlive_cli.blending`).
BLENDS = ("linear", "slerp")
_MAX_SCALAR_CHARS = 64  # numbers, times and resolutions; longer ones are junk (and 1:0:0:... is slow)


# --------------------------------------------------------------------------- data


@dataclass(frozen=True)
class WeightedText:
    """One of a prompt's weighted texts: ``text`` (stripped) and its ``weight`` (positive, as written)."""

    text: str
    weight: float


@dataclass(frozen=True)
class PromptSpec:
    """One storyboard prompt: starts at ``at_s`` seconds of video with ``text`` (stripped).

    ``line``/``column`` (1-based) locate the prompt entry in the YAML file, or are None when the
    storyboard did not come from YAML. ``column`` is not part of equality.

    ``parts``: a weighted list of texts blended into one conditioning (empty: ``text`` alone; with parts,
    ``text`` is their description, :func:`describe_parts`). ``transition_s``: seconds over which the
    conditioning moves from the previous prompt's to this one's (0: a hard switch). ``blend``: ``linear``
    or ``slerp``, for both (:data:`BLENDS`). ``cut``: the prompt starts a new shot (LongLive 2.0 models; its
    first block is conditioned on the model's scene-cut prefix + ``text``).
    """

    at_s: float
    text: str
    line: int | None
    column: int | None = field(default=None, compare=False)
    parts: tuple[WeightedText, ...] = ()
    transition_s: float = 0.0
    blend: str = "linear"
    cut: bool = False


@dataclass(frozen=True)
class Storyboard:
    """A parsed, validated storyboard.

    ``duration_s``: requested video length in seconds. ``prompts``: in time order, the first at 0 s.
    ``seed``: None means "pick one at random". ``width``/``height``: pixels, None when the file gives no
    resolution (the model's native one is used). ``fps``: video frames per second, the model's
    (``geometry.fps``: 16; the default here is :data:`~longlive_cli.geometry.WAN21`'s). ``path``: the
    file it came from, used to locate errors, or None. ``image``: a PNG/JPEG that starts the video
    (image-to-video, LongLive 2.0 models), as written (relative to the storyboard's folder), or None.
    """

    path: str | None
    duration_s: float
    prompts: tuple[PromptSpec, ...]
    seed: int | None = None
    width: int | None = None
    height: int | None = None
    fps: int = WAN21.fps
    image: str | None = None


@dataclass(frozen=True)
class PromptTiming:
    """Where one prompt takes effect: ``at_s`` (its time in seconds, parsed), ``latent_index``
    (``geometry.latent_index(at_s)``, latent frames), ``start_block`` (the first block starting at
    latent frame ``>= latent_index``) and ``transition_blocks`` (the blocks of its transition,
    :func:`transition_blocks`; 0 for a hard switch)."""

    at_s: float
    latent_index: int
    start_block: int
    transition_blocks: int = 0


def transition_blocks(transition_s: float, geometry: Geometry = WAN21) -> int:
    """Blocks a transition of ``transition_s`` seconds spans: those that start within that time of its first
    block, ``ceil(transition_s / block_s)`` exactly (2 s -> 3 blocks of 0.75 s; 1.5 s -> 2; 0 -> 0)."""
    return -(-Fraction(transition_s) // Fraction(geometry.block_video_frames, geometry.fps)).__floor__()


def describe_parts(parts: Sequence[WeightedText]) -> str:
    """A weighted list as one line of text for plans and events: ``a fox (0.7) + snow (0.3)``, weights
    normalised to sum 1 (shown to 2 decimals)."""
    total = sum(p.weight for p in parts)
    return " + ".join(f"{p.text} ({p.weight / total:.2f})" for p in parts)


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
        return _clock_seconds(clock, raw, field=field)
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


def _clock_seconds(clock: re.Match[str], raw: str, *, field: str) -> float:
    """Seconds of an ``m:ss`` or ``h:mm:ss`` match (fields below 60)."""
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


# --------------------------------------------------------------------------- seed / resolution / fps


def check_seed(seed: Any, *, origin: str = "") -> int:
    """Return ``seed`` if it is a whole number in ``[0, 2**63)``.

    ``origin`` is appended to what the message says about the value (`` (given on the command line)``).

    Raises:
        StoryboardError: (field ``seed``) for a bool, a non-int or an out-of-range int.
    """
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise StoryboardError(
            f"{_describe(seed)} is not a seed{origin}; use a whole number from 0 to 2**63 - 1.", field="seed"
        )
    if not 0 <= seed < 2**63:
        raise StoryboardError(
            f"{_show_int(seed)} is out of range{origin}; use a whole number from 0 to 2**63 - 1.",
            field="seed",
        )
    return seed


# The multiplication sign (U+00D7) is accepted as well as x.
_RES_RE = re.compile(r"\s*(\d+)\s*[x\u00d7]\s*(\d+)\s*", re.IGNORECASE)


def parse_resolution(value: Any, *, field: str = "resolution", geometry: Geometry = WAN21) -> tuple[int, int]:
    """Parse ``"WxH"`` (also ``"832X480"``, spaces allowed) into ``(width, height)`` in pixels.

    Both must be multiples of ``geometry.pixel_multiple`` (16 for Wan2.1: the VAE downsamples by 8, the
    transformer patches 2x2 latents) and between that multiple and 4096 (see :func:`check_resolution`).

    Raises:
        StoryboardError: (with ``field`` set) for a non-string, bad syntax or an out-of-range size.
    """
    example = "{}x{}".format(*geometry.native_resolution)
    if not isinstance(value, str):
        raise StoryboardError(
            f"{_describe(value)} is not a resolution; write it as WIDTHxHEIGHT, e.g. {example}.", field=field
        )
    match = _RES_RE.fullmatch(value) if len(value) <= _MAX_SCALAR_CHARS else None
    if not match:
        raise StoryboardError(
            f"{_clip(value)} is not a resolution; write it as WIDTHxHEIGHT, e.g. {example}.", field=field
        )
    return check_resolution(int(match[1]), int(match[2]), geometry, field=field)


def check_resolution(
    width: Any, height: Any, geometry: Geometry = WAN21, *, field: str = "resolution", origin: str = ""
) -> tuple[int, int]:
    """Return ``(width, height)`` (pixels) if both are ints, multiples of ``geometry.pixel_multiple``
    (16) and in ``[pixel_multiple, 4096]``.

    Raises:
        StoryboardError: (with ``field`` set) naming the first bad side, with a nearby good size.
    """
    return (
        _check_size("width", width, geometry, field=field, origin=origin),
        _check_size("height", height, geometry, field=field, origin=origin),
    )


def _check_size(name: str, size: Any, geometry: Geometry, *, field: str, origin: str) -> int:
    multiple = geometry.pixel_multiple
    if isinstance(size, bool) or not isinstance(size, int):
        raise StoryboardError(
            f"{name} {_describe(size)} is not an integer number of pixels{origin}.", field=field
        )
    if not multiple <= size <= MAX_SIZE:
        native_w, native_h = geometry.native_resolution
        raise StoryboardError(
            f"{name} {_show_int(size)} is out of range{origin}; use {multiple} to {MAX_SIZE} pixels "
            f"(the model is trained at {native_w}x{native_h}).",
            field=field,
        )
    if size % multiple:
        nearest = max(multiple, multiple * round(size / multiple))
        _, patch_h, patch_w = geometry.patch_size
        raise StoryboardError(
            f"{name} {size} is not a multiple of {multiple}{origin} (the VAE downsamples by "
            f"{geometry.vae_spatial_stride} and the transformer patches {patch_h}x{patch_w} latents); "
            f"try {nearest}.",
            field=field,
        )
    return size


def check_fps(fps: Any, geometry: Geometry = WAN21) -> int:
    """Return ``fps`` if it is the model's frame rate, ``geometry.fps`` (16).

    Raises:
        StoryboardError: (field ``fps``) for anything else.
    """
    if isinstance(fps, bool) or not isinstance(fps, int) or fps != geometry.fps:
        raise StoryboardError(
            f"{_describe(fps)} is not supported: LongLive/Wan2.1 generate at {geometry.fps} fps, so fps "
            f"must be {geometry.fps} (or left out). Re-time the video afterwards for another frame rate.",
            field="fps",
        )
    return fps


# --------------------------------------------------------------------------- duration


def check_duration(duration_s: Any, geometry: Geometry = WAN21, *, origin: str = "") -> int:
    """Validate a duration in seconds and return its number of latent frames,
    ``geometry.latent_frames(duration_s)`` (a positive multiple of ``geometry.frames_per_block``).

    Raises:
        StoryboardError: (field ``duration``) for a non-number, NaN or infinity, a duration of 0 s or
            less, one over ``geometry.max_duration_s`` (240 s), or one too short to round to a block.
    """
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
    if duration_s > geometry.max_duration_s:
        raise StoryboardError(
            f"{_fmt_s(duration_s)} is longer than the maximum of {_fmt_s(geometry.max_duration_s)}{origin}. "
            f"{_duration_limits(geometry)} {_way_out(geometry)}",
            field="duration",
        )
    num_latent = geometry.latent_frames(duration_s)
    if num_latent < 1:
        fpb = geometry.frames_per_block
        minimum = geometry.latent_time_s(Fraction(fpb, 2))  # half a block rounds up to one
        raise StoryboardError(
            f"{_fmt_s(duration_s)} is too short to generate anything{origin}: the video is made of blocks of "
            f"{fpb} latent frames ({geometry.block_video_frames} video frames, {_fmt_s(geometry.block_s)} "
            f"at {geometry.fps} fps). Use at least {_fmt_s(float(minimum))}.",
            field="duration",
        )
    return num_latent


def _duration_limits(geometry: Geometry) -> str:
    """Why durations stop at ``geometry.max_duration_s``: the RoPE table (if any) and the trained length; with
    relative RoPE (no table), the planning bound."""
    table = geometry.rope_max_latent_frames
    if table is None:
        return (
            f"With relative RoPE the model sets no limit; {_fmt_s(geometry.max_trained_s)} is this tool's "
            "bound for one video (its noise is laid out for the whole length when it starts)."
        )
    trained = f"LongLive was trained and evaluated for up to {geometry.max_trained_s:g} s."
    covered_s = geometry.video_frames(table) // geometry.fps
    return f"The model's positional table covers {table} latent frames (about {covered_s} s) and " + trained


def _way_out(geometry: Geometry) -> str:
    """What to do about a storyboard too long for ``geometry``: split it, or (absolute RoPE) use relative
    RoPE."""
    if geometry.rope_max_latent_frames is None:
        return "Split the story into several videos."
    return (
        "Split the story into several videos, or use relative RoPE, whose length only the disk limits: "
        "--model longlive-1.3b-infinite (or --rope relative)."
    )


# --------------------------------------------------------------------------- prompts


def check_prompt_count(count: int) -> None:
    """Check the number of prompts: 1 to :data:`MAX_PROMPTS`.

    Raises:
        StoryboardError: (field ``prompts``) for none or too many.
    """
    if count < 1:
        raise StoryboardError("needs at least one prompt, starting at 0s.", field="prompts")
    if count > MAX_PROMPTS:
        raise StoryboardError(
            f"{count} prompts is more than the limit of {MAX_PROMPTS}; split the story into several videos.",
            field="prompts",
        )


def check_prompt_text(value: Any, *, field: str, geometry: Geometry = WAN21) -> str:
    """Return the stripped prompt text: a non-empty string of at most :data:`MAX_PROMPT_CHARS` characters.

    Raises:
        StoryboardError: (with ``field`` set) for a non-string, blank or over-long text.
    """
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
            f"encoder (UMT5) reads at most {geometry.text_len} tokens, so shorten it.",
            field=field,
        )
    return text


def check_weighted_count(count: int, *, field: str) -> None:
    """Check how many weighted texts a prompt blends: 1 to :data:`MAX_WEIGHTED_TEXTS`.

    Raises:
        StoryboardError: (with ``field`` set) for none or too many.
    """
    if not 1 <= count <= MAX_WEIGHTED_TEXTS:
        raise StoryboardError(
            f"{count} weighted texts; a prompt blends 1 to {MAX_WEIGHTED_TEXTS}, each "
            "'{text: \"...\", weight: 0.5}'.",
            field=field,
        )


def check_weight(value: Any, *, field: str) -> float:
    """Return a weighted text's ``weight`` as a float: a finite number greater than 0 (weights are
    normalised to sum 1 when blended, so only their ratios matter).

    Raises:
        StoryboardError: (with ``field`` set) for a non-number, NaN, infinity, zero or a negative.
    """
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise StoryboardError(
            f"{_describe(value)} is not a weight; use a number greater than 0.", field=field
        )
    try:
        weight = float(value)
    except OverflowError:
        weight = math.inf
    if not math.isfinite(weight) or weight <= 0:
        raise StoryboardError(
            f"{_describe(value)} is not a usable weight; use a finite number greater than 0 (only the "
            "ratios between a prompt's weights matter).",
            field=field,
        )
    return weight


def check_blend(value: Any, *, field: str) -> str:
    """Return ``value`` if it is one of :data:`BLENDS` (``linear``, ``slerp``).

    Raises:
        StoryboardError: (with ``field`` set) for anything else.
    """
    if value not in BLENDS:
        raise StoryboardError(
            f"{_describe(value)} is not a blend; use linear (weighted average, norm kept) or slerp "
            "(spherical, two texts or a transition).",
            field=field,
        )
    return str(value)


def check_cut(value: Any, *, field: str) -> bool:
    """Return ``value`` if it is a YAML boolean (``cut: true``).

    Raises:
        StoryboardError: (with ``field`` set) for anything else.
    """
    if not isinstance(value, bool):
        raise StoryboardError(
            f"{_describe(value)} is not true or false; write cut: true to start a new shot with this prompt.",
            field=field,
        )
    return value


def check_image_path(value: Any, *, field: str) -> str:
    """Return ``value`` if it names a PNG or JPEG file (``.png``, ``.jpg``, ``.jpeg``; the file itself is read
    when the video is made, :mod:`longlive_cli.images`).

    Raises:
        StoryboardError: (with ``field`` set) for anything else.
    """
    if not isinstance(value, str) or not value.strip() or len(value) > 4096 or "\0" in value:
        raise StoryboardError(f"{_describe(value)} is not a file path; write image: photo.png", field=field)
    if not value.lower().endswith((".png", ".jpg", ".jpeg")):
        raise StoryboardError(f"{value!r} is not a .png, .jpg or .jpeg file; give a PNG or JPEG", field=field)
    return value.strip()


def check_blend_parts(blend: str, count: int, *, field: str) -> None:
    """slerp interpolates between two embeddings: a prompt with ``blend: slerp`` has at most two weighted
    texts (a transition into it is always between two conditionings).

    Raises:
        StoryboardError: (with ``field`` set) for slerp with more than two texts.
    """
    if blend == "slerp" and count > 2:
        raise StoryboardError(
            f"blend: slerp works between two texts, and this prompt has {count}; use blend: linear or two "
            "texts.",
            field=field,
        )


def check_transition(value: Any, *, field: str) -> float:
    """Return a transition's length in seconds (:func:`parse_time`: ``2s``, ``1.5``; ``0``: a hard switch).

    Raises:
        StoryboardError: (with ``field`` set) as :func:`parse_time`.
    """
    return parse_time(value, field=field)


def check_prompts(
    prompts: Sequence[PromptSpec],
    duration_s: float,
    geometry: Geometry = WAN21,
    *,
    path: str | None = None,
    origin: str = "",
) -> tuple[PromptTiming, ...]:
    """Check the prompts against each other and a ``duration_s`` (seconds) that passed
    :func:`check_duration`, and return where each takes effect.

    Per prompt, in order: its text (:func:`check_prompt_text`), its weighted texts if any
    (:func:`check_weighted_count`, then each text and :func:`check_weight`), its blend (:func:`check_blend`,
    :func:`check_blend_parts`), its time (:func:`parse_time`; a hand-built storyboard may hold strings such
    as ``"1:30"``) and transition (:func:`check_transition`), then the time rules: the first at 0 and
    without a transition, strictly after the previous one, before ``duration_s``, landing
    (``geometry.latent_index``, half up) on a block before the end of the video, not on the same block as
    the previous prompt, and not before the previous prompt's transition has ended. ``origin`` says where
    ``duration_s`` came from in messages (`` (given on the command line)``). A transition may run past the
    end of the video (the video ends during it).

    Raises:
        StoryboardError: for no prompts or more than 1000 (field ``prompts``, located at ``path``) or any
            rule above broken (field ``prompts[i].text`` or ``prompts[i].at``, located at ``path`` and the
            prompt's line and column).
    """
    try:
        check_prompt_count(len(prompts))
    except StoryboardError as exc:
        raise exc._locate(path=path) from None
    num_blocks = geometry.latent_frames(duration_s) // geometry.frames_per_block
    timings: list[PromptTiming] = []
    for i, prompt in enumerate(prompts):
        try:
            if not prompt.parts:  # with parts, text describes them and each part is checked
                check_prompt_text(prompt.text, field=f"prompts[{i}].text", geometry=geometry)
            _check_parts(prompt, f"prompts[{i}]", geometry)
            at_s = parse_time(prompt.at_s, field=f"prompts[{i}].at")
            transition_s = check_transition(prompt.transition_s, field=f"prompts[{i}].transition")
            timing = _check_prompt_time(
                prompts, i, at_s, timings[-1] if timings else None, duration_s, num_blocks, geometry, origin
            )
            timing = _check_transition_time(prompts, i, timing, transition_s, timings, geometry)
            if i == 0 and check_cut(prompt.cut, field="prompts[0].cut"):
                raise StoryboardError(
                    "the first prompt starts the first shot already; cut: true goes on a later prompt.",
                    field="prompts[0].cut",
                )
        except StoryboardError as exc:
            raise exc._locate(path=path, line=prompt.line, column=prompt.column) from None
        timings.append(timing)
    return tuple(timings)


def _check_parts(prompt: PromptSpec, field: str, geometry: Geometry) -> None:
    """A prompt's weighted texts and blend (hand-built storyboards; the loader checks them as it reads)."""
    if prompt.parts:
        check_weighted_count(len(prompt.parts), field=f"{field}.text")
        for j, part in enumerate(prompt.parts):
            check_prompt_text(part.text, field=f"{field}.text[{j}].text", geometry=geometry)
            check_weight(part.weight, field=f"{field}.text[{j}].weight")
    check_blend(prompt.blend, field=f"{field}.blend")
    check_blend_parts(prompt.blend, len(prompt.parts), field=f"{field}.blend")


def _check_transition_time(
    prompts: Sequence[PromptSpec],
    i: int,
    timing: PromptTiming,
    transition_s: float,
    timings: Sequence[PromptTiming],
    geometry: Geometry,
) -> PromptTiming:
    """The transition rules for prompt ``i`` (its ``timing`` checked): none on the first prompt, and prompt
    ``i`` does not start before the previous prompt's transition has ended; ``timing`` with its blocks."""
    field = f"prompts[{i}].transition"
    if i == 0 and transition_s > 0:
        raise StoryboardError(
            "the first prompt has nothing to blend from; a transition goes on a later prompt.", field=field
        )
    if timings and timings[-1].start_block + timings[-1].transition_blocks > timing.start_block:
        previous = timings[-1]
        end = previous.start_block + previous.transition_blocks
        earliest = geometry.latent_time_s((end - 1) * geometry.frames_per_block + Fraction(1, 2))
        raise StoryboardError(
            f"prompts[{i}] would take effect at block {timing.start_block}, during the transition of "
            f"prompts[{i - 1}] (blocks {previous.start_block}-{end - 1}, "
            f"{_fmt_s(float(prompts[i - 1].transition_s))}); a prompt starts once the transition before it "
            f"has ended. Move prompts[{i}] to {_fmt_s(float(earliest))} or later, or shorten the transition.",
            field=f"prompts[{i}].at",
        )
    return replace(timing, transition_blocks=transition_blocks(transition_s, geometry))


def _check_prompt_time(
    prompts: Sequence[PromptSpec],
    i: int,
    at_s: float,
    previous: PromptTiming | None,
    duration_s: float,
    num_blocks: int,
    geometry: Geometry,
    origin: str,
) -> PromptTiming:
    """The time rules for prompt ``i`` at ``at_s`` seconds, given the one before it (None for the first)."""
    field = f"prompts[{i}].at"
    if previous is None and at_s != 0:
        raise StoryboardError(
            f"the first prompt must start at 0s, not {_fmt_s(at_s)}: every frame needs a prompt.", field=field
        )
    if previous is not None and at_s <= previous.at_s:
        where = f", line {prompts[i - 1].line}" if prompts[i - 1].line is not None else ""
        raise StoryboardError(
            f"{_fmt_s(at_s)} is not after prompts[{i - 1}].at ({_fmt_s(previous.at_s)}{where}); prompt times "
            "must be strictly increasing. Reorder the prompts or fix the times.",
            field=field,
        )
    if at_s >= duration_s:
        raise StoryboardError(
            f"{_fmt_s(at_s)} is not before the end of the video (duration {_fmt_s(duration_s)}{origin}). "
            "Move the prompt earlier or make the video longer.",
            field=field,
        )
    latent_index = geometry.latent_index(at_s)
    start_block = geometry.switch_block(latent_index)
    if start_block >= num_blocks:
        raise StoryboardError(
            _after_last_block(at_s, start_block, num_blocks, duration_s, geometry, origin), field=field
        )
    if previous is not None and previous.start_block == start_block:
        raise StoryboardError(_same_block(prompts, i, at_s, previous, geometry), field=field)
    return PromptTiming(at_s=at_s, latent_index=latent_index, start_block=start_block)


def _after_last_block(
    at_s: float, start_block: int, num_blocks: int, duration_s: float, geometry: Geometry, origin: str
) -> str:
    fpb = geometry.frames_per_block
    video_s = geometry.video_frames(num_blocks * fpb) / geometry.fps
    # Latest time whose latent index still rounds into the last block.
    latest = geometry.latent_time_s((num_blocks - 1) * fpb + Fraction(1, 2))
    return (
        f"{_fmt_s(at_s)} would take effect at block {start_block}, after the last block (block "
        f"{num_blocks - 1}; {_fmt_s(video_s)} of video for duration {_fmt_s(duration_s)}"
        f"{origin}). Move the prompt before {_fmt_s(float(latest))} or make the video longer."
    )


def _same_block(
    prompts: Sequence[PromptSpec], i: int, at_s: float, previous: PromptTiming, geometry: Geometry
) -> str:
    fpb = geometry.frames_per_block
    start_block = previous.start_block
    line = prompts[i - 1].line
    where = f" (line {line})" if line is not None else ""
    # Earliest time whose latent index rounds past this block's first frame.
    earliest = geometry.latent_time_s(start_block * fpb + Fraction(1, 2))
    return (
        f"prompts[{i - 1}]{where} at {_fmt_s(previous.at_s)} and prompts[{i}] at {_fmt_s(at_s)} would both "
        f"take effect at block {start_block}. Prompts switch only at block boundaries (every {fpb} "
        f"latent frames = {geometry.block_video_frames} video frames = {_fmt_s(geometry.block_s)} at "
        f"{geometry.fps} fps), at most one switch per block. Move prompts[{i}] to {_fmt_s(float(earliest))} "
        "or later, or merge the two."
    )
