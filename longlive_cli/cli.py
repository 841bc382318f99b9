"""The ``longlive`` command: parse arguments, call the library, turn errors into messages and exit codes."""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Annotated

import typer

from . import __version__
from .batch import EXIT_BAD_INPUT, EXIT_FAILURE, EXIT_MODEL, EXIT_OUTPUT, EXIT_PARTIAL, EXIT_SIGINT

__all__ = ["EXIT_BAD_INPUT", "EXIT_FAILURE", "EXIT_MODEL", "EXIT_OUTPUT", "EXIT_PARTIAL", "app"]

DEFAULT_MODEL = "longlive-1.3b"  # the same as models.registry.DEFAULT_MODEL, without importing torch here

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


class CompileMode(str, Enum):  # torch.compile modes
    default = "default"
    reduce_overhead = "reduce-overhead"
    max_autotune = "max-autotune"
    max_autotune_no_cudagraphs = "max-autotune-no-cudagraphs"


SPEED = "Speed (each on by default with CUDA, off on CPU; the video is the same up to rounding)"


class CliError(Exception):
    """An error for the user: printed as ``error: <message>``, exits with ``code``."""

    def __init__(self, message: str, code: int) -> None:
        super().__init__(message)
        self.code = code


def _fail(err: BaseException, code: int, debug: bool) -> typer.Exit:
    if debug:
        import traceback

        traceback.print_exception(err)
    typer.echo(f"error: {err}", err=True)
    return typer.Exit(code)


def resolve_device(device: Device) -> str:
    """``auto`` -> ``cuda`` when available, else ``cpu``; ``cuda`` without a GPU is an error."""
    import torch

    if device is Device.auto:
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device is Device.cuda and not torch.cuda.is_available():
        raise CliError(
            "--device cuda was asked for, but PyTorch sees no CUDA GPU. Use --device cpu.", EXIT_BAD_INPUT
        )
    return device.value


def resolve_dtype(dtype: DType, device: str):
    """``auto`` -> bfloat16 on CUDA, float32 on CPU."""
    import torch

    table = {DType.bf16: torch.bfloat16, DType.fp16: torch.float16, DType.float32: torch.float32}
    if dtype is DType.auto:
        return torch.bfloat16 if device == "cuda" else torch.float32
    return table[dtype]


def _plan_from_args(storyboard: str, spec, seed, resolution, duration):
    """Load ``storyboard`` (a path, or ``-`` for standard input) and make its plan for ``spec``."""
    import sys

    from .storyboard import load_storyboard, make_plan, parse_resolution, parse_storyboard, parse_time

    if storyboard == "-":
        sb = parse_storyboard(sys.stdin.read(), path="<stdin>")
    else:
        sb = load_storyboard(storyboard)
    width = height = duration_s = None
    if resolution is not None:
        width, height = parse_resolution(resolution, field="--resolution")
    if duration is not None:
        duration_s = parse_time(duration, field="--duration")
    return make_plan(
        sb,
        frames_per_block=spec.sampler.frames_per_block,
        seed=seed,
        width=width,
        height=height,
        duration_s=duration_s,
        default_resolution=spec.native_resolution,
    )


