"""The ``longlive`` command: parse arguments, call the library, render its events, map errors to exit codes.

Every command runs inside :func:`_errors_to_exit`, the one place where a :class:`~longlive_cli.errors.
LongLiveError` becomes ``error: <message>`` on standard error and its exit code (``--debug`` adds the
traceback). Options shared by several commands are declared once, below. Heavy libraries (torch, diffusers)
are imported only by the commands that compute: ``--help``, ``validate``, ``info`` and ``generate --dry-run``
never import torch.
"""

from __future__ import annotations

import contextlib
import logging
import sys
from collections.abc import Iterator
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from . import __version__
from .errors import (
    EXIT_BAD_INPUT,
    EXIT_FAILURE,
    EXIT_MODEL,
    EXIT_OUTPUT,
    EXIT_PARTIAL,
    EXIT_SIGINT,
    EXIT_SIGTERM,
    InputError,
    LongLiveError,
    exit_code_for,
)
from .logs import setup_logging
from .models.spec import DEFAULT_MODEL

if TYPE_CHECKING:
    from .jsonl import JsonLines
    from .live import LiveOptions
    from .signals import StopSignals

__all__ = ["EXIT_BAD_INPUT", "EXIT_FAILURE", "EXIT_MODEL", "EXIT_OUTPUT", "EXIT_PARTIAL", "app", "main"]


app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    help="Long video generation from timed-prompt storyboards with LongLive (Wan2.1-T2V-1.3B).",
)


class Device(str, Enum):
    auto = "auto"
    cpu = "cpu"
    cuda = "cuda"


class DType(str, Enum):
    auto = "auto"
    bf16 = "bf16"
    fp16 = "fp16"
    float32 = "float32"


class CacheAction(str, Enum):
    list = "list"
    clear = "clear"


class CacheWhat(str, Enum):
    converted = "converted"
    embeddings = "embeddings"
    all = "all"


class Quantize(str, Enum):  # models.spec.QUANTIZE_SCHEMES
    int8 = "int8"
    int8_weights = "int8-weights"
    fp8 = "fp8"


class SavedQuantize(str, Enum):  # the schemes `longlive quantize` can write
    int8 = "int8"
    int8_weights = "int8-weights"


class Scheme(str, Enum):  # the old --scheme spelling (hidden, warns)
    w8a8 = "w8a8"
    w8 = "w8"
    fp8 = "fp8"


class Attention(str, Enum):  # the keys of runtime.ATTENTION_BACKENDS (a test keeps them equal)
    sdpa = "sdpa"
    sdpa_flash = "sdpa-flash"
    sdpa_efficient = "sdpa-efficient"
    sdpa_cudnn = "sdpa-cudnn"
    sdpa_math = "sdpa-math"
    flash_attn = "flash-attn"
    flash_attn_3 = "flash-attn-3"


class Rope(str, Enum):  # models.spec.ROPE_NAMES (a test keeps them equal)
    absolute = "absolute"
    relative = "relative"


class CompileMode(str, Enum):  # torch.compile modes
    default = "default"
    reduce_overhead = "reduce-overhead"
    max_autotune = "max-autotune"
    max_autotune_no_cudagraphs = "max-autotune-no-cudagraphs"


# --------------------------------------------------------------------------- options, declared once
SPEED = "Speed (each on by default with CUDA, off on CPU; the video is the same up to rounding)"
OFFLINE_HELP = "Use only the local Hugging Face cache (or HF_HUB_OFFLINE=1)."

ModelOpt = Annotated[str, typer.Option("--model", "-m", help="Preset, spec file or folder.")]
LoraOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--lora",
        metavar="SOURCE[:SCALE]",
        help="A Wan2.1-T2V-1.3B LoRA merged into the model at load time, scaled (default 1): a local "
        "file or owner/repo:path on the Hub; diffusers/peft, original Wan (diffusion_model.*) or "
        "kohya (lora_unet_*) keys. Repeatable.",
        show_default=False,
    ),
]
DeviceOpt = Annotated[Device, typer.Option(help="Where to run.")]
DTypeOpt = Annotated[
    DType,
    typer.Option(help="Transformer precision [auto: bf16 on CUDA, float32 on CPU]; VAE: float32 on CPU."),
]
TextDTypeOpt = Annotated[
    DType,
    typer.Option("--text-dtype", help="Text encoder precision [auto: the dtype its weights are stored in]."),
]
OfflineOpt = Annotated[bool, typer.Option("--offline", help=OFFLINE_HELP)]
ForceOpt = Annotated[bool, typer.Option("--force", "-f", help="Overwrite existing outputs.")]
QuietOpt = Annotated[
    bool, typer.Option("--quiet", "-q", help="Print only errors and the final summary lines.")
]
JsonOpt = Annotated[
    bool, typer.Option("--json", help="One JSON object per event on stdout; messages on stderr.")
]
DebugOpt = Annotated[bool, typer.Option("--debug", help="Show tracebacks.")]


# generate's own (and those `live` will share)
StoryboardsArg = Annotated[
    list[str],
    typer.Argument(help="Storyboard YAML files; - reads one from standard input.", show_default=False),
]
OutputOpt = Annotated[
    str | None,
    typer.Option("-o", "--output", help="MP4 to write; a folder (or a path ending in /) for <name>.mp4."),
]
SeedOpt = Annotated[int | None, typer.Option(help="Noise seed; overrides the storyboards'.", min=0)]
SeedOffsetOpt = Annotated[int, typer.Option(help="Added to every seed (for variants).", min=0)]
ResolutionOpt = Annotated[
    str | None,
    typer.Option(metavar="WxH", help="WxH in pixels, multiples of 16; overrides [default: model's native]."),
]
DurationOpt = Annotated[
    str | None, typer.Option(metavar="TIME", help="Video length (e.g. 30s, 1:30); overrides.")
]
ImageOpt = Annotated[
    str | None,
    typer.Option(
        metavar="PATH",
        help="PNG/JPEG that starts the video (image-to-video, LongLive 2.0 models); overrides image:.",
    ),
]
ShardOpt = Annotated[str | None, typer.Option(help="K/N: generate only the K-th of N deterministic slices.")]
FailFastOpt = Annotated[bool, typer.Option("--fail-fast", help="Stop at the first failed storyboard.")]
KeepPartialOpt = Annotated[
    bool, typer.Option(help="On Ctrl-C/SIGTERM keep the video so far as <name>.partial.mp4.")
]
SaveLatentsOpt = Annotated[
    Path | None,
    typer.Option(help="Also save the latents (safetensors) for `longlive decode` (one storyboard)."),
]
QuantizeOpt = Annotated[
    Quantize | None,
    typer.Option(
        "--quantize",
        help="Quantize the transformer in memory after loading: int8 (int8 weights, int8 activations "
        "quantized per token at run time), int8-weights (int8 weights only), or fp8 (float8 weights and "
        "activations; CUDA, compute capability >= 8.9).",
    ),
]
Int8Opt = Annotated[bool, typer.Option("--int8", hidden=True, help="Old spelling of --quantize int8.")]
SchemeOpt = Annotated[Scheme | None, typer.Option(hidden=True, help="Old: with --int8, w8a8, w8 or fp8.")]
DecoderOpt = Annotated[
    str | None,
    typer.Option(
        metavar="NAME",
        help="Decoder: wan (the Wan VAE, best), lightvae (pruned Wan VAE), taehv / lighttae (tiny and fast), "
        "taew2_2 (tiny and fast, for LongLive 2.0's Wan2.2 latents), or one an installed plugin declares "
        "[default: the model's].",
    ),
]
DryRunOpt = Annotated[
    bool, typer.Option("--dry-run", help="Print the plans and each part's precision, and exit.")
]
RopeOpt = Annotated[
    Rope | None,
    typer.Option(
        help="Temporal RoPE: absolute (the model's table: at most 240 s) or relative (a frame's rank in the "
        "attention window: no length limit) [default: the model's; longlive-1.3b-infinite is relative]."
    ),
]
EmbedCacheOpt = Annotated[
    bool,
    typer.Option(
        "--embed-cache/--no-embed-cache",
        help="Reuse and store prompt embeddings (`longlive cache` lists them).",
    ),
]
MemoryCheckOpt = Annotated[
    bool,
    typer.Option(
        "--memory-check/--no-memory-check",
        help="Refuse, before loading, a run whose estimated peak memory does not fit "
        "(LONGLIVE_NO_MEMORY_CHECK=1 also skips it).",
    ),
]


