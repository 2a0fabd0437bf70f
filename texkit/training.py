"""Reward fine-tuning: backpropagate rewards through the view loop into LoRA weights and cameras.

One step (METHOD.md sec. 3): draw a prompt and per-view seeds (a pure function of the run seed and
the step, so a resumed run repeats exactly), paint the texture with the differentiable view loop,
render the reward views, loss = -(weighted sum of rewards), backpropagate, clip, AdamW step.
A non-finite loss skips the step and says so. Metrics go to ``metrics.jsonl``; checkpoints are
atomic (`texkit.checkpoint`); the run folder ends with the after preview and the final adapter.
Training writes plain data only: the report page is built from the run folder afterwards by
the ``train`` command (`texkit.report.write_run_report`), and this module never imports the report.
"""

from __future__ import annotations

import contextlib
import json
import math
import signal
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from texkit import distributed
from texkit.checkpoint import (
    CheckpointError,
    check_run_folder,
    checkpoint_problem,
    describe_load_failure,
    load_checkpoint,
    read_run_id,
    remove_stale_temp,
    resume_candidates,
    save_checkpoint,
    start_run,
)
from texkit.config import RunConfig
from texkit.interrupts import RunStopped, StopRequests
from texkit.io import atomic_folder, atomic_write_text
from texkit.session import Session
from texkit.types import Texture

__all__ = ["Trainer", "TrainResult", "train"]


@dataclass
class TrainResult:
    """Where a run went and what it measured.

    Attributes:
        run_dir: the run folder (``metrics.jsonl``, ``before/``, ``after/``, ``adapter/``, config and versions).
        metrics: one dict per step, as in ``metrics.jsonl``.
    """

    run_dir: Path
    metrics: list[dict[str, Any]]


