"""Many storyboards in one run: jobs, output names, shards, exit codes.

The CLI turns its arguments into :class:`Job` objects, runs them with one loaded model, and ends
with :func:`exit_code`. Scheduling across GPUs or machines is left to existing tools (Slurm arrays,
GNU parallel, ``xargs -P``): :func:`select_shard` gives each of them a deterministic slice. Stop signals are
:mod:`longlive_cli.signals`'s, the JSON lines :mod:`longlive_cli.jsonl`'s.
"""

from __future__ import annotations

import enum
import logging
import os
import sys
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .errors import EXIT_OK, EXIT_PARTIAL, InputError, LongLiveError, exit_code_for
from .jsonl import JsonLines
from .signals import StopSignals

if TYPE_CHECKING:
    from .api import LongLive
    from .events import Event
    from .models.spec import ModelSpec
    from .storyboard import Plan

log = logging.getLogger(__name__)

STDIN = "-"


class Status(str, enum.Enum):
    pending = "pending"
    done = "done"
    skipped = "skipped"  # the output already existed (batch mode, no --force)
    failed = "failed"
    interrupted = "interrupted"


@dataclass
class Job:
    """One storyboard to generate: where it comes from, where it goes, and how it ended."""

    name: str  # the storyboard file as given, or "-" for stdin
    output: Path
    status: Status = Status.pending
    code: int = EXIT_OK  # the exit code this job alone would give
    message: str = ""

    def fail(self, code: int, message: str) -> None:
        self.status, self.code, self.message = Status.failed, code, message


def parse_shard(text: str) -> tuple[int, int]:
    """``"K/N"`` -> ``(K, N)`` with ``1 <= K <= N``.

    Raises:
        InputError: anything else (the message shows the expected form; a ValueError, exit 2).
    """
    try:
        k, n = (int(x) for x in text.split("/"))
    except ValueError:
        raise InputError(f"--shard {text!r}: write K/N, e.g. 1/4 for the first of four slices") from None
    if not 1 <= k <= n:
        raise InputError(f"--shard {text!r}: K must be between 1 and N")
    return k, n


def select_shard(items: Sequence[str], k: int, n: int) -> list[str]:
    """The K-th of N deterministic slices of ``items`` (1-based): every N-th item from the K-th.

    The slices are disjoint and together cover ``items`` in their given order.
    """
    return [item for i, item in enumerate(items) if i % n == k - 1]


def output_for(storyboard: str, output: Path | None, *, batch: bool) -> Path:
    """The MP4 path for ``storyboard``.

    Batch mode (several storyboards, or ``-o`` naming a folder): ``<folder>/<storyboard stem>.mp4``
    (``stdin.mp4`` for ``-``). Single mode: ``output`` or ``<storyboard stem>.mp4``.
    """
    stem = "stdin" if storyboard == STDIN else Path(storyboard).stem
    if batch:
        return (output if output is not None else Path(".")) / f"{stem}.mp4"
    return output if output is not None else Path(f"{stem}.mp4")


def exit_code(jobs: Sequence[Job]) -> int:
    """The run's exit code: 0 when every job is done or skipped, the interrupt code when stopped,
    5 (partial success) when some succeeded and some failed, else the first failure's code."""
    for job in jobs:
        if job.status is Status.interrupted:
            return job.code
    failed = [j for j in jobs if j.status is Status.failed]
    if not failed:
        return EXIT_OK
    if any(j.status in (Status.done, Status.skipped) for j in jobs):
        return EXIT_PARTIAL
    return failed[0].code


def check_distinct_outputs(jobs: Sequence[Job], save_latents: Path | None = None) -> None:
    """Before anything is made: no two storyboards write the same video, and no output replaces an input
    storyboard (``generate a.yaml -o a.yaml --force``).

    Raises:
        InputError: naming both storyboards (or the storyboard and the output) and what to do.
    """
    inputs = {Path(job.name).expanduser().absolute(): job.name for job in jobs if job.name != STDIN}
    seen: dict[Path, str] = {}
    outputs = [(job.name, job.output) for job in jobs]
    if save_latents is not None:
        outputs.append(("--save-latents", save_latents))
    for name, output in outputs:
        where = Path(output).expanduser().absolute()
        if where in seen:
            raise InputError(
                f"{seen[where]} and {name} would both write {output}; rename one of them, or generate them "
                "into different folders"
            )
        seen[where] = name
        same = inputs.get(where) or next(
            (n for p, n in inputs.items() if where.exists() and p.exists() and os.path.samefile(p, where)),
            None,
        )
        if same is not None:
            raise InputError(
                f"the output {output} of {name} is the storyboard {same} itself; an output must not "
                "replace an input: choose another -o"
            )


