"""The ``longlive`` command: parse arguments, call the library, render its events, map errors to exit codes.

Every command runs inside :func:`_errors_to_exit`, the one place where a :class:`~longlive_cli.errors.
LongLiveError` becomes ``error: <message>`` on standard error and its exit code (``--debug`` adds the
traceback). Options shared by several commands are declared once, below. Heavy libraries (torch, diffusers)
are imported only by the commands that compute: ``--help``, ``validate``, ``info`` and ``generate --dry-run``
never import torch.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator
from enum import Enum
from pathlib import Path
from typing import Annotated, Any

import typer

from . import __version__
from .errors import (
    EXIT_BAD_INPUT,
    EXIT_FAILURE,
    EXIT_MODEL,
    EXIT_OUTPUT,
    EXIT_PARTIAL,
    EXIT_SIGINT,
    InputError,
    LongLiveError,
    exit_code_for,
)
from .logs import setup_logging
from .models.spec import DEFAULT_MODEL

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


class Scheme(str, Enum):
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
DeviceOpt = Annotated[Device, typer.Option(help="Where to run.")]
DTypeOpt = Annotated[DType, typer.Option(help="Compute precision [auto: bf16 on CUDA, float32 on CPU].")]
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
    str | None, typer.Option(help="WxH in pixels, multiples of 16; overrides [default: model's native].")
]
DurationOpt = Annotated[str | None, typer.Option(help="Video length (e.g. 30s, 1:30); overrides.")]
ShardOpt = Annotated[str | None, typer.Option(help="K/N: generate only the K-th of N deterministic slices.")]
FailFastOpt = Annotated[bool, typer.Option("--fail-fast", help="Stop at the first failed storyboard.")]
KeepPartialOpt = Annotated[
    bool, typer.Option(help="On Ctrl-C/SIGTERM keep the video so far as <name>.partial.mp4.")
]
SaveLatentsOpt = Annotated[
    Path | None,
    typer.Option(help="Also save the latents (safetensors) for `longlive decode` (one storyboard)."),
]
Int8Opt = Annotated[bool, typer.Option("--int8", help="Quantize the transformer in memory after loading.")]
SchemeOpt = Annotated[
    Scheme | None,
    typer.Option(
        help="With --int8: w8a8 (dynamic int8 activations), w8 (weight-only) [default: w8a8], "
        "or fp8 (CUDA, compute capability >= 8.9)."
    ),
]
DryRunOpt = Annotated[bool, typer.Option("--dry-run", help="Print the plans and exit.")]
RopeOpt = Annotated[
    Rope | None,
    typer.Option(
        help="Temporal RoPE: absolute (the model's table: at most 240 s) or relative (a frame's rank in the "
        "attention window: no length limit) [default: the model's; longlive-1.3b-infinite is relative]."
    ),
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
        message = str(err) if isinstance(err, LongLiveError) else f"{type(err).__name__}: {err}"
        typer.echo(f"error: {message}", err=True)
        raise typer.Exit(exit_code_for(err)) from None


# --------------------------------------------------------------------------- generate
@app.command()
def generate(
    storyboards: StoryboardsArg,
    output: OutputOpt = None,
    model: ModelOpt = DEFAULT_MODEL,
    device: DeviceOpt = Device.auto,
    dtype: DTypeOpt = DType.auto,
    seed: SeedOpt = None,
    seed_offset: SeedOffsetOpt = 0,
    resolution: ResolutionOpt = None,
    duration: DurationOpt = None,
    shard: ShardOpt = None,
    force: ForceOpt = False,
    fail_fast: FailFastOpt = False,
    keep_partial: KeepPartialOpt = True,
    offline: OfflineOpt = False,
    save_latents: SaveLatentsOpt = None,
    rope: RopeOpt = None,
    int8: Int8Opt = False,
    scheme: SchemeOpt = None,
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
    attention: AttentionOpt = None,
) -> None:
    """Generate continuous videos from storyboards (several run one after another with one model load)."""
    from .batch import BatchRun

    setup_logging(quiet=quiet or json_out, debug=debug)
    with _errors_to_exit(debug):
        if scheme is not None and not int8:
            raise InputError("--scheme goes with --int8")
        run = BatchRun.prepare(
            storyboards,
            output=output,
            model=model,
            shard=shard,
            save_latents=save_latents,
            overrides={"seed": seed, "resolution": resolution, "duration": duration},
            force=force,
            dry_run=dry_run,
            json_out=json_out,
            rope=rope.value if rope is not None else None,
        )
    run.plan_all(fail_fast=fail_fast, on_plan=_print_plan if dry_run else None)
    if run.finished or dry_run:
        _finish(run)
    options = {
        "compile": compile,
        "compile_mode": None if compile_mode is CompileMode.default else compile_mode.value,
        "fused_qkv": fused_qkv,
        "static_cache": static_cache,
        "rope_cache": rope_cache,
        "overlap_decode": overlap,
        "attention": attention.value if attention is not None else None,
    }
    scheme_name = (scheme or Scheme.w8a8).value if int8 else None
    try:
        run.load(device=device.value, dtype=dtype.value, options=options, offline=offline, int8=scheme_name)
    except Exception as err:
        run.model_failed(err)
        with _errors_to_exit(debug):
            raise
    _generate_jobs(run, seed_offset=seed_offset, keep_partial=keep_partial, quiet=quiet, debug=debug)
    _finish(run)


def _finish(run: Any) -> None:
    code, counts = run.finish()
    if counts:
        typer.echo(counts, err=True)
    raise typer.Exit(code)


def _print_plan(name: str, plan: Any) -> None:
    from .storyboard import format_plan

    typer.echo(f"{name}:\n{format_plan(plan)}")


def _generate_jobs(run: Any, *, seed_offset: int, keep_partial: bool, quiet: bool, debug: bool) -> None:
    """Generate the planned jobs one after another, rendering each one's events."""
    from .batch import StopSignals
    from .errors import GenerationError, OutputError
    from .events import Interrupted
    from .progress import make_reporter

    with StopSignals() as stop:
        for job, plan in run.planned():
            try:
                with make_reporter(quiet=quiet or run.events is not None) as reporter:
                    for event in run.stream(job, plan, seed_offset, stop.requested, keep_partial):
                        reporter.handle(event)
                        if isinstance(event, Interrupted):
                            kept = f"kept {event.path}" if event.path else "nothing kept"
                            typer.echo(f"stopped after {event.duration_s:.2f} s of video: {kept}", err=True)
                run.job_ended(job, stop)
            except KeyboardInterrupt:
                run.job_aborted(job, EXIT_SIGINT)
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
@app.command()
def live(
    output: Annotated[
        Path | None, typer.Option("-o", "--output", help="Record the session to this MP4.")
    ] = None,
    stream: Annotated[
        str | None,
        typer.Option(help="Stream MPEG-TS as it is made: - (stdout), udp://, srt://, rtmp://, a .ts path."),
    ] = None,
    prompt: Annotated[str | None, typer.Option(help="The first prompt (else the first line read).")] = None,
    prompts_from: Annotated[
        Path | None, typer.Option(help="Read prompts from this FIFO or growing file instead of stdin.")
    ] = None,
    duration: DurationOpt = None,
    realtime: Annotated[
        bool, typer.Option("--realtime", help="Let the stream's frames out at the video's fps.")
    ] = False,
    events_file: Annotated[
        Path | None, typer.Option("--events", help="Write the JSON events to this file.")
    ] = None,
    save_session: Annotated[
        Path | None, typer.Option(help="The session storyboard [default: the recording's name with .yaml].")
    ] = None,
    model: ModelOpt = DEFAULT_MODEL,
    rope: RopeOpt = None,
    seed: SeedOpt = None,
    resolution: ResolutionOpt = None,
    save_latents: SaveLatentsOpt = None,
    device: DeviceOpt = Device.auto,
    dtype: DTypeOpt = DType.auto,
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
    attention: AttentionOpt = None,
) -> None:
    """Steer a video while it is made: prompts one per line (stdin or --prompts-from), recorded, streamed.

    Each new line switches the prompt at the next block. Commands: :quit, :pause, :resume, :help. The end of
    standard input finishes the video without --duration, and only ends the reading with it.
    """
    from .batch import JsonLines, StopSignals
    from .live import LiveOptions, check_targets

    setup_logging(quiet=quiet, debug=debug)
    with _errors_to_exit(debug):
        check_targets(output, stream, json_out)
        if scheme is not None and not int8:
            raise InputError("--scheme goes with --int8")
        events = JsonLines(open(events_file, "w", encoding="utf-8")) if events_file else None  # noqa: SIM115
        events = events or (JsonLines() if json_out else None)
        speed: dict[str, Any] = {
            "compile": compile,
            "fused_qkv": fused_qkv,
            "static_cache": static_cache,
            "rope_cache": rope_cache,
        }
        speed |= {"overlap_decode": overlap, "attention": attention.value if attention is not None else None}
        opts = LiveOptions(
            output, stream, realtime, prompt, prompts_from, duration, seed, resolution, save_session, force
        )
        opts.rope = rope.value if rope is not None else None
        with StopSignals() as stop:
            code = _run_live(
                opts,
                model,
                device.value,
                dtype.value,
                speed,
                offline,
                int8,
                scheme,
                save_latents,
                stop,
                events,
                quiet,
            )
    raise typer.Exit(code)


