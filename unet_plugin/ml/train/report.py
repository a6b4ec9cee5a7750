"""The training report: one self-contained HTML page (inline SVG and PNG, no network)."""

from __future__ import annotations

import base64
import html
import struct
import zlib

import numpy as np


def png_bytes(rgb: np.ndarray) -> bytes:
    """Encode an (h, w, 3) uint8 array as PNG (no imaging library needed)."""
    h, w, _ = rgb.shape
    raw = b"".join(b"\x00" + rgb[r].tobytes() for r in range(h))

    def chunk(tag, data):
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data) & 0xFFFFFFFF)

    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(raw, 6)) + chunk(b"IEND", b""))


def _img_tag(rgb: np.ndarray, title: str) -> str:
    data = base64.b64encode(png_bytes(np.ascontiguousarray(rgb))).decode()
    return f'<figure><img src="data:image/png;base64,{data}" width="160" height="160"><figcaption>{html.escape(title)}</figcaption></figure>'


def no_image(x: np.ndarray) -> np.ndarray:
    """Where a normalised chip has no image: nodata pixels are 0 in every band after normalising."""
    return (x == 0).all(0)


def _stretch(x: np.ndarray) -> np.ndarray:
    """False-colour view of a normalised chip: first three bands, 2–98 % stretch over pixels with
    an image; nodata is black."""
    bands = x[:3] if x.shape[0] >= 3 else np.repeat(x[:1], 3, 0)
    missing = no_image(x)
    out = np.zeros(bands.shape[1:] + (3,), dtype=np.uint8)
    if missing.all():
        return out
    for i in range(3):
        lo, hi = np.percentile(bands[i][~missing], (2, 98))
        out[..., i] = np.clip((bands[i] - lo) / max(hi - lo, 1e-6) * 255, 0, 255)
    out[missing] = 0
    return out


def _masked(prediction: np.ndarray, x: np.ndarray) -> np.ndarray:
    """The prediction with no class where the chip has no image (as Classify Raster writes it)."""
    p = prediction.copy()
    p[no_image(x)] = 255
    return p


def _colorize(label: np.ndarray, colors: list) -> np.ndarray:
    lut = np.zeros((256, 3), dtype=np.uint8)
    lut[255] = (0, 0, 0)
    for i, c in enumerate(colors):
        lut[i] = c[:3]
    return lut[label]


def _line_chart(series: dict, title: str, ylabel: str, log_x=None) -> str:
    """An SVG line chart; ``series`` maps a name to (xs, ys, colour)."""
    w, h, m = 520, 260, 45
    xs_all = [x for xs, _, _ in series.values() for x in xs]
    ys_all = [y for _, ys, _ in series.values() for y in ys if y == y]
    if not xs_all or not ys_all:
        return ""
    tx = (lambda v: np.log10(v)) if log_x else (lambda v: v)
    x0, x1 = tx(min(xs_all)), tx(max(xs_all))
    y0, y1 = min(ys_all), max(ys_all)
    x1, y1 = (x1 if x1 > x0 else x0 + 1), (y1 if y1 > y0 else y0 + 1)

    def px(x, y):
        return m + (tx(x) - x0) / (x1 - x0) * (w - 2 * m), h - m - (y - y0) / (y1 - y0) * (h - 2 * m)

    parts = [f'<svg width="{w}" height="{h}" xmlns="http://www.w3.org/2000/svg" role="img"><title>{html.escape(title)}</title>',
             f'<rect x="{m}" y="{m}" width="{w - 2 * m}" height="{h - 2 * m}" fill="none" stroke="#999"/>',
             f'<text x="{w / 2}" y="18" text-anchor="middle" font-size="14">{html.escape(title)}</text>',
             f'<text x="8" y="{h / 2}" font-size="11" transform="rotate(-90 12 {h / 2})">{html.escape(ylabel)}</text>',
             f'<text x="{m}" y="{h - m + 14}" font-size="10">{min(xs_all):.3g}</text>',
             f'<text x="{w - m}" y="{h - m + 14}" font-size="10" text-anchor="end">{max(xs_all):.3g}</text>',
             f'<text x="{m - 4}" y="{m + 4}" font-size="10" text-anchor="end">{y1:.3g}</text>',
             f'<text x="{m - 4}" y="{h - m}" font-size="10" text-anchor="end">{y0:.3g}</text>']
    legend_x = m
    for name, (xs, ys, color) in series.items():
        pts = " ".join("{:.1f},{:.1f}".format(*px(x, y)) for x, y in zip(xs, ys) if y == y)
        parts.append(f'<polyline fill="none" stroke="{color}" stroke-width="2" points="{pts}"/>')
        for x, y in zip(xs, ys):
            if y == y:
                cx, cy = px(x, y)
                parts.append(f'<circle cx="{cx:.1f}" cy="{cy:.1f}" r="2.5" fill="{color}"/>')
        # legend below the plot, where no line can run through it
        parts.append(f'<line x1="{legend_x}" y1="{h - 12}" x2="{legend_x + 16}" y2="{h - 12}" stroke="{color}" stroke-width="2"/>'
                     f'<text x="{legend_x + 20}" y="{h - 8}" font-size="11" fill="{color}">{html.escape(name)}</text>')
        legend_x += 20 + 7 * len(name) + 18
    parts.append("</svg>")
    return "".join(parts)


