"""The ``longlive`` command: parse arguments, call the library, turn errors into messages and exit codes."""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Annotated

import typer

from . import __version__

DEFAULT_MODEL = "longlive-1.3b"  # the same as models.registry.DEFAULT_MODEL, without importing torch here

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    help="Long video generation from timed-prompt storyboards with LongLive (Wan2.1-T2V-1.3B).",
)

# Exit codes (README "Exit codes").
EXIT_OK = 0
EXIT_FAILURE = 1  # generation failed at run time
EXIT_BAD_INPUT = 2  # storyboard or command-line arguments unusable
EXIT_MODEL = 3  # model or weights unavailable
EXIT_OUTPUT = 4  # output cannot be written (exists, folder missing, disk)
EXIT_INTERRUPTED = 130


class Device(str, Enum):
    auto = "auto"
    cpu = "cpu"
    cuda = "cuda"


class DType(str, Enum):
    auto = "auto"
    bf16 = "bf16"
    fp16 = "fp16"
    float32 = "float32"


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


def _plan_from_args(storyboard: Path, spec, seed, resolution, duration):
    from .storyboard import load_storyboard, make_plan, parse_resolution, parse_time

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
    storyboard: Annotated[Path, typer.Argument(help="Storyboard YAML file.", show_default=False)],
    output: Annotated[
        Path | None, typer.Option("-o", "--output", help="MP4 to write [default: <storyboard name>.mp4].")
    ] = None,
    model: Annotated[
        str, typer.Option("--model", "-m", help="Model preset (see `longlive info`).")
    ] = "longlive-1.3b",
    device: Annotated[Device, typer.Option(help="Where to run.")] = Device.auto,
    dtype: Annotated[
        DType, typer.Option(help="Compute precision [auto: bf16 on CUDA, float32 on CPU].")
    ] = DType.auto,
    seed: Annotated[int | None, typer.Option(help="Noise seed; overrides the storyboard's.", min=0)] = None,
    resolution: Annotated[
        str | None,
        typer.Option(help="WxH in pixels, multiples of 16; overrides [default: the model's native size]."),
    ] = None,
    duration: Annotated[str | None, typer.Option(help="Video length (e.g. 30s, 1:30); overrides.")] = None,
    force: Annotated[bool, typer.Option("--force", "-f", help="Overwrite an existing output file.")] = False,
    offline: Annotated[
        bool,
        typer.Option("--offline", help="Use only the local Hugging Face cache (also: HF_HUB_OFFLINE=1)."),
    ] = False,
    save_latents: Annotated[
        Path | None, typer.Option(help="Also save the latents (safetensors) for `longlive decode`.")
    ] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Print the plan and exit.")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Print only the final summary line.")] = False,
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks.")] = False,
) -> None:
    """Generate one continuous video from a storyboard."""
    # Only what the checks before model loading need is imported up front: a bad storyboard or an
    # existing output is reported in a fraction of a second, before torch and diffusers load.
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
    from .video import OutputError, check_output

    try:
        spec = resolve_model(model)
        plan = _plan_from_args(storyboard, spec, seed, resolution, duration)
        if dry_run:
            typer.echo(format_plan(plan))
            return
        out = output if output is not None else Path(storyboard.stem + ".mp4")
        check_output(out, overwrite=force)
        if save_latents is not None:
            check_output(save_latents, overwrite=force)
        # Every weight file is found (or fetched) before anything heavy is loaded, so a missing
        # file or an unreachable Hub is reported in seconds.
        fetch_components(spec, components(spec), offline=offline)
        dev = resolve_device(device)
        torch_dtype = resolve_dtype(dtype, dev)
        from .pipeline import encode_plan_prompts, resolve_seed
        from .pipeline import generate as run_pipeline
        from .progress import make_reporter

        def warn_truncated(index: int, text: str, tokens: int) -> None:
            typer.echo(
                f"warning: prompt {index + 1} has {tokens} tokens; the text encoder reads the first 512 "
                f"and ignores the rest: {text[:60]}...",
                err=True,
            )

        # Encode every prompt first, then free the text encoder: peak memory during generation is
        # the transformer, the VAE and the caches only.
        text_encoder = load_text_encoder(spec, device=dev, dtype=torch_dtype, offline=offline)
        embeds = encode_plan_prompts(text_encoder, plan, on_truncate=warn_truncated)
        del text_encoder
        loaded = load_model(spec, device=dev, dtype=torch_dtype, offline=offline)
        with make_reporter(quiet=quiet) as reporter:
            for event in run_pipeline(
                plan,
                loaded,
                embeds,
                out,
                seed=resolve_seed(plan.seed),
                overwrite=force,
                save_latents=save_latents,
            ):
                reporter.handle(event)
    except StoryboardError as err:
        raise _fail(err, EXIT_BAD_INPUT, debug) from None
    except CliError as err:
        raise _fail(err, err.code, debug) from None
    except (ModelUnavailableError, WeightsUnavailableError) as err:
        raise _fail(err, EXIT_MODEL, debug) from None
    except OutputError as err:
        raise _fail(err, EXIT_OUTPUT, debug) from None
    except KeyboardInterrupt:
        typer.echo("interrupted: no output was written under the final name", err=True)
        raise typer.Exit(EXIT_INTERRUPTED) from None
    except Exception as err:  # anything else is a bug or a runtime failure: say so, briefly
        if debug:
            raise
        typer.echo(
            f"error: generation failed: {type(err).__name__}: {err} (run with --debug for details)", err=True
        )
        raise typer.Exit(EXIT_FAILURE) from None


@app.command()
def validate(
    storyboards: Annotated[list[Path], typer.Argument(help="Storyboard YAML files.", show_default=False)],
    model: Annotated[str, typer.Option("--model", "-m", help="Model the plan is for.")] = DEFAULT_MODEL,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Print only errors.")] = False,
) -> None:
    """Check storyboards and print their generation plans; exit 2 if any is invalid."""
    from .models.registry import ModelUnavailableError, resolve_model
    from .storyboard import StoryboardError, format_plan

    try:
        spec = resolve_model(model)
    except ModelUnavailableError as err:
        raise _fail(err, EXIT_BAD_INPUT, False) from None
    failed = 0
    for path in storyboards:
        try:
            plan = _plan_from_args(path, spec, None, None, None)
        except StoryboardError as err:
            failed += 1
            typer.echo(f"error: {err}", err=True)
            continue
        if not quiet:
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


def main() -> None:
    """Console-script entry point."""
    app()