def _run_live(
    opts, model, device, dtype, speed, offline, int8, scheme, save_latents, stop, events, quiet
) -> int:
    """Load, start the session, render its events; the exit code (130/143 after Ctrl-C/SIGTERM)."""
    from .api import LongLive
    from .events import Interrupted, PromptSwitched
    from .live import (
        PromptReceived,
        PromptShown,
        PromptSuperseded,
        SessionSummary,
        StreamBehind,
        close_session,
        start_session,
    )
    from .progress import make_reporter

    int8_scheme = (scheme or Scheme.w8a8).value if int8 else None
    ll = LongLive.from_pretrained(
        model, device=device, dtype=dtype, options=speed, offline=offline, int8=int8_scheme, rope=opts.rope
    )
    ll.load()
    session, _reader = start_session(ll, opts, stopping=stop.requested)
    interrupted = False
    try:
        with make_reporter(quiet=quiet) as reporter:
            for event in session.run(
                should_stop=stop.requested, save_latents=save_latents, overwrite=opts.force
            ):
                if events:
                    events.event(event)
                if isinstance(event, PromptReceived):
                    typer.echo(f"received: {event.text}", err=True)
                elif isinstance(event, PromptSuperseded):
                    typer.echo(f"superseded before it was shown: {event.text}", err=True)
                elif isinstance(event, PromptShown) and not quiet:
                    typer.echo(
                        f"prompt on screen at block {event.block}, {event.latency_s:.2f} s after it arrived "
                        f"(text encoder {event.encode_s:.2f} s)",
                        err=True,
                    )
                elif isinstance(event, StreamBehind) and not quiet:
                    typer.echo(f"stream behind real time at {event.video_s:.2f} s of video", err=True)
                elif isinstance(event, SessionSummary):
                    typer.echo(_live_summary(event), err=True)
                elif isinstance(event, Interrupted):
                    interrupted = True
                    kept = f"kept {event.path}" if event.path else "nothing kept"
                    typer.echo(f"stopped after {event.duration_s:.2f} s of video: {kept}", err=True)
                if isinstance(event, (PromptSwitched, Interrupted)) or type(event).__module__.endswith(
                    "events"
                ):
                    reporter.handle(event)
    finally:
        close_session(session)
        ll.release_text_encoder()
    return stop.exit_code if interrupted else 0


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


