"""Prompt schedules: which prompt each block is generated under.

A sampler asks its schedule, just before each block starts, for the block's segment (the index of the
prompt in force) and, at a change of segment, for that prompt's embedding; a change of segment is a prompt
switch. :class:`FixedSchedule` answers from a storyboard's plan. A live source (``longlive live``) answers
from prompts typed while the video is being made, so it learns the next prompt while generating.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    import torch

    from .storyboard import Plan

__all__ = ["FixedSchedule", "PromptSchedule"]


class PromptSchedule(Protocol):
    """What a sampler needs to know about prompts (see the module docs)."""

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


class FixedSchedule:
    """A schedule known in advance: one embedding per segment and the segment of every block.

    Args:
        embeds: per segment, ``[1, n, text_dim]``.
        segment_of_block: per block, its segment index (non-decreasing).
        texts: per segment, the prompt text (for events; default: ``"prompt <i>"``).

    Raises:
        ValueError: a block names a segment that has no embedding.
    """

    def __init__(
        self,
        embeds: Sequence[torch.Tensor],
        segment_of_block: Sequence[int],
        texts: Sequence[str] | None = None,
    ) -> None:
        if any(not 0 <= s < len(embeds) for s in segment_of_block):
            raise ValueError(f"segment_of_block names segments beyond the {len(embeds)} embeddings given")
        self._embeds, self._segments = list(embeds), list(segment_of_block)
        self._texts = list(texts) if texts is not None else [f"prompt {i + 1}" for i in range(len(embeds))]

    @classmethod
    def for_plan(cls, plan: Plan, embeds: Sequence[torch.Tensor]) -> FixedSchedule:
        """The schedule of a storyboard's ``plan`` with one embedding per segment."""
        segments = [plan.segment_for_block(b) for b in range(plan.num_blocks)]
        return cls(embeds, segments, [s.text for s in plan.segments])

    @property
    def num_blocks(self) -> int:
        return len(self._segments)

    def segment_for_block(self, block: int) -> int:
        return self._segments[block]

    def embedding(self, segment: int) -> torch.Tensor:
        return self._embeds[segment]

    def text(self, segment: int) -> str:
        return self._texts[segment]