# report's own (and generate's / live's --report)
WithReportOpt = Annotated[
    bool,
    typer.Option(
        "--report",
        help="Also write a quality report (as `longlive report`) beside the video: <name>_report/.",
    ),
]


# live's own
RecordingOpt = Annotated[Path | None, typer.Option("-o", "--output", help="Record the session to this MP4.")]
StreamOpt = Annotated[
    str | None,
    typer.Option(
        metavar="TARGET",
        help="Stream MPEG-TS as it is made: - (stdout), udp://, srt://, rtmp://, a .ts path.",
    ),
]
PromptOpt = Annotated[str | None, typer.Option(help="The first prompt (else the first line read).")]
PromptsFromOpt = Annotated[
    Path | None,
    typer.Option(
        help="Read prompts from this FIFO or file instead of stdin; a file is followed from its end, as "
        "tail -f (--from-start: from its first line)."
    ),
]
FromStartOpt = Annotated[
    bool,
    typer.Option(
        "--from-start",
        help="With --prompts-from a regular file: read it from its first line (else only lines added after "
        "the start, as tail -f).",
    ),
]
RealtimeOpt = Annotated[
    bool, typer.Option("--realtime", help="Let the stream's frames out at the video's fps.")
]
EventsFileOpt = Annotated[Path | None, typer.Option("--events", help="Write the JSON events to this file.")]
LiveSeedOpt = Annotated[
    int | None,
    typer.Option(help="Noise seed [default: a random one, written in the session storyboard].", min=0),
]
LiveResolutionOpt = Annotated[
    str | None,
    typer.Option(metavar="WxH", help="WxH in pixels, multiples of 16 [default: the model's native]."),
]
LiveDurationOpt = Annotated[
    str | None,
    typer.Option(
        metavar="TIME",
        help="Planned length (e.g. 30s, 1:30) [default: the model's longest, at most 1 h; without "
        "--duration the end of standard input finishes the video].",
    ),
]
LiveSaveLatentsOpt = Annotated[
    Path | None, typer.Option(help="Also save the session's latents (safetensors) for `longlive decode`.")
]
LiveImageOpt = Annotated[
    str | None,
    typer.Option(
        metavar="PATH",
        help="PNG/JPEG that starts the session (image-to-video, LongLive 2.0 models); kept as image: in the "
        "session storyboard.",
    ),
]
SaveSessionOpt = Annotated[
    Path | None, typer.Option(help="The session storyboard [default: the recording's name with .yaml].")
]


def _switch(name: str, help: str) -> Any:
    return typer.Option(f"--{name}/--no-{name}", help=help, rich_help_panel=SPEED, show_default=False)


CompileOpt = Annotated[
    bool | None, _switch("compile", "torch.compile the transformer blocks (first blocks wait).")
]
CompileModeOpt = Annotated[
    CompileMode,
    typer.Option(help="torch.compile mode; reduce-overhead adds CUDA graphs.", rich_help_panel=SPEED),
]
FusedQkvOpt = Annotated[bool | None, _switch("fused-qkv", "One matmul for self-attention Q, K and V.")]
StaticCacheOpt = Annotated[
    bool | None, _switch("static-cache", "Same-shape KV cache reads in every pass (needed by --compile).")
]
RopeCacheOpt = Annotated[
    bool | None, _switch("rope-cache", "Build RoPE tables once per resolution and block.")
]
OverlapOpt = Annotated[
    bool | None, _switch("overlap", "Decode and encode each block while the next is generated.")
]
CompileDecoderOpt = Annotated[
    bool | None, _switch("compile-decoder", "torch.compile the Wan VAE's per-frame decode (off by default).")
]
StrictSpeedOpt = Annotated[
    bool,
    typer.Option(
        "--strict-speed",
        help="A speed option that fails is an error, not switched off.",
        rich_help_panel=SPEED,
    ),
]
AttentionOpt = Annotated[
    Attention | None,
    typer.Option(help="Attention kernel (default: PyTorch SDPA picks one).", rich_help_panel=SPEED),
]


# --------------------------------------------------------------------------- errors -> exit codes
@contextlib.contextmanager
def _errors_to_exit(debug: bool) -> Iterator[None]:
    """Turn an error into ``error: <message>`` and its exit code (:mod:`longlive_cli.errors`); with ``debug``
    the traceback too. An error that is not a :class:`LongLiveError` is a failure (exit 1)."""
    try:
        yield
    except (typer.Exit, typer.Abort, KeyboardInterrupt):
        raise
    except Exception as err:
        if debug:
            import traceback

            traceback.print_exception(err)
        from .terminal import printable

        message = str(err) if isinstance(err, LongLiveError) else f"{type(err).__name__}: {err}"
        typer.echo(f"error: {printable(message, newlines=True)}", err=True)
        raise typer.Exit(exit_code_for(err)) from None