# --------------------------------------------------------------------------- the other commands
@app.command()
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
    from .batch import JsonLines
    from .models.spec import resolve_spec
    from .plans import plan_storyboard
    from .storyboard import StoryboardError, format_plan

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
            typer.echo(f"error: {err}", err=True)
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


@app.command()
def quantize(
    output: Annotated[
        Path, typer.Option("-o", "--output", help="Model folder to write (usable as --model).")
    ],
    model: ModelOpt = DEFAULT_MODEL,
    scheme: Annotated[
        Scheme, typer.Option(help="w8a8: dynamic int8 activations + int8 weights; w8: int8 weights only.")
    ] = Scheme.w8a8,
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
        from .models.spec import resolve_model
        from .quantize import write_quantized_model

        if output.exists() and not force:
            raise OutputError(f"{output} already exists (use --force to replace it)")

        def on_layer(name: str, index: int, total: int) -> None:
            if not quiet:
                typer.echo(f"[{index}/{total}] {name}", err=True)

        spec = resolve_model(model)
        summary = write_quantized_model(
            spec, output, scheme=scheme.value, force=force, offline=offline, on_layer=on_layer
        )
        typer.echo(describe_quantization(summary), err=True)
        typer.echo(f"Wrote {output} (use it as --model {output})", err=True)


@app.command()
def download(
    model: Annotated[str, typer.Argument(help="Model preset or spec file.")] = DEFAULT_MODEL,
    debug: DebugOpt = False,
) -> None:
    """Fetch a model's weight files into the Hugging Face cache and print what was fetched."""
    setup_logging(debug=debug)
    with _errors_to_exit(debug):
        from .api import human_bytes
        from .hub import disk_size, fetch
        from .models.spec import components, resolve_model

        spec = resolve_model(model)
        parts = components(spec)
        if not parts:
            typer.echo(f"{spec.name}: nothing to download (built in-process)")
            return
        total = 0
        for part in parts:
            path = fetch(part.source, folder=part.folder, size=part.size, model=spec.name)
            size = disk_size(path)
            total += size
            typer.echo(f"{part.role:<19} {human_bytes(size):>9}  {part.source}  -> {path}")
        typer.echo(f"total {human_bytes(total)}")


@app.command()
def decode(
    latents: Annotated[Path, typer.Argument(help="Latents file from `generate --save-latents`.")],
    output: Annotated[Path, typer.Option("-o", "--output", help="MP4 to write.")],
    model: Annotated[str, typer.Option("--model", "-m", help="Model whose VAE decodes.")] = DEFAULT_MODEL,
    device: DeviceOpt = Device.auto,
    force: ForceOpt = False,
    offline: OfflineOpt = False,
    debug: DebugOpt = False,
) -> None:
    """Turn a saved latents file into an MP4 with the model's VAE."""
    setup_logging(debug=debug)
    with _errors_to_exit(debug):
        from .decoders.wan import StreamingDecoder
        from .latents import open_latents
        from .models.loaders import load_vae_only
        from .models.spec import resolve_model
        from .pipeline import decode_to_video
        from .runtime import resolve_device
        from .video import check_output

        check_output(output, overwrite=force)
        spec = resolve_model(model)
        z, plan = open_latents(latents)
        vae = load_vae_only(spec, device=resolve_device(device.value), offline=offline)
        fpb = plan.get("frames_per_block", spec.geometry.frames_per_block)
        path = decode_to_video(
            StreamingDecoder(vae), z, output, fps=plan["fps"], frames_per_block=fpb, overwrite=force
        )
        typer.echo(f"Wrote {path}")


@app.command()
def info(debug: DebugOpt = False) -> None:
    """Show the version, the model presets and the installed torch (without importing it)."""
    from importlib.metadata import PackageNotFoundError, version

    from .models.spec import PRESETS

    setup_logging(debug=debug)
    try:
        torch_version = version("torch")
    except PackageNotFoundError:
        torch_version = "not installed"
    typer.echo(f"longlive-cli {__version__} (torch {torch_version})")
    typer.echo("model presets:")
    width = max(map(len, PRESETS))
    for name, spec in PRESETS.items():
        source = spec.base or "built in-process, random weights (noise-like video)"
        rope = ", relative RoPE" if spec.sampler.rope == "relative" else ""
        default = "  [default]" if name == DEFAULT_MODEL else ""
        typer.echo(f"  {name:<{width}} {source}{rope}{default}")


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
    """Console-script entry point."""
    app()