@app.command()
def generate(
    storyboards: Annotated[
        list[str],
        typer.Argument(help="Storyboard YAML files; - reads one from standard input.", show_default=False),
    ],
    output: Annotated[
        str | None,
        typer.Option("-o", "--output", help="MP4 to write; a folder (or a path ending in /) for <name>.mp4."),
    ] = None,
    model: Annotated[str, typer.Option("--model", "-m", help="Preset, spec file or folder.")] = DEFAULT_MODEL,
    device: Annotated[Device, typer.Option(help="Where to run.")] = Device.auto,
    dtype: Annotated[
        DType, typer.Option(help="Compute precision [auto: bf16 on CUDA, float32 on CPU].")
    ] = DType.auto,
    seed: Annotated[int | None, typer.Option(help="Noise seed; overrides the storyboards'.", min=0)] = None,
    seed_offset: Annotated[int, typer.Option(help="Added to every seed (for variants).", min=0)] = 0,
    resolution: Annotated[
        str | None, typer.Option(help="WxH in pixels, multiples of 16; overrides [default: model's native].")
    ] = None,
    duration: Annotated[str | None, typer.Option(help="Video length (e.g. 30s, 1:30); overrides.")] = None,
    shard: Annotated[
        str | None, typer.Option(help="K/N: generate only the K-th of N deterministic slices of the list.")
    ] = None,
    force: Annotated[bool, typer.Option("--force", "-f", help="Overwrite existing output files.")] = False,
    fail_fast: Annotated[
        bool, typer.Option("--fail-fast", help="Stop at the first failed storyboard.")
    ] = False,
    keep_partial: Annotated[
        bool, typer.Option(help="On Ctrl-C/SIGTERM keep the video so far as <name>.partial.mp4.")
    ] = True,
    offline: Annotated[
        bool, typer.Option("--offline", help="Use only the local Hugging Face cache (or HF_HUB_OFFLINE=1).")
    ] = False,
    save_latents: Annotated[
        Path | None,
        typer.Option(help="Also save the latents (safetensors) for `longlive decode` (one storyboard)."),
    ] = None,
    int8: Annotated[
        bool, typer.Option("--int8", help="Quantize the transformer in memory after loading (torchao).")
    ] = False,
    scheme: Annotated[
        Scheme | None,
        typer.Option(
            help="With --int8: w8a8 (dynamic int8 activations), w8 (weight-only) [default: w8a8], "
            "or fp8 (CUDA, compute capability >= 8.9)."
        ),
    ] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Print the plans and exit.")] = False,
    json_out: Annotated[
        bool, typer.Option("--json", help="One JSON object per event on stdout; messages on stderr.")
    ] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Print only the final summary lines.")] = False,
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks.")] = False,
    compile: Annotated[
        bool | None,
        typer.Option(
            "--compile/--no-compile",
            help="torch.compile the transformer blocks (the first blocks wait for compilation).",
            rich_help_panel=SPEED,
            show_default=False,
        ),
    ] = None,
    compile_mode: Annotated[
        CompileMode,
        typer.Option(help="torch.compile mode; reduce-overhead adds CUDA graphs.", rich_help_panel=SPEED),
    ] = CompileMode.default,
    fused_qkv: Annotated[
        bool | None,
        typer.Option(
            "--fused-qkv/--no-fused-qkv",
            help="One matmul for self-attention Q, K and V.",
            rich_help_panel=SPEED,
            show_default=False,
        ),
    ] = None,
    static_cache: Annotated[
        bool | None,
        typer.Option(
            "--static-cache/--no-static-cache",
            help="Same-shape KV cache reads in every pass (needed by --compile).",
            rich_help_panel=SPEED,
            show_default=False,
        ),
    ] = None,
    rope_cache: Annotated[
        bool | None,
        typer.Option(
            "--rope-cache/--no-rope-cache",
            help="Build RoPE tables once per resolution and block.",
            rich_help_panel=SPEED,
            show_default=False,
        ),
    ] = None,
    overlap: Annotated[
        bool | None,
        typer.Option(
            "--overlap/--no-overlap",
            help="Decode and encode each block while the next one is generated.",
            rich_help_panel=SPEED,
            show_default=False,
        ),
    ] = None,
    attention: Annotated[
        Attention | None,
        typer.Option(help="Attention kernel (default: PyTorch SDPA picks one).", rich_help_panel=SPEED),
    ] = None,
) -> None:
    """Generate continuous videos from storyboards (several run one after another with one model load)."""
    # Only what the checks before model loading need is imported up front: a bad storyboard or an
    # existing output is reported in a fraction of a second, before torch and diffusers load.
    from .batch import (
        Job,
        JsonLines,
        Status,
        StopSignals,
        exit_code,
        output_for,
        parse_shard,
        select_shard,
    )
    from .hub import WeightsUnavailableError
    from .models.registry import (
        ModelUnavailableError,
        components,
        fetch_components,
        load_model,
        load_text_encoder,
        resolve_model,
    )
    from .storyboard import StoryboardError, format_plan
    from .video import OutputError, check_free_space, check_output, estimate_mp4_bytes

    events = JsonLines() if json_out else None

    def report(job: Job, code: int, err: BaseException) -> None:
        job.fail(code, str(err))
        typer.echo(f"error: {err}", err=True)
        if events:
            events.emit("error", storyboard=job.name, code=code, message=str(err))

    def finish(jobs: list[Job]) -> None:
        code = exit_code(jobs)
        if events:
            counts = {s.value: sum(j.status is s for j in jobs) for s in Status if s is not Status.pending}
            events.emit("summary", exit_code=code, **counts)  # same keys as on a model error below
        if len(jobs) > 1 and not json_out:
            done = sum(j.status is Status.done for j in jobs)
            skipped = sum(j.status is Status.skipped for j in jobs)
            failed = sum(j.status is Status.failed for j in jobs)
            typer.echo(f"{done} done, {failed} failed, {skipped} skipped (already there)", err=True)
        raise typer.Exit(code)

    try:
        spec = resolve_model(model)
        if shard is not None:
            storyboards = select_shard(storyboards, *parse_shard(shard))
        if storyboards.count("-") > 1:
            raise CliError("standard input (-) can be read only once", EXIT_BAD_INPUT)
        names_folder = output is not None and (output.endswith("/") or Path(output).is_dir())
        batch = len(storyboards) > 1 or names_folder
        out_path = Path(output) if output is not None else None
        if batch and save_latents is not None:
            raise CliError("--save-latents works with one storyboard at a time", EXIT_BAD_INPUT)
        if scheme is not None and not int8:
            raise CliError("--scheme goes with --int8", EXIT_BAD_INPUT)
        if int8 and spec.quantized is not None:
            raise CliError(f"--int8: model {spec.name} is already quantized ({spec.scheme})", EXIT_BAD_INPUT)
        if batch and out_path is not None and not out_path.exists() and not dry_run:
            out_path.mkdir(parents=True)
    except (ModelUnavailableError, WeightsUnavailableError) as err:
        raise _fail(err, EXIT_MODEL, debug) from None
    except CliError as err:
        raise _fail(err, err.code, debug) from None
    except (ValueError, OSError) as err:
        raise _fail(err, EXIT_BAD_INPUT, debug) from None

    # 1. Plans and outputs, before anything heavy: bad input costs nothing but its own video.
    jobs: list[Job] = []
    plans = {}
    for name in storyboards:
        job = Job(name=name, output=output_for(name, out_path, batch=batch))
        jobs.append(job)
        try:
            plan = _plan_from_args(name, spec, seed, resolution, duration)
            if dry_run:
                typer.echo(f"{name}:\n{format_plan(plan)}")
                job.status = Status.done
                continue
            if job.output.exists() and not force and batch:
                job.status = Status.skipped
                typer.echo(f"skip {name}: {job.output} already exists (use --force to replace it)", err=True)
                if events:
                    events.emit("skipped", storyboard=name, output=job.output)
                continue
            check_output(job.output, overwrite=force)
            check_free_space(job.output, estimate_mp4_bytes(plan.width, plan.height, plan.num_video_frames))
            if save_latents is not None:
                check_output(save_latents, overwrite=force)
            plans[name] = plan
            if events:
                events.emit("plan", storyboard=name, output=job.output, plan=plan)
        except StoryboardError as err:
            report(job, EXIT_BAD_INPUT, err)
        except OutputError as err:
            report(job, EXIT_OUTPUT, err)
        if fail_fast and job.status is Status.failed:
            finish(jobs)
    if not plans:
        finish(jobs)

    # 2. The model: every weight file is found first (an unreachable Hub is reported in seconds),
    #    prompts are encoded and the text encoder freed, then the video model is loaded once.
    try:
        dev = resolve_device(device)
        torch_dtype = resolve_dtype(dtype, dev)
        from .runtime import RuntimeOptions

        try:
            options = RuntimeOptions.for_device(
                dev,
                compile=compile,
                compile_mode=None if compile_mode is CompileMode.default else compile_mode.value,
                fused_qkv=fused_qkv,
                static_cache=static_cache,
                rope_cache=rope_cache,
                overlap_decode=overlap,
                attention=attention.value if attention is not None else None,
            )
        except ValueError as err:
            raise CliError(str(err), EXIT_BAD_INPUT) from None

        fetch_components(spec, components(spec), offline=offline)
        if int8:
            from .quantize import SchemeError, check_scheme

            try:
                check_scheme((scheme or Scheme.w8a8).value, dev)
            except SchemeError as err:
                raise CliError(str(err), EXIT_BAD_INPUT) from None
        from .events import Interrupted
        from .pipeline import encode_plan_prompts, resolve_seed
        from .pipeline import generate as run_pipeline
        from .progress import make_reporter

        def warn_truncated(index: int, text: str, tokens: int) -> None:
            typer.echo(
                f"warning: prompt {index + 1} has {tokens} tokens; the text encoder reads the first 512 "
                f"and ignores the rest: {text[:60]}...",
                err=True,
            )

        text_encoder = load_text_encoder(spec, device=dev, dtype=torch_dtype, offline=offline)
        embeds = {
            name: _on_cpu(encode_plan_prompts(text_encoder, plan, on_truncate=warn_truncated))
            for name, plan in plans.items()
        }
        del text_encoder
        loaded = load_model(spec, device=dev, dtype=torch_dtype, offline=offline)
        if int8:
            from .quantize import quantize_transformer

            summary = quantize_transformer(loaded.transformer.wan, (scheme or Scheme.w8a8).value)
            if not quiet and not json_out:
                typer.echo(_quantize_summary_line(summary), err=True)
        loaded.transformer.configure(options, frames_per_block=spec.sampler.frames_per_block)
        if not quiet and not json_out:
            typer.echo(f"speed options: {options.describe()}", err=True)
    except (ModelUnavailableError, WeightsUnavailableError, CliError) as err:
        code = err.code if isinstance(err, CliError) else EXIT_MODEL
        for job in jobs:
            if job.name in plans:
                job.fail(code, str(err))
        if events:
            events.emit("error", storyboard=None, code=code, message=str(err))
            events.emit("summary", exit_code=code, done=0, skipped=0, failed=len(plans), interrupted=0)
        raise _fail(err, code, debug) from None

    # 3. Generate, one storyboard after another.
    with StopSignals() as stop:
        for job in jobs:
            if job.name not in plans:
                continue
            plan = plans[job.name]
            try:
                with make_reporter(quiet=quiet or json_out) as reporter:
                    video_seed = resolve_seed(plan.seed) + seed_offset
                    stream = run_pipeline(
                        plan,
                        loaded,
                        embeds[job.name],
                        job.output,
                        seed=video_seed,
                        overwrite=force,
                        save_latents=save_latents,
                        should_stop=stop.requested,
                        keep_partial=keep_partial,
                    )
                    for event in stream:
                        reporter.handle(event)
                        if events:
                            events.event(event, storyboard=job.name)
                        if isinstance(event, Interrupted):
                            kept = f"kept {event.path}" if event.path else "nothing kept"
                            typer.echo(f"stopped after {event.duration_s:.2f} s of video: {kept}", err=True)
                job.status = Status.interrupted if stop.requested() else Status.done
                if stop.requested():
                    job.code = stop.exit_code
            except KeyboardInterrupt:
                job.status, job.code = Status.interrupted, EXIT_SIGINT
                typer.echo("aborted: the unfinished video was removed", err=True)
            except OutputError as err:
                report(job, EXIT_OUTPUT, err)
            except Exception as err:  # a runtime failure of this storyboard; the others go on
                if debug:
                    raise
                report(job, EXIT_FAILURE, RuntimeError(f"generation failed: {type(err).__name__}: {err}"))
            if job.status is Status.interrupted or (fail_fast and job.status is Status.failed):
                break
    finish(jobs)