class _Command(typer.core.TyperCommand):
    """A command whose help is shown as written: ``[`` escaped for Rich (else ``[default: ...]`` in a help
    string is read as markup and vanishes), no value placeholder on a flag (``--force``, not
    ``--force <bool>``) and ``PATH``/``TEXT``/``N`` for the others, unless an option names its own
    (``metavar=``)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if self.help:
            self.help = self.help.replace("[", "\\[")

    def invoke(self, ctx: Any) -> Any:
        """Run the command with Python's own Ctrl-C behaviour back (``KeyboardInterrupt``) in place of
        :func:`main`'s start-up handler; a command that generates installs its stop handlers first thing."""
        from .signals import command_started

        command_started()
        return super().invoke(ctx)

    def get_params(self, ctx: Any) -> list[Any]:
        params = super().get_params(ctx)  # with --help, which Click adds here
        for param in params:
            if not getattr(param, "_longlive_tidy", False):
                _tidy(param)
        return params


def _tidy(param: Any) -> None:
    param._longlive_tidy = True
    if isinstance(param, typer.core.TyperOption | typer.core.TyperArgument) and param.help:
        param.help = param.help.replace("[", "\\[")
    if not isinstance(param, typer.core.TyperOption) or param.metavar is not None:
        return
    kind = getattr(param, "type_descriptor", None)
    if param.is_flag:
        param.metavar = ""
    elif kind is not None and kind.is_path:
        param.metavar = "PATH"
    elif kind is not None and kind.annotation is int:
        param.metavar = "N"
    elif kind is not None and kind.annotation is str:
        param.metavar = "TEXT"


# --------------------------------------------------------------------------- generate
@app.command("generate", cls=_Command)
def generate_command(
    storyboards: StoryboardsArg,
    output: OutputOpt = None,
    model: ModelOpt = DEFAULT_MODEL,
    lora: LoraOpt = None,
    device: DeviceOpt = Device.auto,
    dtype: DTypeOpt = DType.auto,
    text_dtype: TextDTypeOpt = DType.auto,
    seed: SeedOpt = None,
    seed_offset: SeedOffsetOpt = 0,
    resolution: ResolutionOpt = None,
    duration: DurationOpt = None,
    image: ImageOpt = None,
    shard: ShardOpt = None,
    force: ForceOpt = False,
    fail_fast: FailFastOpt = False,
    keep_partial: KeepPartialOpt = True,
    offline: OfflineOpt = False,
    save_latents: SaveLatentsOpt = None,
    rope: RopeOpt = None,
    decoder: DecoderOpt = None,
    quantize: QuantizeOpt = None,
    int8: Int8Opt = False,
    scheme: SchemeOpt = None,
    embed_cache: EmbedCacheOpt = True,
    memory_check: MemoryCheckOpt = True,
    dry_run: DryRunOpt = False,
    json_out: JsonOpt = False,
    quiet: QuietOpt = False,
    debug: DebugOpt = False,
    compile: CompileOpt = None,
    compile_mode: CompileModeOpt = CompileMode.default,
    fused_qkv: FusedQkvOpt = None,
    static_cache: StaticCacheOpt = None,
    rope_cache: RopeCacheOpt = None,
    overlap: OverlapOpt = None,
    compile_decoder: CompileDecoderOpt = None,
    attention: AttentionOpt = None,
    strict_speed: StrictSpeedOpt = False,
    with_report: WithReportOpt = False,
) -> None:
    """Generate continuous videos from storyboards (several run one after another with one model load)."""
    from .batch import BatchRun

    setup_logging(quiet=quiet or json_out, debug=debug)
    with _errors_to_exit(debug):
        quantization = _quantization(quantize, int8, scheme)
        overrides = {"seed": seed, "resolution": resolution, "duration": duration, "image": image}
        where: dict[str, Any] = dict(output=output, model=model, shard=shard, save_latents=save_latents)
        how: dict[str, Any] = dict(
            force=force, dry_run=dry_run, json_out=json_out, rope=_value(rope), decoder=decoder
        )
        run = BatchRun.prepare(storyboards, overrides=overrides, loras=lora or (), **where, **how)
        run.with_report = with_report
    run.plan_all(fail_fast=fail_fast, on_plan=_print_plan if dry_run else None)
    if dry_run and run.jobs and not json_out:
        with _errors_to_exit(debug):
            _print_precision(model, device.value, dtype.value, text_dtype.value)
    if run.finished or dry_run:
        _finish(run)
    load: dict[str, Any] = dict(device=device.value, dtype=dtype.value, text_dtype=text_dtype.value)
    load |= dict(
        offline=offline, embed_cache=embed_cache, memory_check=memory_check, options=_speed(locals())
    )
    try:
        run.load(int8=quantization, **load)
    except Exception as err:
        run.model_failed(err)
        with _errors_to_exit(debug):
            raise
    _generate_jobs(
        run, seed_offset=seed_offset, keep_partial=keep_partial, quiet=quiet, debug=debug, report=with_report
    )
    _finish(run)


def _value(option: Enum | None) -> str | None:
    """A choice option's value, or None when not given."""
    return option.value if option is not None else None


def _finish(run: Any) -> None:
    code, counts = run.finish()
    if counts:
        typer.echo(counts, err=True)
    raise typer.Exit(code)


def _print_plan(name: str, plan: Any) -> None:
    from .storyboard import format_plan

    typer.echo(f"{name}:\n{format_plan(plan)}")


def _print_precision(model: str, device: str, dtype: str, text_dtype: str) -> None:
    """Each part's precision for ``device`` (both devices for ``auto``), without importing torch."""
    from .models.spec import resolve_model
    from .precision import choose_dtypes, text_stored_dtype

    spec = resolve_model(model)
    stored = text_stored_dtype(spec)
    for dev in ("cpu", "cuda") if device == "auto" else (device,):
        where = "CUDA" if dev == "cuda" else "the CPU"
        try:
            dtypes = choose_dtypes(dev, dtype=dtype, text_dtype=text_dtype, text_stored=stored)
        except ValueError as err:
            raise InputError(str(err)) from None
        typer.echo(f"precision on {where}: {dtypes.describe()}")


def _generate_jobs(
    run: Any, *, seed_offset: int, keep_partial: bool, quiet: bool, debug: bool, report: bool = False
) -> None:
    """Generate the planned jobs one after another, rendering each one's events (``report``: and report on
    each finished video)."""
    from .errors import GenerationError, OutputError
    from .events import Finished, Interrupted
    from .progress import make_reporter
    from .signals import StopSignals

    with StopSignals() as stop:
        for job, plan in run.planned():
            try:
                with make_reporter(quiet=quiet or run.events is not None) as reporter:
                    for event in run.stream(job, plan, seed_offset, stop.requested, keep_partial):
                        reporter.handle(event)
                        if isinstance(event, Interrupted):
                            kept = f"kept {event.path}" if event.path else "nothing kept"
                            typer.echo(f"stopped after {event.duration_s:.2f} s of video: {kept}", err=True)
                        elif isinstance(event, Finished) and report and event.path is not None:
                            _report_beside(event.path, plan, force=run.force, quiet=quiet, events=run.events)
                run.job_ended(job, stop)
            except KeyboardInterrupt:
                run.job_aborted(job, stop.exit_code)
                typer.echo("aborted: the unfinished video was removed", err=True)
            except (OutputError, GenerationError) as err:
                run.report(job, err)
            except Exception as err:  # a runtime failure of this storyboard; the others go on
                if debug:
                    raise
                run.report(job, GenerationError(f"generation failed: {type(err).__name__}: {err}"))
            if run.should_stop(job):
                break


