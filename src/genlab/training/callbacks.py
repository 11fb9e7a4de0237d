"""Callbacks: how the training loop tells what happens, to its own parts and to users.

    class LossCurve(genlab.Callback):
        def __init__(self):
            self.losses = []

        def on_step_end(self, run):
            self.losses.append(run.running.latest["vae"]["loss"])  # still on the device: the loop need not wait

    genlab.train(model, data, config, callbacks=[LossCurve()])

Every event gets the :class:`~genlab.training.state.TrainingRun` (model, config, optimizers, EMA,
sampler, ``step``, ...). In the order a run sees them:

    on_train_start(run)        set up; run.step is 0, or the step of the checkpoint a resume continues
    on_checkpoint(run)         a checkpoint of run.step was written: step 0 of a new run, every epoch end,
                               every checkpoint_every steps, on Ctrl-C and at the end
    on_step_end(run)           after every step; run.step has counted it (1 after the first)
    on_epoch_end(run)          after the step that ends an epoch; run.sampler.epoch epochs are done
    on_log(run, row)           every log_every steps, and at the end for steps not yet logged: the metric row
    on_recover(run, message)   the divergence guard went back to the last checkpoint; run.step is its step
    on_train_end(run)          finished, out of steps or time, or interrupted (run.stop_requested)

Within a step: on_step_end, then on_epoch_end, on_log, on_checkpoint as they fall due; on_recover
takes the place of on_log or on_checkpoint when a value is not finite, and the step ends there.
Callbacks run in order, the loop's own (below) first. Launched by torchrun, every process calls
every callback; write files on ``run.dist.is_main`` only. ``on_step_end`` runs every step: keep it
cheap, and read device values (``.item()``, ``float(t)``) in ``on_log``, not there, or the loop
waits for the device every step.
"""
from __future__ import annotations

import contextlib
import csv
import sys
from collections.abc import Iterable
from typing import Any

import torch
from tqdm.auto import tqdm

from genlab.config import TrainConfig
from genlab.errors import GenlabError
from genlab.io.plots import plot_metrics, plot_monitor
from genlab.training.distributed import Distributed
from genlab.training.monitor import DiversityAlarm, write_sample_picture
from genlab.training.state import TrainingRun

METRICS_FILE = "metrics.csv"
EVENTS = ("on_train_start", "on_step_end", "on_epoch_end", "on_log", "on_checkpoint", "on_recover", "on_train_end")


class Callback:
    """Base class of training callbacks: override the events you need; the others do nothing."""

    def on_train_start(self, run: TrainingRun) -> None:
        pass

    def on_step_end(self, run: TrainingRun) -> None:
        pass

    def on_epoch_end(self, run: TrainingRun) -> None:
        pass

    def on_log(self, run: TrainingRun, row: dict[str, Any]) -> None:
        pass

    def on_checkpoint(self, run: TrainingRun) -> None:
        pass

    def on_recover(self, run: TrainingRun, message: str) -> None:
        pass

    def on_train_end(self, run: TrainingRun) -> None:
        pass


class CallbackList(Callback):
    """A run's callbacks, called in order. Each event keeps only the callbacks that override it,
    so a step costs one loop over the few that watch steps."""

    def __init__(self, callbacks: Iterable[Callback]) -> None:
        self.callbacks = list(callbacks)
        for callback in self.callbacks:
            if not isinstance(callback, Callback):
                raise TypeError(f"callbacks must be genlab.Callback instances, got {callback!r}")
        self.hooks = {event: [getattr(c, event) for c in self.callbacks if getattr(type(c), event) is not getattr(Callback, event)]
                      for event in EVENTS}
        self.step_hooks = self.hooks["on_step_end"]

    def on_train_start(self, run: TrainingRun) -> None:
        for hook in self.hooks["on_train_start"]:
            hook(run)

    def on_step_end(self, run: TrainingRun) -> None:
        for hook in self.step_hooks:
            hook(run)

    def on_epoch_end(self, run: TrainingRun) -> None:
        for hook in self.hooks["on_epoch_end"]:
            hook(run)

    def on_log(self, run: TrainingRun, row: dict[str, Any]) -> None:
        for hook in self.hooks["on_log"]:
            hook(run, row)

    def on_checkpoint(self, run: TrainingRun) -> None:
        for hook in self.hooks["on_checkpoint"]:
            hook(run)

    def on_recover(self, run: TrainingRun, message: str) -> None:
        for hook in self.hooks["on_recover"]:
            hook(run, message)

    def on_train_end(self, run: TrainingRun) -> None:
        for hook in self.hooks["on_train_end"]:
            hook(run)