class BatchRun:
    """The jobs of one ``longlive generate``: planned and checked before anything heavy is loaded, then
    generated one after another with one model. Messages go to the log; with ``json_out`` every step is
    also a JSON line on stdout (:class:`JsonLines`). Build it with :meth:`prepare`.
    """

    def __init__(
        self,
        jobs: list[Job],
        *,
        model: str,
        spec: ModelSpec,
        save_latents: Path | None,
        overrides: dict[str, Any],
        force: bool,
        batch: bool,
        json_out: bool,
    ) -> None:
        self.jobs, self.model, self.spec = jobs, model, spec  # spec: the model with its --lora LoRAs
        self.save_latents, self.overrides, self.force, self.batch = save_latents, overrides, force, batch
        self.events = JsonLines() if json_out else None
        self.plans: dict[str, Plan] = {}
        self.fail_fast = False
        self.stopped = False  # --fail-fast hit while planning
        self.longlive: LongLive | None = None
        self.with_report = False  # generate --report: a report folder beside each video, checked here too

    @classmethod
    def prepare(
        cls,
        storyboards: Sequence[str],
        *,
        output: str | None,
        model: str,
        shard: str | None,
        save_latents: Path | None,
        overrides: dict[str, Any],
        force: bool,
        dry_run: bool,
        json_out: bool,
        rope: str | None = None,
        loras: Sequence[str] = (),
        decoder: str | None = None,
    ) -> BatchRun:
        """The jobs for ``storyboards`` (after ``--shard``), each with its output path; ``rope`` replaces
        the model's temporal RoPE (``--rope``); ``loras`` are the ``--lora SOURCE[:SCALE]`` values merged on
        top of ``model``.

        Raises:
            ModelError: ``model`` cannot be resolved (exit 3). InputError: conflicting arguments or a LoRA
                written wrongly (exit 2). OSError: the output folder cannot be created.
        """
        from .models.spec import resolve_spec

        spec = resolve_spec(model, rope, loras, decoder)
        if shard is not None:
            storyboards = select_shard(storyboards, *parse_shard(shard))
        if list(storyboards).count(STDIN) > 1:
            raise InputError("standard input (-) can be read only once")
        names_folder = output is not None and (output.endswith("/") or Path(output).is_dir())
        batch = len(storyboards) > 1 or names_folder
        out_path = Path(output) if output is not None else None
        if batch and save_latents is not None:
            raise InputError("--save-latents works with one storyboard at a time")
        jobs = [Job(name=name, output=output_for(name, out_path, batch=batch)) for name in storyboards]
        check_distinct_outputs(jobs, save_latents)
        if batch and out_path is not None and not out_path.exists() and not dry_run:
            out_path.mkdir(parents=True)
        run = cls(
            jobs,
            model=model,
            spec=spec,
            save_latents=save_latents,
            overrides=overrides,
            force=force,
            batch=batch,
            json_out=json_out,
        )
        return run

    @property
    def finished(self) -> bool:
        """Nothing (more) to generate: no storyboard planned, or ``--fail-fast`` stopped the run."""
        return self.stopped or not self.plans

    def plan_all(self, *, fail_fast: bool, on_plan: Callable[[str, Plan], None] | None = None) -> None:
        """Plan every job and check its outputs; a bad storyboard or output fails only its own job.
        ``on_plan(name, plan)`` is called for each plan (``--dry-run`` prints it; the job is then done)."""
        from .models.spec import check_capabilities
        from .plans import plan_storyboard
        from .video import check_free_space, check_output, estimate_mp4_bytes

        self.fail_fast = fail_fast
        for job in self.jobs:
            try:
                source = sys.stdin.read() if job.name == STDIN else Path(job.name)
                name = "<stdin>" if job.name == STDIN else None
                plan = plan_storyboard(source, self.spec.geometry, name=name, **self.overrides)
                check_capabilities(self.spec, plan)
                if plan.image is not None:  # a bad image fails its job before anything is loaded
                    from .images import load_image

                    load_image(plan.image, plan.width, plan.height)
                if on_plan is not None:
                    on_plan(job.name, plan)
                    job.status = Status.done
                    continue
                if job.output.exists() and not self.force and self.batch:
                    job.status = Status.skipped
                    log.info("skip %s: %s already exists (use --force to replace it)", job.name, job.output)
                    self._emit("skipped", storyboard=job.name, output=job.output)
                    continue
                check_output(job.output, overwrite=self.force)
                if self.with_report:
                    from .quality import check_report_dir, default_report_dir

                    check_report_dir(default_report_dir(job.output), overwrite=self.force)
                check_free_space(
                    job.output, estimate_mp4_bytes(plan.width, plan.height, plan.num_video_frames)
                )
                if self.save_latents is not None:
                    check_output(self.save_latents, overwrite=self.force)
                    g = self.spec.geometry
                    h, w = g.latent_size(plan.width, plan.height)
                    # float32 [1, L, C, h, w], streamed to the file block by block (pipeline.generate)
                    check_free_space(
                        self.save_latents, 4 * plan.num_latent_frames * g.latent_channels * h * w
                    )
                self.plans[job.name] = plan
                self._emit("plan", storyboard=job.name, output=job.output, plan=plan)
            except LongLiveError as err:
                self.report(job, err)
            if fail_fast and job.status is Status.failed:
                self.stopped = True
                return

    def load(
        self,
        *,
        device: str,
        dtype: str,
        options: dict[str, Any],
        offline: bool,
        int8: str | None,
        text_dtype: str = "auto",
        embed_cache: bool = True,
        memory_check: bool = True,
    ) -> None:
        """Resolve the model and find its files, check that the run fits in memory (before anything large is
        loaded), encode every planned prompt not in the embedding cache (the text encoder is then freed), and
        load the video model once.

        Raises:
            LongLiveError: as :meth:`LongLive.from_pretrained`, ``check_memory``, ``encode_prompts`` and
                ``load``.
        """
        from .api import LongLive

        ll = LongLive.from_pretrained(
            self.spec,
            device=device,
            dtype=dtype,
            text_dtype=text_dtype,
            options=options,
            offline=offline,
            int8=int8,
            embed_cache=embed_cache,
            memory_check=memory_check,
        )
        ll.check_memory(self.plans.values())
        ll.encode_prompts(self.plans.values())
        ll.load()
        self.longlive = ll

    def model_failed(self, err: BaseException) -> None:
        """Every planned job fails with ``err`` (the model could not be had)."""
        code = exit_code_for(err)
        for job in self.jobs:
            if job.name in self.plans:
                job.fail(code, str(err))
        self._emit("error", storyboard=None, code=code, message=str(err))
        self._emit("summary", exit_code=code, done=0, skipped=0, failed=len(self.plans), interrupted=0)

    def planned(self) -> Iterator[tuple[Job, Plan]]:
        """The jobs to generate, in order, with their plans."""
        for job in self.jobs:
            if job.name in self.plans:
                yield job, self.plans[job.name]

    def stream(
        self, job: Job, plan: Plan, seed_offset: int, should_stop: Callable[[], bool], keep_partial: bool
    ) -> Iterator[Event]:
        """Generate ``job``, yielding its events (also written as JSON lines with ``--json``)."""
        from .api import resolve_seed

        assert self.longlive is not None, "load() first"
        events = self.longlive.stream(
            plan,
            job.output,
            seed=resolve_seed(plan.seed) + seed_offset,
            overwrite=self.force,
            save_latents=self.save_latents,
            should_stop=should_stop,
            keep_partial=keep_partial,
        )
        for event in events:
            if self.events:
                self.events.event(event, storyboard=job.name)
            yield event

    def job_ended(self, job: Job, stop: StopSignals) -> None:
        """``job``'s events ran out: done, or interrupted by a stop request."""
        job.status = Status.interrupted if stop.requested() else Status.done
        if stop.requested():
            job.code = stop.exit_code

    def job_aborted(self, job: Job, code: int) -> None:
        """``job`` was abandoned by a second Ctrl-C / SIGTERM (its unfinished video removed): recorded, and a
        JSON ``aborted`` line (as ``longlive live``'s :class:`~longlive_cli.events.Aborted`)."""
        job.status, job.code = Status.interrupted, code
        self._emit("aborted", storyboard=job.name, exit_code=code)

    def report(self, job: Job, err: BaseException) -> None:
        """``job`` failed with ``err``: logged, recorded, and a JSON ``error`` line."""
        code = exit_code_for(err)
        job.fail(code, str(err))
        log.error("%s", err)
        self._emit("error", storyboard=job.name, code=code, message=str(err))

    def should_stop(self, job: Job) -> bool:
        """Stop after ``job``: it was interrupted, or it failed under ``--fail-fast``."""
        return job.status is Status.interrupted or (self.fail_fast and job.status is Status.failed)

    def finish(self) -> tuple[int, str | None]:
        """The run's exit code (:func:`exit_code`), after the JSON ``summary`` line; and for several
        storyboards without ``--json`` a line counting them (``3 done, 0 failed, 1 skipped``)."""
        code = exit_code(self.jobs)
        counts = {s.value: sum(j.status is s for j in self.jobs) for s in Status if s is not Status.pending}
        self._emit("summary", exit_code=code, **counts)
        line = None
        if len(self.jobs) > 1 and self.events is None:
            done, failed, skipped = counts["done"], counts["failed"], counts["skipped"]
            line = f"{done} done, {failed} failed, {skipped} skipped (already there)"
        return code, line

    def _emit(self, kind: str, **fields: Any) -> None:
        if self.events:
            self.events.emit(kind, **fields)