# --------------------------------------------------------------------------- live
@app.command(cls=_Command)
def live(
    output: RecordingOpt = None,
    stream: StreamOpt = None,
    prompt: PromptOpt = None,
    prompts_from: PromptsFromOpt = None,
    duration: LiveDurationOpt = None,
    from_start: FromStartOpt = False,
    realtime: RealtimeOpt = False,
    events_file: EventsFileOpt = None,
    save_session: SaveSessionOpt = None,
    model: ModelOpt = DEFAULT_MODEL,
    rope: RopeOpt = None,
    lora: LoraOpt = None,
    decoder: DecoderOpt = None,
    seed: LiveSeedOpt = None,
    resolution: LiveResolutionOpt = None,
    save_latents: LiveSaveLatentsOpt = None,
    image: LiveImageOpt = None,
    device: DeviceOpt = Device.auto,
    dtype: DTypeOpt = DType.auto,
    quantize: QuantizeOpt = None,
    int8: Int8Opt = False,
    scheme: SchemeOpt = None,
    force: ForceOpt = False,
    offline: OfflineOpt = False,
    json_out: JsonOpt = False,
    quiet: QuietOpt = False,
    debug: DebugOpt = False,
    compile: CompileOpt = None,
    fused_qkv: FusedQkvOpt = None,
    static_cache: StaticCacheOpt = None,
    rope_cache: RopeCacheOpt = None,
    overlap: OverlapOpt = None,
    compile_decoder: CompileDecoderOpt = None,
    attention: AttentionOpt = None,
    strict_speed: StrictSpeedOpt = False,
    with_report: WithReportOpt = False,
) -> None:
    """Steer a video while it is made: prompts one per line (stdin or --prompts-from), recorded, streamed.

    Each new line switches the prompt at the next block. Commands: :quit (finish here), :pause / :resume,
    :transition 2s [linear|slerp] (the next prompt blends in over 2 s), :cut (the next prompt starts a new
    shot; LongLive 2.0 models), :help. The end of standard input
    finishes the video without --duration, and only ends the reading with it. Exit codes: 0 done, 2 bad
    option or no first prompt, 3 model, 4 output, 130/143 Ctrl-C/SIGTERM.
    """
    from .signals import StopSignals

    # Ctrl-C / SIGTERM: a stop request from here on (the imports below take a while, then checks, load)
    with _errors_to_exit(debug), StopSignals() as stop:
        from .jsonl import JsonLines
        from .live import LiveOptions, check_options
        from .models.spec import check_image, resolve_spec

        setup_logging(quiet=quiet or json_out, debug=debug)
        if with_report:
            _check_report_target(output, force)
        quantization = _quantization(quantize, int8, scheme)
        speed = _speed(locals())
        opts = LiveOptions(
            output, stream, realtime, prompt, prompts_from, duration, seed, resolution, save_session, force
        )
        opts.rope, opts.from_start, opts.image = _value(rope), from_start, image
        load: dict[str, Any] = dict(
            model=model, device=device.value, dtype=dtype.value, options=speed, offline=offline
        )
        load |= dict(int8=quantization, rope=_value(rope), loras=lora or (), decoder=decoder)
        # Every option is checked before anything is loaded (or any file created).
        spec = resolve_spec(model, _value(rope), lora or (), decoder)
        check_image(spec, image is not None)
        outputs = {"--events": events_file, "--save-latents": save_latents}
        check_options(opts, spec.geometry, json_to_stdout=json_out, outputs=outputs)
        events = JsonLines(open(events_file, "w", encoding="utf-8")) if events_file else None  # noqa: SIM115
        events = events or (JsonLines() if json_out else None)
        code = _run_live(opts, load, save_latents, stop, events, quiet=quiet or json_out, spec=spec)
        if with_report and code == 0:
            _report_live(opts, quiet=quiet, events=events)
    raise typer.Exit(code)


def _report_live(opts: LiveOptions, *, quiet: bool, events: JsonLines | None) -> None:
    """``live --with-report``: the report beside the finished recording, with the session storyboard."""
    output = opts.recording
    if output is None or not output.is_file():
        return
    session = opts.session_path
    story = session if session is not None and session.is_file() else None
    _report_beside(output, None, force=opts.force, quiet=quiet, storyboard=story, events=events)


def _run_live(
    opts: LiveOptions,
    load: dict[str, Any],
    save_latents: Path | None,
    stop: StopSignals,
    events: JsonLines | None,
    *,
    quiet: bool,
    spec: Any,
) -> int:
    """Start reading prompts, load, start the session, render its events; the exit code (130/143 after
    Ctrl-C/SIGTERM, 4 when the only output, the stream, failed)."""
    from .errors import OutputError
    from .events import Aborted
    from .live import NO_FIRST_PROMPT, StoppedBeforeFirstPrompt, close_session, open_prompts, start_session
    from .registry import sampler_info

    info = sampler_info(spec.sampler.name)
    reader = open_prompts(
        opts, spec.geometry, stopping=stop.requested, transitions=info.transitions, shots=info.shots
    )
    session = None
    try:
        if opts.prompt is None and reader.eof.wait(0.2) and not reader.schedule.has_prompt():
            raise InputError(NO_FIRST_PROMPT)  # e.g. < /dev/null: known before loading anything
        if stop.requested():  # Ctrl-C / SIGTERM during the checks: nothing to load
            typer.echo("stopped before loading: nothing was made", err=True)
            return stop.exit_code
        from .api import LongLive  # torch: only now

        ll = LongLive.from_pretrained(load.pop("model"), **load)
        ll.load()
        try:
            session, _ = start_session(ll, opts, stopping=stop.requested, reader=reader)
        except StoppedBeforeFirstPrompt as err:
            typer.echo(str(err), err=True)
            return stop.exit_code
        interrupted, stream_error = _render_live(session, opts, save_latents, stop, events, quiet)
    except KeyboardInterrupt:  # a second Ctrl-C / SIGTERM: abandon at once
        if events:
            events.event(Aborted(stop.exit_code))
        typer.echo("aborted: the unfinished video was removed", err=True)
        return stop.exit_code
    finally:
        if session is not None:
            close_session(session)
            session.ll.release_text_encoder()
        reader.stop()
    if interrupted or stop.requested():  # a stop after the last block: the video is whole, still 130/143
        return stop.exit_code
    if stream_error is not None and opts.recording is None:
        raise OutputError(f"{stream_error}; nothing was recorded (no -o)")
    return 0


