"""``python -m unet_plugin install`` and ``python -m unet_plugin download-wheels``."""

from __future__ import annotations

import subprocess
import sys

from .environment import default_profile, nvidia_gpu, python_executable
from .folder import FOLDER_NAME, default_target, installed_versions, is_complete
from .pip import install
from .plan import InstallError, InstallPlan, download_command, requirements


def main(argv: list[str]) -> int:
    """``python -m unet_plugin install ...`` and ``python -m unet_plugin download-wheels ...``."""
    import argparse

    if argv and argv[0] == "download-wheels":
        ap = argparse.ArgumentParser(prog="python -m unet_plugin download-wheels",
                                     description="Download the wheels for a machine without internet into a folder, "
                                                 "to carry over and install with: python -m unet_plugin install --wheels FOLDER")
        ap.add_argument("dest")
        ap.add_argument("--platform", help="e.g. win_amd64, manylinux_2_28_x86_64, macosx_11_0_arm64 (default: this machine)")
        ap.add_argument("--python", help="QGIS's Python version there, e.g. 3.12 (default: this Python's)")
        ap.add_argument("--build", choices=("cpu", "cuda"), default="cpu")
        ap.add_argument("--print-only", action="store_true", help="print the pip command instead of running it")
        a = ap.parse_args(argv[1:])
        cmd = download_command(a.dest, a.platform, a.python, a.build)
        if a.print_only:
            print(cmd)
            return 0
        import shlex

        args = shlex.split(cmd)
        args[0] = sys.executable
        return subprocess.run(args).returncode
    ap = argparse.ArgumentParser(prog="python -m unet_plugin install",
                                 description="Install PyTorch (and onnxruntime) for the plugin into a QGIS profile, as the "
                                             "plugin's own installer does. Run it with the Python that runs QGIS.")
    ap.add_argument("--profile", help=f"the QGIS profile folder (default: {default_profile()})")
    ap.add_argument("--target", help="install here instead of <profile>/python/" + FOLDER_NAME)
    ap.add_argument("--wheels", help="a folder of wheels to install from, offline (see download-wheels)")
    ap.add_argument("--index-url", help="a package index of your own (company mirror)")
    ap.add_argument("--proxy", help="an HTTP(S) proxy, e.g. http://user:password@proxy:8080")
    ap.add_argument("--build", choices=("auto", "cpu", "cuda"), default="auto",
                    help="auto: CUDA when an NVIDIA GPU and driver are present, else CPU")
    ap.add_argument("--no-onnx", action="store_true", help="leave out onnxruntime and onnx (faster CPU classification)")
    ap.add_argument("--check", action="store_true", help="only say what is installed where")
    a = ap.parse_args(argv[1:] if argv and argv[0] == "install" else argv)
    target = a.target or default_target(a.profile or default_profile())
    if a.check:
        ok = is_complete(target)
        print(f"{target}: " + (", ".join(f"{m} {v}" for m, v in installed_versions(target).items()) if ok else "not installed"))
        return 0 if ok else 1
    gpu = nvidia_gpu()
    build = a.build if a.build != "auto" else ("cuda" if gpu else "cpu")
    try:
        plan = InstallPlan(target=target, python=python_executable(), packages=requirements(build, not a.no_onnx, a.wheels, a.index_url),
                           build=build, wheels=a.wheels, index_url=a.index_url, proxy=a.proxy)
        print(f"Python: {plan.python}; build: {build}" + (f" (GPU: {gpu})" if gpu else "") + f"; into {target}")
        install(plan, log=print)
    except InstallError as exc:
        print(f"Error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("Canceled; nothing was installed.", file=sys.stderr)
        return 130
    return 0