def built_in_callbacks(config: TrainConfig, dist: Distributed) -> list[Callback]:
    """What every run gets, in this order. Only rank 0 writes and shows progress; the sample grids
    run on every rank (they first average the ranks' batch-norm statistics)."""
    callbacks: list[Callback] = []
    if dist.is_main and config.progress:
        callbacks.append(ProgressBar())
    if dist.is_main:
        callbacks.append(MetricRows())
    if config.num_sample_images:
        callbacks.append(SampleGrids())
    if dist.is_main and config.plots:
        callbacks.append(Plots())
    return callbacks


class ProgressBar(Callback):
    """The tqdm bar: batches drawn out of epochs × batches per epoch, with the latest means."""

    def on_train_start(self, run: TrainingRun) -> None:
        self.bar = tqdm(total=run.config.epochs * run.sampler.batches_per_epoch, initial=run.sampler.batches_drawn,
                        unit="batch", dynamic_ncols=True, desc=f"{run.model.kind} → {run.run_dir}",
                        mininterval=0.1 if sys.stderr.isatty() else 10.0)  # a log file gets a line every 10 s, not a flood

    def on_step_end(self, run: TrainingRun) -> None:
        self.bar.update(run.sampler.batches_drawn - self.bar.n)

    def on_log(self, run: TrainingRun, row: dict[str, Any]) -> None:
        shown = {name: value for name, value in row.items() if "/" in name and not name.endswith("grad_norm")}
        phases = {name.split("/", 1)[0] for name in shown}
        # With one phase its name is noise; with several (D, G, ...) it is the point.
        shown = {(name.split("/", 1)[1] if len(phases) == 1 else name): value for name, value in shown.items()}
        self.bar.set_postfix({name: f"{value:.4g}" for name, value in shown.items()}, refresh=False)

    def on_recover(self, run: TrainingRun, message: str) -> None:
        self.bar.n = run.sampler.batches_drawn

    def on_train_end(self, run: TrainingRun) -> None:
        self.bar.close()


class MetricRows(Callback):
    """metrics.csv, one row per log interval, and TensorBoard scalars when ``tensorboard`` is on and
    installed. Rows after the step a run resumes or recovers from go: they will be logged again."""

    def on_train_start(self, run: TrainingRun) -> None:
        self.path = run.run_dir / METRICS_FILE
        self.columns: list[str] = []
        self.rows: list[dict[str, str]] = []
        if run.resumed and self.path.exists():
            with self.path.open(newline="") as handle:
                reader = csv.DictReader(handle)
                self.columns = list(reader.fieldnames or [])
                self.rows = list(reader)
        self.truncate_after(run.step)
        self.writer = None
        if run.config.tensorboard:
            try:
                from torch.utils.tensorboard import SummaryWriter
            except ImportError:  # tensorboard is optional
                pass
            else:
                self.writer = SummaryWriter(str(run.run_dir / "tensorboard"), purge_step=run.step if run.resumed else None)

    def on_log(self, run: TrainingRun, row: dict[str, Any]) -> None:
        row = {k: (f"{v:.6g}" if isinstance(v, float) else str(v)) for k, v in row.items()}
        self.rows.append(row)
        if any(k not in self.columns for k in row):  # a phase that logs for the first time
            self.columns += [k for k in row if k not in self.columns]
            self._rewrite()
        else:
            with self.path.open("a", newline="") as handle:
                csv.DictWriter(handle, self.columns).writerow(row)
        if self.writer is not None:
            for key, value in row.items():
                if key not in ("step", "epoch"):
                    self.writer.add_scalar(key, float(value), int(row["step"]))

    def on_recover(self, run: TrainingRun, message: str) -> None:
        self.truncate_after(run.step)

    def on_train_end(self, run: TrainingRun) -> None:
        if self.writer is not None:
            self.writer.close()

    def truncate_after(self, step: int) -> None:
        """Drop the rows logged after ``step``."""
        self.rows = [r for r in self.rows if r.get("step", "").isdigit() and int(r["step"]) <= step]
        self._rewrite()

    def _rewrite(self) -> None:
        with self.path.open("w", newline="") as handle:
            writer = csv.DictWriter(handle, self.columns)
            writer.writeheader()
            writer.writerows(self.rows)