def _render_live(
    session: Any, opts: Any, save_latents: Path | None, stop: Any, events: Any, quiet: bool
) -> tuple[bool, str | None]:
    """Render a session's events; (stopped by Ctrl-C/SIGTERM, why the stream ended early or None)."""
    from .events import Event as PipelineEvent
    from .events import (
        Interrupted,
        PromptReceived,
        PromptShown,
        PromptSuperseded,
        SessionSummary,
        StreamBehind,
        StreamClosed,
    )
    from .progress import make_reporter
    from .terminal import printable

    interrupted, stream_error = False, None
    with make_reporter(quiet=quiet) as reporter:
        for event in session.run(should_stop=stop.requested, save_latents=save_latents, overwrite=opts.force):
            if events:
                events.event(event)
            if isinstance(event, PromptReceived):
                typer.echo(f"received: {printable(event.text)}", err=True)
            elif isinstance(event, PromptSuperseded):
                more = f" (and {event.count - 1} before it)" if event.count > 1 else ""
                typer.echo(f"superseded before it was shown: {printable(event.text)}{more}", err=True)
            elif isinstance(event, PromptShown) and not quiet:
                typer.echo(
                    f"prompt on screen at block {event.block}, {event.latency_s:.2f} s after it arrived "
                    f"(text encoder {event.encode_s:.2f} s)",
                    err=True,
                )
            elif isinstance(event, StreamBehind) and not quiet:
                typer.echo(f"stream behind real time at {event.video_s:.2f} s of video", err=True)
            elif isinstance(event, StreamClosed):
                stream_error = event.reason
            elif isinstance(event, SessionSummary):
                typer.echo(_live_summary(event), err=True)
            elif isinstance(event, Interrupted):
                interrupted = True
                kept = f"kept {event.path}" if event.path else "nothing kept"
                typer.echo(f"stopped after {event.duration_s:.2f} s of video: {kept}", err=True)
            if isinstance(event, PipelineEvent) and not (stream_error and opts.recording is None):
                reporter.handle(event)
    return interrupted, stream_error


def _live_summary(event: Any) -> str:
    from .api import human_bytes

    if event.latency_median_s is None:
        latency = "no prompt switch"
    else:
        latency = (
            f"prompt-to-frame latency median {event.latency_median_s:.2f} s, max {event.latency_max_s:.2f} s"
        )
    where = f"; session storyboard {event.session_path}" if event.session_path else ""
    encoder = (
        f"; text encoder kept loaded: {human_bytes(event.text_encoder_bytes)}"
        if event.text_encoder_bytes
        else ""
    )
    return f"{event.switches} switches, {latency}, {event.generation_fps:.1f} fps{encoder}{where}"


# --------------------------------------------------------------------------- serve
HostOpt = Annotated[
    str, typer.Option(help="Address to listen on; any but 127.0.0.1/localhost/::1 needs --token.")
]
PortOpt = Annotated[int, typer.Option(help="TCP port (0: a free one, printed).", min=0, max=65535)]
SessionsDirOpt = Annotated[
    Path, typer.Option("--sessions-dir", help="Where each session's folder goes (created when missing).")
]
ServeSaveLatentsOpt = Annotated[
    bool, typer.Option("--save-latents", help="Also keep each session's latents (latents.safetensors).")
]
TokenOpt = Annotated[
    str | None,
    typer.Option(help="Every request must carry it (or LONGLIVE_TOKEN); needed with another --host."),
]
OscOpt = Annotated[int | None, typer.Option(help="Also take OSC messages on this UDP port of 127.0.0.1.")]
AheadOpt = Annotated[
    str,
    typer.Option(
        metavar="TIME", help="Generation runs at most this much video ahead of the viewers (0: no pacing)."
    ),
]


@app.command(cls=_Command)
def serve(
    model: ModelOpt = DEFAULT_MODEL,
    host: HostOpt = "127.0.0.1",
    port: PortOpt = 8000,
    sessions_dir: SessionsDirOpt = Path("longlive-sessions"),
    save_latents: ServeSaveLatentsOpt = False,
    token: TokenOpt = None,
    osc: OscOpt = None,
    ahead: AheadOpt = "2s",
    rope: RopeOpt = None,
    lora: LoraOpt = None,
    decoder: DecoderOpt = None,
    device: DeviceOpt = Device.auto,
    dtype: DTypeOpt = DType.auto,
    quantize: QuantizeOpt = None,
    int8: Int8Opt = False,
    scheme: SchemeOpt = None,
    offline: OfflineOpt = False,
    quiet: QuietOpt = False,
    debug: DebugOpt = False,
    compile: CompileOpt = None,
    fused_qkv: FusedQkvOpt = None,
    static_cache: StaticCacheOpt = None,
    rope_cache: RopeCacheOpt = None,
    overlap: OverlapOpt = None,
    compile_decoder: CompileDecoderOpt = None,
    attention: AttentionOpt = None,
    strict_speed: StrictSpeedOpt = False,
) -> None:
    """A web studio and an HTTP/WebSocket/OSC API to steer live sessions and render storyboards.

    Loads the model once, then serves the page at / (printed as `longlive studio: URL`), the API under /api
    (documented at /docs) and, with --osc, OSC on 127.0.0.1. Each session is kept in --sessions-dir/ID/.
    Exit codes: 2 bad option, 3 model, 4 port busy or sessions folder not writable, 130/143 Ctrl-C/SIGTERM
    (the running session ends as `longlive live`'s does).
    """
    from .models.spec import resolve_spec
    from .serve.server import bind, check_host, check_sessions_dir, token_from_env
    from .signals import StopSignals
    from .storyboard.schema import parse_time

    setup_logging(quiet=quiet, debug=debug)
    with _errors_to_exit(debug), StopSignals() as stop:
        token = token_from_env(token)
        check_host(host, token)
        ahead_s = parse_time(ahead, field="--ahead")
        quantization = _quantization(quantize, int8, scheme)
        load: dict[str, Any] = dict(device=device.value, dtype=dtype.value, options=_speed(locals()))
        load |= dict(offline=offline, int8=quantization, rope=_value(rope), loras=lora or (), decoder=decoder)
        resolve_spec(model, _value(rope), lora or (), decoder)  # the model spec, as `live` checks it
        folder = check_sessions_dir(sessions_dir)
        sock = bind(host, port)
        code = _run_serve(
            model,
            load,
            sock,
            folder,
            token=token,
            host=host,
            osc_port=osc,
            stop=stop,
            save_latents=save_latents,
            ahead_s=ahead_s,
        )
    raise typer.Exit(code)