class Trainer:
    """Fine-tunes the generator of a `Session`.

    Args:
        config: the run configuration.
        run_dir: output folder (default ``config.output.dir``).
        console: where progress goes (quiet when None and not a terminal).
        notify: receives one-line notices while the session is built (an initial texture resized).
    """

    def __init__(
        self, config: RunConfig, run_dir: Path | None = None, console: Console | None = None, notify: Callable[[str], None] | None = None
    ) -> None:
        self.config = config
        self.run_dir = Path(run_dir or config.output.dir)
        self.console = console or Console(stderr=True)
        self.session = Session.build(config, notify=notify)
        cfg = config.training
        groups = [{"params": self.session.generator.trainable_parameters(), "lr": cfg.lr}]
        cams = self.session.camera_parameters()
        if cams:
            groups.append({"params": cams, "lr": cfg.camera_lr})
        self.optimizer = torch.optim.AdamW(groups, betas=tuple(cfg.betas), weight_decay=cfg.weight_decay, eps=cfg.eps)
        self.step = 0
        self.latest: tuple[str, Texture] | None = None  # (prompt, texture) of the last step's first sample (write_latest)
        # data parallel (texkit.distributed): same start on every rank, gradients averaged per step
        self.dist = distributed.context()
        distributed.broadcast_parameters(self.parameters())
        # fp16 frozen weights: scale the loss so small activation gradients do not flush to zero
        self.scaler = torch.amp.GradScaler(self.session.device.type) if cfg.mixed_precision == "fp16" else None
        distributed.write_rank_snapshot("start", self.snapshot())

    @property
    def checkpoint_dir(self) -> Path:
        """``<run>/checkpoints``."""
        return self.run_dir / "checkpoints"

    def parameters(self) -> list[torch.Tensor]:
        """Everything the optimiser updates."""
        return [p for group in self.optimizer.param_groups for p in group["params"]]

    @property
    def effective_batch(self) -> int:
        """Samples per optimiser step: world size x ``training.grad_accum`` x ``training.batch_size``."""
        return self.dist.world_size * self.config.training.grad_accum * self.config.training.batch_size

    def snapshot(self) -> dict[str, Any]:
        """This rank's trainable tensors by name (``lora/<i>`` and camera angles), for comparisons."""
        out: dict[str, Any] = {f"lora/{i}": p for i, p in enumerate(self.session.generator.trainable_parameters())}
        out.update({f"camera/{k}": v for k, v in self.session.angles.items()})
        out["step"] = self.step
        return out

    def _sample(self, micro: int) -> tuple[torch.Tensor, dict[str, Any]]:
        """Paint and score batch ``micro`` of this rank (``training.batch_size`` samples); returns (loss, metrics).

        Sample b of the batch is slot ``(rank * grad_accum + micro) * batch_size + b`` of the step's
        draws, so a batch of B equals B batch-1 micro-batches with the same draws; the loss is the
        mean of the samples' negated rewards.
        """
        cfg = self.config.training
        batch = cfg.batch_size
        prompts, seeds = self.session.draw_batch(self.step, (self.dist.rank * cfg.grad_accum + micro) * batch, batch)
        texture = self.session.paint(prompts, seeds)
        scores = self.session.score_batch(texture, prompts)
        if micro == 0:
            first = texture.sample(0)
            self.latest = (prompts[0], Texture(first.image.detach(), None if first.coverage is None else first.coverage.detach()))
        loss = -scores.total.mean()
        metrics: dict[str, Any] = scores.mean_metrics()
        metrics.update({"loss": float(loss.detach()), "prompt": prompts[0]})
        if batch > 1:
            metrics.update({"prompts": prompts, "batch_size": batch})
        return loss, metrics

    def train_step(self) -> dict[str, Any]:
        """One optimisation step; returns its metrics."""
        start = time.perf_counter()
        accum = self.config.training.grad_accum
        self.optimizer.zero_grad(set_to_none=True)
        samples: list[dict[str, Any]] = []
        finite = True
        for micro in range(accum):
            loss, sample = self._sample(micro)
            samples.append(sample)
            if not torch.isfinite(loss):
                finite = False
                break
            scaled = loss / accum if accum > 1 else loss
            (self.scaler.scale(scaled) if self.scaler is not None else scaled).backward()
        # one message: gradients averaged over ranks + "did any rank see a non-finite loss"
        finite = distributed.all_reduce_gradients(self.parameters(), finite)
        metrics = _mean_metrics(distributed.all_gather_objects(samples))
        metrics.update({"step": self.step + 1, "world_size": self.dist.world_size, "grad_accum": accum, "effective_batch": self.effective_batch})
        if not finite:
            metrics["skipped"] = "non-finite loss"
            self._say(f"[yellow]step {self.step + 1}: loss is {metrics['loss']}, step skipped[/yellow]")
        else:
            if self.scaler is not None:
                self.scaler.unscale_(self.optimizer)
            params = [p for p in self.parameters() if p.grad is not None]
            norm = torch.nn.utils.clip_grad_norm_(params, self.config.training.grad_clip if self.config.training.grad_clip > 0 else math.inf)
            metrics["grad_norm"] = float(norm)
            if torch.isfinite(norm) and self.scaler is not None:
                self.scaler.step(self.optimizer)
            elif torch.isfinite(norm):
                self.optimizer.step()
            else:
                metrics["skipped"] = "non-finite gradient"
                self._say(f"[yellow]step {self.step + 1}: gradient is not finite, step skipped[/yellow]")
            if self.scaler is not None:
                self.scaler.update()
                metrics["loss_scale"] = float(self.scaler.get_scale())
        self.optimizer.zero_grad(set_to_none=True)
        for name, tensor in self.session.angles.items():
            if tensor.requires_grad:
                metrics[f"camera/{name}"] = [round(float(x), 4) for x in tensor.detach().cpu()]
        metrics["step_seconds"] = time.perf_counter() - start
        self.step += 1
        return metrics

    def save(self) -> Path:
        """Write a checkpoint of the current step."""
        state = {
            "optimizer": self.optimizer.state_dict(),
            "angles": {k: v.detach().cpu() for k, v in self.session.angles.items()},
        }
        if self.scaler is not None:
            state["grad_scaler"] = self.scaler.state_dict()
        path = save_checkpoint(self.checkpoint_dir, self.step, self.session.generator, state, run_id=getattr(self, "run_id", None))
        self.saved = path
        return path

    def write_latest(self) -> Path:
        """``<run>/latest/``: the first texture painted in the last step, as `Session.preview` writes it, plus
        ``step.json`` (``{"step", "prompt"}``); the folder is replaced as a whole (`output.latest_every`)."""
        prompt, texture = self.latest
        with atomic_folder(self.run_dir / "latest") as tmp:
            self.session.preview(tmp, texture=texture, prompt=prompt)
            atomic_write_text(tmp / "step.json", json.dumps({"step": self.step, "prompt": prompt}) + "\n")
        return self.run_dir / "latest"

    def resume(self) -> bool:
        """Load the newest checkpoint of the run recorded in the run folder that verifies and loads; False when there is none.

        Checkpoints are tried ``latest`` first, then newest step first; one whose files do not match
        their checksums (`texkit.checkpoint.checkpoint_problem`) or that fails to load is skipped with a
        one-line notice saying why. The learning rates of the config (``training.lr``,
        ``training.camera_lr``) replace the ones in the restored optimiser state. Removes temporary
        folders of a checkpoint write that was killed.

        Raises:
            CheckpointError: the run has checkpoints but none of them loads (one line naming the newest and why).
        """
        self.run_id = read_run_id(self.run_dir)
        if self.run_id is None:
            return False
        if self.dist.is_main:
            remove_stale_temp(self.checkpoint_dir)
        skipped: list[tuple[str, str]] = []  # (checkpoint, why it was skipped)
        for ckpt in resume_candidates(self.checkpoint_dir, self.run_id):
            problem = checkpoint_problem(ckpt.folder)
            if problem is None:
                try:
                    state = load_checkpoint(ckpt.folder, self.session.generator)
                except Exception as err:  # noqa: BLE001 - any loader error (SafetensorError, ...) skips to an earlier checkpoint
                    problem = describe_load_failure(err)
            if problem is not None:
                skipped.append((ckpt.folder.name, problem))
                continue
            for name, why in skipped:
                self._say_plain(f"skipped checkpoint {name}: {why}")
            if self.dist.is_main:
                self.console.print(f"resuming from {ckpt.folder} (step {ckpt.step})", soft_wrap=True, markup=False, highlight=False)
            self.optimizer.load_state_dict(state["optimizer"])
            self._apply_learning_rates()
            if self.scaler is not None and "grad_scaler" in state:
                self.scaler.load_state_dict(state["grad_scaler"])
            with torch.no_grad():
                for name, value in state["angles"].items():
                    self.session.angles[name].copy_(value.to(self.session.device))
            self.step = int(state["step"])
            self.saved = ckpt.folder
            self._truncate_metrics()
            return True
        if skipped:
            raise CheckpointError(
                f"no checkpoint of the run in {self.run_dir} loads: {'; '.join(f'{name} ({why})' for name, why in skipped)}; "
                "start a new run with --overwrite (or another output.dir)"
            )
        self._truncate_metrics()  # the run never reached a checkpoint: it restarts at step 0
        return False

    def _apply_learning_rates(self) -> None:
        """Set the config's learning rates on the optimiser's groups (LoRA, then cameras), e.g. after its state was restored."""
        cfg = self.config.training
        for group, lr in zip(self.optimizer.param_groups, (cfg.lr, cfg.camera_lr)):
            group["lr"] = lr

    def _say_plain(self, message: str) -> None:
        """Print one line as is (no markup) on rank 0."""
        if self.dist.is_main:
            self.console.print(message, soft_wrap=True, markup=False, highlight=False)

    def _truncate_metrics(self) -> None:
        """Forget ``metrics.jsonl`` lines after the current step (written after the resumed checkpoint)."""
        metrics_path = self.run_dir / "metrics.jsonl"
        if self.dist.is_main and metrics_path.exists():
            lines = []
            for line in metrics_path.read_text(encoding="utf-8", errors="replace").splitlines():
                try:
                    if json.loads(line)["step"] <= self.step:
                        lines.append(line)
                except (ValueError, KeyError, TypeError):  # a line cut by a kill
                    continue
            atomic_write_text(metrics_path, "".join(line + "\n" for line in lines))

    def fit(self, steps: int | None = None) -> list[dict[str, Any]]:
        """Train until ``steps`` (default ``config.training.steps``) steps are done, with a progress bar."""
        total = self.config.training.steps if steps is None else steps
        main = self.dist.is_main  # only rank 0 writes metrics and checkpoints
        if main:
            self.run_dir.mkdir(parents=True, exist_ok=True)
            if getattr(self, "run_id", None) is None:  # a new run: claim the folder (refuses another run's)
                self.run_id = start_run(self.run_dir)
        if getattr(self, "thread_note", None) is None:  # Trainer used directly, not through train()
            _set_threads(self, None)
        if self.step < total:
            cfg = self.config.training
            self._say(f"effective batch {self.effective_batch} = {self.dist.world_size} process(es) x grad_accum {cfg.grad_accum} x batch_size {cfg.batch_size}" + (f"; {self.thread_note}" if getattr(self, "thread_note", "") else ""))
        history: list[dict[str, Any]] = []
        columns = (TextColumn("[bold]train"), BarColumn(), MofNCompleteColumn(), TextColumn("{task.fields[info]}"), TimeRemainingColumn())
        with StopRequests() as stop, Progress(*columns, console=self.console, transient=False, disable=not (main and self.console.is_terminal)) as bar:
            task = bar.add_task("train", total=total, completed=self.step, info="")
            while self.step < total:
                self._stop_if_asked(stop, total)
                metrics = self.train_step()
                history.append(metrics)
                if main:
                    with open(self.run_dir / "metrics.jsonl", "a") as fh:
                        fh.write(json.dumps(metrics) + "\n")
                    if self.step % self.config.training.checkpoint_every == 0 or self.step == total:
                        self.save()
                    every = self.config.output.latest_every
                    if every and self.latest is not None and (self.step % every == 0 or self.step == total):
                        self.write_latest()
                bar.update(task, completed=self.step, info=f"reward {metrics['reward/total']:.4f}  {metrics['step_seconds']:.1f} s/step")
                if not self.console.is_terminal and (self.step % self.config.training.log_every == 0 or self.step == total):
                    self._say(f"step {self.step}/{total}  reward {metrics['reward/total']:.5f}  {metrics['step_seconds']:.1f} s/step")
            if history:  # a signal during the last step: stop before the after preview and the report
                self._stop_if_asked(stop, total)
        return history

    def _stop_if_asked(self, stop: StopRequests, total: int) -> None:
        """The safe point between steps: after SIGINT/SIGTERM (on any rank), checkpoint the steps done since the last one and stop.

        Raises:
            RunStopped: a signal arrived; says which checkpoint holds the steps done.
        """
        asked = stop.signum is not None
        if self.dist.world_size > 1:  # every rank stops at the same step
            asked = distributed.all_reduce_mean({"stop": float(asked)}, self.session.device)["stop"] > 0
        if not asked:
            return
        saved = getattr(self, "saved", None)
        fresh = self.step > 0 and (saved is None or saved.name != f"step_{self.step:06d}")
        if fresh:  # rank 0 writes it; the other ranks name it
            saved = self.save() if self.dist.is_main else self.checkpoint_dir / f"step_{self.step:06d}"
        distributed.barrier()
        signum = stop.signum if stop.signum is not None else signal.SIGTERM  # another rank was signalled
        raise RunStopped(signum, self.run_dir, self.step, total, saved, fresh)

    def _say(self, message: str) -> None:
        """Print on rank 0 only."""
        if self.dist.is_main:
            self.console.print(message)