class SampleGrids(Callback):
    """After each epoch, samples/epoch_NNN.png from the same noise every time (with the EMA weights
    when EMA is on), and the mode-collapse alarm on those samples: their diversity against the
    data's, logged as ``monitor/diversity`` with the next row."""

    def on_train_start(self, run: TrainingRun) -> None:
        self.alarm = DiversityAlarm(run.dataset, run.config.diversity_alarm) if run.dist.is_main else None

    def on_epoch_end(self, run: TrainingRun) -> None:
        run.dist.average_buffers(run.model, *run.ema_shadows)
        ratio = self.sample_and_watch(run) if run.dist.is_main else None
        run.running.add("monitor", {"diversity": run.dist.from_main(ratio)})

    def sample_and_watch(self, run: TrainingRun) -> torch.Tensor:
        """Write the epoch's picture and warn when its samples look collapsed; returns the diversity ratio."""
        model, config, epoch = run.model, run.config, run.sampler.epoch
        with run.ema.applied(model) if run.ema is not None else contextlib.nullcontext():
            model.eval()
            columns = model.grid_columns  # e.g. one per class: a whole number of rows
            n = max(columns, config.num_sample_images // columns * columns) if columns else config.num_sample_images
            samples = model.preview(n, seed=config.seed, dataset=run.dataset).contiguous()  # the same noise every epoch
            model.train()
        write_sample_picture(samples, run.run_dir / "samples" / f"epoch_{epoch:03d}", run.dataset.name, nrow=columns)
        ratio = self.alarm.ratio(samples)
        # An EMA averages over up to ~1/(1 − decay) steps: before three of those it still blends in the first
        # steps' weights, whose samples all look alike, so a low ratio then says nothing about collapse.
        young_ema = run.ema is not None and run.step < 3.0 / (1.0 - run.ema.decay)
        if ratio.item() < self.alarm.threshold and not young_ema:
            tqdm.write(f"epoch {epoch}: possible mode collapse: samples are {ratio.item():.2f}× as diverse as the data "
                       f"(alarm below {self.alarm.threshold}); see {run.run_dir / 'samples'}", file=sys.stderr)
        return ratio


class Plots(Callback):
    """loss.png, and monitor.png for models that name monitor columns, drawn from metrics.csv when the
    run ends (1–3 s; ``TrainConfig(plots=False)`` leaves them out)."""

    def on_train_end(self, run: TrainingRun) -> None:
        try:
            plot_metrics(run.run_dir / METRICS_FILE, run.run_dir / "loss.png")
            if run.model.monitor_columns:
                plot_monitor(run.run_dir / METRICS_FILE, run.run_dir / "monitor.png", list(run.model.monitor_columns))
        except (GenlabError, ValueError):
            pass  # too few logged rows to plot is not an error in training
