"""The training loop: epochs of optimiser steps, each followed by precise BN, validation and saving the best.

Under torchrun every stop (time, cancel, early stopping) and every choice is the same on all
processes: taken from summed counts or by rank 0, never from one process's clock alone.
"""

from __future__ import annotations

import math
import os
import time
from dataclasses import dataclass

import numpy as np
import torch

from ...core.errors import Canceled, UserInputError
from ...core.metrics import miou_spread, scores
from .. import distributed
from ..model import save_model
from .batchnorm import PRECISE_BN, PRECISE_BN_CHIPS, recalibrate_batchnorm
from .config import TrainResult
from .evaluate import evaluate
from .losses import background_weight
from .precision import autocast, training_precision
from .sampling import Sampler
from .schedule import EARLY_STOP_FROM, Plan, warn_few_steps


@dataclass
class Setup:
    """What the loop trains on, as :func:`..run.train` prepared it."""

    config: object  # TrainConfig (OUTPUT_MODEL: the partial file the best epochs go to)
    model: torch.nn.Module  # validated and saved
    net: torch.nn.Module  # trains: ``model``, or ``model`` in DistributedDataParallel
    loss_fn: object
    train: object  # ChipTensors of this process
    val: object | None
    classes: list[dict]
    data: object  # ChipDataset
    mean: np.ndarray
    std: np.ndarray
    lr: float
    device: torch.device
    t_start: float
    per_process: int  # training chips of each process (all processes take as many steps)
    sample_labels: bool  # validation holds no background truth (sample polygons): mIoU over the classes
    background_weight: float | None = None  # sample polygons: the background's loss weight


class _Stop(Exception):
    """Canceled between steps: the best epoch so far is kept."""

    def __init__(self, epochs_done: int):
        super().__init__(epochs_done)
        self.epochs_done = epochs_done