def _on_cpu(embeds: list) -> list:
    """``embeds`` moved to the CPU until their switch comes (off the GPU while the video model runs),
    keeping repeated prompts as one shared tensor (``encode_prompts`` returns one object per unique
    prompt; a plain ``[e.cpu() for e in embeds]`` would copy it once per segment on CUDA)."""
    moved = {id(e): e.cpu() for e in embeds}
    return [moved[id(e)] for e in embeds]


def _quantize_summary_line(summary) -> str:
    return (
        f"{summary.scheme}: {summary.quantized_layers} linear layers quantized, {summary.kept_layers} kept "
        f"in the compute dtype; transformer {_human(summary.bytes_before)} -> {_human(summary.bytes_after)}"
    )


@app.command()
def quantize(
    output: Annotated[
        Path, typer.Option("-o", "--output", help="Model folder to write (usable as --model).")
    ],
    model: Annotated[str, typer.Option("--model", "-m", help="Preset, spec file or folder.")] = DEFAULT_MODEL,
    scheme: Annotated[
        Scheme, typer.Option(help="w8a8: dynamic int8 activations + int8 weights; w8: int8 weights only.")
    ] = Scheme.w8a8,
    force: Annotated[bool, typer.Option("--force", "-f", help="Replace an existing output folder.")] = False,
    offline: Annotated[
        bool, typer.Option("--offline", help="Use only the local Hugging Face cache (or HF_HUB_OFFLINE=1).")
    ] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Print only the final summary lines.")] = False,
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks.")] = False,
) -> None:
    """Quantize a model's transformer to INT8 (torchao, on CPU) and write it as a model folder."""
    from .hub import WeightsUnavailableError
    from .models.registry import ModelUnavailableError, resolve_model

    try:
        if output.exists() and not force:
            raise CliError(f"{output} already exists (use --force to replace it)", EXIT_OUTPUT)
        spec = resolve_model(model)
        if spec.quantized is not None:
            raise CliError(
                f"model {spec.name} is already quantized ({spec.scheme}); quantize its float source",
                EXIT_BAD_INPUT,
            )
        from .quantize import SchemeError, write_quantized_model

        def on_layer(name: str, index: int, total: int) -> None:
            if not quiet:
                typer.echo(f"[{index}/{total}] {name}", err=True)

        try:
            summary = write_quantized_model(
                spec, output, scheme=scheme.value, force=force, offline=offline, on_layer=on_layer
            )
        except SchemeError as err:
            raise CliError(str(err), EXIT_BAD_INPUT) from None
        except FileExistsError as err:
            raise CliError(str(err), EXIT_OUTPUT) from None
        typer.echo(_quantize_summary_line(summary), err=True)
        typer.echo(f"Wrote {output} (use it as --model {output})", err=True)
    except CliError as err:
        raise _fail(err, err.code, debug) from None
    except (ModelUnavailableError, WeightsUnavailableError) as err:
        raise _fail(err, EXIT_MODEL, debug) from None
    except OSError as err:
        raise _fail(RuntimeError(f"cannot write {output}: {err}"), EXIT_OUTPUT, debug) from None


