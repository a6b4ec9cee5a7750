"""Train U-Net's parameters and result, as plain values (docs/parameters.md)."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass(frozen=True)
class TrainConfig:
    """Parameters of Train U-Net, as plain values (docs/parameters.md)."""

    chips: str
    output_model: str
    backbone: str = "resnet34"
    pretrained: bool = True
    encoder_weights: str | None = None
    init_model: str | None = None
    epochs: int = 0  # 0: automatic (AUTO_EPOCHS without a time limit; as many as TIME_LIMIT allows with one)
    time_limit: float = 0.0  # minutes; 0 = none
    batch_size: int = 8
    learning_rate: float = 0.0
    validation_percent: float = 10.0
    early_stopping: int = 5
    loss: str = "cross-entropy"
    class_balancing: bool = False
    augment: bool = True
    freeze_encoder: bool = False
    device: str = "auto"
    precision: str = "auto"
    seed: int = 42
    output_report: str | None = None
    output_onnx: str | None = None


@dataclass
class TrainResult:
    model_path: str
    report_path: str | None
    miou: float
    accuracy: float
    epochs_run: int
    best_epoch: int
    canceled: bool
    history: list[dict] = field(default_factory=list)
    lr_curve: list[tuple] = field(default_factory=list)
    learning_rate: float = 0.0
    confusion: np.ndarray | None = None
    classes: list[dict] = field(default_factory=list)
    device: str = "cpu"
    seconds: float = 0.0
    chips_train: int = 0
    chips_val: int = 0
    val_examples: list = field(default_factory=list)
    onnx_path: str | None = None
    precision: str = "fp32"
    stop_reason: str = ""
    planned_epochs: float = 0.0  # what the schedule was planned for (TIME_LIMIT decides it where set)
    budget_warning: str = ""     # the time limit bought too few steps for a usable model
    background_weight: float | None = None  # sample polygons: the background's loss weight
    class_training_shares: dict = field(default_factory=dict)  # class name → share of its labels that trained