class Loop:
    """Train ``setup.net``; validate and save ``setup.model``'s best epoch."""

    def __init__(self, setup: Setup, gen: torch.Generator, progress, is_canceled, log):
        s = self.s = setup
        self.config, self.gen, self.progress, self.is_canceled, self.log = s.config, gen, progress, is_canceled, log
        self.k = len(s.classes)
        self.together = distributed.active()
        decay, no_decay = [], []  # no weight decay on norms and biases: it only pulls them to zero
        for p in s.model.parameters():
            if p.requires_grad:
                (no_decay if p.ndim <= 1 else decay).append(p)
        self.opt = torch.optim.AdamW([{"params": decay, "weight_decay": 1e-2}, {"params": no_decay, "weight_decay": 0.0}],
                                     lr=s.lr)
        self.sampler = Sampler(s.train, self.k, self.config.augment, log, [c["name"] for c in s.classes],
                               distributed.total if self.together else None)
        # incomplete last batches are dropped (batch norm needs > 1)
        self.steps = (s.per_process or len(s.train)) // self.config.batch_size
        self.plan = Plan(self.config, self.steps, len(s.val) if s.val is not None else len(s.train), s.t_start, log)
        self.sched = torch.optim.lr_scheduler.LambdaLR(self.opt, lambda _: self.plan.lr_factor())
        self.memory_format = torch.channels_last if s.device.type == "cpu" else torch.contiguous_format
        sample = s.train.batch(list(range(min(self.config.batch_size, len(s.train)))))[0] if s.device.type == "cpu" else None
        self.kind = distributed.agree(training_precision(self.config.precision, s.device, s.model, sample, log))
        self.scaler = torch.amp.GradScaler("cuda", enabled=self.kind == "fp16")
        self.history: list[dict] = []
        self.best = None
        self.best_epoch = self.since_best = self.bad_steps = 0
        self.step_times: list[float] = []
        self.result = TrainResult(self.config.output_model, None, 0.0, 0.0, 0, 0, False, classes=s.classes,
                                  precision=self.kind)

    def run(self) -> TrainResult:
        """Epochs until the plan, early stopping, the time limit or a cancel ends them."""
        config, plan = self.config, self.plan
        if plan.limit and config.early_stopping:
            self.log("Early stopping is not used with a time limit: the learning-rate schedule is planned to end at the limit.")
        try:
            for epoch in range(1, config.epochs + 1):
                t_epoch = time.perf_counter()
                taken, train_loss = self._train_epoch(epoch)
                if taken == 0:
                    break
                improved = self._validate(epoch, taken, train_loss, time.perf_counter() - t_epoch, t_epoch)
                if self._should_stop(epoch, improved):
                    break
        except _Stop as stop:
            return self._finish_canceled(stop.epochs_done)
        self.result.epochs_run = len(self.history)
        self.result.planned_epochs = plan.total / max(self.steps, 1)
        return self._result(self.best_epoch)

    # -- one epoch ---------------------------------------------------------------------------
    def _train_epoch(self, epoch: int) -> tuple[int, float]:
        """Optimiser steps until the epoch, the plan or the time ends: (steps taken, mean loss)."""
        s, config, plan = self.s, self.config, self.plan
        s.net.train()
        if config.freeze_encoder:
            s.model.encoder.eval()
        order = self.sampler.epoch(self.gen)
        total, taken = 0.0, 0
        for step in range(self.steps):
            canceled, over = self.is_canceled(), plan.over() and plan.done > 0  # at least one step: a model to keep
            if self.together:
                canceled, over = (bool(v) for v in distributed.total(np.array([canceled, over], dtype=np.int64)))
            if canceled:
                raise _Stop(epoch - 1)
            if over:
                break
            t_step = time.perf_counter()
            total += self._step(order[step * config.batch_size:(step + 1) * config.batch_size], epoch, step)
            taken += 1
            self.step_times.append(time.perf_counter() - t_step)
            if plan.limit and len(self.step_times) == 4:  # first measurement: steps 2-4 (the first warms up)
                per_step = sum(self.step_times[1:]) / 3
                plan.replan(per_step, 0.35 * per_step * plan.val_chips / config.batch_size)
                plan.total = distributed.agree(plan.total)
            self.progress(min(plan.done / max(plan.total, 1), 1.0))
        if taken and not all(bool(torch.isfinite(p).all()) for p in s.model.parameters()):
            raise _diverged(epoch, taken, s.lr, "the weights are no longer finite numbers")
        return taken, total / max(taken, 1)

    def _step(self, positions, epoch: int, step: int) -> float:
        """One optimiser step on the chips at ``positions``; its loss."""
        s = self.s
        x, y = self.sampler.batch(positions, self.gen)
        x = x.to(s.device, non_blocking=True).contiguous(memory_format=self.memory_format)
        y = y.to(s.device, non_blocking=True).long()
        with autocast(self.kind, s.device):
            loss = s.loss_fn(s.net(x).float(), y)
        if not torch.isfinite(loss):
            self.bad_steps += 1  # fp16 on CUDA overflows now and then (the scaler skips those steps); anything else diverged
            if self.kind != "fp16" or self.bad_steps >= 8:
                raise _diverged(epoch, step + 1, s.lr, "the loss became " + str(loss.item()))
        else:
            self.bad_steps = 0
        self.opt.zero_grad(set_to_none=True)
        self.scaler.scale(loss).backward()
        self.scaler.step(self.opt)
        self.scaler.update()
        self.plan.done += 1
        self.sched.step()
        return loss.item()

    def _validate(self, epoch: int, taken: int, train_loss: float, train_seconds: float, t_epoch: float) -> bool:
        """Precise BN, validation, the epoch's row in the history; the best epoch so far is saved (then True)."""
        s, config, plan = self.s, self.config, self.plan
        t_val = time.perf_counter()
        if PRECISE_BN:
            # as many batches in every process (SyncBatchNorm on GPUs exchanges statistics per batch)
            recalibrate_batchnorm(s.model, s.train, config.batch_size, s.device, self.memory_format,
                                  min(PRECISE_BN_CHIPS, s.per_process or len(s.train)))
        # under torchrun a cancel is decided together between steps, never inside one process's validation
        val = evaluate(s.model, s.loss_fn, s.val if s.val is not None else s.train, self.k, config.batch_size, s.device,
                       (lambda: False) if self.together else self.is_canceled)
        if val is None:
            raise _Stop(epoch - 1)
        if self.together:  # every process validated its share: the scores of all of them
            val["cm"] = distributed.total(val["cm"])
            loss_sum, n = distributed.total(np.array([val["loss_sum"], val["n"]], dtype=np.float64))
            val["loss"] = float(loss_sum / max(n, 1))
            train_loss = float(distributed.total(np.float64(train_loss))) / distributed.world()
        if plan.limit and epoch == 1:  # re-plan with the first epoch's real timing
            plan.replan(train_seconds / taken, time.perf_counter() - t_val)
            plan.total = distributed.agree(plan.total)
        sc = scores(val["cm"])
        if s.sample_labels:  # no background truth in validation: background unscored, the mean over the classes
            sc["iou"][0] = float("nan")
            iou = np.array(sc["iou"], dtype=np.float64)
            sc["miou"] = float(np.nanmean(iou)) if np.isfinite(iou).any() else 0.0
        # under torchrun each process validates its share of the chips: no spread (it would need every chip's matrix)
        spread = miou_spread(val["chip_cms"], s.sample_labels) if not self.together else float("nan")
        row = {"epoch": epoch, "train_loss": train_loss, "val_loss": val["loss"], "accuracy": sc["accuracy"], "miou": sc["miou"],
               "miou_sd": spread, "iou": sc["iou"], "train_seconds": train_seconds,
               "chips_per_second": taken * config.batch_size * distributed.world() / max(train_seconds, 1e-9),
               "steps": taken}
        self.history.append(row)
        improved = self.best is None or sc["miou"] > self.best["miou"] + 1e-6
        if improved:
            self.best = dict(row, cm=val["cm"], scores=sc, examples=val["examples"])
            self.best_epoch, self.since_best = epoch, 0
            if distributed.is_main():
                save_model(config.output_model, s.model, _metadata(config, s.model, s.data, s.classes, s.mean, s.std, self.best, epoch, s.lr))
        row["seconds"] = time.perf_counter() - t_epoch  # the whole epoch: training, validation, saving
        self._log_epoch(row, val["loss"], sc, spread, improved)
        return improved

    def _log_epoch(self, row: dict, val_loss: float, sc: dict, spread: float, improved: bool) -> None:
        self.log(f"Epoch {row['epoch']}/{math.ceil(self.plan.total / max(self.steps, 1))}: train loss {row['train_loss']:.4f}, "
                 f"validation loss {val_loss:.4f}, accuracy {sc['accuracy']:.3f}, mIoU {sc['miou']:.3f}"
                 + (f" ±{spread:.3f}" if spread == spread else "") + " ("
                 + ", ".join(f"{c['name']} {iou:.2f}" for c, iou in zip(self.s.classes, sc["iou"]) if iou == iou) + ")"
                 + ("  ← best, saved" if improved else "")
                 + f"  [{row['seconds']:.1f} s, {row['chips_per_second']:.1f} chips/s]")

    def _should_stop(self, epoch: int, improved: bool) -> bool:
        """Early stopping (without a time limit, once the schedule anneals) or the time limit."""
        config, plan = self.config, self.plan
        if not improved:
            self.since_best += 1
            # not while the learning rate is still high: validation then swings with every step (a few
            # validation chips decided which map the user got); only once the schedule anneals. With a
            # TIME_LIMIT the schedule is planned to end at the limit: that is where it stops
            if config.early_stopping and not plan.limit and self.since_best >= config.early_stopping \
                    and plan.done >= EARLY_STOP_FROM * plan.total:
                self.log(f"Early stopping: no mIoU improvement for {self.since_best} epochs.")
                self.result.stop_reason = f"early stopping after {epoch} epochs"
                return True
        if plan.limit and epoch == 1:
            warn_few_steps(plan, config, self.result, self.log)
        if plan.limit and distributed.anyone(plan.over()):
            self.result.stop_reason = (f"time limit of {config.time_limit:g} min: {epoch} epochs, {plan.done} of "
                                       f"{plan.total} planned steps")
            self.log(f"Time limit: {epoch} epochs ({plan.done} of the {plan.total} planned steps) in "
                     f"{time.time() - plan.t_start:.0f} s; the best model (epoch {self.best_epoch}) is kept.")
            return True
        return False

    # -- the end -----------------------------------------------------------------------------
    def _finish_canceled(self, epochs_done: int) -> TrainResult:
        if self.best is None:
            raise Canceled()
        self.log(f"Canceled after {epochs_done} epochs; the best model so far (epoch {self.best['epoch']}) is kept.")
        self.result.canceled = True
        self.result.epochs_run = epochs_done
        return self._result(self.best["epoch"])

    def _result(self, best_epoch: int) -> TrainResult:
        result, best = self.result, self.best
        result.miou, result.accuracy = best["miou"], best["accuracy"]
        result.best_epoch, result.history = best_epoch, self.history
        result.confusion = best["cm"]
        result.val_examples = best["examples"]
        return result