@app.command()
def validate(
    storyboards: Annotated[
        list[str], typer.Argument(help="Storyboard YAML files; - for stdin.", show_default=False)
    ],
    model: Annotated[str, typer.Option("--model", "-m", help="Model the plan is for.")] = DEFAULT_MODEL,
    json_out: Annotated[
        bool, typer.Option("--json", help="One JSON object per storyboard on stdout.")
    ] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Print only errors.")] = False,
) -> None:
    """Check storyboards and print their generation plans; exit 2 if any is invalid."""
    from .batch import JsonLines
    from .models.registry import ModelUnavailableError, resolve_model
    from .storyboard import StoryboardError, format_plan

    try:
        spec = resolve_model(model)
    except ModelUnavailableError as err:
        raise _fail(err, EXIT_BAD_INPUT, False) from None
    events = JsonLines() if json_out else None
    failed = 0
    for path in storyboards:
        try:
            plan = _plan_from_args(path, spec, None, None, None)
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
def download(
    model: Annotated[str, typer.Argument(help="Model preset or spec file.")] = DEFAULT_MODEL,
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks.")] = False,
) -> None:
    """Fetch a model's weight files into the Hugging Face cache and print what was fetched."""
    from .hub import WeightsUnavailableError, fetch
    from .models.registry import ModelUnavailableError, components, resolve_model

    try:
        spec = resolve_model(model)
        parts = components(spec)
        if not parts:
            typer.echo(f"{spec.name}: nothing to download (built in-process)")
            return
        total = 0
        for part in parts:
            path = fetch(part.source, folder=part.folder, size=part.size, model=spec.name)
            size = _disk_size(path)
            total += size
            typer.echo(f"{part.role:<19} {_human(size):>9}  {part.source}  -> {path}")
        typer.echo(f"total {_human(total)}")
    except (ModelUnavailableError, WeightsUnavailableError) as err:
        raise _fail(err, EXIT_MODEL, debug) from None


