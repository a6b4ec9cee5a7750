"""Mutation check: apply small deliberate bugs to core/ and ml/ and see whether the tests notice.

Each mutation is applied to a scratch copy of the checkout (never to this one), then the tests
that should catch it run there with ``-x``. A mutation the tests let pass "survives": either a
test is missing, or the mutation does not change behaviour (then say why and drop it).

    bash scripts/test.sh --version >/dev/null   # makes the venv once
    ~/.cache/qgis-unet-venv/bin/python scripts/mutate.py            # all mutations
    ~/.cache/qgis-unet-venv/bin/python scripts/mutate.py blend swap  # those whose name contains a word

Prints one line per mutation and exits 1 when any survives.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CORRECTNESS = "tests/test_correctness.py"
SAFETY = "tests/test_safety.py"


@dataclass(frozen=True)
class Mutation:
    name: str
    path: str  # relative to the checkout
    old: str  # must occur exactly once
    new: str
    tests: tuple[str, ...]


MUTATIONS = [
    # the list of issue 13
    Mutation("no blending: the last tile overwrites", "unet_plugin/ml/classify/strips.py",
             "acc[:, :, c:c + tw] += p * weights\n                wsum[:, c:c + tw] += weights",
             "acc[:, :, c:c + tw] = p * weights\n                wsum[:, c:c + tw] = weights",
             (CORRECTNESS, "tests/test_classify.py")),
    Mutation("the last two classes swapped in classification", "unet_plugin/ml/classify/run.py",
             'lut = np.array([int(c["value"]) for c in job.classes], dtype=np.uint8)',
             'lut = np.array([int(c["value"]) for c in job.classes], dtype=np.uint8); lut[[-1, -2]] = lut[[-2, -1]]',
             (CORRECTNESS, "tests/test_classify.py")),
    Mutation("confidence not divided by the weight sum", "unet_plugin/ml/classify/strips.py",
             "conf, idx = prob.max(0)", 'conf, idx = self.acc[:, :nrows, a:b].max(0)',
             (CORRECTNESS, "tests/test_classify.py")),
    Mutation("class-balancing weights inverted where training uses them", "unet_plugin/ml/train/run.py",
             "w = balancing_weights(counts)", "w = 1.0 / balancing_weights(counts)",
             (CORRECTNESS, "tests/test_train.py")),
    Mutation("label-raster nodata becomes background", "unet_plugin/core/chips/export.py",
             "local.width, local.height), labels.nodata, IGNORE)", "local.width, local.height), labels.nodata, 0)",
             (CORRECTNESS, "tests/test_export.py")),
    Mutation("augmentation rotates labels the other way", "unet_plugin/ml/train/sampling.py",
             "torch.rot90(yi, k, (-2, -1))", "torch.rot90(yi, -k, (-2, -1))",
             (CORRECTNESS, "tests/test_sampling.py", "tests/test_train.py")),
    Mutation("classification does not zero nodata like training", "unet_plugin/ml/classify/strips.py",
             "        x[:, ~valid] = 0.0\n", "",
             (CORRECTNESS, "tests/test_classify.py")),
    # the defects of issue 13, put back
    Mutation("label grids compared with np.allclose", "unet_plugin/core/labels.py",
             "same_grid(src.GetGeoTransform(), info)", "np.allclose(src.GetGeoTransform(), info.geotransform)",
             (CORRECTNESS, "tests/test_export.py")),
    Mutation("label raster resampled onto a north-up grid", "unet_plugin/core/labels.py",
             "    dst = _create_like(out_path, info, window, fill)\n"
             '    gdal.Warp(dst, src, resampleAlg="near", srcNodata=src_nodata, warpOptions=[f"INIT_DEST={fill}"])\n',
             "    xmin, ymin, xmax, ymax = window_bounds(info.geotransform, window)\n"
             '    dst = gdal.Warp(out_path, src, format="GTiff", outputBounds=(xmin, ymin, xmax, ymax), width=window.width,\n'
             '                    height=window.height, dstSRS=info.crs_wkt, resampleAlg="near", outputType=gdal.GDT_Byte,\n'
             '                    srcNodata=src_nodata, warpOptions=[f"INIT_DEST={fill}"])\n',
             (CORRECTNESS, "tests/test_export.py")),
    Mutation("ONNX cache key without the model's content", "unet_plugin/ml/classify/onnx_cache.py",
             'ident = f"{model_digest}|{channels}', 'ident = f"{channels}',
             (CORRECTNESS, "tests/test_classify.py")),
    Mutation("GDAL cache saved and restored per run", "unet_plugin/core/raster.py",
             '        if _budget["runs"] == 0:\n            _budget["saved"] = gdal.GetCacheMax()',
             '        if True:\n            _budget["saved"] = gdal.GetCacheMax()',
             (CORRECTNESS,)),
    Mutation("fine-tuning compares class values only", "unet_plugin/ml/train/finetune.py",
             'ours = [(int(c["value"]), str(c["name"])) for c in meta["classes"]]',
             'ours = [(int(c["value"]), str(c["name"])) for c in classes]',
             (CORRECTNESS, "tests/test_train.py")),
    # more of the same kind
    Mutation("flat blend weights", "unet_plugin/ml/classify/tiles.py",
             "return np.maximum(np.minimum(i + 0.5, n - i - 0.5) / (n / 2), 0.01)", "return np.ones(n, dtype=np.float32)",
             (CORRECTNESS, "tests/test_classify.py")),
    Mutation("classification divides by std squared", "unet_plugin/ml/classify/strips.py",
             "        x = (data.astype(np.float32) - self.mean) / self.std\n",
             "        x = (data.astype(np.float32) - self.mean) / self.std / self.std\n",
             (CORRECTNESS, "tests/test_classify.py")),
    Mutation("export keeps labels under image nodata", "unet_plugin/core/chips/export.py",
             "            label[~valid] = IGNORE\n", "",
             (CORRECTNESS, "tests/test_export.py")),
    # issue 16: faster arithmetic only where the map agrees
    Mutation("int8 used without the agreement check", "unet_plugin/ml/classify/precision.py",
             "if agree >= CHECK_AGREEMENT and seconds < best_time:", "if seconds < best_time:",
             ("tests/test_classify.py",)),
    # issue 15: the split by areas
    Mutation("training chips keep their pixels inside validation areas", "unet_plugin/ml/train/data.py",
             "        if i in self.held_out:", "        if False:",
             ("tests/test_train.py",)),
    Mutation("training labels under image nodata kept", "unet_plugin/ml/train/data.py",
             "        y[~valid] = IGNORE\n", "",
             (CORRECTNESS, "tests/test_train.py")),
    # issue 15: batch-norm statistics of the current weights
    Mutation("precise BN keeps the running average's momentum", "unet_plugin/ml/train/batchnorm.py",
             "        m.momentum = None  # cumulative average over the batches below\n", "",
             ("tests/test_train.py",)),
    Mutation("precise BN also recomputes a frozen encoder's statistics", "unet_plugin/ml/train/batchnorm.py",
             "and m.track_running_stats and any(p.requires_grad for p in m.parameters())]", "and m.track_running_stats]",
             ("tests/test_train.py",)),
    # issue 19: torchrun classification, rows split between processes
    Mutation("each process writes every row it computed, not only its own", "unet_plugin/ml/classify/strips.py",
             "        r0, r1 = max(y0 - y, 0), min(y1 - y, nrows)", "        r0, r1 = 0, nrows",
             ("tests/test_cli.py",)),
    Mutation("the other processes' rows are not merged", "unet_plugin/ml/classify/run.py",
             "            outputs.merge(grid.rows, job.window.height, distributed.world())", "            pass",
             ("tests/test_cli.py",)),
    # issue 15: what training steps see
    Mutation("the mosaic puts each chip one row too low", "unet_plugin/ml/train/sampling.py",
             "            r, c = rows[i], cols[i]\n", "            r, c = rows[i] + 1, cols[i]\n",
             ("tests/test_sampling.py",)),
    Mutation("windows are cut wherever the shift lands, also off the chips", "unet_plugin/ml/train/sampling.py",
             "        if inside < MIN_COVERED * side * side:", "        if False:",
             ("tests/test_sampling.py",)),
    Mutation("rare classes get their plain inverse share, not its square root", "unet_plugin/ml/train/sampling.py",
             "np.sqrt(RARE_SHARE / np.maximum(share, 1e-12))", "RARE_SHARE / np.maximum(share, 1e-12)",
             ("tests/test_sampling.py",)),
    Mutation("sample-polygon weighting also where a MASK says the labels are complete", "unet_plugin/ml/train/losses.py",
             'data.unlabeled != "background" or data.masked:', 'data.unlabeled != "background":',
             ("tests/test_sampling.py",)),
    Mutation("the split blind to the chips' classes (the lake goes to validation)", "unet_plugin/core/chips/split.py",
             "classes = matrix[1] if matrix else None", "classes = None",
             ("tests/test_train.py::test_split_keeps_rare_classes_for_training",)),
    Mutation("the split's class preference inverted (the worst-off class keeps the least)", "unet_plugin/core/chips/split.py",
             "return (True, round(min(worst, floor), 3), float(kept.sum()))",
             "return (True, -round(min(worst, floor), 3), float(kept.sum()))",
             ("tests/test_train.py::test_split_keeps_rare_classes_for_training",)),
    # issue 25: nothing lost, ever
    Mutation("outputs not checked against inputs and each other", "unet_plugin/core/outputs.py",
             "    read = [(r, key) for key, path in inputs.items()", "    return\n    read = [(r, key) for key, path in inputs.items()",
             (f"{SAFETY}::test_cli_refuses_before_work[classify-output-is-input]",
              f"{SAFETY}::test_cli_refuses_before_work[train-report-is-model]")),
    Mutation("a close error swallowed", "unet_plugin/core/layers.py",
             "        ds.FlushCache()\n    except RuntimeError as exc:\n        raise write_error(key, path, exc) from None",
             "        ds.FlushCache()\n    except RuntimeError:\n        pass",
             (f"{SAFETY}::test_close_errors_are_errors",)),
    Mutation("the read-back check passes a truncated raster", "unet_plugin/core/layers.py",
             "            ds.GetRasterBand(b).Checksum()", "            ds.GetRasterBand(b)",
             (f"{SAFETY}::test_a_truncated_raster_fails_the_read_back",)),
    Mutation("the whole GeoPackage replaced, not our layer", "unet_plugin/core/layers.py",
             "    if driver in CONTAINER_DRIVERS and os.path.exists(file):", "    if False:",
             (f"{SAFETY}::test_gpkg_outputs_write_one_layer_and_keep_the_others",)),
    Mutation("a non-finite model saved", "unet_plugin/ml/model/modelfile.py",
             "    if bad:\n", "    if False:\n",
             (f"{SAFETY}::test_a_non_finite_model_is_never_saved",)),
    Mutation("a non-finite model classified", "unet_plugin/ml/model/modelfile.py",
             "    if not all(bool(torch.isfinite(t).all())", "    if False and not all(bool(torch.isfinite(t).all())",
             (f"{SAFETY}::test_cli_refuses_before_work[classify-nan-model]",)),
    Mutation("a re-export removes everything in the folder", "unet_plugin/core/chips/folder.py",
             "    for rel in owned_files(output):", "    for rel in os.listdir(output):",
             (f"{SAFETY}::test_reexport_replaces_only_its_own_files",)),
    Mutation("two runs share one partial file", "unet_plugin/ml/classify/run.py",
             '    stamp = distributed.agree(f"{os.getpid()}-{secrets.token_hex(4)}")', '    stamp = "0-00000000"',
             (f"{SAFETY}::test_two_runs_onto_one_output_both_finish",)),
    Mutation("training saves each best epoch over OUTPUT_MODEL", "unet_plugin/ml/train/loop.py",
             "                save_model(config.output_model, s.model, _metadata(",
             "                save_model(config.output_model.split('.unet-partial-')[0][:-3].replace('/.', '/') + '.pt', s.model, _metadata(",
             (f"{SAFETY}::test_the_earlier_model_stays_until_training_has_one_to_keep",)),
    Mutation("Ctrl-C stops at once instead of canceling", "unet_plugin/cli.py",
             "            term.warn(\"Canceling at the next step… (press Ctrl-C again to stop at once)\")\n            return",
             "            raise KeyboardInterrupt",
             (f"{SAFETY}::test_ctrl_c_in_training_keeps_the_best_model_and_writes_the_report",)),
    Mutation("band names not compared", "unet_plugin/ml/classify/bands.py",
             "    if clash:\n        i, m, h = clash[0]", "    if False:\n        i, m, h = clash[0]",
             (f"{SAFETY}::test_cli_refuses_before_work[classify-bands-reversed]",)),
]


def _copy_checkout(dest: str) -> None:
    ignore = shutil.ignore_patterns(".git", "dist", "__pycache__", "*.pyc", "demo_output", ".pytest_cache")
    shutil.copytree(ROOT, dest, ignore=ignore, symlinks=True)


def run(mutation: Mutation, python: str) -> tuple[bool, float, str]:
    """Apply ``mutation`` in a scratch copy and run its tests; (killed, seconds, last line)."""
    with tempfile.TemporaryDirectory(prefix="unet-mutant-") as tmp:
        copy = os.path.join(tmp, "checkout")
        _copy_checkout(copy)
        target = os.path.join(copy, mutation.path)
        text = open(target, encoding="utf-8").read()
        if text.count(mutation.old) != 1:
            raise SystemExit(f"mutation '{mutation.name}': the code to mutate occurs {text.count(mutation.old)} times "
                             f"in {mutation.path}; update scripts/mutate.py")
        with open(target, "w", encoding="utf-8") as f:
            f.write(text.replace(mutation.old, mutation.new))
        env = dict(os.environ, QT_QPA_PLATFORM="offscreen")
        t0 = time.time()
        proc = subprocess.run([python, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider", *mutation.tests],
                              cwd=copy, env=env, capture_output=True, text=True)
        lines = [ln for ln in proc.stdout.splitlines() if ln.strip()]
        return proc.returncode != 0, time.time() - t0, lines[-1] if lines else proc.stderr[-200:]


def main(argv: list[str]) -> int:
    python = sys.executable
    chosen = [m for m in MUTATIONS if not argv or any(w.lower() in m.name.lower() for w in argv)]
    survivors = []
    for m in chosen:
        killed, seconds, last = run(m, python)
        print(f"{'killed  ' if killed else 'SURVIVED'} {seconds:6.0f} s  {m.name}  ({last})", flush=True)
        if not killed:
            survivors.append(m.name)
    print(f"{len(chosen) - len(survivors)} of {len(chosen)} mutations killed" +
          (f"; survivors: {', '.join(survivors)}" if survivors else ""))
    return 1 if survivors else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
