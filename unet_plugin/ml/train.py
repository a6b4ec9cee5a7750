"""Train U-Net: chips in, the best epoch's model file out."""

from __future__ import annotations

import copy
import dataclasses
import math
import os
import re
import time
from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F
from osgeo import gdal

from ..core.chips import BACKGROUND_WARNING_SHARE
from ..core.dataset import ChipDataset, class_training_shares, load_chip_dataset, spatial_split, validation_mask
from ..core.errors import Canceled, UserInputError
from ..core.metrics import miou_spread, scores
from .. import params
from ..core.outputs import check_aliases, commit, discard, partial_file, partial_path
from ..core.paths import check_output_file
from .encoders import EncoderWeightsError, imagenet_state_dict, load_weights_file
from . import distributed
from .modelfile import ModelFileError, read_model_file, save_model
from .sampling import Sampler
from .unet import UNet

IGNORE = 255
LOSSES = params.LOSSES  # declared once, with the parameter
LOSS_ALIASES = {"cross-entropy + dice": "cross-entropy+dice"}  # its name before 0.2.0
IN_MEMORY_BUDGET = 4 * 1024**3  # chips beyond this are read from disk each epoch


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


def pick_device(name: str) -> torch.device:
    """``auto`` → CUDA when present, else the CPU; ``cuda`` without CUDA is the user's error."""
    if name == "cuda" and not torch.cuda.is_available():
        raise UserInputError("DEVICE", "CUDA was asked for but no CUDA GPU is available to PyTorch; choose 'auto' or 'cpu'.")
    if name in ("auto", "cuda") and torch.cuda.is_available():
        # under torchrun each process has its own GPU (distributed.init chose it)
        return torch.device("cuda", torch.cuda.current_device()) if distributed.active() else torch.device("cuda")
    if name not in ("auto", "cpu", "cuda"):
        raise UserInputError("DEVICE", f"unknown device '{name}'; choose auto, cpu or cuda.")
    torch.set_num_threads(distributed.cpu_threads())
    return torch.device("cpu")


class ChipTensors:
    """Normalised chips and index labels, in memory when they fit, else read on demand."""

    def __init__(self, data: ChipDataset, indices: list[int], lut: np.ndarray, mean: np.ndarray, std: np.ndarray,
                 held_out: dict | None = None):
        """``held_out``: chip index → bounds of validation chips it overlaps; those pixels are ignored."""
        self.data, self.indices, self.lut = data, indices, lut
        self.held_out = held_out or {}
        self.mean = mean.reshape(-1, 1, 1).astype(np.float32)
        self.std = std.reshape(-1, 1, 1).astype(np.float32)
        nbytes = len(indices) * (len(mean) * 4 + 1) * data.chip_size**2
        self.cache = None
        if indices and nbytes <= IN_MEMORY_BUDGET:
            pairs = [self._read(i) for i in indices]
            self.cache = (torch.from_numpy(np.stack([p[0] for p in pairs])), torch.from_numpy(np.stack([p[1] for p in pairs])))

    def _read(self, i: int):
        try:
            return self._read_chip(i)
        except RuntimeError as exc:  # a truncated or damaged GeoTIFF: name it, not IReadBlock
            raise UserInputError(
                "CHIPS", f"chip {os.path.basename(self.data.image_paths[i])} (or its label) cannot be read: "
                f"{str(exc).splitlines()[0]}. Export the chips again, or delete the damaged chip and its label.") from None

    def _read_chip(self, i: int):
        img = gdal.Open(self.data.image_paths[i]).ReadAsArray()
        if img.ndim == 2:
            img = img[None]
        valid = np.ones(img.shape[1:], dtype=bool)
        for b, nd in enumerate(self.data.nodata or []):
            if nd is not None:
                valid &= img[b] != nd
        x = (img.astype(np.float32) - self.mean) / self.std
        x[:, ~valid] = 0.0
        x[~np.isfinite(x)] = 0.0
        y = self.lut[gdal.Open(self.data.label_paths[i]).ReadAsArray()]
        y[~valid] = IGNORE
        if i in self.held_out:  # validation pixels never reach the training loss
            y[validation_mask(self.data.bounds[i], self.held_out[i], *y.shape)] = IGNORE
        return x, y.astype(np.uint8)

    def __len__(self):
        return len(self.indices)

    def presence(self, k: int) -> np.ndarray:
        """chips × classes: which classes each chip holds (its training labels, validation areas left out)."""
        from .sampling import class_presence

        if self.cache is not None:
            return class_presence(self.cache[1], k)
        if not self.indices:
            return np.zeros((0, k), dtype=bool)
        return np.concatenate([class_presence(torch.from_numpy(self._read(i)[1][None]), k) for i in self.indices])

    def batch(self, positions) -> tuple[torch.Tensor, torch.Tensor]:
        if self.cache is not None:
            idx = torch.as_tensor(positions)
            return self.cache[0][idx], self.cache[1][idx]
        pairs = [self._read(self.indices[p]) for p in positions]
        return torch.from_numpy(np.stack([p[0] for p in pairs])), torch.from_numpy(np.stack([p[1] for p in pairs]))


