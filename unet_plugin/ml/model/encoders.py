"""Encoder registry: torchvision ResNets that return their stage features.

Each encoder declares ``out_channels`` (input, stride 2, 4, 8, 16, 32) and
returns the matching feature maps as a list; the U-Net decoder is built from
those counts, so a new backbone is one registry entry.
"""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass

import torch
import torchvision
from torch import nn


@dataclass(frozen=True)
class EncoderSpec:
    """How to build one backbone."""

    builder: str            # torchvision.models function name
    weights: str            # torchvision weights enum, ``<Enum>.<member>``
    out_channels: tuple     # without the input channels


_BASIC = (64, 64, 128, 256, 512)
_BOTTLENECK = (64, 256, 512, 1024, 2048)

ENCODERS: dict[str, EncoderSpec] = {
    "resnet18": EncoderSpec("resnet18", "ResNet18_Weights.IMAGENET1K_V1", _BASIC),
    "resnet34": EncoderSpec("resnet34", "ResNet34_Weights.IMAGENET1K_V1", _BASIC),
    "resnet50": EncoderSpec("resnet50", "ResNet50_Weights.IMAGENET1K_V2", _BOTTLENECK),
    "resnet101": EncoderSpec("resnet101", "ResNet101_Weights.IMAGENET1K_V2", _BOTTLENECK),
    "resnet152": EncoderSpec("resnet152", "ResNet152_Weights.IMAGENET1K_V2", _BOTTLENECK),
    "resnext50_32x4d": EncoderSpec("resnext50_32x4d", "ResNeXt50_32X4D_Weights.IMAGENET1K_V2", _BOTTLENECK),
    "wide_resnet50_2": EncoderSpec("wide_resnet50_2", "Wide_ResNet50_2_Weights.IMAGENET1K_V2", _BOTTLENECK),
}


class EncoderWeightsError(RuntimeError):
    """Pretrained weights could not be had; the message says how to get them."""


def get_spec(name: str) -> EncoderSpec:
    """The registry entry for ``name``; an unknown name lists the valid ones."""
    try:
        return ENCODERS[name]
    except KeyError:
        raise ValueError(f"unknown backbone '{name}'; valid backbones: {', '.join(ENCODERS)}") from None