def _run_serve(
    model: str,
    load: dict[str, Any],
    sock: Any,
    folder: Path,
    *,
    token: str | None,
    host: str,
    osc_port: int | None,
    stop: StopSignals,
    save_latents: bool,
    ahead_s: float,
) -> int:
    """Bind OSC, load the model (text encoder kept), serve until a signal; the exit code."""
    from .serve.server import serve_forever, studio_url

    osc = None
    try:
        if osc_port is not None:
            from .serve.osc import OscServer

            osc = OscServer(osc_port)
        if stop.requested():
            typer.echo("stopped before loading: nothing was made", err=True)
            return stop.exit_code
        from .api import LongLive  # torch, FastAPI: only now
        from .serve.app import create_app
        from .serve.studio import Studio

        ll = LongLive.from_pretrained(model, **load)
        ll.load()
        ll.text_encoder(keep=True)
        studio = Studio(ll, sessions_dir=folder, save_latents=save_latents, ahead_s=ahead_s)
        app = create_app(studio, token=token, hosts=[host])
        if osc is not None:
            osc.start(studio)

        def listening(port: int) -> None:
            typer.echo(f"longlive studio: {studio_url(host, port, token)}", err=True)
            if osc is not None:
                typer.echo(f"longlive OSC: udp://127.0.0.1:{osc.port}/longlive/...", err=True)

        code = serve_forever(app, sock, studio=studio, stop=stop, on_listening=listening, osc=osc)
        osc = None  # stopped by serve_forever
        return code
    except KeyboardInterrupt:  # a second Ctrl-C / SIGTERM: abandon at once
        typer.echo("aborted: the unfinished video was removed", err=True)
        return stop.exit_code
    finally:
        if osc is not None:
            osc.stop()
        sock.close()


# --------------------------------------------------------------------------- report
@app.command("report", cls=_Command)
def report_command(
    video: Annotated[Path, typer.Argument(help="The video to report on (MP4).", show_default=False)],
    storyboard: Annotated[
        Path | None,
        typer.Option(help="Prompt times from this storyboard [default: the plan embedded by generate]."),
    ] = None,
    output: Annotated[
        Path | None, typer.Option("-o", "--output", help="Report folder [default: <video name>_report/].")
    ] = None,
    compare: Annotated[
        Path | None, typer.Option(help="Another video to compare with frame by frame (PSNR, SSIM).")
    ] = None,
    force: ForceOpt = False,
    json_out: Annotated[bool, typer.Option("--json", help="Print the summary and events as JSON.")] = False,
    debug: DebugOpt = False,
) -> None:
    """Find where a video flickers, freezes, drifts in colour, cuts or jumps at a prompt switch (no model
    weights): report.json, timeline.png and index.html in one folder."""
    import json as json_lib

    setup_logging(debug=debug)
    with _stop_on_signals("report stopped: no report written"), _errors_to_exit(debug):
        from .quality import default_report_dir, report, summary_line

        typer.echo(f"measuring {video} ...", err=True)
        result = report(video, output, storyboard=storyboard, compare=compare, overwrite=force)
        if json_out:
            typer.echo(json_lib.dumps({"summary": result["summary"], "events": result["events"]}))
        else:
            typer.echo(summary_line(result))
            typer.echo(f"Wrote {output or default_report_dir(video)}", err=True)


class _Terminated(BaseException):
    """SIGTERM, raised where the command is (as Ctrl-C raises KeyboardInterrupt)."""


@contextlib.contextmanager
def _stop_on_signals(message: str) -> Iterator[None]:
    """A command without a video to keep: Ctrl-C (exit 130) or SIGTERM (143) stops it at once with
    ``message``; the outputs are written whole or not at all (``fileio.atomic_output``), and the ffmpeg
    readers are closed on the way out."""
    import signal
    import threading

    def terminate(signum: int, frame: Any) -> None:
        raise _Terminated

    main = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, terminate) if main else None
    try:
        yield
    except KeyboardInterrupt:
        typer.echo(message, err=True)
        raise typer.Exit(EXIT_SIGINT) from None
    except _Terminated:
        typer.echo(message, err=True)
        raise typer.Exit(EXIT_SIGTERM) from None
    finally:
        if main:
            signal.signal(signal.SIGTERM, previous)


def _check_report_target(output: Path | None, force: bool) -> None:
    """``--report`` needs a video file, and its report folder must be writable (checked before the work)."""
    from .quality import check_report_dir, default_report_dir

    if output is None:
        raise InputError("--report needs a recording (-o/--output FILE.mp4) to report on")
    check_report_dir(default_report_dir(output), overwrite=force)


def _report_beside(
    video: Path,
    plan: Any,
    *,
    force: bool,
    quiet: bool,
    storyboard: Path | None = None,
    events: Any = None,
) -> None:
    """``--report``: the report of a finished video in ``<name>_report/`` beside it (with ``events``, the
    JSON-lines writer of ``--json``, also a ``report`` line with its summary and events)."""
    from .quality import default_report_dir, report, summary_line

    folder = default_report_dir(video)
    result = report(video, folder, plan=plan, storyboard=storyboard, overwrite=force)
    if events is not None:
        events.emit("report", video=video, folder=folder, summary=result["summary"], events=result["events"])
    if not quiet:
        typer.echo(f"report: {summary_line(result)}", err=True)
    typer.echo(f"Wrote {folder}", err=True)


# --------------------------------------------------------------------------- bench
@app.command(cls=_Command)
def bench(
    model: ModelOpt = "tiny-random",
    resolution: ResolutionOpt = None,
    blocks: Annotated[
        int, typer.Option(help="Blocks to generate (a prompt switch in the middle).", min=2)
    ] = 8,
    device: DeviceOpt = Device.auto,
    dtype: DTypeOpt = DType.auto,
    quantize: QuantizeOpt = None,
    int8: Int8Opt = False,
    scheme: SchemeOpt = None,
    compare_plain: Annotated[
        bool,
        typer.Option("--compare-plain", help="Also run the plain path: speed ratio and latent difference."),
    ] = False,
    strict_speed: StrictSpeedOpt = False,
    json_out: JsonOpt = False,
    debug: DebugOpt = False,
    compile: CompileOpt = None,
    compile_mode: CompileModeOpt = CompileMode.default,
    fused_qkv: FusedQkvOpt = None,
    static_cache: StaticCacheOpt = None,
    rope_cache: RopeCacheOpt = None,
    overlap: OverlapOpt = None,
    compile_decoder: CompileDecoderOpt = None,
    attention: AttentionOpt = None,
) -> None:
    """Measure a model on this machine before downloading it: its architecture with random weights (or its
    cached weights); FPS of the denoise loop alone, of the whole pipeline and end to end (text to closed MP4),
    time to first frame, block latency, where the time goes, peak memory, the hardware, what is excluded."""
    import json as json_lib

    setup_logging(quiet=json_out, debug=debug)
    with _errors_to_exit(debug):
        from .bench import format_report, run_bench

        quantization = _quantization(quantize, int8, scheme)
        options = _speed(locals())
        report = run_bench(
            model,
            device=device.value,
            dtype=dtype.value,
            resolution=resolution,
            blocks=blocks,
            options=options,
            int8=quantization,
            compare_plain=compare_plain,
        )
        typer.echo(json_lib.dumps(report) if json_out else format_report(report))


