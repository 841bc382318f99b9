"""longlive-cli: long video generation from timed-prompt storyboards with LongLive.

The public API (loaded on first use, so ``import longlive_cli`` and the CLI's light commands do not import
PyTorch):

- :class:`LongLive`: ``LongLive.from_pretrained(model, device=..., dtype=...)``, then ``.plan(storyboard)``,
  ``.stream(plan, "out.mp4")`` (events) or ``.generate(storyboard, "out.mp4")``;
- :func:`generate`: one call, ``longlive_cli.generate("story.yaml", "out.mp4", model="tiny-random")``, with
  every option of ``from_pretrained``, ``plan`` and ``stream``;
- :func:`download` and :func:`decode`: what ``longlive download`` and ``longlive decode`` do;
- :func:`report`: measure a video (flicker, freezes, colour drift, cuts, prompt switches) into a report
  folder, ``longlive_cli.report("out.mp4")``;
- the events (:mod:`longlive_cli.events`) and the errors (:mod:`longlive_cli.errors`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .errors import GenerationError, InputError, LongLiveError, ModelError, OutputError

if TYPE_CHECKING:
    from .api import LongLive, decode, download, generate
    from .events import BlockDone, Event, Finished, GenerationStarted, Interrupted, PromptSwitched
    from .quality import report
    from .storyboard import Plan, StoryboardError

__version__ = "0.1.0"

__all__ = [
    "BlockDone",
    "Event",
    "Finished",
    "GenerationError",
    "GenerationStarted",
    "InputError",
    "Interrupted",
    "LongLive",
    "LongLiveError",
    "ModelError",
    "OutputError",
    "Plan",
    "PromptSwitched",
    "StoryboardError",
    "__version__",
    "decode",
    "download",
    "generate",
    "report",
]

_LAZY = {
    "LongLive": "api",
    "generate": "api",
    "download": "api",
    "decode": "api",
    "report": "quality",
    "BlockDone": "events",
    "Event": "events",
    "Finished": "events",
    "GenerationStarted": "events",
    "Interrupted": "events",
    "PromptSwitched": "events",
    "Plan": "storyboard",
    "StoryboardError": "storyboard",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
