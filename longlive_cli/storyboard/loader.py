"""Storyboard YAML -> :class:`~.schema.Storyboard`, safely: resource limits, safe tags, node locations.

Only ``yaml.safe_load`` features are understood, with limits checked before the work they bound (see
:func:`parse_storyboard`). The walker reads the composed node tree key by key, so every error names the
file, line, column and field; each value is checked by :mod:`.schema`'s rule for it, and the cross-field
rules (prompt times against the duration and each other) by :func:`~.schema.check_prompts` once the
storyboard is read. Torch-free.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import yaml
from yaml.constructor import ConstructorError
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from ..geometry import WAN21, Geometry
from .errors import StoryboardError, _clip, _short_name
from .schema import (
    _MAX_SCALAR_CHARS,
    MAX_PROMPTS,
    PromptSpec,
    Storyboard,
    WeightedText,
    check_blend,
    check_blend_parts,
    check_cut,
    check_duration,
    check_fps,
    check_image_path,
    check_prompt_count,
    check_prompt_text,
    check_prompts,
    check_seed,
    check_transition,
    check_weight,
    check_weighted_count,
    describe_parts,
    parse_resolution,
    parse_time,
)

__all__ = [
    "MAX_FILE_BYTES",
    "MAX_YAML_DEPTH",
    "MAX_YAML_LINES",
    "MAX_YAML_NODES",
    "MAX_YAML_WRITTEN_NODES",
    "load_storyboard",
    "parse_storyboard",
]

_T = TypeVar("_T")

MAX_FILE_BYTES = 1 << 20  # 1 MiB: a storyboard is a few KiB; anything larger is a mistake or hostile
MAX_YAML_NODES = 100_000  # counted with aliases expanded, so "billion laughs" documents are refused
MAX_YAML_DEPTH = 32  # a storyboard is 4 levels deep; PyYAML's composer recurses per level
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

_TOP_KEYS = ("seed", "resolution", "fps", "duration", "prompts", "image")
_PROMPT_KEYS = ("at", "text", "transition", "blend", "cut")
_REQUIRED_PROMPT_KEYS = ("at", "text")
_PART_KEYS = ("text", "weight")
_YAML_TAG_PREFIX = "tag:yaml.org,2002:"
_INT_TAG = "tag:yaml.org,2002:int"
_MERGE_TAG = "tag:yaml.org,2002:merge"
_MAP_TAG = "tag:yaml.org,2002:map"
_SEQ_TAG = "tag:yaml.org,2002:seq"
_NULL_TAG = "tag:yaml.org,2002:null"
_UNSAFE_TAG_HINT = (
    "storyboards are plain YAML (yaml.safe_load): application tags such as !!python/... are refused, "
    "never run"
)


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

    def compose_node(self, parent: Node | None, index: Any) -> Node | None:
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
            f"invalid YAML: {exc.reason} (found U+{exc.character:04X}); remove it.",
            path=path,
            line=line,
            column=column,
        )
    return StoryboardError(f"invalid YAML: {exc}", path=path)


class _Walker:
    """Turns the composed node tree into a Storyboard, keeping node locations for errors."""

    def __init__(self, loader: _Loader, path: str | None, geometry: Geometry) -> None:
        self.loader = loader
        self.path = path
        self.geometry = geometry
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

    def checked(self, node: Node, check: Callable[..., _T], *args: Any, **kwargs: Any) -> _T:
        """Run a :mod:`.schema` check on the value read from ``node``; its error is located at the node."""
        try:
            return check(*args, **kwargs)
        except StoryboardError as exc:
            raise self.located(exc, node) from None

    def storyboard(self, root: Node) -> Storyboard:
        top = self.mapping(root, None, _TOP_KEYS)
        settings = self.settings(top)
        duration_s = self.duration(top)
        if "prompts" not in top:
            raise StoryboardError(
                "missing; add a list of prompts, e.g. 'prompts: [{at: 0s, text: \"...\"}]'.",
                path=self.path,
                field="prompts",
            )
        prompts = self.prompts(top["prompts"][1])
        return Storyboard(path=self.path, duration_s=duration_s, prompts=prompts, **settings)

    @staticmethod
    def given(top: dict[str, tuple[Node, Node]], name: str) -> Node | None:
        """The value node of an optional key; None when absent or null (null means "use the default")."""
        if name not in top:
            return None
        node = top[name][1]
        if isinstance(node, ScalarNode) and node.tag == _NULL_TAG:
            return None
        return node

    def settings(self, top: dict[str, tuple[Node, Node]]) -> dict[str, Any]:
        """The optional ``seed`` and ``width``/``height`` (when given) and ``fps`` (the model's when not
        given), each checked, as Storyboard keyword arguments."""
        geometry = self.geometry
        kwargs: dict[str, Any] = {"fps": geometry.fps}
        if (node := self.given(top, "seed")) is not None:
            kwargs["seed"] = self.checked(node, check_seed, self.number_or_text(node, "seed"))
        if (node := self.given(top, "resolution")) is not None:
            value = self.value(node, "resolution")
            kwargs["width"], kwargs["height"] = self.checked(node, parse_resolution, value, geometry=geometry)
        if (node := self.given(top, "fps")) is not None:
            kwargs["fps"] = self.checked(node, check_fps, self.value(node, "fps"), geometry)
        if (node := self.given(top, "image")) is not None:
            kwargs["image"] = self.checked(node, check_image_path, self.value(node, "image"), field="image")
        return kwargs

    def duration(self, top: dict[str, tuple[Node, Node]]) -> float:
        """The required ``duration`` in seconds, checked against the model's limits."""
        if "duration" not in top:
            raise StoryboardError(
                "missing; say how long the video is, e.g. 'duration: 60s'.", path=self.path, field="duration"
            )
        node = top["duration"][1]
        duration_s = self.checked(node, parse_time, self.number_or_text(node, "duration"), field="duration")
        self.checked(node, check_duration, duration_s, self.geometry)
        return duration_s

    def prompts(self, node: Node) -> tuple[PromptSpec, ...]:
        if not isinstance(node, SequenceNode):
            raise self.error(
                f"must be a list of entries with 'at' and 'text'; got {self._kind(node)}.", node, "prompts"
            )
        self.plain_tag(node, _SEQ_TAG, "prompts")
        self.checked(node, check_prompt_count, len(node.value))
        return tuple(self.prompt(item, f"prompts[{i}]") for i, item in enumerate(node.value))

    def prompt(self, item: Node, field_name: str) -> PromptSpec:
        """One prompt entry: its ``at`` time and ``text`` (a string, or a list of weighted texts), its
        optional ``transition`` and ``blend``, each checked and located at its value; the PromptSpec keeps
        the entry's line and column."""
        entry = self.mapping(item, field_name, _PROMPT_KEYS)
        for required in _REQUIRED_PROMPT_KEYS:
            if required not in entry:
                raise self.error(
                    f"missing key {required!r}; each prompt needs 'at' and 'text'.", item, field_name
                )
        at_node, at_field = entry["at"][1], f"{field_name}.at"
        at_s = self.checked(at_node, parse_time, self.number_or_text(at_node, at_field), field=at_field)
        text_node, text_field = entry["text"][1], f"{field_name}.text"
        parts: tuple[WeightedText, ...] = ()
        if isinstance(text_node, SequenceNode):
            parts = self.parts(text_node, text_field)
            text = describe_parts(parts)
        else:
            text = self.checked(
                text_node,
                check_prompt_text,
                self.value(text_node, text_field),
                field=text_field,
                geometry=self.geometry,
            )
        extra: dict[str, Any] = {}
        if (node := self.given(entry, "transition")) is not None:
            field = f"{field_name}.transition"
            extra["transition_s"] = self.checked(
                node, check_transition, self.number_or_text(node, field), field=field
            )
        if (node := self.given(entry, "blend")) is not None:
            field = f"{field_name}.blend"
            extra["blend"] = self.checked(node, check_blend, self.value(node, field), field=field)
            self.checked(node, check_blend_parts, extra["blend"], len(parts), field=field)
        if (node := self.given(entry, "cut")) is not None:
            field = f"{field_name}.cut"
            extra["cut"] = self.checked(node, check_cut, self.value(node, field), field=field)
            if extra["cut"] and (parts or extra.get("transition_s")):
                raise self.error(
                    "a cut starts a new shot from one plain text: remove the weighted texts or the "
                    "transition.",
                    node,
                    field,
                )
        mark = item.start_mark
        return PromptSpec(
            at_s=at_s, text=text, line=mark.line + 1, column=mark.column + 1, parts=parts, **extra
        )

    def parts(self, node: SequenceNode, field: str) -> tuple[WeightedText, ...]:
        """A prompt's list of weighted texts, ``- {text: "...", weight: 0.7}`` each."""
        if any(not isinstance(item, MappingNode) for item in node.value):  # e.g. [a, b]: not weighted texts
            raise self.error(
                "a list of plain values is not a prompt; the text must be a string (put it in quotes), or a "
                'list of weighted texts such as [{text: "...", weight: 0.7}, {text: "...", weight: 0.3}].',
                node,
                field,
            )
        self.plain_tag(node, _SEQ_TAG, field)
        self.checked(node, check_weighted_count, len(node.value), field=field)
        parts = []
        for j, item in enumerate(node.value):
            where = f"{field}[{j}]"
            entry = self.mapping(item, where, _PART_KEYS)
            for required in _PART_KEYS:
                if required not in entry:
                    raise self.error(
                        f'missing key {required!r}; each weighted text is {{text: "...", weight: 0.5}}.',
                        item,
                        where,
                    )
            text_node, weight_node = entry["text"][1], entry["weight"][1]
            text = self.checked(
                text_node,
                check_prompt_text,
                self.value(text_node, f"{where}.text"),
                field=f"{where}.text",
                geometry=self.geometry,
            )
            value = self.number_or_text(weight_node, f"{where}.weight")
            weight = self.checked(weight_node, check_weight, value, field=f"{where}.weight")
            parts.append(WeightedText(text, weight))
        return tuple(parts)


