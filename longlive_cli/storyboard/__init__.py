"""Storyboard YAML -> validated :class:`Storyboard` -> generation :class:`Plan`.

A storyboard is a YAML mapping::

    seed: 42                 # optional int, 0 <= seed < 2**63
    resolution: 832x480      # optional "WxH", multiples of 16 in [16, 4096]
    fps: 16                  # optional, must be 16
    duration: 60s            # required, seconds (see parse_time for the syntax)
    prompts:                 # required, first at 0, strictly increasing, all before the end
      - at: 0s
        text: "A little boy ..."
      - at: 10s
        text:                # or a list of weighted texts, blended into one conditioning
          - {text: "The boy starts to run ...", weight: 0.7}
          - {text: "A windy park ...", weight: 0.3}
        transition: 2s       # optional: blend in from the previous prompt over the blocks starting within 2 s
        blend: linear        # optional: linear (default) or slerp

The numbers above are the model's, from a :class:`~longlive_cli.geometry.Geometry` (Wan2.1's,
:data:`~longlive_cli.geometry.WAN21`, by default): ``pixel_multiple`` (16), ``fps`` (16),
``max_duration_s`` (240 s; 24 h with relative RoPE). Frame arithmetic (LongLive / Wan2.1): the model
generates blocks of ``frames_per_block`` (3) latent frames; the Wan VAE turns latent frame 0 into 1 video
frame and every later latent frame into 4, so ``L`` latent frames give ``4L - 3`` video frames at 16 fps. A
prompt takes effect at a block boundary.

Modules: :mod:`.loader` (safe YAML reading and its limits: :func:`parse_storyboard`,
:func:`load_storyboard`), :mod:`.schema` (the rules, one check each, and the :class:`Storyboard` data),
:mod:`.plan` (:func:`make_plan`, :func:`format_plan`), :mod:`.errors` (:class:`StoryboardError`).

Every rejection is a :class:`StoryboardError` (an :class:`~longlive_cli.errors.InputError`) whose message
names the file, line, column and field where known, says what is wrong and what to do about it.
Torch-free.
"""

from __future__ import annotations

from ..geometry import WAN21
from .errors import StoryboardError
from .loader import (
    MAX_FILE_BYTES,
    MAX_YAML_DEPTH,
    MAX_YAML_LINES,
    MAX_YAML_NODES,
    MAX_YAML_WRITTEN_NODES,
    load_storyboard,
    parse_storyboard,
)
from .plan import Plan, Segment, format_plan, make_plan
from .schema import MAX_PROMPT_CHARS, MAX_PROMPTS, PromptSpec, Storyboard, parse_resolution, parse_time

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

# Wan2.1's numbers under their old names, for callers that predate Geometry; the code reads a Geometry.
DEFAULT_FPS = WAN21.fps
DEFAULT_WIDTH, DEFAULT_HEIGHT = WAN21.native_resolution
MAX_DURATION_S = WAN21.max_duration_s