def balancing_weights(counts: np.ndarray, cap: float = 10.0) -> np.ndarray:
    """Class weights from pixel counts: inverse frequency, square-rooted, relative to the median class.

    Plain inverse frequency gives a class of a few dozen pixels hundreds of times the weight of
    the main class, and the model then paints it everywhere; the square root keeps rare classes
    counting more while the common ones still count. Weights stay within ``cap``× of the median
    class; classes without pixels get weight 1 (they never occur as a target).
    """
    counts = np.asarray(counts, dtype=np.float64)
    present = counts > 0
    w = np.ones_like(counts)
    if present.any():
        median = np.median(counts[present])
        w[present] = np.clip(np.sqrt(median / counts[present]), 1.0 / cap, cap)
    return w


SAMPLE_BACKGROUND_SHARE = BACKGROUND_WARNING_SHARE  # the share above which the export warns


def background_weight(data: ChipDataset, classes: list[dict], counts: np.ndarray) -> float | None:
    """The background's loss weight (relative to the classes') when the chips look like *sample* polygons, else None.

    Polygons of several classes on a small share of the area, exported with UNLABELED=background and no
    MASK, label the land around each polygon "background" — the rest of the lake around a water polygon,
    the forest around a forest polygon. Trained on that as it is, a model learns that nearly everything is
    background (NC polygons: 98.5 % background, a blank map after a short training). Counting background
    pixels like one average class (weight = mean class pixels / background pixels) lets every class win
    where it looks like itself; background stays where nothing labelled looks like the pixel. Chips of one
    class (footprints: buildings, fields), with a MASK (labelled completely inside it), from a label raster
    or with less background are trained as they are.
    """
    if data.label_source != "polygons" or data.unlabeled != "background" or data.masked:
        return None
    if len(classes) < 3 or int(classes[0]["value"]) != 0:  # background and at least two classes
        return None
    counts = np.asarray(counts, dtype=np.float64)
    if counts[0] < SAMPLE_BACKGROUND_SHARE * counts.sum():
        return None
    return float(counts[1:].mean() / counts[0])


def make_loss(kind: str, weight: torch.Tensor | None) -> Callable:
    """The training loss; label 255 never counts."""
    kind = LOSS_ALIASES.get(kind, kind)
    if kind not in LOSSES:
        raise UserInputError("LOSS", f"unknown loss '{kind}'; choose one of {', '.join(LOSSES)}.")

    def ce(logits, target):
        return F.cross_entropy(logits, target, weight=weight, ignore_index=IGNORE)

    def focal(logits, target, gamma=2.0):
        per_px = F.cross_entropy(logits, target, weight=weight, ignore_index=IGNORE, reduction="none")
        pt = torch.exp(-F.cross_entropy(logits, target, ignore_index=IGNORE, reduction="none"))
        valid = target != IGNORE
        return ((1 - pt) ** gamma * per_px)[valid].sum() / valid.sum().clamp(min=1)

    def ce_dice(logits, target):
        valid = (target != IGNORE).unsqueeze(1)
        prob = torch.softmax(logits.float(), 1) * valid
        onehot = F.one_hot(target.clamp(max=logits.shape[1] - 1).long(), logits.shape[1]).permute(0, 3, 1, 2) * valid
        inter = (prob * onehot).sum((0, 2, 3))
        denom = prob.sum((0, 2, 3)) + onehot.sum((0, 2, 3))
        dice = 1 - ((2 * inter + 1) / (denom + 1)).mean()
        return ce(logits, target) + dice

    return {"cross-entropy": ce, "focal": focal, "cross-entropy+dice": ce_dice}[kind]