def _quantization(quantize: Quantize | None, int8: bool, scheme: Scheme | None) -> str | None:
    """The quantization scheme (:data:`~longlive_cli.models.spec.QUANTIZE_SCHEMES`) ``--quantize`` names, or
    the old ``--int8 [--scheme w8a8|w8|fp8]`` (hidden; a warning names the new spelling). None: none.

    Raises:
        InputError: ``--scheme`` without ``--int8``, or the old spelling with ``--quantize``.
    """
    from .models.spec import QUANTIZE_SCHEMES

    if not int8 and scheme is None:
        return QUANTIZE_SCHEMES[quantize.value] if quantize is not None else None
    if not int8:
        raise InputError("--scheme goes with --int8 (both are old spellings: use --quantize)")
    old = (scheme or Scheme.w8a8).value
    new = next(name for name, value in QUANTIZE_SCHEMES.items() if value == old)
    if quantize is not None and quantize.value != new:
        raise InputError(
            f"--int8{f' --scheme {old}' if scheme else ''} and --quantize {quantize.value} disagree"
        )
    spelled = "--int8" + (f" --scheme {old}" if scheme is not None else "")
    logging.getLogger(__name__).warning("%s is deprecated; use --quantize %s", spelled, new)
    return old


def _speed(params: dict[str, Any]) -> dict[str, Any]:
    """The speed options of a command, read by name from its parameters (``locals()``; a command without
    one, such as ``live`` without ``compile_mode``, gets the default), as overrides of
    :meth:`RuntimeOptions.for_device` (None: the device's default)."""
    mode, attention = params.get("compile_mode", CompileMode.default), params["attention"]
    return {
        "compile": params["compile"],
        "compile_mode": None if mode is CompileMode.default else mode.value,
        "fused_qkv": params["fused_qkv"],
        "static_cache": params["static_cache"],
        "rope_cache": params["rope_cache"],
        "overlap_decode": params["overlap"],
        "compile_decoder": params["compile_decoder"],
        "attention": attention.value if attention is not None else None,
        "strict": params["strict_speed"] or None,
    }


# --------------------------------------------------------------------------- the other commands
@app.command(cls=_Command)
def validate(
    storyboards: Annotated[
        list[str], typer.Argument(help="Storyboard YAML files; - for stdin.", show_default=False)
    ],
    model: Annotated[str, typer.Option("--model", "-m", help="Model the plan is for.")] = DEFAULT_MODEL,
    rope: RopeOpt = None,
    json_out: Annotated[
        bool, typer.Option("--json", help="One JSON object per storyboard on stdout.")
    ] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Print only errors.")] = False,
    debug: DebugOpt = False,
) -> None:
    """Check storyboards and print their generation plans; exit 2 if any is invalid."""
    from .jsonl import JsonLines
    from .models.spec import resolve_spec
    from .plans import plan_storyboard
    from .storyboard import StoryboardError, format_plan
    from .terminal import printable

    setup_logging(quiet=quiet, debug=debug)
    with _errors_to_exit(debug):
        geometry = resolve_spec(model, rope.value if rope is not None else None).geometry
    events = JsonLines() if json_out else None
    failed = 0
    for path in storyboards:
        try:
            plan = (
                plan_storyboard(sys.stdin.read(), geometry, name="<stdin>")
                if path == "-"
                else plan_storyboard(Path(path), geometry)
            )
        except StoryboardError as err:
            failed += 1
            typer.echo(f"error: {printable(str(err), newlines=True)}", err=True)
            if events:
                location = {"file": err.path, "line": err.line, "column": err.column, "field": err.field}
                events.emit("invalid", storyboard=path, message=str(err), **location)
            continue
        if events:
            events.emit("valid", storyboard=path, plan=plan)
        elif not quiet:
            typer.echo(f"{path}: ok")
            typer.echo(format_plan(plan))
    if failed:
        raise typer.Exit(EXIT_BAD_INPUT)


@app.command(cls=_Command)
def quantize(
    output: Annotated[
        Path, typer.Option("-o", "--output", help="Model folder to write (usable as --model).")
    ],
    model: ModelOpt = DEFAULT_MODEL,
    quantize: Annotated[
        SavedQuantize,
        typer.Option(
            "--quantize",
            help="int8: int8 weights, int8 activations quantized per token at run time; int8-weights: int8 "
            "weights only.",
        ),
    ] = SavedQuantize.int8,
    scheme: Annotated[Scheme | None, typer.Option(hidden=True, help="Old spelling of --quantize.")] = None,
    force: ForceOpt = False,
    offline: OfflineOpt = False,
    quiet: QuietOpt = False,
    debug: DebugOpt = False,
) -> None:
    """Quantize a model's transformer to INT8 (torchao, on CPU) and write it as a model folder."""
    setup_logging(quiet=quiet, debug=debug)
    with _errors_to_exit(debug):
        from .api import describe_quantization
        from .errors import OutputError
        from .models.spec import QUANTIZE_SCHEMES, resolve_model
        from .quantize import write_quantized_model

        if output.exists() and not force:
            raise OutputError(f"{output} already exists (use --force to replace it)")
        chosen = QUANTIZE_SCHEMES[quantize.value]
        if scheme is not None:  # the old spelling
            chosen = scheme.value
            new = next(name for name, value in QUANTIZE_SCHEMES.items() if value == chosen)
            logging.getLogger(__name__).warning("--scheme %s is deprecated; use --quantize %s", chosen, new)

        def on_layer(name: str, index: int, total: int) -> None:
            if not quiet:
                typer.echo(f"[{index}/{total}] {name}", err=True)

        spec = resolve_model(model)
        summary = write_quantized_model(
            spec, output, scheme=chosen, force=force, offline=offline, on_layer=on_layer
        )
        typer.echo(describe_quantization(summary), err=True)
        typer.echo(f"Wrote {output} (use it as --model {output})", err=True)