def _spread(result) -> str:
    """The noise of the validation mIoU: its spread over bootstrap resamples of the validation chips."""
    sd = next((r.get("miou_sd") for r in result.history if r["epoch"] == result.best_epoch), None)
    if sd is None or sd != sd:
        return ""
    return (f" (± {sd:.3f}: how much it moves with another draw of {result.chips_val} validation chips — differences "
            "between epochs smaller than this are noise)")


def write_report(path: str, result, data, config) -> None:
    """Write the HTML training report for a finished (or canceled) run."""
    from ...core.metrics import scores

    classes = result.classes
    names = [c["name"] for c in classes]
    colors = [c["color"] for c in classes]
    epochs = [r["epoch"] for r in result.history]
    sc = scores(result.confusion)
    weight = getattr(result, "background_weight", None)
    kept = getattr(result, "class_training_shares", None) or {}
    shares = html.escape("; share of each class's labelled pixels left for training: "
                         + ", ".join(f"{n} {100 * f:.0f} %" for n, f in kept.items())) if kept else ""
    sample = ("" if weight is None else f"; sample polygons: background weighted {weight:.4f} (like one average class), "
              "validation on the held-out polygons only")
    loss_chart = _line_chart({"training loss": (epochs, [r["train_loss"] for r in result.history], "#377eb8"),
                              "validation loss": (epochs, [r["val_loss"] for r in result.history], "#e41a1c")},
                             "Loss per epoch", "loss")
    miou_chart = _line_chart({"validation mIoU": (epochs, [r["miou"] for r in result.history], "#4daf4a"),
                              "validation accuracy": (epochs, [r["accuracy"] for r in result.history], "#984ea3")},
                             "Validation mIoU and accuracy", "score")
    lr_chart = _line_chart({"smoothed loss": ([a for a, _ in result.lr_curve], [b for _, b in result.lr_curve], "#ff7f00")},
                           "Learning-rate range test", "loss", log_x=True) if result.lr_curve else ""

    def fmt(v):
        return "–" if v is None or v != v else f"{v:.3f}"

    rows = "".join(
        f"<tr><td><span class='sw' style='background:rgb{tuple(c['color'][:3])}'></span>{html.escape(c['name'])}</td>"
        f"<td>{c.get('pixel_count', 0):,}</td><td>{fmt(sc['precision'][i])}</td><td>{fmt(sc['recall'][i])}</td>"
        f"<td>{fmt(sc['f1'][i])}</td><td>{fmt(sc['iou'][i])}</td></tr>"
        for i, c in enumerate(classes))
    cm = result.confusion
    cm_rows = "".join(
        f"<tr><th>{html.escape(names[i])}</th>" + "".join(
            f"<td style='background:rgba(55,126,184,{cm[i, j] / max(cm[i].sum(), 1):.2f})'>{int(cm[i, j]):,}</td>" for j in range(len(names)))
        + "</tr>" for i in range(len(names)))
    chips = "".join(
        "<div class='ex'>" + _img_tag(_stretch(x), "image") + _img_tag(_colorize(y, colors), "ground truth")
        + _img_tag(_colorize(_masked(p, x), colors), "prediction") + "</div>"
        for x, y, p in result.val_examples)
    status = "canceled — the best model so far was kept" if result.canceled else "finished"
    doc = f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>U-Net training report</title>