def train(
    config: RunConfig,
    resume: bool = False,
    run_dir: Path | None = None,
    overwrite: bool = False,
    threads: int | None = None,
    notify: Callable[[str], None] | None = None,
    allow_config_change: bool = False,
) -> TrainResult:
    """``texkit train``: fine-tune, then write the run folder (previews, adapter, metrics; no report page).

    The run folder has one writer: the call holds its lock (`texkit.run_lock`) from before anything
    is written to the end. A new run that fails before its first checkpoint removes what it wrote
    (`texkit.run_start`); running out of memory is one line with the batch size to use
    (`texkit.out_of_memory`); SIGINT/SIGTERM stop at the next step with a checkpoint
    (`texkit.interrupts.RunStopped`).

    Args:
        config: the run configuration.
        resume: continue the run recorded in the run folder from its newest valid checkpoint.
        run_dir: the run folder (default ``config.output.dir``).
        overwrite: replace a run already in the folder (its checkpoints, metrics and outputs).
        threads: intra-op CPU threads (0: torch's default); None: chosen from the work size
            (`texkit.threads`: one thread for the tiny model on the CPU).
        notify: receives one-line notices (an initial texture resized to ``texture.size``).
        allow_config_change: on ``resume``, accept settings that cannot change mid-run
            (`texkit.run_history`); the changes are recorded in the run's history either way.

    Raises:
        ConfigError: no rewards to train, ``resume`` together with ``overwrite``, or a resume whose
            config changes a setting that cannot change mid-run (without ``allow_config_change``).
        RunFolderError: the folder holds another run and neither ``resume`` nor ``overwrite`` is set
            (checked before anything is built or written).
        RunFolderInUseError: another process holds the folder.
        DeviceError: out of memory.
    """
    from texkit.errors import ConfigError
    from texkit.out_of_memory import out_of_memory_as_error
    from texkit.run_history import ResumeChanges, compare_with_run, updated_history
    from texkit.run_lock import hold_folder
    from texkit.run_record import PREVIEW_SEED, write_run_record
    from texkit.run_start import undo_failed_start

    folder = Path(run_dir or config.output.dir)
    if not config.rewards:
        raise ConfigError("the config has no [rewards] table, so there is nothing to train; add one, e.g. [rewards.curvature_color] (`texkit rewards` lists them)")
    if resume and overwrite:
        raise ConfigError("--resume and --overwrite exclude each other: --resume continues the run, --overwrite replaces it")
    if allow_config_change and not resume:
        raise ConfigError("--allow-config-change applies only with --resume (a new run takes any settings); remove it or add --resume")
    owns_group = not torch.distributed.is_initialized()
    ctx = distributed.init_distributed(config.device)  # a no-op without torchrun
    # entered here, left after the report (or on failure, innermost first): the folder's lock, undoing a
    # failed start, out-of-memory errors as one line
    guards = contextlib.ExitStack()
    try:
        guards.enter_context(hold_folder(folder, notify, enabled=ctx.is_main))
        guards.enter_context(undo_failed_start(folder, enabled=ctx.is_main))
        guards.enter_context(out_of_memory_as_error(config))
        resuming = ctx.is_main and resume and read_run_id(folder) is not None
        if ctx.is_main and not resuming:
            check_run_folder(folder, overwrite)  # refuse before building anything
        changes = compare_with_run(folder, config, allow_config_change) if resuming else ResumeChanges()
        trainer = Trainer(config, folder, notify=notify if ctx.is_main else None)
        _set_threads(trainer, threads)
        if resume and not trainer.resume():
            trainer._say("no checkpoint to resume from; starting at step 0")
        if changes.changes:
            trainer._say_plain(changes.notice())
        if ctx.is_main and getattr(trainer, "run_id", None) is None:
            trainer.run_id = start_run(folder, overwrite)
        if ctx.is_main:
            history = updated_history(changes.recorded, config, changes.changes, trainer.step + 1)
            write_run_record(trainer.run_dir, config, trainer.session.describe_generator(), history=history)
            # a resumed run keeps the before images of its start
            if config.training.before_after and trainer.step == 0:
                trainer.session.preview(trainer.run_dir / "before", PREVIEW_SEED, turntable_frames=24)
        trainer.fit()
        distributed.write_rank_snapshot("end", trainer.snapshot())
        if ctx.is_main:
            write_run_record(trainer.run_dir, config, trainer.session.describe_generator(), history=history)  # now with what compiling cost
            trainer.session.preview(trainer.run_dir / "after", PREVIEW_SEED, turntable_frames=24)
            trainer.session.generator.save_adapter(trainer.run_dir / "adapter")
        distributed.barrier()  # the previews, adapter and metrics exist for every rank from here on
        result = TrainResult(trainer.run_dir, [json.loads(line) for line in (trainer.run_dir / "metrics.jsonl").read_text().splitlines() if line])
    except BaseException:
        if owns_group:
            distributed.cleanup(wait=False)
        guards.__exit__(*sys.exc_info())  # may raise the one-line form of the error (out of memory)
        raise
    guards.close()
    if owns_group:
        distributed.cleanup()
    return result


