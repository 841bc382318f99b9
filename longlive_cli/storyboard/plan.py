"""Storyboard -> generation :class:`Plan`: blocks, latent frames, video frames and prompt switch points.

The arithmetic is the model's (:class:`~longlive_cli.geometry.Geometry`, :data:`~longlive_cli.geometry.WAN21`
by default); the rules are :mod:`.schema`'s. Torch-free.
"""

from __future__ import annotations

import bisect
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from ..geometry import WAN21, Geometry
from ..terminal import printable
from .errors import StoryboardError
from .schema import (
    PromptSpec,
    PromptTiming,
    Storyboard,
    check_duration,
    check_fps,
    check_prompts,
    check_resolution,
    check_seed,
)

__all__ = ["Plan", "Segment", "format_plan", "make_plan"]

_COMMAND_LINE = " (given on the command line)"
_T = TypeVar("_T")


@dataclass(frozen=True)
class Segment:
    """The stretch of video generated under one prompt.

    ``requested_s``: the storyboard's ``at`` (seconds). ``latent_index``: ``round(at * fps / 4)``
    rounded half up (latent frames). ``start_block``: first block whose first latent frame is
    ``>= latent_index``; ``start_latent_frame = start_block * frames_per_block``.
    ``start_video_frame``: first video frame under this prompt (0 for latent frame 0, else
    ``4 * start_latent_frame - 3``); ``effective_s = start_video_frame / fps`` (seconds).
    ``end_block``: exclusive. ``num_video_frames``: video frames generated under this prompt.

    ``parts``: the weighted texts blended into this prompt's conditioning, ``(text, weight)`` with weights
    normalised to sum 1; a plain prompt has one, ``(text, 1.0)``, and ``text`` is then that text (else a
    description of the parts). ``blend``: ``linear`` or ``slerp``. ``transition_s`` / ``transition_blocks``:
    the transition into this prompt (0: a hard switch); blocks ``start_block .. start_block +
    transition_blocks - 1`` are generated under blends of the previous prompt and this one, the k-th at
    weight ``(k + 1) / (transition_blocks + 1)`` for this one (:mod:`longlive_cli.blending`); later blocks
    under this prompt alone. The transition may run past the end of the video.
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
    parts: tuple[tuple[str, float], ...] = ()
    blend: str = "linear"
    transition_s: float = 0.0
    transition_blocks: int = 0
    cut: bool = False

    @property
    def texts(self) -> tuple[str, ...]:
        """The texts to encode for this segment (one, or its weighted texts)."""
        return tuple(text for text, _ in self.parts) or (self.text,)


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
    image: str | None = None

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

    @property
    def has_transitions(self) -> bool:
        """Some prompt blends in from the previous one (``transition:``)."""
        return any(seg.transition_blocks for seg in self.segments)

    @property
    def has_cuts(self) -> bool:
        """Some prompt starts a new shot (``cut: true``; LongLive 2.0 models only)."""
        return any(seg.cut for seg in self.segments)


def make_plan(
    sb: Storyboard,
    geometry: Geometry = WAN21,
    *,
    seed: int | None = None,
    width: int | None = None,
    height: int | None = None,
    duration_s: float | None = None,
    image: str | None = None,
) -> Plan:
    """Turn a storyboard into the generation plan (blocks, latent frames, prompt switch points).

    ``geometry`` gives the model's numbers: ``fps`` (16), ``frames_per_block`` (latent frames per block,
    3), the VAE's temporal stride (4), ``native_resolution`` ``(width, height)`` in pixels (832x480, used
    when neither the storyboard nor an override gives one) and ``max_duration_s`` (240 s; 24 h with
    relative RoPE).
    ``seed``, ``width``/``height`` (pixels) and ``duration_s`` (seconds), when not None, override the
    storyboard's values (command-line options win) and are validated like the file's values; the
    prompts are then re-checked against the new duration.

    Arithmetic, with ``fps`` = 16 and ``B = frames_per_block`` (3), as in :class:`Geometry`:

    * latent frames ``L = B * round(duration * fps / (4 * B))``; video frames ``4L - 3``;
      blocks ``L / B``. 60 s -> L 240, 957 video frames, 80 blocks; 5 s -> L 21, 81 frames.
    * a prompt at ``t`` seconds has latent index ``s = round(t * fps / 4)`` and takes effect at the
      first block starting at latent frame ``>= s``: 10 s -> 40 -> block 14 (latent 42, video frame
      165, 10.3125 s).

    Both roundings are half up (x.5 -> x+1), computed exactly on the float's value, not Python's
    round-half-to-even: a prompt exactly between two latent frames goes to the later one, and a
    duration exactly between two block counts gets the longer video.

    Raises:
        StoryboardError: for an invalid seed, resolution, fps (not ``geometry.fps``) or duration (over
            ``geometry.max_duration_s``, or too short for one block), no prompts or more than 1000, an
            empty/non-string/over-long text, a first prompt not at 0, times not strictly increasing, a
            prompt at or after the end of the video or landing after the last block, two prompts
            taking effect at the same block, a bad weighted text, weight or blend, a transition on the
            first prompt, or a prompt starting during the previous prompt's transition. Errors in the
            storyboard's own values carry its path (prompt errors also the prompt's line); errors in
            overrides carry no path.
    """
    path = sb.path
    check_fps(sb.fps, geometry)
    the_seed = sb.seed if seed is None else seed
    if the_seed is not None:
        the_seed = _checked(check_seed, the_seed, override=seed is not None, path=path)
    file_width, file_height = (sb.width, sb.height) if sb.width is not None else geometry.native_resolution
    the_width, the_height = _checked(
        check_resolution,
        file_width if width is None else width,
        file_height if height is None else height,
        geometry,
        override=width is not None or height is not None,
        path=path,
    )
    duration = sb.duration_s if duration_s is None else duration_s
    num_latent = _checked(check_duration, duration, geometry, override=duration_s is not None, path=path)
    timings = check_prompts(
        sb.prompts, duration, geometry, path=path, origin=_COMMAND_LINE if duration_s is not None else ""
    )
    num_video = geometry.video_frames(num_latent)
    return Plan(
        width=the_width,
        height=the_height,
        fps=geometry.fps,
        seed=the_seed,
        duration_s=float(duration),
        frames_per_block=geometry.frames_per_block,
        num_latent_frames=num_latent,
        num_blocks=num_latent // geometry.frames_per_block,
        num_video_frames=num_video,
        segments=_segments(sb.prompts, timings, num_latent, geometry),
        image=image if image is not None else _image_path(sb),
    )


def _image_path(sb: Storyboard) -> str | None:
    """The storyboard's ``image``, relative to its file's folder (as written for a storyboard not from a
    file)."""
    if sb.image is None:
        return None
    if sb.path is None or Path(sb.image).is_absolute():
        return sb.image
    return str(Path(sb.path).parent / sb.image)


def _checked(check: Callable[..., _T], *args: Any, override: bool, path: str | None) -> _T:
    """Run a :mod:`.schema` check on a storyboard value (located at ``path``) or an override (said to
    come from the command line, no path)."""
    try:
        return check(*args, origin=_COMMAND_LINE if override else "")
    except StoryboardError as exc:
        raise exc._locate(path=None if override else path) from None


def _segments(
    prompts: Sequence[PromptSpec], timings: Sequence[PromptTiming], num_latent: int, geometry: Geometry
) -> tuple[Segment, ...]:
    """One segment per prompt, from its timing to the next prompt's block (or the end of the video)."""
    fpb = geometry.frames_per_block
    num_blocks = num_latent // fpb
    segments = []
    for i, (prompt, timing) in enumerate(zip(prompts, timings, strict=True)):
        end_block = timings[i + 1].start_block if i + 1 < len(timings) else num_blocks
        first = geometry.first_video_frame(timing.start_block * fpb)
        end = (
            geometry.first_video_frame(end_block * fpb)
            if end_block < num_blocks
            else geometry.video_frames(num_latent)
        )
        weights = [p.weight for p in prompt.parts]
        parts = tuple((p.text, p.weight / sum(weights)) for p in prompt.parts) or ((prompt.text, 1.0),)
        segments.append(
            Segment(
                index=i,
                text=prompt.text,
                requested_s=timing.at_s,
                latent_index=timing.latent_index,
                start_block=timing.start_block,
                start_latent_frame=timing.start_block * fpb,
                start_video_frame=first,
                effective_s=first / geometry.fps,
                end_block=end_block,
                num_video_frames=end - first,
                parts=parts,
                blend=prompt.blend,
                transition_s=float(prompt.transition_s) if timing.transition_blocks else 0.0,
                transition_blocks=timing.transition_blocks,
                cut=prompt.cut,
            )
        )
    return tuple(segments)


