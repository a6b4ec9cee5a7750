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
import tempfile

import torch

from .unet import UNet

FORMAT_NAME = "unet-qgis-model"
FORMAT_VERSION = 1
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
    payload = {"format": FORMAT_NAME, "format_version": FORMAT_VERSION, "metadata": meta, "state_dict": state}
    folder = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=".model-", suffix=".pt.partial", dir=folder)
    os.close(fd)
    try:
        torch.save(payload, tmp)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise


def read_model_file(path: str) -> dict:
    """Read and validate a model file without building the network.

    Raises:
        ModelFileError: not a file, not a model file, a file that would run code
            when unpickled, a truncated file, or a newer format version.
    """
    if not os.path.isfile(path):
        raise ModelFileError(f"'{path}' does not exist.")
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
    if not isinstance(payload, dict) or payload.get("format") != FORMAT_NAME:
        raise ModelFileError(f"'{path}' is not a U-Net model file of this plugin (format '{FORMAT_NAME}' expected).")
    version = payload.get("format_version")
    if not isinstance(version, int) or version > FORMAT_VERSION:
        raise ModelFileError(
            f"'{path}' has model format version {version}, newer than this plugin reads ({FORMAT_VERSION}). Update the plugin."
        )
    meta = payload.get("metadata")
    if not isinstance(meta, dict) or any(k not in meta for k in REQUIRED) or not isinstance(payload.get("state_dict"), dict):
        raise ModelFileError(f"'{path}' is a damaged model file: its metadata is incomplete.")
    return payload


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
    except (RuntimeError, ValueError, KeyError) as exc:
        raise ModelFileError(f"'{path}' is a damaged model file: {str(exc).splitlines()[0][:200]}") from None
    return model.to(device).eval(), meta
