"""TIME_LIMIT is a promise both ways: Train U-Net with every default ends near the limit, on an idle
and on a loaded machine, and uses the time it was given.

In one run, on the NC Landsat strata chips (64 px, stride 32, as the demo exports them), Train
U-Net with every default (EPOCHS automatic, resnet34, batch 8, the learning-rate range test, the
precision probe, precise BN, a report) and PRETRAINED=false (no internet here), once on an idle
machine and once with a second process burning one core. Prints, for each, the wall time as a
ratio of the limit, the planned and the run epochs and steps, and the validation mIoU.

    python benchmarks/time_budget.py [--minutes 2] [--backbone resnet34]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, ROOT)
sys.path.insert(0, HERE)

from _cpu import cpu_summary  # noqa: E402

NC = os.path.join(ROOT, "tests", "data", "nc_landsat7")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--minutes", type=float, default=2.0)
    ap.add_argument("--backbone", default="resnet34")
    args = ap.parse_args()
    from unet_plugin.core.chips import ExportConfig, export_chips
    from unet_plugin.ml.train import TrainConfig, train

    print(cpu_summary())
    with tempfile.TemporaryDirectory(prefix="unet-budget-") as work:
        chips = os.path.join(work, "chips")
        export_chips(ExportConfig(input=os.path.join(NC, "nc_lsat7_2000_6band.tif"), output=chips,
                                  label_raster=os.path.join(NC, "strata.tif"), chip_size=64, stride=32))
        for loaded in (False, True):
            burner = subprocess.Popen([sys.executable, "-c", "while True: pass"]) if loaded else None
            logs = []
            try:
                t0 = time.time()
                res = train(TrainConfig(chips=chips, output_model=os.path.join(work, "m.pt"), backbone=args.backbone,
                                        pretrained=False, time_limit=args.minutes,
                                        output_report=os.path.join(work, "r.html")), log=logs.append)
                wall = time.time() - t0
            finally:
                if burner is not None:
                    burner.kill()
            steps = sum(r["steps"] for r in res.history)
            print(f"{'loaded (one core busy)' if loaded else 'idle':<24} wall {wall:6.1f} s = {wall / (args.minutes * 60):.3f} × "
                  f"TIME_LIMIT; epochs {res.epochs_run} of {res.planned_epochs:.1f} planned, {steps} steps; "
                  f"best epoch {res.best_epoch}, validation mIoU {res.miou:.3f}; {res.stop_reason or 'all epochs'}")
            for line in logs:
                if line.startswith(("Learning-rate range test stopped", "Warning")):
                    print("    " + line)


if __name__ == "__main__":
    main()