def _count_line_breaks(text: str) -> int:
    # YAML line breaks: LF, CR, CRLF (one break), NEL, LS, PS. str.count runs in C: ~1 ms per MiB.
    breaks = text.count("\n") + text.count("\r") - text.count("\r\n")
    return breaks + text.count("\x85") + text.count("\u2028") + text.count("\u2029")


def parse_storyboard(text: str | bytes, *, path: str | None = None, geometry: Geometry = WAN21) -> Storyboard:
    """Parse and validate storyboard YAML ``text``; ``path`` is only used to locate errors.

    ``text`` may also be the file's bytes (UTF-8, optional BOM). Only ``yaml.safe_load`` features are
    understood: a ``!!python/...`` or other application tag is an error, never executed.
    Validates everything :func:`~.plan.make_plan` would with the file's own values and the same
    ``geometry`` (the model's fps, block size and longest video; :data:`~longlive_cli.geometry.WAN21` by
    default), by the same checks (:mod:`.schema`), so a storyboard that parses also plans. A storyboard
    without ``fps`` gets ``geometry.fps``.

    Resource limits, all checked before the work they bound: 1 MiB of text, 100 000 lines (counted
    before parsing), 10 000 YAML nodes as written, 1000 items in any list and 32 levels of nesting
    (checked while composing, so a hostile file fails within a fraction of a second), 100 000 nodes and
    32 levels with aliases expanded ("billion laughs"), 64 characters for a number, time or resolution.

    Raises:
        StoryboardError: for text over a limit above, invalid YAML or UTF-8, recursive aliases, and any
            storyboard rule broken (see :mod:`.schema`). Never another exception for any input text.
    """
    if isinstance(text, (bytes, bytearray)):
        text = _decode(bytes(text), path)
    _check_text_size(text, path)
    if text.startswith("\ufeff"):
        text = text[1:]
    try:
        loader = _Loader(text)  # the reader rejects control characters here
    except yaml.YAMLError as exc:
        raise _yaml_error(exc, text, path) from None
    try:
        root = _compose(loader, text, path)
        _check_expanded_size(root, path=path)
        try:
            sb = _Walker(loader, path, geometry).storyboard(root)
        except yaml.YAMLError as exc:  # constructor errors (bad tags, bad merges)
            raise _yaml_error(exc, text, path) from None
        except _BadScalar as exc:  # pragma: no cover - _Walker.value turns these into StoryboardError
            mark = exc.node.start_mark
            raise StoryboardError(
                exc.message, path=path, line=mark.line + 1, column=mark.column + 1
            ) from None
    finally:
        loader.dispose()
    # The cross-field rules (times vs duration, block collisions); errors carry the prompts' lines.
    check_prompts(sb.prompts, sb.duration_s, geometry, path=path)
    return sb


