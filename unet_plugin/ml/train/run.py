"""Train U-Net: chips in, the best epoch's model file out.

The run as named steps: check the parameters → load the encoder weights → load the chips and
split them → build the model → prepare the data and the loss → find the learning rate → fit
(:mod:`.loop`) → save, report, export.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch

from ...core.chips import (
    ChipDataset,
    class_training_shares,
    load_chip_dataset,
    spatial_split,
)
from ...core.codes import IGNORE
from ...core.errors import UserInputError
from ...core.outputs import check_aliases, commit, discard, partial_file, partial_path
from ...core.paths import check_output_file
from .. import distributed
from ..device import pick_device
from ..model import (
    EncoderWeightsError,
    ModelFileError,
    UNet,
    imagenet_state_dict,
    load_weights_file,
    read_model_file,
)
from .config import TrainConfig, TrainResult
from .data import ChipTensors, classes_and_lut
from .finetune import check_fine_tuning
from .loop import Loop, Setup
from .losses import background_weight, balancing_weights, make_loss
from .schedule import (
    AUTO_EPOCHS,
    AUTO_EPOCHS_LIMITED,
    RANGE_TEST_SHARE,
    find_learning_rate,
)


@dataclass
class Split:
    """The spatial split: chip indices for training and validation, and what training keeps of each class."""

    train: list[int]
    val: list[int]
    overlaps: dict  # training chip → validation areas it overlaps (their pixels are ignored in training)
    kept: dict  # class name → share of its labelled pixels left for training


def train(
    config: TrainConfig,
    progress: Callable[[float], None] = lambda f: None,
    is_canceled: Callable[[], bool] = lambda: False,
    log: Callable[[str], None] = print,
) -> TrainResult:
    """Run Train U-Net and write the best epoch's model (and the report).

    Raises:
        UserInputError: bad parameters or data, naming the parameter.
        Canceled: canceled before any epoch finished (nothing is written).
    """
    t_start = time.time()
    config = _checked(config)
    device = pick_device(config.device)
    encoder_state = _encoder_weights(config, log)
    data = load_chip_dataset(config.chips)
    classes, lut = classes_and_lut(data)
    split = _split(config, data, classes, log)
    torch.manual_seed(config.seed)
    np.random.seed(config.seed % 2**32)
    gen = torch.Generator().manual_seed(config.seed + distributed.rank())  # each process its own shuffles
    model, mean, std = _build(config, data, classes, encoder_state, device, log)
    setup = _prepare(config, data, classes, lut, split, model, mean, std, device, t_start, log)
    result = _fit_and_save(config, setup, gen, progress, is_canceled, log)
    result.seconds = time.time() - t_start
    result.chips_train, result.chips_val = len(split.train), len(split.val)
    result.class_training_shares = split.kept
    result.device = str(device)
    if distributed.is_main():  # rank 0 writes the model, the report and the ONNX file
        _finish(config, result, data, t_start, log)
    return result


def _checked(config: TrainConfig) -> TrainConfig:
    """The parameters checked (outputs included) before any data are read; EPOCHS=0 made explicit."""
    if config.epochs < 0:
        raise UserInputError("EPOCHS", "must be 0 (automatic) or a number of epochs.")
    if not config.epochs:  # automatic: the time limit decides where there is one
        config = dataclasses.replace(config, epochs=AUTO_EPOCHS_LIMITED if config.time_limit else AUTO_EPOCHS)
    if config.batch_size < 1:
        raise UserInputError("BATCH_SIZE", "must be at least 1.")
    if not config.time_limit >= 0:
        raise UserInputError("TIME_LIMIT", "must be 0 (no limit) or a number of minutes.")
    if not 0 <= config.validation_percent < 100:
        raise UserInputError("VALIDATION_PERCENT", "must be from 0 to 99.")
    check_aliases({"CHIPS": config.chips, "INIT_MODEL": config.init_model, "ENCODER_WEIGHTS": config.encoder_weights},
                  {"OUTPUT_MODEL": config.output_model, "OUTPUT_REPORT": config.output_report,
                   "OUTPUT_ONNX": config.output_onnx})
    check_output_file(config.output_model, "OUTPUT_MODEL")
    if config.output_report:
        check_output_file(config.output_report, "OUTPUT_REPORT")
    if config.output_onnx:
        check_output_file(config.output_onnx, "OUTPUT_ONNX")
        import importlib.util

        if importlib.util.find_spec("onnx") is None:
            raise UserInputError("OUTPUT_ONNX", "writing ONNX needs the 'onnx' package: install it into QGIS's Python "
                                                "(python -m pip install onnx), or leave OUTPUT_ONNX empty.")
    return config


def _encoder_weights(config: TrainConfig, log) -> dict | None:
    """ENCODER_WEIGHTS or ImageNet's, before the data are read: an offline machine learns at once that they are out of reach."""
    if config.init_model or not (config.encoder_weights or config.pretrained):
        return None
    if not distributed.is_main():
        distributed.barrier()  # rank 0 downloads ImageNet weights into the cache first
    try:
        state = load_weights_file(config.encoder_weights) if config.encoder_weights \
            else imagenet_state_dict(config.backbone, log)
    except EncoderWeightsError as exc:
        raise UserInputError("ENCODER_WEIGHTS" if config.encoder_weights else "PRETRAINED", str(exc)) from None
    if distributed.is_main():
        distributed.barrier()
    return state


