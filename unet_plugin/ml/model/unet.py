"""The U-Net of Ronneberger et al. (2015) on a pluggable encoder.

The decoder upsamples, concatenates the encoder feature map of the same
stride, and convolves twice (conv–batch norm–ReLU); its block widths are fixed,
its input widths come from the encoder's ``out_channels``.

A ResNet's first features are at half resolution (its stem convolves with stride 2), so a
decoder built only on them draws every pixel from features of 2×2 pixels: one- and two-pixel
objects (a 30 m pond, a stream, a field edge at 10 m) blur away. With ``input_skip`` (models
trained since 0.4.0; the model file says which) the last block also sees the image itself at
full resolution, as the original U-Net does.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .encoders import ResNetEncoder

DECODER_CHANNELS = (256, 128, 64, 32, 16)
STRIDE = 32


class ConvBnRelu(nn.Sequential):
    def __init__(self, cin: int, cout: int):
        super().__init__(nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


class DecoderBlock(nn.Module):
    """Upsample ×2, concatenate the skip features (if any), two conv–BN–ReLU."""

    def __init__(self, cin: int, cskip: int, cout: int):
        super().__init__()
        self.conv1 = ConvBnRelu(cin + cskip, cout)
        self.conv2 = ConvBnRelu(cout, cout)

    def forward(self, x: torch.Tensor, skip: torch.Tensor | None) -> torch.Tensor:
        x = F.interpolate(x, scale_factor=2.0, mode="nearest")
        if skip is not None:
            x = torch.cat([x, skip], dim=1)
        return self.conv2(self.conv1(x))


class UNet(nn.Module):
    """U-Net with a ResNet encoder.

    Args:
        backbone: a name from :data:`encoders.ENCODERS`.
        in_channels: band count (1 to any).
        num_classes: output channels (one logit per class, background included).
        input_skip: the last decoder block also gets the (normalised) image at full resolution.
    """

    def __init__(self, backbone: str = "resnet34", in_channels: int = 3, num_classes: int = 2, input_skip: bool = True):
        super().__init__()
        self.encoder = ResNetEncoder(backbone, in_channels)
        enc = self.encoder.out_channels[::-1]          # deepest first: l4, l3, l2, l1, stem, input
        skips = list(enc[1:5]) + [in_channels if input_skip else 0]
        ins = [enc[0]] + list(DECODER_CHANNELS[:-1])
        self.blocks = nn.ModuleList(DecoderBlock(i, s, o) for i, s, o in zip(ins, skips, DECODER_CHANNELS))
        self.head = nn.Conv2d(DECODER_CHANNELS[-1], num_classes, 3, padding=1)
        self.backbone = backbone
        self.in_channels = in_channels
        self.num_classes = num_classes
        self.input_skip = input_skip

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[-2:]
        ph, pw = (-h) % STRIDE, (-w) % STRIDE
        if ph or pw:  # pad to the encoder's stride, crop back at the end
            x = F.pad(x, (0, pw, 0, ph), mode="reflect" if min(h, w) > max(ph, pw) else "replicate")
        feats = self.encoder(x)[::-1]
        y = feats[0]
        for block, skip in zip(self.blocks, feats[1:5] + [x if self.input_skip else None]):
            y = block(y, skip)
        y = self.head(y)
        return y[..., :h, :w] if (ph or pw) else y
