"""The install itself: pip into a staging folder, checked by a fresh interpreter, then renamed into place."""

from __future__ import annotations

import json
import os
import platform
import re
import shutil
import subprocess
import sys
import time
from typing import Callable
from urllib.parse import urlsplit

from .environment import _no_window
from .folder import MARKER, _prune_kept, check_target, repair
from .overlap import canonical, put_back, take_out_provided
from .plan import CPU_INDEX, InstallError, InstallPlan, download_command


def _constraints(folder: str) -> str:
    """A constraints file pinning QGIS's numpy (a wheel must not bring numpy 2 into a numpy-1 QGIS)."""
    path = os.path.join(folder, "constraints.txt")
    lines = []
    try:
        import numpy

        lines.append(f"numpy=={numpy.__version__}")
    except ImportError:
        lines.append("numpy<2")
    with open(path, "w", encoding="utf-8") as f:
        f.write("\n".join(lines) + "\n")
    return path


def _pip_progress(line: str, state: dict) -> float | None:
    """A rough fraction from pip's output: collecting (to 40 %), downloading, installing (to 95 %)."""
    if line.startswith("Collecting ") or line.startswith("Processing "):
        state["collected"] = state.get("collected", 0) + 1
        return min(0.05 + 0.03 * state["collected"], 0.4)
    if line.startswith("Downloading ") or line.startswith("Using cached "):
        state["downloads"] = state.get("downloads", 0) + 1
        return min(0.4 + 0.03 * state["downloads"], 0.7)
    if line.startswith("Installing collected packages"):
        return 0.75
    if line.startswith("Successfully installed"):
        return 0.9
    return None


def _verify(python: str, staging: str, modules: list[str]) -> str | None:
    """Import the new packages in a fresh interpreter, the folder appended to its path: None or the error."""
    code = ("import sys, os, json\n"
            "i = next((i for i, p in enumerate(sys.path) if os.path.basename(os.path.normpath(p)) in "
            "('site-packages', 'dist-packages')), len(sys.path))\n"
            "sys.path.insert(i, sys.argv[1]); out = {}\n"
            "for m in sys.argv[2:]:\n"
            "    mod = __import__(m); out[m] = getattr(mod, '__version__', '?')\n"
            "print(json.dumps(out))")
    run = subprocess.run([python, "-c", code, staging] + modules, capture_output=True, text=True, timeout=600, **_no_window())
    if run.returncode != 0:
        lines = [line for line in run.stderr.strip().splitlines() if line.strip()]
        return lines[-1] if lines else f"exit code {run.returncode}"
    try:
        return json.loads(run.stdout.strip().splitlines()[-1])
    except (ValueError, IndexError):
        return "no answer from the test import"


def install(plan: InstallPlan, progress: Callable[[float], None] = lambda f: None,
            is_canceled: Callable[[], bool] = lambda: False, log: Callable[[str], None] = print) -> dict:
    """Run the install; return the installed versions (module → version).

    Raises:
        InstallError: a target that cannot be written, a missing wheel, a failed download or
            import — nothing is left half-installed.
    """
    check_target(plan.target)
    if plan.wheels and not os.path.isdir(plan.wheels):
        raise InstallError(f"the wheel folder '{plan.wheels}' does not exist.")
    repair(plan.target, log)
    staging = f"{plan.target}.staging-{os.getpid()}-{int(time.time())}"
    os.makedirs(staging)
    work = staging + "-work"
    os.makedirs(work)
    try:
        cmd = plan.pip_command(staging, _constraints(work))
        log("Running: " + " ".join(cmd))
        progress(0.02)
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, bufsize=1,
                                env=dict(os.environ, PIP_NO_COLOR="1", PYTHONNOUSERSITE="1"), **_no_window())
        tail, looking, state = [], [], {}
        assert proc.stdout is not None
        for line in proc.stdout:
            line = line.rstrip()
            if line:
                log(line)
                if line.startswith("Looking in "):  # the indexes, for naming a host out of reach
                    looking.append(line)
                tail = (tail + [line])[-30:]
                f = _pip_progress(line, state)
                if f is not None:
                    progress(f)
            if is_canceled():
                proc.kill()
                proc.wait()
                raise InstallError("canceled; nothing was installed.")
        code = proc.wait()
        if is_canceled():
            raise InstallError("canceled; nothing was installed.")
        if code != 0:
            raise InstallError(_explain([ln for ln in looking if ln not in tail] + tail, plan))
        progress(0.92)
        for name in _prune_kept(staging):
            log(f"{name}: QGIS's own copy is kept (removed from the install folder).")
        names = [re.split(r"[=<>!~\[ ]", p, maxsplit=1)[0] for p in plan.packages]
        verified = _verify_with_qgis_copies(plan, staging, work, names, log)
        if not isinstance(verified, dict):
            raise InstallError(f"the packages were installed but do not load ({verified}). Nothing was kept; see the log.")
        with open(os.path.join(staging, MARKER), "w", encoding="utf-8") as f:
            json.dump({"versions": verified, "python": plan.python, "packages": plan.packages,
                       "installed": time.strftime("%Y-%m-%d %H:%M:%S")}, f, indent=1)
        old = None
        if os.path.exists(plan.target):
            old = f"{plan.target}.old-{os.getpid()}"
            os.replace(plan.target, old)
        os.replace(staging, plan.target)
        if old:
            shutil.rmtree(old, ignore_errors=True)
        progress(1.0)
        log("Installed into " + plan.target + ": " + ", ".join(f"{m} {v}" for m, v in verified.items()))
        return verified
    finally:
        shutil.rmtree(work, ignore_errors=True)
        if os.path.exists(staging):
            shutil.rmtree(staging, ignore_errors=True)