def _split(config: TrainConfig, data: ChipDataset, classes: list[dict], log) -> Split:
    """Spatially separate training and validation chips; BATCH_SIZE checked against what trains."""
    train_idx, val_idx, overlaps = spatial_split(data.bounds, config.validation_percent, config.seed, data.label_shares)
    if config.validation_percent > 0 and (not val_idx or not train_idx):
        raise UserInputError(
            "VALIDATION_PERCENT",
            f"{len(data)} chips are too few for a spatially separate validation split "
            f"({len(train_idx)} training, {len(val_idx)} validation). Export more chips (smaller STRIDE or "
            "CHIP_SIZE, a larger area) or set VALIDATION_PERCENT to 0.",
        )
    n_proc = distributed.world()
    if config.batch_size > len(train_idx) // n_proc:
        if n_proc > 1:
            raise UserInputError(
                "BATCH_SIZE", f"{config.batch_size} chips per process is more than each of the {n_proc} processes has "
                f"({len(train_idx)} training chips in all); use at most {len(train_idx) // n_proc}, or fewer processes.")
        raise UserInputError(
            "BATCH_SIZE", f"{config.batch_size} is larger than the training set ({len(train_idx)} chips); use at most {len(train_idx)}."
        )
    log(f"{len(data)} chips ({data.kind} format), {len(data.bands)} bands, {data.chip_size} px, {len(classes)} classes: "
        + ", ".join(c["name"] for c in classes))
    if not data.georeferenced:
        log("The chips carry no georeferencing (no world files): validation takes runs of consecutive chips in "
            "map.txt order, which keeps validation apart from training only as far as that order follows the ground.")
    kept = class_training_shares(data.bounds, data.label_shares, train_idx, overlaps) if val_idx else {}
    names = {int(c["value"]): c["name"] for c in classes}
    kept = {names[v]: f for v, f in kept.items() if v in names}
    log(f"Spatial split: {len(train_idx)} training chips, {len(val_idx)} validation chips"
        + (f"; {len(overlaps)} training chips overlap validation areas and train on their pixels outside them"
           if overlaps else "") + "."
        + (" Share of each class's labelled pixels left for training: "
           + ", ".join(f"{n} {100 * f:.0f} %" for n, f in kept.items()) + "." if kept else ""))
    return Split(train_idx, val_idx, overlaps, kept)