def _disk_size(path: Path) -> int:
    if path.is_file():
        return path.stat().st_size
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def _human(size: int) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if size < 1000 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1000
    return f"{size} GB"


@app.command()
def decode(
    latents: Annotated[Path, typer.Argument(help="Latents file from `generate --save-latents`.")],
    output: Annotated[Path, typer.Option("-o", "--output", help="MP4 to write.")],
    model: Annotated[str, typer.Option("--model", "-m", help="Model whose VAE decodes.")] = DEFAULT_MODEL,
    device: Annotated[Device, typer.Option(help="Where to run.")] = Device.auto,
    force: Annotated[bool, typer.Option("--force", "-f", help="Overwrite an existing output file.")] = False,
    offline: Annotated[
        bool, typer.Option("--offline", help="Use only the local Hugging Face cache.")
    ] = False,
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks.")] = False,
) -> None:
    """Turn a saved latents file into an MP4 with the model's VAE."""
    from .hub import WeightsUnavailableError
    from .models.registry import ModelUnavailableError, load_vae_only, resolve_model
    from .video import OutputError, check_output

    try:
        check_output(output, overwrite=force)
        spec = resolve_model(model)
        from .pipeline import decode_to_video, read_latents

        try:
            z, plan = read_latents(latents)
        except ValueError as err:
            raise CliError(str(err), EXIT_BAD_INPUT) from None
        vae = load_vae_only(spec, device=resolve_device(device), offline=offline)
        path = decode_to_video(vae, z, output, fps=plan["fps"], overwrite=force)
        typer.echo(f"Wrote {path}")
    except CliError as err:
        raise _fail(err, err.code, debug) from None
    except (ModelUnavailableError, WeightsUnavailableError) as err:
        raise _fail(err, EXIT_MODEL, debug) from None
    except OutputError as err:
        raise _fail(err, EXIT_OUTPUT, debug) from None


@app.command()
def info() -> None:
    """Show the version, the model presets and the devices PyTorch sees."""
    import torch

    from .models.registry import DEFAULT_MODEL, PRESETS

    typer.echo(f"longlive-cli {__version__} (torch {torch.__version__})")
    typer.echo("model presets:")
    for name, spec in PRESETS.items():
        source = spec.base or "built in-process, random weights (noise-like video)"
        default = "  [default]" if name == DEFAULT_MODEL else ""
        typer.echo(f"  {name:<14} {source}{default}")
    cuda = torch.cuda.is_available()
    typer.echo(f"devices: cpu{', cuda (' + torch.cuda.get_device_name(0) + ')' if cuda else ''}")


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
    import logging

    # torchao builds without every optional kernel log harmless import warnings; keep stderr clean.
    for name in ("torchao", "diffusers.quantizers.torchao.torchao_quantizer", "torch.utils._pytree"):
        logging.getLogger(name).setLevel(logging.ERROR)


def main() -> None:
    """Console-script entry point."""
    app()