def adapt_first_conv(weight: torch.Tensor, in_channels: int) -> torch.Tensor:
    """Adapt RGB filters of shape (out, 3, k, k) to ``in_channels`` bands.

    The rule (as smp's ``patch_first_conv`` and timm's ``adapt_input_conv``):
    one band gets the sum of the RGB filters; C bands get the RGB filters
    repeated (R, G, B, R, …) and scaled by 3 / C, so a pixel of equal values in
    every band gives the same response as in RGB.
    """
    if in_channels == 3:
        return weight.clone()
    if in_channels == 1:
        return weight.sum(dim=1, keepdim=True)
    reps = -(-in_channels // 3)
    return weight.repeat(1, reps, 1, 1)[:, :in_channels] * (3.0 / in_channels)


def _weights_enum(spec: EncoderSpec):
    enum_name, member = spec.weights.split(".")
    return getattr(getattr(torchvision.models, enum_name), member)


def imagenet_cache_path(name: str) -> str:
    """Where torch keeps the ImageNet weights of backbone ``name`` once downloaded."""
    url = _weights_enum(get_spec(name)).url
    return os.path.join(torch.hub.get_dir(), "checkpoints", os.path.basename(url))


def imagenet_state_dict(name: str, log=lambda m: None) -> dict:
    """The ImageNet weights of backbone ``name``, from torch's cache or downloaded into it once."""
    spec = get_spec(name)
    weights = _weights_enum(spec)
    if os.path.isfile(imagenet_cache_path(name)):
        log(f"ImageNet weights for {name} found in the cache ({imagenet_cache_path(name)}).")
    else:
        log(f"ImageNet weights for {name} are not in the cache yet: downloading {weights.url} (needs internet once).")
    try:
        return weights.get_state_dict(progress=False, check_hash=True)
    except Exception as exc:  # URLError, HTTPError, socket errors, hash mismatch
        cache = os.path.join(torch.hub.get_dir(), "checkpoints")
        raise EncoderWeightsError(
            f"the ImageNet weights for {name} could not be downloaded ({exc}). "
            f"Either connect to the internet once (they are kept in {cache}), or download "
            f"{weights.url} on another machine and give that file as ENCODER_WEIGHTS, "
            f"or turn PRETRAINED off."
        ) from None


WRAPPER_KEYS = ("state_dict", "model", "model_state_dict", "teacher", "student")
PREFIXES = ("module.", "model.", "backbone.", "encoder.", "net.", "resnet.")
RESNET_KEYS = ("conv1.", "bn1.", "layer1.", "layer2.", "layer3.", "layer4.")


def load_weights_file(path: str) -> dict:
    """Read a local ResNet weights file safely: torchvision's, or timm's / torchgeo's.

    Accepts a bare state dict or one wrapped under ``state_dict``/``model``; key prefixes such as
    ``module.``, ``model.``, ``backbone.`` or ``encoder.`` are removed (torchgeo's SSL4EO Sentinel-2
    and Landsat ResNets are timm ResNets, whose key names are torchvision's). The classifier is dropped.
    """
    try:
        with warnings.catch_warnings():  # torch's notes on pickle protocols are not the user's business
            warnings.simplefilter("ignore")
            state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        text = str(exc)
        if "weights_only" in text or "global" in text.lower():  # never repeat torch's advice to load it unsafely
            raise EncoderWeightsError(
                f"'{path}' was refused: it holds Python objects that would run code when loaded. Use a plain weights "
                "file (a state dict) as torchvision, timm or torchgeo publish them.") from None
        raise EncoderWeightsError(f"cannot read encoder weights from '{path}' ({text.splitlines()[0][:200] if text else type(exc).__name__}); "
                                  "is it a ResNet weights file (.pth)?") from None
    for key in WRAPPER_KEYS:
        if isinstance(state, dict) and isinstance(state.get(key), dict):
            state = state[key]
            break
    if isinstance(state, dict):
        for prefix in PREFIXES:
            if any(isinstance(k, str) and k.startswith(prefix + "conv1.") for k in state):
                state = {k[len(prefix):]: v for k, v in state.items() if isinstance(k, str) and k.startswith(prefix)}
        state = {k: v for k, v in state.items() if isinstance(k, str) and k.startswith(RESNET_KEYS)}
    if not isinstance(state, dict) or "conv1.weight" not in state:
        raise EncoderWeightsError(
            f"'{path}' is not a ResNet state dict (no 'conv1.weight'); use torchvision's ImageNet weights file "
            "or a ResNet file as timm and torchgeo publish them."
        )
    return state


def guess_resnet(state: dict) -> str:
    """Which ResNet a state dict is, by its blocks (for messages)."""
    blocks = len({k.split(".")[1] for k in state if k.startswith("layer3.")})
    bottleneck = any(k.startswith("layer1.0.conv3.") for k in state)
    names = {(False, 2): "resnet18", (False, 6): "resnet34", (True, 6): "resnet50", (True, 23): "resnet101",
             (True, 36): "resnet152"}
    return names.get((bottleneck, blocks), f"a ResNet with {blocks} blocks in layer3")


class ResNetEncoder(nn.Module):
    """A torchvision ResNet without its classifier, returning stage features.

    ``forward(x)`` returns ``[x, stem, layer1, layer2, layer3, layer4]`` at
    strides 1, 2, 4, 8, 16, 32 with ``out_channels`` channels.
    """

    def __init__(self, name: str, in_channels: int = 3):
        super().__init__()
        spec = get_spec(name)
        net = getattr(torchvision.models, spec.builder)(weights=None)
        if in_channels != 3:
            old = net.conv1
            net.conv1 = nn.Conv2d(in_channels, old.out_channels, old.kernel_size, old.stride, old.padding, bias=False)
            with torch.no_grad():
                net.conv1.weight.copy_(adapt_first_conv(old.weight, in_channels))
        del net.fc, net.avgpool
        self.net = net
        self.name = name
        self.in_channels = in_channels
        self.out_channels = (in_channels,) + spec.out_channels

    def load_pretrained(self, state: dict, log=lambda m: None) -> None:
        """Load ResNet weights. Weights made for as many bands as the chips have are used as they
        are; RGB weights are adapted (:func:`adapt_first_conv`); other band counts are refused."""
        state = {k: v for k, v in state.items() if not k.startswith("fc.")}
        if "conv1.weight" in state:
            bands = int(state["conv1.weight"].shape[1])
            if bands == self.in_channels:
                log(f"The encoder weights expect {bands} band(s), as many as the chips have: the first convolution is used as it is.")
            elif bands == 3:
                state["conv1.weight"] = adapt_first_conv(state["conv1.weight"], self.in_channels)
                log(f"The encoder weights expect 3 bands (RGB); their first convolution is adapted to the chips' {self.in_channels}.")
            else:
                raise EncoderWeightsError(
                    f"the weights expect {bands} bands, the chips have {self.in_channels}. Export the chips with the "
                    f"{bands} bands the weights were trained on, in their order (BANDS), or use RGB or "
                    f"{self.in_channels}-band weights.")
        own = self.net.state_dict()
        if set(state) != set(own) or any(own[k].shape != v.shape for k, v in state.items() if k != "conv1.weight"):
            raise EncoderWeightsError(
                f"the weights are for {guess_resnet(state)}, not for the backbone {self.name}; choose BACKBONE "
                f"{guess_resnet(state)} or weights made for {self.name}.")
        self.net.load_state_dict(state)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        n = self.net
        stem = n.relu(n.bn1(n.conv1(x)))
        l1 = n.layer1(n.maxpool(stem))
        l2 = n.layer2(l1)
        l3 = n.layer3(l2)
        l4 = n.layer4(l3)
        return [x, stem, l1, l2, l3, l4]
