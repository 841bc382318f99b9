"""Prompt schedules: which prompt (or blend of two) each block is generated under.

A sampler asks its schedule, just before each block starts, for the block's segment (the index of the
prompt in force), whether the block lies in a transition (:func:`block_transition`: a blend of the previous
prompt and this one), and, when that changes, for the conditioning (:func:`conditioning`); a change
of segment is a prompt switch. :class:`FixedSchedule` answers from a storyboard's plan. A live source
(``longlive live``) answers from prompts typed while the video is being made, so it learns the next prompt
while generating.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    import torch

    from .storyboard import Plan

__all__ = [
    "FixedSchedule",
    "PromptSchedule",
    "Transition",
    "block_transition",
    "conditioning",
    "shot_cut",
    "transition_weight",
]


def transition_weight(step: int, steps: int) -> float:
    """The new prompt's weight in block ``step`` (0-based) of a ``steps``-block transition:
    ``(step + 1) / (steps + 1)``, strictly between 0 and 1 (the block before the transition has the old
    prompt, weight 0; the block after it the new one, weight 1)."""
    return (step + 1) / (steps + 1)


@dataclass(frozen=True)
class Transition:
    """A block inside a transition: generated under a blend of segment ``source``'s conditioning and segment
    ``target``'s (the block's own segment), with weight ``t`` (0 < t < 1) on the target, blended by
    ``method`` (``linear`` or ``slerp``; :func:`longlive_cli.blending.blend`). ``step`` of ``steps``: where
    the block is in the transition (0-based)."""

    source: int
    target: int
    t: float
    method: str
    step: int
    steps: int


class PromptSchedule(Protocol):
    """What a sampler needs to know about prompts (see the module docs). A schedule with transitions also has
    ``transition(block) -> Transition | None`` (optional; :func:`block_transition`)."""

    @property
    def num_blocks(self) -> int:
        """Blocks in the video (the noise stream is laid out for this many)."""
        ...

    def segment_for_block(self, block: int) -> int:
        """The segment (prompt index, 0-based, never decreasing) block ``block`` is generated under."""
        ...

    def embedding(self, segment: int) -> torch.Tensor:
        """Segment ``segment``'s UMT5 embedding ``[1, n <= 512, text_dim]`` (rows past its tokens dropped)."""
        ...

    def text(self, segment: int) -> str:
        """Segment ``segment``'s prompt text (for events)."""
        ...


def block_transition(schedule: PromptSchedule, block: int) -> Transition | None:
    """``schedule.transition(block)``: the blend block ``block`` is generated under when it lies in a
    transition into its segment, asked after ``segment_for_block`` for the same block; None: its segment's
    own conditioning. The method is optional: a schedule without one switches prompts hard (as schedules
    written before transitions existed do)."""
    ask = getattr(schedule, "transition", None)
    return None if ask is None else ask(block)


def shot_cut(schedule: PromptSchedule, segment: int) -> torch.Tensor | None:
    """For a segment that starts a new shot (a storyboard prompt with ``cut: true``; LongLive 2.0), the UMT5
    embedding of its first block: its text behind the scene-cut prefix (``schedule.cut_embedding(segment)``);
    None for any other segment, and for a schedule without shots (the method is optional)."""
    ask = getattr(schedule, "cut_embedding", None)
    return None if ask is None else ask(segment)


def conditioning(schedule: PromptSchedule, segment: int, transition: Transition | None) -> torch.Tensor:
    """The UMT5 embedding a block is generated under: ``segment``'s, or the blend ``transition`` names
    (:func:`longlive_cli.blending.blend` with weights ``1 - t`` and ``t``). ``[1, n, text_dim]``."""
    if transition is None:
        return schedule.embedding(segment)
    from .blending import blend

    pair = [schedule.embedding(transition.source), schedule.embedding(transition.target)]
    return blend(pair, [1 - transition.t, transition.t], transition.method)


class FixedSchedule:
    """A schedule known in advance: one embedding per segment and the segment of every block.

    Args:
        embeds: per segment, ``[1, n, text_dim]``.
        segment_of_block: per block, its segment index (non-decreasing).
        texts: per segment, the prompt text (for events; default: ``"prompt <i>"``).
        transitions: per segment, ``(blocks, method)`` of the transition into it (default: none); the
            transition covers its first ``blocks`` blocks.
        cut_embeds: segment -> the embedding of its first block, for segments that start a new shot
            (``[1, n, text_dim]`` of the scene-cut prefix + its text; :func:`shot_cut`).

    Raises:
        ValueError: a block names a segment that has no embedding, or a transition into segment 0.
    """

    def __init__(
        self,
        embeds: Sequence[torch.Tensor],
        segment_of_block: Sequence[int],
        texts: Sequence[str] | None = None,
        transitions: Sequence[tuple[int, str]] | None = None,
        cut_embeds: Mapping[int, torch.Tensor] | None = None,
    ) -> None:
        if any(not 0 <= s < len(embeds) for s in segment_of_block):
            raise ValueError(f"segment_of_block names segments beyond the {len(embeds)} embeddings given")
        self._embeds, self._segments = list(embeds), list(segment_of_block)
        self._texts = list(texts) if texts is not None else [f"prompt {i + 1}" for i in range(len(embeds))]
        self._transitions = list(transitions) if transitions is not None else [(0, "linear")] * len(embeds)
        if self._transitions and self._transitions[0][0]:
            raise ValueError("the first segment has nothing to transition from")
        self._starts = {s: b for b, s in reversed(list(enumerate(self._segments)))}  # segment -> first block
        self._cut_embeds = dict(cut_embeds or {})
        if 0 in self._cut_embeds:
            raise ValueError("the first segment is the first shot already; a cut goes on a later one")

    @classmethod
    def for_plan(
        cls,
        plan: Plan,
        embeds: Sequence[torch.Tensor],
        cut_embeds: Mapping[int, torch.Tensor] | None = None,
    ) -> FixedSchedule:
        """The schedule of a storyboard's ``plan`` with one embedding (its blended conditioning, for weighted
        texts) per segment, the plan's transitions, and the first-block embeddings of its cuts."""
        segments = [plan.segment_for_block(b) for b in range(plan.num_blocks)]
        transitions = [(s.transition_blocks, s.blend) for s in plan.segments]
        return cls(embeds, segments, [s.text for s in plan.segments], transitions, cut_embeds)

    def cut_embedding(self, segment: int) -> torch.Tensor | None:
        return self._cut_embeds.get(segment)

    @property
    def num_blocks(self) -> int:
        return len(self._segments)

    def segment_for_block(self, block: int) -> int:
        return self._segments[block]

    def embedding(self, segment: int) -> torch.Tensor:
        return self._embeds[segment]

    def text(self, segment: int) -> str:
        return self._texts[segment]

    def transition(self, block: int) -> Transition | None:
        segment = self._segments[block]
        steps, method = self._transitions[segment]
        step = block - self._starts[segment]
        if not step < steps:
            return None
        return Transition(segment - 1, segment, transition_weight(step, steps), method, step, steps)