def _verify_with_qgis_copies(plan: InstallPlan, staging: str, work: str, names: list[str], log) -> dict | str:
    """Take out what QGIS's Python provides well enough (:mod:`.overlap`) and check that the packages
    load so; if they do not, put the install's own copies back and check again."""
    held = os.path.join(work, "held")
    served = take_out_provided(staging, {canonical(n) for n in names}, [plan.target, staging], held)
    if served:
        log("QGIS's own copies serve, not put ahead of QGIS's packages: " + ", ".join(served) + ".")
    modules = [n.replace("-", "_") for n in names]
    verified = _verify(plan.python, staging, modules)
    if not isinstance(verified, dict) and served:
        log(f"With QGIS's copies the packages do not load ({verified}); the install's own copies go ahead instead.")
        put_back(held, staging)
        verified = _verify(plan.python, staging, modules)
    return verified


def _explain(tail: list[str], plan: InstallPlan) -> str:
    """pip's failure in one sentence with what to do."""
    text = "\n".join(tail)
    missing = re.search(r"No matching distribution found for ([^\s]+)", text)
    if missing and plan.wheels:
        return (f"{missing.group(1)} is not in the wheel folder '{plan.wheels}' (for this Python "
                f"{sys.version_info[0]}.{sys.version_info[1]} on {platform.system()} {platform.machine()}). "
                f"Fill the folder on a machine with internet: {download_command(plan.wheels)}")
    if re.search(r"ProxyError|Connection(Error| refused| reset)|Failed to establish|Temporary failure in name resolution|"
                 r"Max retries exceeded", text):
        return _unreachable(text, plan)
    if missing:
        return (f"pip found no {missing.group(1)} for Python {sys.version_info[0]}.{sys.version_info[1]} on "
                f"{platform.system()} {platform.machine()}. Check the internet connection, proxy or index URL, or install "
                "from a folder of wheels.")
    if re.search(r"No space left on device", text):
        return "the disk is full (PyTorch needs up to a few GB). Free space or choose another install folder."
    last = tail[-1] if tail else "no output"
    return f"pip failed: {last}"


def _unreachable(text: str, plan: InstallPlan) -> str:
    """Which hosts pip could not reach, and the way round that fits."""
    hosts = set(re.findall(r"host='([^']+)'", text))
    # pip's retry warnings give only the path ("…': /whl/cpu/torch/"): the index it belongs to has the host
    indexes = [u.strip() for line in re.findall(r"Looking in (?:indexes|links): (.*)", text) for u in line.split(",")]
    for path in re.findall(r"Retrying .*': (/\S*)", text):
        hosts.update(urlsplit(u).hostname for u in indexes
                     if urlsplit(u).hostname and path.startswith(urlsplit(u).path.rstrip("/") + "/"))
    hosts = sorted(hosts)
    where = ", ".join(hosts) if hosts else "the package index"
    message = f"pip could not reach {where} (no internet, or a firewall or proxy in the way)."
    if urlsplit(CPU_INDEX).hostname in hosts and not plan.index_url and not plan.wheels:
        return message + (" Only PyTorch's own index holds the small CPU-only build. If PyPI (or your company's mirror of it) "
                          "is reachable, give https://pypi.org/simple as the index URL: on Linux PyPI's torch is the CUDA "
                          "build, about 3 GB to download and 5.4 GB installed (it runs on the CPU too); on Windows and macOS "
                          "PyPI's torch is the CPU build. Or install from a folder of wheels downloaded elsewhere.")
    return message + " Give your proxy or company index, or install from a folder of wheels downloaded elsewhere."
