"""How long a run trains and how fast it learns: the one-cycle schedule, the time-limit plan, the range test."""

from __future__ import annotations

import copy
import math
import time

import torch

AUTO_EPOCHS = 20             # EPOCHS=0 without a time limit
AUTO_EPOCHS_LIMITED = 100000  # EPOCHS=0 with a time limit: the limit decides
RANGE_TEST_SHARE = 0.08      # of TIME_LIMIT, at most, for the learning-rate range test
RANGE_TEST_MIN_POINTS = 12   # fewer points than this: the curve says too little; FALLBACK_LR instead
FALLBACK_LR = 1e-3
EARLY_STOP_FROM = 0.6        # early stopping only watches once this share of the planned steps is done (annealing)
FEW_STEPS = 150              # a schedule of fewer steps than this rarely gives a usable model
LR_DIVISOR = 10.0            # the range test's choice: the lowest smoothed loss's rate divided by this
END_RESERVE = 3.0            # seconds kept for the report and the last save, besides the last validation


def one_cycle(progress: float, warmup: float = 0.25, start: float = 1 / 25, end: float = 1e-4) -> float:
    """The learning-rate factor at ``progress`` (0–1) through the run: a cosine rise from ``start``
    to 1 over the first ``warmup`` of the steps, then a cosine fall to ``end`` (OneCycleLR's shape,
    computed from the fraction done, so the plan can be re-made when a time limit is measured)."""
    p = min(max(progress, 0.0), 1.0)
    if p < warmup:
        return start + (1 - start) * (1 - math.cos(math.pi * p / warmup)) / 2
    return end + (1 - end) * (1 + math.cos(math.pi * (p - warmup) / (1 - warmup))) / 2


class Plan:
    """How many optimiser steps the run takes: EPOCHS × steps per epoch, or fewer when TIME_LIMIT
    says so, measured from the first steps and re-measured after the first epoch."""

    def __init__(self, config, steps_per_epoch: int, val_chips: int, t_start: float, log):
        self.config, self.steps, self.t_start, self.log = config, steps_per_epoch, t_start, log
        self.total = config.epochs * steps_per_epoch
        self.val_chips = val_chips
        self.limit = config.time_limit * 60.0
        self.done = 0

    def lr_factor(self) -> float:
        return one_cycle(self.done / max(self.total, 1)) if self.total >= 8 else 1.0

    def replan(self, step_seconds: float, val_seconds: float) -> None:
        """Fit the remaining steps (and a validation per epoch) into what is left of TIME_LIMIT."""
        if not self.limit:
            return
        onnx = 4 * val_seconds if self.config.output_onnx else 0.0  # the ONNX export at the end
        left = self.limit - (time.time() - self.t_start) - 2 * val_seconds - END_RESERVE - onnx  # last validation, saving
        per_step = step_seconds + val_seconds / max(self.steps, 1)
        fits = self.done + max(int(left / max(per_step, 1e-9)), 0)
        total = max(min(self.config.epochs * self.steps, fits), self.done + 1)
        if total != self.total:
            self.total = total
            self.log(f"Time limit {self.config.time_limit:g} min: {step_seconds:.2f} s per step, {val_seconds:.1f} s per "
                     f"validation; the schedule is planned for {total} steps ({total / self.steps:.1f} epochs).")

    def over(self) -> bool:
        """The planned steps are done, or the time is (nearly) up."""
        if self.done >= self.total:
            return True
        return bool(self.limit) and time.time() - self.t_start > self.limit


def warn_few_steps(plan: "Plan", config, result, log) -> None:
    """Say when the time limit buys too few steps for a usable model, and what to do."""
    if plan.total >= FEW_STEPS:
        return
    result.budget_warning = (
        f"TIME_LIMIT={config.time_limit:g} min buys only {plan.total} training steps ({plan.total / max(plan.steps, 1):.1f} "
        f"epochs) on this machine: the model is likely poor. Give more time (about {FEW_STEPS / max(plan.total, 1) * config.time_limit:.0f} "
        "min for the usual minimum), a smaller BACKBONE (resnet18), or smaller chips (CHIP_SIZE at export).")
    log("Warning: " + result.budget_warning)


def find_learning_rate(model, loss_fn, train, batch_size, device, gen, log, steps=40, deadline=None):
    """Learning-rate range test: raise the rate exponentially, pick (lowest smoothed loss) / 10.

    The model's weights are restored afterwards. With a ``deadline`` (a time limit) the test stops
    there; with too few points to judge, FALLBACK_LR is used.
    """
    state = copy.deepcopy(model.state_dict())
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-6)
    lo, hi = 1e-6, 1.0
    curve, best, avg = [], math.inf, 0.0
    model.train()
    n = len(train)
    for i in range(steps):
        lr = lo * (hi / lo) ** (i / (steps - 1))
        for g in opt.param_groups:
            g["lr"] = lr
        pos = torch.randint(0, n, (min(batch_size, n),), generator=gen).tolist()
        x, y = train.batch(pos)
        loss = loss_fn(model(x.to(device)), y.to(device).long())
        opt.zero_grad()
        loss.backward()
        opt.step()
        avg = 0.7 * avg + 0.3 * loss.item()
        smooth = avg / (1 - 0.7 ** (i + 1))
        curve.append((lr, smooth))
        best = min(best, smooth)
        if not math.isfinite(smooth) or smooth > 4 * best:
            break
        if deadline is not None and time.time() > deadline:
            break
    model.load_state_dict(state)
    if deadline is not None and len(curve) < RANGE_TEST_MIN_POINTS and time.time() > deadline:
        log(f"Learning-rate range test stopped after {len(curve)} of {steps} steps to keep the time limit; learning rate "
            f"{FALLBACK_LR:.0e} (a safe default for AdamW). A longer TIME_LIMIT lets the test choose.")
        return FALLBACK_LR, curve
    lr_min = min(curve, key=lambda t: t[1])[0]
    chosen = float(min(max(lr_min / LR_DIVISOR, 1e-5), 3e-3))
    log("Learning-rate range test: " + ", ".join(f"{lr:.1e}→{l:.3f}" for lr, l in curve[:: max(1, len(curve) // 12)]))
    log(f"Lowest loss at {lr_min:.2e}; chosen learning rate {chosen:.2e} (1/{LR_DIVISOR:g} of it).")
    return chosen, curve