@app.command("download", cls=_Command)
def download_command(
    model: Annotated[str, typer.Argument(help="Model preset or spec file.")] = DEFAULT_MODEL,
    offline: Annotated[
        bool,
        typer.Option(
            "--offline", help="Only check the Hugging Face cache: list what is present and what is missing."
        ),
    ] = False,
    lora: LoraOpt = None,
    decoder: DecoderOpt = None,
    debug: DebugOpt = False,
) -> None:
    """Fetch a model's weight files (its LoRAs, the chosen decoder's) into the Hugging Face cache and print
    each with its size; with --offline (or HF_HUB_OFFLINE=1) only check the cache (exit 3: one missing)."""
    setup_logging(debug=debug)
    with _errors_to_exit(debug):
        from .api import DownloadedPart, download
        from .errors import ModelError
        from .hub import hub_offline
        from .memory import human_bytes, parse_size

        check_only = hub_offline(offline)

        def show(part: DownloadedPart) -> None:
            if part.path is None:
                about = f"about {part.known_size}" if part.known_size else "size unknown"
                typer.echo(f"{part.role:<19} {'missing':>9}  {part.source}  ({about})")
            else:
                typer.echo(f"{part.role:<19} {human_bytes(part.size):>9}  {part.source}  -> {part.path}")

        parts = download(model, loras=lora or (), decoder=decoder, check_only=check_only, on_part=show)
        if not parts:
            typer.echo(f"{model}: nothing to download (built in-process)")
            return
        total = sum(p.size for p in parts)
        typer.echo(f"total {human_bytes(total)} present" if check_only else f"total {human_bytes(total)}")
        missing = [p for p in parts if p.path is None]
        if missing:
            known = [parse_size(p.known_size) for p in missing if p.known_size]
            about = f" (about {human_bytes(sum(known))}{' and more' if len(known) < len(missing) else ''})"
            typer.echo(f"missing {len(missing)} of {len(parts)}{about}")
            raise ModelError(
                f"{len(missing)} of {len(parts)} files of {model} are not in the Hugging Face cache: "
                f"{', '.join(p.source for p in missing)}. Run `longlive download {model}` where the Hub "
                "can be reached (without --offline and HF_HUB_OFFLINE), or copy a Hugging Face cache that "
                "has them here."
            )


@app.command(cls=_Command)
def cache(
    action: Annotated[CacheAction, typer.Argument(help="list the caches or clear them.")] = CacheAction.list,
    what: Annotated[
        CacheWhat, typer.Option(help="Which cache: converted weights, prompt embeddings, or all.")
    ] = (CacheWhat.all),
    debug: DebugOpt = False,
) -> None:
    """List or clear the project's caches (converted weights, prompt embeddings) with their sizes."""
    setup_logging(debug=debug)
    with _errors_to_exit(debug):
        from .caches import clear_caches, list_caches
        from .memory import human_bytes

        if action is CacheAction.clear:
            for folder in clear_caches(what.value):
                typer.echo(
                    f"{folder.name:<11} removed {len(folder.entries)} files ({human_bytes(folder.size)}) "
                    f"from {folder.folder}"
                )
            return
        folders = list_caches(what.value)
        for folder in folders:
            typer.echo(
                f"{folder.name:<11} {len(folder.entries):>5} files {human_bytes(folder.size):>9}  "
                f"{folder.folder}"
            )
            if folder.name == "converted":
                for entry in folder.entries:
                    typer.echo(f"  {entry.path.name}  {human_bytes(entry.size):>9}  {entry.modified}")
        typer.echo(f"total {human_bytes(sum(f.size for f in folders))}")


@app.command("decode", cls=_Command)
def decode_command(
    latents: Annotated[Path, typer.Argument(help="Latents file from `generate --save-latents`.")],
    output: Annotated[Path, typer.Option("-o", "--output", help="MP4 to write.")],
    model: Annotated[
        str | None,
        typer.Option(
            "--model", "-m", help="Model whose decoder decodes [default: the one that made the latents]."
        ),
    ] = None,
    decoder: DecoderOpt = None,
    device: DeviceOpt = Device.auto,
    force: ForceOpt = False,
    offline: OfflineOpt = False,
    debug: DebugOpt = False,
) -> None:
    """Turn a saved latents file into an MP4 with the model's decoder (or --decoder)."""
    setup_logging(debug=debug)
    with _errors_to_exit(debug):
        from .api import decode

        path = decode(
            latents,
            output,
            model=model,
            decoder=decoder,
            device=device.value,
            overwrite=force,
            offline=offline,
        )
        typer.echo(f"Wrote {path}")


@app.command(cls=_Command)
def info(debug: DebugOpt = False) -> None:
    """Show the version, the torch build, cuDNN, NVIDIA driver, GPUs, each part's precision rule, the cache
    folder (without importing torch), and the presets."""
    from importlib.metadata import PackageNotFoundError, version

    from .models.spec import PRESETS, cache_root
    from .precision import RULES
    from .system import describe

    setup_logging(debug=debug)
    try:
        torch_version = version("torch")
    except PackageNotFoundError:
        torch_version = "not installed"
    typer.echo(f"longlive-cli {__version__} (torch {torch_version})")
    for line in describe():
        typer.echo(line)
    typer.echo("model presets:")
    width = max(map(len, PRESETS))
    for name, spec in PRESETS.items():
        source = spec.generator or spec.base or "built in-process, random weights (noise-like video)"
        rope = ", relative RoPE" if spec.sampler.rope == "relative" else ""
        default = "  [default]" if name == DEFAULT_MODEL else ""
        typer.echo(f"  {name:<{width}} {source} ({spec.sampler.name} sampler{rope}){default}")
    _echo_components()
    typer.echo("precision per part:")
    for part, rule in RULES.items():
        typer.echo(f"  {part.replace('_', ' '):<14} {rule}")
    typer.echo(f"caches: {cache_root()} (converted/, embeddings/; `longlive cache`)")


def _echo_components() -> None:
    """The samplers and decoders with what each declares (:mod:`longlive_cli.registry`); an installed plugin
    not loaded yet is named only (listing imports no plugin)."""
    from .registry import decoder_names, known_decoders, known_samplers, sampler_names

    for kind, known, names in (
        ("samplers", known_samplers(), sampler_names()),
        ("decoders", known_decoders(), decoder_names()),
    ):
        typer.echo(f"{kind}:")
        for item in known:
            typer.echo(f"  {item.name:<16} {item.summary} ({item.abilities()})")
        for name in sorted(set(names) - {item.name for item in known}):
            typer.echo(f"  {name:<16} (an installed plugin, loaded when used)")


def version_callback(value: bool) -> None:
    if value:
        typer.echo(f"longlive-cli {__version__}")
        raise typer.Exit()


@app.callback()
def main_options(
    version: Annotated[
        bool, typer.Option("--version", callback=version_callback, is_eager=True, help="Print the version.")
    ] = False,
) -> None:
    """Long video generation from timed-prompt storyboards with LongLive."""


def main() -> None:
    """The CLI's entry point (the console script is :func:`longlive_cli.entry.run_cli`, which calls it).
    Until a command starts (:meth:`_Command.invoke`), Ctrl-C exits 130 quietly."""
    from .signals import quiet_exit_until_a_command_starts

    quiet_exit_until_a_command_starts()
    app()