def _check_text_size(text: str, path: str | None) -> None:
    """The byte and line limits, checked before any parsing."""
    if len(text) > MAX_FILE_BYTES or len(text.encode("utf-8", "surrogatepass")) > MAX_FILE_BYTES:
        raise StoryboardError(
            f"the storyboard is larger than {MAX_FILE_BYTES // 1024} KiB; a storyboard needs far less.",
            path=path,
        )
    lines = _count_line_breaks(text)
    if lines > MAX_YAML_LINES:
        raise StoryboardError(
            f"the storyboard has {lines} lines, more than the limit of {MAX_YAML_LINES}; a storyboard of "
            f"at most {MAX_PROMPTS} prompts needs far fewer. Is this the right file?",
            path=path,
        )


def _compose(loader: _Loader, text: str, path: str | None) -> Node:
    """The document's root node, with the composer's limits turned into located StoryboardErrors."""
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
        raise _too_many_items_error(exc, path) from None
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
    return root


def _too_many_items_error(exc: _TooManyItems, path: str | None) -> StoryboardError:
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
    return StoryboardError(message, path=path, line=mark.line + 1, column=mark.column + 1, field=field_name)


def load_storyboard(path: str | Path, *, geometry: Geometry = WAN21) -> Storyboard:
    """Read a storyboard file (UTF-8, optional BOM, at most 1 MiB) and validate it for ``geometry``
    (see :func:`parse_storyboard`).

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
    return parse_storyboard(_decode(data, shown), path=shown, geometry=geometry)


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