def _build(config: TrainConfig, data: ChipDataset, classes: list[dict], encoder_state, device, log):
    """The model (fresh, from INIT_MODEL or with pretrained encoder weights) on ``device``, and its normalisation."""
    k = len(classes)
    mean = np.array([s["mean"] for s in data.statistics], dtype=np.float64)
    std = np.array([max(s["std"], 1e-6) for s in data.statistics], dtype=np.float64)
    model = UNet(config.backbone, len(data.bands), k)
    if config.init_model:
        try:
            payload = read_model_file(config.init_model)
        except ModelFileError as exc:
            raise UserInputError("INIT_MODEL", str(exc)) from None
        init_meta = payload["metadata"]
        check_fine_tuning(init_meta, data, classes)
        model = UNet(init_meta["backbone"], len(data.bands), k, bool(init_meta.get("input_skip", False)))
        model.load_state_dict(payload["state_dict"])
        mean = np.array(init_meta["normalization"]["mean"])
        std = np.array(init_meta["normalization"]["std"])
        log(f"Continuing from {config.init_model} ({init_meta['backbone']}); its normalisation is kept.")
    elif encoder_state is not None:
        try:
            model.encoder.load_pretrained(encoder_state, log)
        except EncoderWeightsError as exc:
            raise UserInputError("ENCODER_WEIGHTS" if config.encoder_weights else "PRETRAINED", str(exc)) from None
        log(f"Encoder {model.backbone} initialised from " + (config.encoder_weights or "ImageNet weights") + ".")
    if config.freeze_encoder:
        for p in model.encoder.parameters():
            p.requires_grad = False
    model.to(device)
    if device.type == "cpu":
        model = model.to(memory_format=torch.channels_last)
    n_proc = distributed.world()
    log(f"Training on {'GPU ' + torch.cuda.get_device_name(device) if device.type == 'cuda' else f'CPU ({torch.get_num_threads()} threads)'}"
        + (f" in each of {n_proc} processes (torchrun, {torch.distributed.get_backend()}): every process trains on its "
           f"share of the chips, {config.batch_size} chips per step each, {config.batch_size * n_proc} in all." if n_proc > 1 else "."))
    return model, mean, std


def _prepare(config, data, classes, lut, split: Split, model, mean, std, device, t_start, log) -> Setup:
    """This process's training and validation tensors and the loss with its class weights."""
    k = len(classes)
    # every process reads only its share; the split, classes and normalisation above are the same everywhere
    mine = distributed.share(split.train)
    tr = ChipTensors(data, mine, lut, mean, std, {i: split.overlaps[i] for i in mine if i in split.overlaps})
    counts = np.array([c.get("pixel_count", 1) for c in classes], dtype=np.float64)
    beta = background_weight(data, classes, counts)
    val_lut = lut
    if beta is not None:
        # sample polygons: background in the validation areas is not known truth; score the held-out polygons
        val_lut = lut.copy()
        val_lut[int(classes[0]["value"])] = IGNORE
    va = ChipTensors(data, distributed.share(split.val), val_lut, mean, std) if split.val else None
    weight, w = None, np.ones(k)
    if config.class_balancing:
        w = balancing_weights(counts)
        log("Class weights: " + ", ".join(f"{c['name']} {wi:.2f}" for c, wi in zip(classes, w)))
    if beta is not None:
        w[0] = beta * w[1:].mean()
        log(f"The labels look like sample polygons: {k - 1} classes on {100 * counts[1:].sum() / counts.sum():.1f} % of the "
            "labelled pixels, background (outside every polygon) on the rest, where the same land as inside the polygons "
            f"is labelled background too. Background counts like one average class in the loss (weight {w[0]:.4f}), so "
            "that every class shows up where it is; validation scores the held-out polygons only. If your polygons mark "
            "every occurrence of their classes, export with a MASK of the areas they label completely; if the land "
            "outside them is not one class, UNLABELED=ignore.")
    if config.class_balancing or beta is not None:
        weight = torch.tensor(w, dtype=torch.float32, device=device)
    return Setup(config, model, model, make_loss(config.loss, weight), tr, va, classes, data, mean, std, 0.0, device,
                 t_start, len(split.train) // distributed.world(), beta is not None and bool(split.val),
                 float(w[0]) if beta is not None else None)


