"""What each part of the training recipe does: the accuracy benchmark with one part changed at a time.

Runs ``benchmarks/accuracy.py`` (same export → train → classify as the algorithms, the random
forest beside it) once per variant and seed, each in its own process, and prints mean IoU per
variant (and the IoU of one class, ``--class-name``, e.g. building) as a Markdown table, with the
mean over seeds and its spread. Variants (the shipped recipe, one part off or changed):

- ``defaults``        — as shipped
- ``no-windows``      — no random windows from the chip mosaic (flips/rotations of the chips; colour jitter stays)
- ``no-colour``       — no brightness/contrast jitter
- ``half-colour``     — jitter at half the shipped strength (0.6: gain ±6.25 %, offset ±0.125 standard deviations;
                        the 0.6 strength itself was ``half-colour`` of 0.5's ±25 %/±0.5, docs/benchmarks.md)
- ``strong-colour``   — jitter as in 0.4.1–0.5 (gain ±25 %, offset ±0.5)
- ``no-rare``         — no repeat factors for chips of rare classes (a plain shuffle)
- ``no-input-skip``   — the decoder without the full-resolution image skip (as before 0.4)
- ``lr-div-3``        — the range test picks a third of the lowest-loss rate instead of a tenth
- ``a+b``             — both changes (e.g. ``no-windows+half-colour``)

    python benchmarks/ablation.py --data dubai --dubai DIR --time-limit 3 --seeds 42 7
                                  [--variants defaults no-colour ...] [--class-name building]

Never run it on the lockbox (``--data dubai-lockbox``): that is for the decided defaults, once.
"""

from __future__ import annotations

import argparse
import functools
import os
import re
import subprocess
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
VARIANTS = ("defaults", "no-windows", "no-colour", "half-colour", "strong-colour", "no-rare", "no-input-skip", "lr-div-3")


def apply(variant: str) -> None:
    """Change the part(s) of the recipe ``variant`` names (``a+b``: both), in this process."""
    if "+" in variant:
        for part in variant.split("+"):
            apply(part)
        return
    sys.path.insert(0, os.path.dirname(HERE))
    from unet_plugin.ml.model import unet as unet_module
    from unet_plugin.ml.train import run, sampling, schedule

    if variant == "no-windows":
        sampling.WINDOWS = False
    elif variant == "no-colour":
        sampling.COLOUR = False
    elif variant == "half-colour":
        sampling.GAIN, sampling.OFFSET = sampling.GAIN / 2, sampling.OFFSET / 2
    elif variant == "strong-colour":
        sampling.GAIN, sampling.OFFSET = 0.25, 0.5
    elif variant == "no-rare":
        sampling.RARE_SHARE = 0.0
    elif variant == "no-input-skip":
        run.UNet = functools.partial(unet_module.UNet, input_skip=False)
    elif variant == "lr-div-3":
        schedule.LR_DIVISOR = 3.0
    elif variant != "defaults":
        raise SystemExit(f"unknown variant {variant!r}; one of {', '.join(VARIANTS)}")


def one_run(variant: str, accuracy_args: list[str]) -> None:
    apply(variant)
    sys.path.insert(0, HERE)
    import accuracy

    sys.argv = ["accuracy.py", *accuracy_args]
    accuracy.main()


def parse_result(text: str, class_name: str | None) -> tuple[float, float, float | None]:
    """(U-Net mean IoU, forest mean IoU, U-Net IoU of ``class_name``) from accuracy.py's output."""
    m = re.search(r"Summary, mean IoU U-Net vs random forest: \S+ ([0-9.]+) vs ([0-9.]+)", text)
    if not m:
        raise RuntimeError("no summary line in:\n" + text[-3000:])
    cls = None
    if class_name:
        row = re.search(rf"^\| {re.escape(class_name)}[^|]*\| \d+ \| \**([0-9.]+)", text, re.M)
        cls = float(row.group(1)) if row else None
    return float(m.group(1)), float(m.group(2)), cls


def main():
    if len(sys.argv) > 2 and sys.argv[1] == "--one":
        return one_run(sys.argv[2], sys.argv[3:])
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default="dubai", choices=("nc", "befl", "dubai"))
    ap.add_argument("--dubai")
    ap.add_argument("--time-limit", default="3")
    ap.add_argument("--seeds", type=int, nargs="+", default=[42])
    ap.add_argument("--variants", nargs="+", default=list(VARIANTS), help="names above; a+b: both changes")
    ap.add_argument("--class-name", default=None, help="also report this class's IoU (e.g. building)")
    ap.add_argument("--trees", type=int, default=0, help="random forest trees (default 0: none, the U-Net only)")
    ap.add_argument("--log", help="append every run's full output to this file")
    args = ap.parse_args()
    sys.path[:0] = [HERE, os.path.dirname(HERE)]
    from _cpu import cpu_summary

    print(cpu_summary() + "\n", flush=True)
    rows = {}
    for variant in args.variants:
        for seed in args.seeds:
            cmd = [sys.executable, os.path.abspath(__file__), "--one", variant, "--data", args.data,
                   "--time-limit", args.time_limit, "--seed", str(seed), "--trees", str(args.trees)] + (["--dubai", args.dubai] if args.dubai else [])
            out = subprocess.run(cmd, capture_output=True, text=True)
            if args.log:
                with open(args.log, "a", encoding="utf-8") as f:
                    f.write(f"\n\n===== {variant} seed {seed} =====\n{out.stdout}\n{out.stderr[-2000:]}")
            if out.returncode:
                raise SystemExit(f"{variant} seed {seed} failed:\n{out.stderr[-3000:]}")
            u, r, c = parse_result(out.stdout, args.class_name)
            rows.setdefault(variant, []).append((u, r, c))
            print(f"{variant} seed {seed}: U-Net {u:.3f}, forest {r:.3f}" + (f", {args.class_name} {c:.3f}" if c is not None else ""),
                  flush=True)
    print(f"\n{args.data}, TIME_LIMIT {args.time_limit} min, seeds {' '.join(map(str, args.seeds))}\n")
    head = f" | {args.class_name} IoU" if args.class_name else ""
    print(f"| variant | mean IoU per seed | mean ± spread{head} |\n|---|---|---:|" + ("---:|" if head else ""))
    for variant, runs in rows.items():
        u = np.array([x[0] for x in runs])
        spread = f" ± {u.std(ddof=1):.3f}" if len(u) > 1 else ""
        extra = ""
        if args.class_name:
            cs = [x[2] for x in runs if x[2] is not None]
            extra = f" | {np.mean(cs):.3f}" if cs else " | –"
        print(f"| {variant} | {' '.join(f'{x:.3f}' for x in u)} | {u.mean():.3f}{spread}{extra} |")
    if args.trees:
        forest = np.mean([x[1] for runs in rows.values() for x in runs])
        print(f"\nRandom forest (same pixels): mean IoU {forest:.3f}.")


if __name__ == "__main__":
    main()
