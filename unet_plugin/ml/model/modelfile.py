"""The model file: one ``.pt`` with weights and metadata, loaded without running code.

Layout (a plain dict, so ``torch.load(weights_only=True)`` reads it)::

    {"format": "unet-qgis-model", "format_version": 1,
     "metadata": {...}, "state_dict": {name: tensor}}

Metadata keys: architecture, backbone, bands (index, name), in_channels,
data_type, nodata, normalization (mean, std per band), chip_size, pixel_size,
crs, classes (value, name, color), training (settings), metrics, versions.
"""

from __future__ import annotations

import hashlib
import os
import pickle
import platform

import torch

from ...params import BACKBONES
from .unet import UNet

MODEL_FORMAT = "unet-qgis-model"
MODEL_FORMAT_VERSION = 1
REQUIRED = ("architecture", "backbone", "in_channels", "bands", "classes", "normalization", "chip_size")


class ModelFileError(ValueError):
    """The file is not a model this version can read; the message says why."""


def versions() -> dict:
    import numpy
    import torchvision

    return {"torch": str(torch.__version__), "torchvision": str(torchvision.__version__),
            "numpy": str(numpy.__version__), "python": platform.python_version()}


def build_model(metadata: dict) -> UNet:
    """A U-Net shaped as ``metadata`` describes (weights not loaded)."""
    # models written before 0.4.0 have no "input_skip": their decoder ends without the image
    return UNet(metadata["backbone"], int(metadata["in_channels"]), len(metadata["classes"]),
                bool(metadata.get("input_skip", False)))


def save_model(path: str, model: UNet, metadata: dict) -> None:
    """Write the model file atomically (a temporary file renamed into place)."""
    meta = dict(metadata, architecture="unet", input_skip=bool(getattr(model, "input_skip", False)), versions=versions())
    missing = [k for k in REQUIRED if k not in meta]
    if missing:
        raise ValueError(f"metadata lacks {missing}")
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    payload = {"format": MODEL_FORMAT, "format_version": MODEL_FORMAT_VERSION, "metadata": meta, "state_dict": state}
    bad = [k for k, v in state.items() if v.is_floating_point() and not torch.isfinite(v).all()]
    if bad:
        raise ValueError(f"the weights are not finite ({bad[0]}…): a diverged training is never saved")
    from ...core.outputs import partial_file

    with partial_file(path, "OUTPUT_MODEL") as tmp:
        with open(tmp, "wb") as f:  # a file object: the archive's inner name is "archive", not the partial name
            try:
                torch.save(payload, f)
            except RuntimeError as exc:  # torch's zip writer reports a failed write (a full disk) this way
                raise (exc.__context__ if isinstance(exc.__context__, OSError) else OSError(str(exc))) from None
            f.flush()
            os.fsync(f.fileno())


def read_model_file(path: str) -> dict:
    """Read and validate a model file without building the network.

    Raises:
        ModelFileError: not a file, not a model file, a file that would run code
            when unpickled, a truncated file, or a newer format version.
    """
    if os.path.isdir(path):
        raise ModelFileError(f"'{path}' is a folder; choose the model file (.pt) written by Train U-Net.")
    if not os.path.isfile(path):
        raise ModelFileError(f"'{path}' does not exist.")
    if os.path.getsize(path) == 0:
        raise ModelFileError(f"'{path}' is empty (0 bytes): a copy or download that did not finish. Copy the model again.")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        if "global" not in str(exc).lower():  # not a pickle of objects at all: garbage or another format
            raise ModelFileError(f"'{path}' is not a U-Net model file or is damaged.") from None
        raise ModelFileError(
            f"'{path}' was refused: it holds Python objects that would run code when loaded "
            f"({[ln for ln in str(exc).splitlines() if 'global' in ln.lower()][0].strip()[:200]}). Only U-Net model files written by this plugin can be used."
        ) from None
    except Exception as exc:  # any other unreadable content: truncated, not a zip, garbage
        raise ModelFileError(f"'{path}' is not a U-Net model file or is damaged ({str(exc).splitlines()[0][:200]}).") from None
    if not isinstance(payload, dict) or payload.get("format") != MODEL_FORMAT:
        raise ModelFileError(f"'{path}' is not a U-Net model file of this plugin (format '{MODEL_FORMAT}' expected).")
    version = payload.get("format_version")
    if not isinstance(version, int) or version > MODEL_FORMAT_VERSION:
        raise ModelFileError(
            f"'{path}' has model format version {version}, newer than this plugin reads ({MODEL_FORMAT_VERSION}). Update the plugin."
        )
    meta = payload.get("metadata")
    if not isinstance(meta, dict) or any(k not in meta for k in REQUIRED) or not isinstance(payload.get("state_dict"), dict):
        raise ModelFileError(f"'{path}' is a damaged model file: its metadata is incomplete.")
    problem = metadata_problem(meta)
    if problem:
        raise ModelFileError(f"'{path}' is a damaged model file: {problem}.")
    return payload


