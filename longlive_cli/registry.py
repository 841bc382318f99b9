"""The component registry: samplers, decoders and model architectures, each declared with what it can do.

Every check that depends on a component reads its declaration here, never its name: whether a storyboard's
prompt switches, transitions, shots or image input can be generated, whether relative RoPE applies, the
shortest video a sampler can make, and which latent space a decoder reads. A declaration names its
implementation as ``"module:attribute"`` (imported on first use, so planning, ``validate`` and ``--dry-run``
never import PyTorch) or as the object itself.

* Samplers (:class:`SamplerInfo`): the function
  ``sampler(model, schedule, *, latent_height, latent_width, seed, sampler_config, geometry, times)``
  yielding :class:`~longlive_cli.samplers.base.SampledBlock` (:class:`longlive_cli.samplers.Sampler`).
* Decoders (:class:`DecoderInfo`): a factory ``make(network, *, options, fallbacks) -> Decoder``
  (:class:`longlive_cli.decoders.Decoder`) and a network loader ``load(path) -> torch.nn.Module``
  (``path`` None: tiny random weights, for the ``tiny-random`` model).
* Architectures (:class:`~longlive_cli.architectures.Architecture`, listed in
  :mod:`longlive_cli.architectures`): the model family a spec is built on, its geometry and the
  :class:`~longlive_cli.architectures.LatentSpace` its latents live in.

Third-party components register with :func:`register_sampler` / :func:`register_decoder`, or through
package entry points in the groups ``longlive_cli.samplers`` and ``longlive_cli.decoders`` (the entry
point's name is the component's name, its object a :class:`SamplerInfo` / :class:`DecoderInfo`). Entry
points are read with :mod:`importlib.metadata` only when a name is not registered already, and a plugin is
imported only when its name is asked for (or every name is listed). ``docs/extending.md`` walks through it.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from importlib import metadata
from typing import Any, Literal, TypeVar

from .architectures import ARCHITECTURES, WAN21_LATENTS, WAN22_LATENTS, Architecture, LatentSpace
from .errors import ModelError

__all__ = [
    "ARCHITECTURES",
    "DECODER_GROUP",
    "SAMPLER_GROUP",
    "WAN21_LATENTS",
    "Architecture",
    "ComponentLoadError",
    "DecoderInfo",
    "LatentSpace",
    "SamplerInfo",
    "UnknownComponentError",
    "architecture_info",
    "decoder_info",
    "decoder_names",
    "known_decoders",
    "known_samplers",
    "register_decoder",
    "register_sampler",
    "sampler_info",
    "sampler_names",
    "unregister",
]

SAMPLER_GROUP = "longlive_cli.samplers"
DECODER_GROUP = "longlive_cli.decoders"


class UnknownComponentError(ModelError, ValueError):
    """No sampler/decoder/architecture of that name; ``str()`` lists the known ones (exit 3 when it reaches
    the CLI as it is). Callers turn it into the error of the channel the name came from (a spec file: exit 3
    naming the file; ``--decoder``: exit 2)."""


class ComponentLoadError(ModelError):
    """A component's implementation (a plugin's, most likely) cannot be imported or is not what it declares
    (exit 3); the message names the component and where it comes from."""


_T = TypeVar("_T")


def _resolve(kind: str, name: str, target: str | Callable[..., Any]) -> Any:
    """The object ``target`` names (``"package.module:attribute"``), or ``target`` itself."""
    if not isinstance(target, str):
        return target
    module, _, attribute = target.partition(":")
    try:
        obj: Any = importlib.import_module(module)
        for part in attribute.split(".") if attribute else ():
            obj = getattr(obj, part)
    except Exception as err:  # a plugin may fail in any way while importing; say which one did
        raise ComponentLoadError(
            f"the {kind} {name!r} cannot be loaded from {target}: {type(err).__name__}: {err}. "
            "Fix or reinstall the package that provides it, or choose another one."
        ) from None
    if not callable(obj):
        raise ComponentLoadError(f"the {kind} {name!r}: {target} is not callable")
    return obj


@dataclass(frozen=True)
class SamplerInfo:
    """A sampler and what it can do.

    Attributes:
        name: the name a spec's ``sampler:`` gives.
        implementation: the sampler function, or ``"module:attribute"`` naming it.
        prompt_switches: can change prompt between blocks (a storyboard of several prompts).
        transitions: can generate a block under a blend of two prompts (``transition:``).
        shots: can cut to a new shot (a fresh start inside one video).
        image_input: can start from an image.
        relative_rope: can run with relative temporal RoPE (``rope: relative``).
        min_blocks: the fewest blocks it can make: a number, or ``"denoising_steps"`` (as many blocks as
            the sampler config has denoising steps: a window of S blocks at S noise levels must fill once).
        summary: one line for listings.
    """

    name: str
    implementation: str | Callable[..., Any]
    prompt_switches: bool = True
    transitions: bool = False
    shots: bool = False
    image_input: bool = False
    relative_rope: bool = False
    min_blocks: int | Literal["denoising_steps"] = 1
    summary: str = ""

    def abilities(self) -> str:
        """What it declares, in words (``longlive info``)."""
        can = [
            label
            for label, on in (
                ("prompt switches", self.prompt_switches),
                ("transitions", self.transitions),
                ("shots", self.shots),
                ("image input", self.image_input),
                ("relative RoPE", self.relative_rope),
            )
            if on
        ]
        if self.min_blocks == "denoising_steps":
            least = "one block per denoising step"
        else:
            least = f"{self.min_blocks} block" + ("s" if self.min_blocks != 1 else "")
        return f"{', '.join(can) or 'one prompt'}; at least {least}"

    def minimum_blocks(self, denoising_steps: Sequence[int]) -> int:
        """The fewest blocks a video may have with these ``denoising_steps``."""
        return len(denoising_steps) if self.min_blocks == "denoising_steps" else int(self.min_blocks)

    def load(self) -> Callable[..., Any]:
        """The sampler function.

        Raises:
            ComponentLoadError: the implementation cannot be imported (names the sampler and the target).
        """
        return _resolve("sampler", self.name, self.implementation)


@dataclass(frozen=True)
class DecoderInfo:
    """A streaming decoder and what it needs.

    Attributes:
        name: the name ``--decoder`` and a spec's ``decoder:`` give.
        implementation: ``make(network, *, options, fallbacks) -> Decoder``, or ``"module:attribute"``.
        network: ``load(path) -> torch.nn.Module`` (``path`` None: tiny random weights), or
            ``"module:attribute"``.
        latent_space: the latents it reads (a :class:`~longlive_cli.architectures.LatentSpace` name; must
            be the architecture's); None: whatever latents the model makes (the model's own VAE).
        weights: the default source of its weights (:mod:`longlive_cli.hub` syntax); None: the model's
            own VAE (the spec's ``vae``), which reads whatever latents its model makes.
        summary: one line for listings.
    """

    name: str
    implementation: str | Callable[..., Any]
    network: str | Callable[..., Any]
    latent_space: str | None = WAN21_LATENTS.name
    weights: str | None = None
    summary: str = ""

    def abilities(self) -> str:
        """What it reads and needs, in words (``longlive info``)."""
        reads = "the model's own" if self.latent_space is None else self.latent_space
        weights = "the model's own VAE" if self.weights is None else self.weights
        return f"{reads} latents; {weights}"

    @property
    def uses_model_vae(self) -> bool:
        """Decodes with the model's own VAE (no file of its own)."""
        return self.weights is None

    def load(self) -> Callable[..., Any]:
        """The decoder factory.

        Raises:
            ComponentLoadError: the implementation cannot be imported.
        """
        return _resolve("decoder", self.name, self.implementation)

    def network_loader(self) -> Callable[..., Any]:
        """The network loader.

        Raises:
            ComponentLoadError: the implementation cannot be imported.
        """
        return _resolve("decoder", self.name, self.network)


# The built-in components. Sources: docs/design.md / the samplers' and decoders' module docs.
_SAMPLERS: dict[str, SamplerInfo] = {
    "longlive": SamplerInfo(
        "longlive",
        "longlive_cli.samplers.longlive:sample_longlive",
        transitions=True,
        relative_rope=True,
        summary="LongLive's block sampler with KV re-cache at prompt switches",
    ),
    "rolling-forcing": SamplerInfo(
        "rolling-forcing",
        "longlive_cli.samplers.rolling_forcing:sample_rolling",
        min_blocks="denoising_steps",
        summary="Rolling Forcing's window of S blocks at staggered noise levels",
    ),
    "longlive2": SamplerInfo(
        "longlive2",
        "longlive_cli.samplers.longlive2:sample_longlive2",
        shots=True,
        image_input=True,
        summary="LongLive 2.0's 8-frame blocks with flow UniPC, shots and in-shot re-cache",
    ),
}
_DECODERS: dict[str, DecoderInfo] = {
    "wan": DecoderInfo(
        "wan",
        "longlive_cli.decoders.wan:StreamingDecoder",
        "longlive_cli.decoders.wan:load_network",
        latent_space=None,
        summary="the model's own Wan VAE (Wan2.1 or Wan2.2)",
    ),
    # lightx2v/Autoencoders' model card lists lightvaew2_1.pth, taew2_1.pth and lighttaew2_1.pth (taew2_1 is
    # also madebyollin/taehv's).
    "lightvae": DecoderInfo(
        "lightvae",
        "longlive_cli.decoders.wan:StreamingDecoder",
        "longlive_cli.decoders.lightvae:load_network",
        weights="lightx2v/Autoencoders:lightvaew2_1.pth",
        summary="LightVAE, the Wan VAE with 75 % of its channels pruned",
    ),
    "taehv": DecoderInfo(
        "taehv",
        "longlive_cli.decoders.taehv:make_streaming_decoder",
        "longlive_cli.decoders.taehv:load_taehv_network",
        weights="lightx2v/Autoencoders:taew2_1.pth",
        summary="TAEHV, a tiny conv decoder with temporal memory",
    ),
    "lighttae": DecoderInfo(
        "lighttae",
        "longlive_cli.decoders.taehv:make_streaming_decoder",
        "longlive_cli.decoders.taehv:load_lighttae_network",
        weights="lightx2v/Autoencoders:lighttaew2_1.pth",
        summary="LightTAE, a TAEHV that reads de-normalised latents",
    ),
    # madebyollin/taehv README: "For Wan 2.2 5B, load the taew2_2 weights"; lightx2v/Autoencoders has the
    # same file name (its file list: taew2_2.pth / .safetensors beside lighttaew2_2).
    "taew2_2": DecoderInfo(
        "taew2_2",
        "longlive_cli.decoders.taehv:make_streaming_decoder",
        "longlive_cli.decoders.taehv:load_taew2_2_network",
        latent_space=WAN22_LATENTS.name,
        weights="lightx2v/Autoencoders:taew2_2.pth",
        summary="TAEHV for Wan2.2 latents (48 channels, 16x): tiny and fast, for LongLive 2.0",
    ),
}
_BUILTIN_SAMPLERS = tuple(_SAMPLERS)
_BUILTIN_DECODERS = tuple(_DECODERS)


def _entry_points(group: str) -> dict[str, metadata.EntryPoint]:
    """The installed entry points of ``group`` by name (read anew each time: plugins may be installed while
    the process runs, and tests fake them)."""
    return {ep.name: ep for ep in metadata.entry_points(group=group)}


def _from_entry_point(kind: str, ep: metadata.EntryPoint, expected: type[_T]) -> _T:
    dist = getattr(getattr(ep, "dist", None), "name", None)
    where = f"entry point {ep.value!r}" + (f" of package {dist}" if dist else "")
    try:
        info = ep.load()
    except Exception as err:  # anything a plugin's import raises
        raise ComponentLoadError(
            f"the {kind} plugin {ep.name!r} ({where}) failed to load: {type(err).__name__}: {err}. "
            "Fix or uninstall the package that provides it."
        ) from None
    if not isinstance(info, expected) or getattr(info, "name", None) != ep.name:
        raise ComponentLoadError(
            f"the {kind} plugin {ep.name!r} ({where}) must be a {expected.__name__} named {ep.name!r}, "
            f"got {info!r}"
        )
    return info


def _lookup(kind: str, name: str, table: dict[str, _T], group: str, expected: type[_T]) -> _T:
    if name in table:
        return table[name]
    ep = _entry_points(group).get(name)
    if ep is None:
        known = sorted({*table, *_entry_points(group)})
        raise UnknownComponentError(f"unknown {kind} {name!r}; known: {', '.join(known)}")
    table[name] = _from_entry_point(kind, ep, expected)
    return table[name]


def _register(kind: str, info: _T, table: dict[str, _T], builtins: tuple[str, ...], replace: bool) -> _T:
    name = getattr(info, "name", "")
    if not isinstance(name, str) or not name:
        raise ValueError(f"a {kind} needs a non-empty name, got {name!r}")
    if name in builtins:
        raise ValueError(f"{name!r} is a built-in {kind}; register yours under another name")
    if name in table and not replace:
        raise ValueError(f"a {kind} named {name!r} is registered already (replace=True to replace it)")
    table[name] = info
    return info


def register_sampler(info: SamplerInfo, *, replace: bool = False) -> SamplerInfo:
    """Make the sampler ``info`` declares available under ``info.name`` (a spec's ``sampler:``).

    Raises:
        ValueError: the name is a built-in's, or is taken and ``replace`` is False.
    """
    return _register("sampler", info, _SAMPLERS, _BUILTIN_SAMPLERS, replace)


def register_decoder(info: DecoderInfo, *, replace: bool = False) -> DecoderInfo:
    """Make the decoder ``info`` declares available under ``info.name`` (``--decoder``, a spec's
    ``decoder:``).

    Raises:
        ValueError: the name is a built-in's, or is taken and ``replace`` is False.
    """
    return _register("decoder", info, _DECODERS, _BUILTIN_DECODERS, replace)


def unregister(name: str) -> None:
    """Forget a sampler or decoder registered at run time (built-ins stay)."""
    for table, builtins in ((_SAMPLERS, _BUILTIN_SAMPLERS), (_DECODERS, _BUILTIN_DECODERS)):
        if name not in builtins:
            table.pop(name, None)


def sampler_info(name: str) -> SamplerInfo:
    """The declaration of the sampler ``name`` (registered, built in, or from an entry point).

    Raises:
        UnknownComponentError: no such sampler (the message lists the known ones).
        ComponentLoadError: its plugin fails to load.
    """
    return _lookup("sampler", name, _SAMPLERS, SAMPLER_GROUP, SamplerInfo)


def decoder_info(name: str) -> DecoderInfo:
    """The declaration of the decoder ``name``.

    Raises:
        UnknownComponentError: no such decoder (the message lists the known ones).
        ComponentLoadError: its plugin fails to load.
    """
    return _lookup("decoder", name, _DECODERS, DECODER_GROUP, DecoderInfo)


def architecture_info(name: str) -> Architecture:
    """The declaration of the architecture ``name``.

    Raises:
        UnknownComponentError: no such architecture.
    """
    try:
        return ARCHITECTURES[name]
    except KeyError:
        raise UnknownComponentError(
            f"unknown architecture {name!r}; known: {', '.join(ARCHITECTURES)}"
        ) from None


def known_samplers() -> list[SamplerInfo]:
    """The samplers declared so far (built in, registered, and plugins already loaded), for messages that
    name the ones able to do something: listing them loads no plugin."""
    return list(_SAMPLERS.values())


def known_decoders() -> list[DecoderInfo]:
    """The decoders declared so far (built in, registered, plugins already loaded); loads no plugin."""
    return list(_DECODERS.values())


def sampler_names() -> list[str]:
    """Every sampler name: built in, registered, and installed plugins (not loaded)."""
    return list(dict.fromkeys([*_SAMPLERS, *_entry_points(SAMPLER_GROUP)]))


def decoder_names() -> list[str]:
    """Every decoder name: built in, registered, and installed plugins (not loaded)."""
    return list(dict.fromkeys([*_DECODERS, *_entry_points(DECODER_GROUP)]))