def format_plan(plan: Plan, *, text_width: int = 60) -> str:
    """Render the plan as a plain-text table (no trailing newline).

    One header line (resolution, fps, requested duration in seconds, latent frames, video frames and
    their length, blocks, seed), a column header, then one line per segment: index, requested and
    effective start (seconds, 2 decimals), start block, video frames, prompt (whitespace collapsed,
    cut to ``text_width`` characters; weighted texts as ``text (weight) + ...``). A segment with a
    transition, or blending with slerp, gets one more line under it: the transition's length, its
    blocks and the weight of the new prompt in each, and the blend.
    """
    seed = "random" if plan.seed is None else str(plan.seed)
    lines = [
        f"{plan.width}x{plan.height} @ {plan.fps} fps, duration {plan.duration_s:.2f} s -> "
        f"{plan.num_video_frames} video frames ({plan.video_duration_s:.2f} s), "
        f"{plan.num_latent_frames} latent frames, {plan.num_blocks} blocks of {plan.frames_per_block}, "
        f"seed {seed}",
        *([f"image-to-video from {plan.image}"] if plan.image else []),
        f"{'#':>4}  {'requested':>10}  {'effective':>10}  {'block':>5}  {'frames':>6}  prompt",
    ]
    for seg in plan.segments:
        text = printable(" ".join(seg.text.split()))  # control characters escaped, not sent to the terminal
        if len(text) > text_width:
            text = text[: max(text_width - 3, 0)] + "..."
        lines.append(
            f"{seg.index:>4}  {seg.requested_s:>9.2f}s  {seg.effective_s:>9.2f}s  "
            f"{seg.start_block:>5}  {seg.num_video_frames:>6}  {text}"
        )
        if seg.transition_blocks or seg.blend != "linear":
            lines.append(f"{'':>45}{_describe_transition(seg, plan.num_blocks)}")
        if seg.cut:
            lines.append(f"{'':>45}cut: shot {1 + sum(s.cut for s in plan.segments[: seg.index + 1])} starts")
    return "\n".join(lines)


def _describe_transition(seg: Segment, num_blocks: int) -> str:
    """``transition 2.00 s: blocks 14-16 at 0.25, 0.50, 0.75 of the new prompt, linear blend``."""
    if not seg.transition_blocks:
        return f"{seg.blend} blend of the weighted texts, hard switch"
    n, first = seg.transition_blocks, seg.start_block
    last = first + n - 1
    if n <= 5:
        weights = ", ".join(f"{(k + 1) / (n + 1):.2f}" for k in range(n))
    else:
        weights = f"{1 / (n + 1):.2f} to {n / (n + 1):.2f} in {n} steps"
    cut = f" (the video ends at block {num_blocks - 1})" if last >= num_blocks else ""
    return (
        f"transition {seg.transition_s:.2f} s: blocks {first}-{last} at {weights} of the new prompt, "
        f"{seg.blend} blend{cut}"
    )
