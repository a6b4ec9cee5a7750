"""Validation: loss, confusion matrix, per-chip matrices (for the mIoU's spread) and a few examples."""

from __future__ import annotations

import numpy as np
import torch

from ...core.codes import IGNORE


def confusion_matrix(pred: torch.Tensor, target: torch.Tensor, k: int) -> torch.Tensor:
    """k×k counts (rows truth, columns prediction) over pixels whose label is not 255."""
    valid = target != IGNORE
    idx = target[valid].long() * k + pred[valid].long()
    return torch.bincount(idx, minlength=k * k).reshape(k, k).cpu()


@torch.inference_mode()
def evaluate(model, loss_fn, data, k, batch_size, device, is_canceled, examples=8):
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