<style>
body {{ font-family: sans-serif; margin: 2em; color: #222; max-width: 1100px; }}
table {{ border-collapse: collapse; margin: 1em 0; }} td, th {{ border: 1px solid #ccc; padding: 3px 8px; text-align: right; }}
th {{ background: #f3f3f3; }} .sw {{ display: inline-block; width: 12px; height: 12px; margin-right: 6px; border: 1px solid #555; }}
figure {{ display: inline-block; margin: 4px; text-align: center; }} figcaption {{ font-size: 11px; }}
.ex {{ border-bottom: 1px solid #eee; }} .charts svg {{ margin-right: 1em; }} img {{ image-rendering: pixelated; }}
</style></head><body>
<h1>U-Net training report</h1>
<p>Training {status}. Best epoch {result.best_epoch} of {result.epochs_run}: validation mIoU <b>{result.miou:.3f}</b>{_spread(result)},
pixel accuracy <b>{result.accuracy:.3f}</b>. {result.seconds:.0f} s on {html.escape(result.device)}.</p>
{f'<p style="color:#b00"><b>Warning:</b> {html.escape(result.budget_warning)}</p>' if result.budget_warning else ''}
<h2>Data and settings</h2>
<table>
<tr><th>chips</th><td>{html.escape(data.folder)} ({data.kind}); {result.chips_train} training, {result.chips_val} validation, {data.chip_size} px{shares}</td></tr>
<tr><th>bands</th><td>{html.escape(', '.join(b['name'] for b in data.bands))}</td></tr>
<tr><th>backbone</th><td>{html.escape(config.backbone)}{' (encoder frozen)' if config.freeze_encoder else ''}</td></tr>
<tr><th>learning rate</th><td>{result.learning_rate:.2e} {'(found by the range test)' if result.lr_curve else '(given)'}</td></tr>
<tr><th>loss</th><td>{html.escape(config.loss)}{', class balancing' if config.class_balancing else ''}{sample}</td></tr>
<tr><th>batch size, epochs</th><td>{config.batch_size}, {result.epochs_run} run of {result.planned_epochs:.1f} planned (early stopping {config.early_stopping or 'off'}{f", time limit {config.time_limit:g} min" if config.time_limit else ""}; {result.seconds:.0f} s)</td></tr>
<tr><th>stopped by</th><td>{html.escape(result.stop_reason or "the last epoch")}</td></tr>
<tr><th>arithmetic</th><td>{html.escape({"bf16": "bf16 autocast", "fp16": "float16 mixed precision", "fp32": "float32"}.get(result.precision, result.precision))}</td></tr>
<tr><th>model file</th><td>{html.escape(result.model_path)}</td></tr>
</table>
<h2>Curves</h2><div class="charts">{loss_chart}{miou_chart}{lr_chart}</div>
<h2>Per-class scores (best epoch, validation chips)</h2>
<table><tr><th>class</th><th>pixels in chips</th><th>precision</th><th>recall</th><th>F1</th><th>IoU</th></tr>{rows}</table>
<h2>Confusion matrix</h2><p>Rows: ground truth; columns: prediction (validation pixels).</p>
<table><tr><th></th>{''.join(f'<th>{html.escape(n)}</th>' for n in names)}</tr>{cm_rows}</table>
<h2>Validation chips</h2><p>Image (first three bands, stretched), ground truth and prediction in the classes' colours; black is ignored.</p>
{chips}
</body></html>
"""
    from ...core.outputs import write_text

    write_text(path, "OUTPUT_REPORT", doc)