def confusion_matrix(pred: torch.Tensor, target: torch.Tensor, k: int) -> torch.Tensor:
    """k×k counts (rows truth, columns prediction) over pixels whose label is not 255."""
    valid = target != IGNORE
    idx = target[valid].long() * k + pred[valid].long()
    return torch.bincount(idx, minlength=k * k).reshape(k, k).cpu()


def find_learning_rate(model, loss_fn, train: ChipTensors, batch_size, device, gen, log, steps=40, deadline=None):
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
    chosen = float(min(max(lr_min / 10, 1e-5), 3e-3))
    log("Learning-rate range test: " + ", ".join(f"{lr:.1e}→{l:.3f}" for lr, l in curve[:: max(1, len(curve) // 12)]))
    log(f"Lowest loss at {lr_min:.2e}; chosen learning rate {chosen:.2e} (a tenth of it).")
    return chosen, curve


def _classes_and_lut(data: ChipDataset) -> tuple[list[dict], np.ndarray]:
    classes = [c for c in data.classes if c.get("pixel_count", 1) > 0]
    if len(classes) < 2:
        names = ", ".join(c["name"] for c in classes) or "none"
        raise UserInputError(
            "CHIPS", f"the chips hold only one class ({names}); a segmentation model needs at least two. "
            "Label another class, or export with UNLABELED=background."
        )
    lut = np.full(256, IGNORE, dtype=np.uint8)
    for i, c in enumerate(classes):
        lut[int(c["value"])] = i
    return classes, lut


def check_fine_tuning(meta: dict, data: ChipDataset, classes: list[dict]) -> None:
    """Refuse INIT_MODEL unless the chips have its classes (value and name), bands and value scale.

    Classes are matched by value *and* name: text classes get codes 1..n in sorted order, so
    other classes of the same count get the same codes and would silently take over the
    model's meaning.
    """
    ours = [(int(c["value"]), str(c["name"])) for c in meta["classes"]]
    theirs = [(int(c["value"]), str(c["name"])) for c in classes]
    if ours != theirs:
        raise UserInputError(
            "INIT_MODEL",
            "the model's classes " + ", ".join(f"{v} {n}" for v, n in ours) + " differ from the chips' classes "
            + ", ".join(f"{v} {n}" for v, n in theirs) + ". Fine-tune only on chips labelled with the same classes "
            "(same codes and names).",
        )
    if int(meta["in_channels"]) != len(data.bands):
        raise UserInputError(
            "INIT_MODEL", f"the model was trained on {meta['in_channels']} bands; these chips have {len(data.bands)}. "
            "Fine-tune only on chips of the same bands in the same order.")
    names = [b.get("name", "") for b in meta.get("bands", [])]
    chip_names = [b.get("name", "") for b in data.bands]
    default = re.compile(r"^Band \d+$")
    for i, (a, b) in enumerate(zip(names, chip_names)):
        if a and b and a != b and not default.match(a) and not default.match(b):
            raise UserInputError(
                "INIT_MODEL", f"band {i + 1} of the model is '{a}' but of the chips '{b}'. "
                "Export the chips with the model's bands in the same order (BANDS).")
    mean, std = meta["normalization"]["mean"], meta["normalization"]["std"]
    for i, stats in enumerate(data.statistics):
        if abs(float(stats["mean"]) - float(mean[i])) > 5 * max(float(std[i]), 1e-6):
            raise UserInputError(
                "INIT_MODEL", f"band {i + 1} of the chips (mean {float(stats['mean']):.4g}) is on another scale than the "
                f"model's training data (mean {float(mean[i]):.4g}, std {float(std[i]):.4g}). Fine-tune on imagery "
                "scaled like the model's (same sensor, units and processing level).")


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
    device = pick_device(config.device)
    encoder_state = None
    if not config.init_model and (config.encoder_weights or config.pretrained):
        # before the data are read: an offline machine learns at once that the weights are out of reach
        if not distributed.is_main():
            distributed.barrier()  # rank 0 downloads ImageNet weights into the cache first
        try:
            encoder_state = load_weights_file(config.encoder_weights) if config.encoder_weights \
                else imagenet_state_dict(config.backbone, log)
        except EncoderWeightsError as exc:
            raise UserInputError("ENCODER_WEIGHTS" if config.encoder_weights else "PRETRAINED", str(exc)) from None
        if distributed.is_main():
            distributed.barrier()
    data = load_chip_dataset(config.chips)
    classes, lut = _classes_and_lut(data)
    k = len(classes)
    mean = np.array([s["mean"] for s in data.statistics], dtype=np.float64)
    std = np.array([max(s["std"], 1e-6) for s in data.statistics], dtype=np.float64)

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
    log(f"{len(data)} chips ({data.kind} format), {len(data.bands)} bands, {data.chip_size} px, {k} classes: "
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

    torch.manual_seed(config.seed)
    np.random.seed(config.seed % 2**32)
    gen = torch.Generator().manual_seed(config.seed + distributed.rank())  # each process its own shuffles
    model = UNet(config.backbone, len(data.bands), k)
    init_meta = None
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
    log(f"Training on {'GPU ' + torch.cuda.get_device_name(device) if device.type == 'cuda' else f'CPU ({torch.get_num_threads()} threads)'}"
        + (f" in each of {n_proc} processes (torchrun, {torch.distributed.get_backend()}): every process trains on its "
           f"share of the chips, {config.batch_size} chips per step each, {config.batch_size * n_proc} in all." if n_proc > 1 else "."))

    # every process reads only its share; the split, classes and normalisation above are the same everywhere
    mine = distributed.share(train_idx)
    tr = ChipTensors(data, mine, lut, mean, std, {i: overlaps[i] for i in mine if i in overlaps})
    counts = np.array([c.get("pixel_count", 1) for c in classes], dtype=np.float64)
    beta = background_weight(data, classes, counts)
    val_lut = lut
    if beta is not None:
        # sample polygons: background in the validation areas is not known truth; score the held-out polygons
        val_lut = lut.copy()
        val_lut[int(classes[0]["value"])] = IGNORE
    va = ChipTensors(data, distributed.share(val_idx), val_lut, mean, std) if val_idx else None
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
    loss_fn = make_loss(config.loss, weight)

    lr_curve = []
    try:
        if config.learning_rate > 0:
            lr = config.learning_rate
        elif distributed.is_main():
            # the range test is part of the time budget: at most RANGE_TEST_SHARE of it
            deadline = t_start + RANGE_TEST_SHARE * config.time_limit * 60 if config.time_limit else None
            lr, lr_curve = find_learning_rate(model, loss_fn, tr, config.batch_size, device, gen, log, deadline=deadline)
        lr = distributed.agree(lr if distributed.is_main() or config.learning_rate > 0 else None)
        net = _parallel(model, device)
        # the best model goes to a partial file beside OUTPUT_MODEL, which it replaces at the end: an
        # earlier model there is untouched until this run has one to keep
        partial = partial_path(config.output_model) if distributed.is_main() else config.output_model
        try:
            result = _fit(dataclasses.replace(config, output_model=partial), model, loss_fn, tr, va, k, lr, device, gen,
                          progress, is_canceled, log, classes, data, mean, std, t_start, net, len(train_idx) // n_proc,
                          beta is not None and bool(val_idx))
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
    result.background_weight = float(w[0]) if beta is not None else None
    result.seconds = time.time() - t_start
    result.chips_train, result.chips_val = len(train_idx), len(val_idx)
    result.class_training_shares = kept
    result.device = str(device)
    if not distributed.is_main():  # rank 0 writes the model, the report and the ONNX file
        return result
    if config.output_report:
        from .report import write_report

        write_report(config.output_report, result, data, config)
        result.report_path = config.output_report
    if config.output_onnx:
        result.onnx_path = _write_onnx(result.model_path, config.output_onnx, log)
    wall = time.time() - t_start
    log(f"Trained {result.epochs_run} epochs of the {result.planned_epochs:.1f} planned in {wall:.0f} s"
        + (f" ({100 * wall / (config.time_limit * 60):.0f} % of TIME_LIMIT={config.time_limit:g} min)." if config.time_limit else "."))
    return result


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
    from .onnx_export import export_onnx

    with partial_file(onnx_path, "OUTPUT_ONNX") as partial:
        export_onnx(model_path, partial)
    log(f"ONNX model for Deepness and other ONNX runtimes written to {onnx_path}.")
    return onnx_path


def one_cycle(progress: float, warmup: float = 0.25, start: float = 1 / 25, end: float = 1e-4) -> float:
    """The learning-rate factor at ``progress`` (0–1) through the run: a cosine rise from ``start``
    to 1 over the first ``warmup`` of the steps, then a cosine fall to ``end`` (OneCycleLR's shape,
    computed from the fraction done, so the plan can be re-made when a time limit is measured)."""
    p = min(max(progress, 0.0), 1.0)
    if p < warmup:
        return start + (1 - start) * (1 - math.cos(math.pi * p / warmup)) / 2
    return end + (1 - end) * (1 + math.cos(math.pi * (p - warmup) / (1 - warmup))) / 2


AUTO_EPOCHS = 20             # EPOCHS=0 without a time limit
AUTO_EPOCHS_LIMITED = 100000  # EPOCHS=0 with a time limit: the limit decides
RANGE_TEST_SHARE = 0.08      # of TIME_LIMIT, at most, for the learning-rate range test
RANGE_TEST_MIN_POINTS = 12   # fewer points than this: the curve says too little; FALLBACK_LR instead
FALLBACK_LR = 1e-3
EARLY_STOP_FROM = 0.6        # early stopping only watches once this share of the planned steps is done (annealing)
FEW_STEPS = 150              # a schedule of fewer steps than this rarely gives a usable model
END_RESERVE = 3.0            # seconds kept for the report and the last save, besides the last validation


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


def _fit(config, model, loss_fn, tr, va, k, lr, device, gen, progress, is_canceled, log, classes, data, mean, std,
         t_start=None, net=None, per_process=None, sample_labels=False):
    """Train ``net`` (``model``, or ``model`` in DistributedDataParallel); validate and save ``model``.

    Under torchrun every stop (time, cancel, early stopping) and every choice is the same on all
    processes: taken from summed counts or by rank 0, never from one process's clock alone.
    ``sample_labels``: validation holds no background truth (sample polygons); its mIoU is over the classes.
    """
    from . import precision as prec

    net = net if net is not None else model
    together = distributed.active()

    decay, no_decay = [], []  # no weight decay on norms and biases: it only pulls them to zero
    for p in model.parameters():
        if p.requires_grad:
            (no_decay if p.ndim <= 1 else decay).append(p)
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": 1e-2}, {"params": no_decay, "weight_decay": 0.0}], lr=lr)
    sampler = Sampler(tr, k, config.augment, log, [c["name"] for c in classes],
                      distributed.total if together else None)
    steps = (per_process or len(tr)) // config.batch_size  # incomplete last batches are dropped (batch norm needs > 1)
    plan = Plan(config, steps, len(va) if va is not None else len(tr), t_start or time.time(), log)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda _: plan.lr_factor())
    channels_last = torch.channels_last if device.type == "cpu" else torch.contiguous_format
    sample = tr.batch(list(range(min(config.batch_size, len(tr)))))[0] if device.type == "cpu" else None  # bf16 probe
    kind = distributed.agree(prec.choose(config.precision, device, model, sample, log))
    scaler = torch.amp.GradScaler("cuda", enabled=kind == "fp16")
    history, best = [], None
    best_epoch, since_best, bad_steps = 0, 0, 0
    if plan.limit and config.early_stopping:
        log("Early stopping is not used with a time limit: the learning-rate schedule is planned to end at the limit.")
    result = TrainResult(config.output_model, None, 0.0, 0.0, 0, 0, False, classes=classes, precision=kind)
    step_times: list[float] = []
    for epoch in range(1, config.epochs + 1):
        t_epoch = time.perf_counter()
        net.train()
        if config.freeze_encoder:
            model.encoder.eval()
        order = sampler.epoch(gen)
        total, taken = 0.0, 0
        for s in range(steps):
            canceled, over = is_canceled(), plan.over() and plan.done > 0  # at least one step: a model to keep
            if together:
                canceled, over = (bool(v) for v in distributed.total(np.array([canceled, over], dtype=np.int64)))
            if canceled:
                return _finish_canceled(result, best, history, epoch - 1, log)
            if over:
                break
            t_step = time.perf_counter()
            x, y = sampler.batch(order[s * config.batch_size:(s + 1) * config.batch_size], gen)
            x = x.to(device, non_blocking=True).contiguous(memory_format=channels_last)
            y = y.to(device, non_blocking=True).long()
            with prec.autocast(kind, device):
                loss = loss_fn(net(x).float(), y)
            if not torch.isfinite(loss):
                bad_steps += 1  # fp16 on CUDA overflows now and then (the scaler skips those steps); anything else diverged
                if kind != "fp16" or bad_steps >= 8:
                    raise _diverged(epoch, s + 1, lr, "the loss became " + str(loss.item()))
            else:
                bad_steps = 0
            opt.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()
            scaler.step(opt)
            scaler.update()
            plan.done += 1
            sched.step()
            total += loss.item()
            taken += 1
            step_times.append(time.perf_counter() - t_step)
            if plan.limit and len(step_times) == 4:  # first measurement: steps 2-4 (the first warms up)
                per_step = sum(step_times[1:]) / 3
                plan.replan(per_step, 0.35 * per_step * plan.val_chips / config.batch_size)
                plan.total = distributed.agree(plan.total)
            progress(min(plan.done / max(plan.total, 1), 1.0))
        if taken == 0:
            break
        train_loss = total / taken
        if not all(bool(torch.isfinite(p).all()) for p in model.parameters()):
            raise _diverged(epoch, taken, lr, "the weights are no longer finite numbers")
        train_seconds = time.perf_counter() - t_epoch
        t_val = time.perf_counter()
        if PRECISE_BN:
            # as many batches in every process (SyncBatchNorm on GPUs exchanges statistics per batch)
            recalibrate_batchnorm(model, tr, config.batch_size, device, channels_last,
                                  min(PRECISE_BN_CHIPS, per_process or len(tr)))
        # under torchrun a cancel is decided together between steps, never inside one process's validation
        val = evaluate(model, loss_fn, va if va is not None else tr, k, config.batch_size, device,
                       (lambda: False) if together else is_canceled)
        if val is None:
            return _finish_canceled(result, best, history, epoch - 1, log)
        if together:  # every process validated its share: the scores of all of them
            val["cm"] = distributed.total(val["cm"])
            loss_sum, n = distributed.total(np.array([val["loss_sum"], val["n"]], dtype=np.float64))
            val["loss"] = float(loss_sum / max(n, 1))
            train_loss = float(distributed.total(np.float64(train_loss))) / distributed.world()
        if plan.limit and epoch == 1:  # re-plan with the first epoch's real timing
            plan.replan(train_seconds / taken, time.perf_counter() - t_val)
            plan.total = distributed.agree(plan.total)
        sc = scores(val["cm"])
        if sample_labels:  # no background truth in validation: background unscored, the mean over the classes
            sc["iou"][0] = float("nan")
            iou = np.array(sc["iou"], dtype=np.float64)
            sc["miou"] = float(np.nanmean(iou)) if np.isfinite(iou).any() else 0.0
        # under torchrun each process validates its share of the chips: no spread (it would need every chip's matrix)
        spread = miou_spread(val["chip_cms"], sample_labels) if not together else float("nan")
        row = {"epoch": epoch, "train_loss": train_loss, "val_loss": val["loss"], "accuracy": sc["accuracy"], "miou": sc["miou"],
               "miou_sd": spread,
               "iou": sc["iou"], "train_seconds": train_seconds, "chips_per_second": taken * config.batch_size * distributed.world() / max(train_seconds, 1e-9),
               "steps": taken}
        history.append(row)
        improved = best is None or sc["miou"] > best["miou"] + 1e-6
        if improved:
            best = dict(row, cm=val["cm"], scores=sc, examples=val["examples"])
            best_epoch, since_best = epoch, 0
            if distributed.is_main():
                save_model(config.output_model, model, _metadata(config, model, data, classes, mean, std, best, epoch, lr))
        row["seconds"] = time.perf_counter() - t_epoch  # the whole epoch: training, validation, saving
        log(f"Epoch {epoch}/{math.ceil(plan.total / max(steps, 1))}: train loss {train_loss:.4f}, validation loss {val['loss']:.4f}, "
            f"accuracy {sc['accuracy']:.3f}, mIoU {sc['miou']:.3f}" + (f" ±{spread:.3f}" if spread == spread else "") + " ("
            + ", ".join(f"{c['name']} {iou:.2f}" for c, iou in zip(classes, sc["iou"]) if iou == iou) + ")"
            + ("  ← best, saved" if improved else "") + f"  [{row['seconds']:.1f} s, {row['chips_per_second']:.1f} chips/s]")
        if not improved:
            since_best += 1
            # not while the learning rate is still high: validation then swings with every step (a few
            # validation chips decided which map the user got); only once the schedule anneals. With a
            # TIME_LIMIT the schedule is planned to end at the limit: that is where it stops
            if config.early_stopping and not plan.limit and since_best >= config.early_stopping \
                    and plan.done >= EARLY_STOP_FROM * plan.total:
                log(f"Early stopping: no mIoU improvement for {since_best} epochs.")
                result.stop_reason = f"early stopping after {epoch} epochs"
                break
        if plan.limit and epoch == 1:
            _warn_few_steps(plan, config, result, log)
        if plan.limit and distributed.anyone(plan.over()):
            result.stop_reason = f"time limit of {config.time_limit:g} min: {epoch} epochs, {plan.done} of {plan.total} planned steps"
            log(f"Time limit: {epoch} epochs ({plan.done} of the {plan.total} planned steps) in "
                f"{time.time() - plan.t_start:.0f} s; the best model (epoch {best_epoch}) is kept.")
            break
    result.epochs_run = len(history)
    result.planned_epochs = plan.total / max(steps, 1)
    return _result(result, best, best_epoch, history)


def _warn_few_steps(plan: "Plan", config, result, log) -> None:
    """Say when the time limit buys too few steps for a usable model, and what to do."""
    if plan.total >= FEW_STEPS:
        return
    result.budget_warning = (
        f"TIME_LIMIT={config.time_limit:g} min buys only {plan.total} training steps ({plan.total / max(plan.steps, 1):.1f} "
        f"epochs) on this machine: the model is likely poor. Give more time (about {FEW_STEPS / max(plan.total, 1) * config.time_limit:.0f} "
        "min for the usual minimum), a smaller BACKBONE (resnet18), or smaller chips (CHIP_SIZE at export).")
    log("Warning: " + result.budget_warning)


def _diverged(epoch: int, step: int, lr: float, what: str) -> UserInputError:
    """Training blew up (learning rate far too high, or bad input values): say what to change."""
    return UserInputError(
        "LEARNING_RATE", f"training diverged in epoch {epoch}, step {step} ({what}) with learning rate {lr:.3g}. "
        f"Use a smaller LEARNING_RATE (e.g. {lr / 10:.3g}) or 0 to find one automatically; with PRECISION=auto try "
        "PRECISION=full. No model was saved; an earlier OUTPUT_MODEL is untouched.")


def _finish_canceled(result, best, history, epochs_done, log):
    if best is None:
        raise Canceled()
    log(f"Canceled after {epochs_done} epochs; the best model so far (epoch {best['epoch']}) is kept.")
    result.canceled = True
    result.epochs_run = epochs_done
    return _result(result, best, best["epoch"], history)


def _result(result, best, best_epoch, history):
    result.miou, result.accuracy = best["miou"], best["accuracy"]
    result.best_epoch, result.history = best_epoch, history
    result.confusion = best["cm"]
    result.val_examples = best["examples"]
    return result


PRECISE_BN = os.environ.get("UNET_PRECISE_BN", "1") != "0"
PRECISE_BN_CHIPS = 64  # training chips whose batch statistics make the evaluation statistics


@torch.no_grad()
def recalibrate_batchnorm(model, data: "ChipTensors", batch_size: int, device, memory_format, chips: int = PRECISE_BN_CHIPS):
    """Batch-norm statistics of the weights as they are now, before validating and saving them.

    The running statistics that batch norm keeps while training are an exponential average over
    the last few dozen batches, each computed with the weights of its own step. With the large
    learning rates of the one-cycle warm-up and batches of 4–16 chips, the weights move faster
    than that average follows, and the model evaluated with the lagging statistics is another
    model than the one trained: validation losses of 14 or 68 where training loss is below 1.
    Here the statistics are recomputed as the plain mean over up to ``chips`` training chips (64: a few batches, a small share of an epoch)
    (un-augmented, spread evenly over the training chips, no gradients) with the current weights ("precise BN"). Layers
    that do not train (a frozen encoder) keep theirs. Under torchrun the processes' statistics
    are averaged, so all evaluate the same model.
    """
    layers = [m for m in model.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)
              and m.track_running_stats and any(p.requires_grad for p in m.parameters())]
    if not layers or len(data) == 0:
        return
    momenta = [m.momentum for m in layers]
    modes = {m: m.training for m in model.modules()}
    model.eval()  # everything else as in validation: dropout off, other statistics untouched
    for m in layers:
        m.reset_running_stats()
        m.momentum = None  # cumulative average over the batches below
        m.train()
    try:
        n = min(len(data), max(chips, batch_size))
        n -= n % batch_size  # full batches (a batch of 1 has no variance)
        # spread over the whole training set (chips are stored in raster order: the first ones would be
        # one corner of the area, whose statistics are not the data's: mIoU 0.31 instead of 0.34 on NC)
        pick = np.unique(np.linspace(0, len(data) - 1, n).round().astype(int)).tolist()
        for s in range(0, len(pick), batch_size):
            x, _ = data.batch(pick[s:s + batch_size])
            model(x.to(device).contiguous(memory_format=memory_format))
    finally:
        for m, momentum in zip(layers, momenta):
            m.momentum = momentum
        for m, mode in modes.items():
            m.training = mode
    if distributed.active():
        for m in layers:
            for buf in (m.running_mean, m.running_var):
                buf.copy_(torch.as_tensor(distributed.total(buf.double().cpu().numpy()) / distributed.world()).to(buf))


@torch.inference_mode()
def evaluate(model, loss_fn, data: ChipTensors, k, batch_size, device, is_canceled, examples=8):
    """Validation loss, confusion matrix and a few (image, truth, prediction) examples."""
    model.eval()
    cm = torch.zeros(k, k, dtype=torch.int64)
    total, n, ex, per_chip = 0.0, 0, [], []
    for s in range(0, len(data), batch_size):
        if is_canceled():
            return None
        x, y = data.batch(list(range(s, min(s + batch_size, len(data)))))
        x, y = x.to(device), y.to(device).long()
        logits = model(x)
        total += loss_fn(logits, y).item() * x.shape[0]
        n += x.shape[0]
        pred = logits.argmax(1)
        for i in range(x.shape[0]):  # per chip: the noise of the mIoU (a bootstrap over the chips)
            per_chip.append(confusion_matrix(pred[i:i + 1], y[i:i + 1], k).numpy())
        cm += sum(torch.from_numpy(c) for c in per_chip[-x.shape[0]:])
        for i in range(x.shape[0]):
            if len(ex) < examples:
                ex.append((x[i].cpu().numpy(), y[i].cpu().numpy().astype(np.uint8), pred[i].cpu().numpy().astype(np.uint8)))
    return {"loss": total / max(n, 1), "loss_sum": total, "n": n, "cm": cm.numpy(), "examples": ex,
            "chip_cms": np.stack(per_chip) if per_chip else np.zeros((0, k, k), dtype=np.int64)}


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