def _set_threads(trainer: Trainer, threads: int | None) -> None:
    """Pick the intra-op thread count from the work size (`texkit.threads`) and say it."""
    from texkit.threads import apply_threads, model_parameters

    cfg = trainer.config.texture
    count, why = apply_threads(trainer.session.device, model_parameters(trainer.session.generator), max(cfg.size, cfg.render_size) ** 2, threads)
    trainer.thread_note = f"{count} intra-op CPU thread(s) ({why})"  # printed with the first progress line


def _mean_metrics(per_rank: list[list[dict[str, Any]]]) -> dict[str, Any]:
    """Merge the sample metrics of every rank (rank order) into one step's metrics.

    Numbers are averaged over the samples that report them; ``prompt`` is the first sample's,
    and ``prompts`` lists every sample's prompt when the step had more than one.
    """
    samples = [m for rank in per_rank for m in rank]
    merged: dict[str, Any] = {}
    for sample in samples:
        for key, value in sample.items():
            merged.setdefault(key, value)
    for key, value in merged.items():
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            values = [s[key] for s in samples if key in s]
            merged[key] = sum(values) / len(values) if len(values) > 1 else values[0]
    prompts = [p for s in samples for p in s.get("prompts", [s["prompt"]])]
    if len(prompts) > 1:
        merged["prompts"] = prompts
    return merged