def metadata_problem(meta: dict) -> str | None:
    """What is wrong with a model's metadata (a damaged or crafted file), or ``None``."""
    import math

    def number(v):
        return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)

    n = meta.get("in_channels")
    if not isinstance(n, int) or isinstance(n, bool) or not 1 <= n <= 4096:
        return f"in_channels is {n!r}, not a band count"
    bands = meta.get("bands")
    if not isinstance(bands, list) or len(bands) != n or not all(
            isinstance(b, dict) and isinstance(b.get("index"), int) and not isinstance(b.get("index"), bool)
            and b["index"] >= 1 for b in bands):
        return f"its band list does not describe {n} bands numbered from 1"
    norm = meta.get("normalization")
    if not isinstance(norm, dict) or any(not isinstance(norm.get(k), list) or len(norm[k]) != n
                                         or not all(number(v) for v in norm[k]) for k in ("mean", "std")):
        return f"its normalisation does not hold {n} finite means and standard deviations"
    if any(v <= 0 for v in norm["std"]):
        return "a standard deviation of its normalisation is not positive"
    classes = meta.get("classes")
    if not isinstance(classes, list) or not 1 <= len(classes) <= 255 or not all(
            isinstance(c, dict) and isinstance(c.get("value"), int) and not isinstance(c.get("value"), bool)
            and 0 <= c["value"] <= 254 for c in classes):
        return "its classes are not a list of class values 0–254"
    if len({c["value"] for c in classes}) != len(classes):
        return "a class value is listed twice"
    size = meta.get("chip_size")
    if not isinstance(size, int) or isinstance(size, bool) or size < 32 or size % 32:
        return f"its chip size {size!r} is not a multiple of 32"
    if meta.get("backbone") not in BACKBONES:
        return f"its backbone {meta.get('backbone')!r} is unknown"
    return None


def file_digest(path: str) -> str:
    """SHA-256 of the file's bytes: what identifies the weights (a copy keeps size and mtime)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def load_model(path: str, device: str | torch.device = "cpu") -> tuple[UNet, dict]:
    """Load a model file into an evaluation-mode U-Net.

    Returns:
        ``(model, metadata)``; the metadata also carries ``file_sha256``, the digest of the
        file's bytes, for caches derived from this model.
    """
    payload = read_model_file(path)
    meta = dict(payload["metadata"], file_sha256=file_digest(path))
    try:
        with torch.device("meta"):  # no random initialisation of weights that are replaced at once
            model = build_model(meta)
        model.load_state_dict(payload["state_dict"], assign=True)
    except (RuntimeError, ValueError, KeyError, TypeError) as exc:
        raise ModelFileError(f"'{path}' is a damaged model file: {str(exc).splitlines()[0][:200]}") from None
    if not all(bool(torch.isfinite(t).all()) for t in model.state_dict().values() if t.is_floating_point()):
        raise ModelFileError(f"'{path}' holds weights that are not finite numbers (a training that diverged): it would "
                             "classify every pixel alike. Train again with a smaller LEARNING_RATE (or 0: automatic).")
    return model.to(device).eval(), meta