def _fit_and_save(config: TrainConfig, setup: Setup, gen, progress, is_canceled, log) -> TrainResult:
    """Learning rate, the loop, and OUTPUT_MODEL replaced by the best epoch at the end (only then)."""
    lr_curve = []
    try:
        if config.learning_rate > 0:
            lr = config.learning_rate
        elif distributed.is_main():
            # the range test is part of the time budget: at most RANGE_TEST_SHARE of it
            deadline = setup.t_start + RANGE_TEST_SHARE * config.time_limit * 60 if config.time_limit else None
            lr, lr_curve = find_learning_rate(setup.model, setup.loss_fn, setup.train, config.batch_size, setup.device,
                                              gen, log, deadline=deadline)
        lr = distributed.agree(lr if distributed.is_main() or config.learning_rate > 0 else None)
        # the best model goes to a partial file beside OUTPUT_MODEL, which it replaces at the end: an
        # earlier model there is untouched until this run has one to keep
        partial = partial_path(config.output_model) if distributed.is_main() else config.output_model
        try:
            setup = dataclasses.replace(setup, config=dataclasses.replace(config, output_model=partial), lr=lr,
                                        net=_parallel(setup.model, setup.device))
            result = Loop(setup, gen, progress, is_canceled, log).run()
            if distributed.is_main():
                commit(partial, config.output_model, "OUTPUT_MODEL")
                result.model_path = config.output_model
        finally:
            if distributed.is_main():
                discard(partial)
    except torch.OutOfMemoryError:
        raise UserInputError("BATCH_SIZE", "ran out of memory. Use a smaller BATCH_SIZE, or export smaller chips (CHIP_SIZE).") from None
    except RuntimeError as exc:
        if "out of memory" in str(exc).lower() or "not enough memory" in str(exc).lower():
            raise UserInputError("BATCH_SIZE", "ran out of memory. Use a smaller BATCH_SIZE, or export smaller chips (CHIP_SIZE).") from None
        raise
    result.lr_curve, result.learning_rate = lr_curve, lr
    result.background_weight = setup.background_weight
    return result


def _finish(config: TrainConfig, result: TrainResult, data: ChipDataset, t_start: float, log) -> None:
    """The report and the ONNX file, and the run's wall time against TIME_LIMIT."""
    if config.output_report:
        from .report import write_report

        write_report(config.output_report, result, data, config)
        result.report_path = config.output_report
    if config.output_onnx:
        result.onnx_path = _write_onnx(result.model_path, config.output_onnx, log)
    wall = time.time() - t_start
    log(f"Trained {result.epochs_run} epochs of the {result.planned_epochs:.1f} planned in {wall:.0f} s"
        + (f" ({100 * wall / (config.time_limit * 60):.0f} % of TIME_LIMIT={config.time_limit:g} min)." if config.time_limit else "."))


def _parallel(model: torch.nn.Module, device: torch.device) -> torch.nn.Module:
    """The module that trains: ``model`` itself, or under torchrun ``model`` in DistributedDataParallel
    (gradients averaged over the processes; on GPUs, batch-norm statistics over all processes' batches,
    which small per-GPU batches need; on CPUs gloo has no synchronised batch norm, and rank 0's running
    statistics are broadcast each step)."""
    if not distributed.active():
        return model
    from torch.nn.parallel import DistributedDataParallel

    if device.type == "cuda":
        model = torch.nn.SyncBatchNorm.convert_sync_batchnorm(model)
        return DistributedDataParallel(model, device_ids=[device.index])
    return DistributedDataParallel(model)


def _write_onnx(model_path: str, onnx_path: str, log) -> str:
    """The best model as ONNX for Deepness and other runtimes, written whole or not at all."""
    from ..model.onnx_export import export_onnx

    with partial_file(onnx_path, "OUTPUT_ONNX") as partial:
        export_onnx(model_path, partial)
    log(f"ONNX model for Deepness and other ONNX runtimes written to {onnx_path}.")
    return onnx_path
