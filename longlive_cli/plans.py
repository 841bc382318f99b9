"""From whatever a user hands over (a file, YAML text, a mapping) to the plan for a given model. Torch-free.

``longlive validate``, ``generate --dry-run`` and :meth:`longlive_cli.LongLive.plan` all plan through
:func:`plan_storyboard`, so the same storyboard gives the same plan everywhere.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from .geometry import Geometry
from .storyboard import (
    Plan,
    Storyboard,
    load_storyboard,
    make_plan,
    parse_resolution,
    parse_storyboard,
    parse_time,
)

__all__ = ["StoryboardSource", "plan_storyboard", "read_storyboard"]

#: A path (``str`` without a line break, or ``Path``), YAML text (``str`` with a line break), a mapping with
#: the storyboard's keys, or a parsed ``Storyboard``.
StoryboardSource = str | Path | Mapping[str, Any] | Storyboard


def read_storyboard(source: StoryboardSource, geometry: Geometry, *, name: str | None = None) -> Storyboard:
    """Parse and validate ``source`` for a model of ``geometry``; ``name`` labels YAML text in messages
    (e.g. ``<stdin>``).

    Raises:
        StoryboardError: unreadable or invalid (names file, line and field; exit 2).
    """
    if isinstance(source, Storyboard):
        return source
    if isinstance(source, Mapping):
        import yaml

        text = yaml.safe_dump(dict(source), sort_keys=False)
        return parse_storyboard(text, path=name or "<mapping>", geometry=geometry)
    if isinstance(source, str) and ("\n" in source or name is not None):
        return parse_storyboard(source, path=name, geometry=geometry)
    return load_storyboard(source, geometry=geometry)


def plan_storyboard(
    source: StoryboardSource,
    geometry: Geometry,
    *,
    name: str | None = None,
    seed: int | None = None,
    resolution: str | tuple[int, int] | None = None,
    duration: str | float | None = None,
    image: str | None = None,
) -> Plan:
    """The plan of ``source`` (see :func:`read_storyboard`) for a model of ``geometry``.

    ``seed``, ``resolution`` (``"WxH"`` or ``(width, height)`` in pixels) and ``duration`` (seconds, or a time
    such as ``"1:30"``) and ``image`` (a PNG/JPEG path, image-to-video) override the storyboard's values, as
    the command-line options do.

    Raises:
        StoryboardError: the storyboard or an override is invalid (exit 2).
    """
    sb = read_storyboard(source, geometry, name=name)
    width = height = None
    if isinstance(resolution, str):
        width, height = parse_resolution(resolution, field="--resolution")
    elif resolution is not None:
        width, height = resolution
    duration_s = parse_time(duration, field="--duration") if duration is not None else None
    if image is not None:
        from .storyboard.schema import check_image_path

        image = check_image_path(image, field="--image")
    return make_plan(sb, geometry, seed=seed, width=width, height=height, duration_s=duration_s, image=image)