def _diverged(epoch: int, step: int, lr: float, what: str) -> UserInputError:
    """Training blew up (learning rate far too high, or bad input values): say what to change."""
    return UserInputError(
        "LEARNING_RATE", f"training diverged in epoch {epoch}, step {step} ({what}) with learning rate {lr:.3g}. "
        f"Use a smaller LEARNING_RATE (e.g. {lr / 10:.3g}) or 0 to find one automatically; with PRECISION=auto try "
        "PRECISION=full. No model was saved; an earlier OUTPUT_MODEL is untouched.")


def _metadata(config, model, data, classes, mean, std, best, epoch, lr):
    return {
        "backbone": model.backbone,
        "in_channels": model.in_channels,
        "bands": data.bands,
        "source_band_count": data.source_band_count,
        "data_type": data.data_type,
        "nodata": data.nodata,
        "normalization": {"mean": [float(m) for m in mean], "std": [float(s) for s in std]},
        "chip_size": data.chip_size,
        "pixel_size": [float(p) for p in data.pixel_size],
        "crs": data.crs,
        "classes": [{"value": int(c["value"]), "name": c["name"], "color": [int(v) for v in c["color"][:3]]} for c in classes],
        "training": {
            "chips": os.path.abspath(config.chips), "epochs": config.epochs, "best_epoch": epoch,
            "batch_size": config.batch_size, "learning_rate": lr, "loss": config.loss,
            "class_balancing": config.class_balancing, "augment": config.augment,
            "background_weight": background_weight(data, classes, np.array([c.get("pixel_count", 1) for c in classes])),
            "freeze_encoder": config.freeze_encoder, "pretrained": bool(config.pretrained or config.encoder_weights),
            "time_limit_minutes": config.time_limit, "precision": config.precision,
            "validation_percent": config.validation_percent, "seed": config.seed,
            "init_model": config.init_model or "",
        },
        "metrics": {"miou": best["miou"], "accuracy": best["accuracy"],
                    "iou": [None if v != v else float(v) for v in best["iou"]]},
    }
