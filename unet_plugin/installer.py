"""PyTorch into QGIS without a shell: install the plugin's dependencies into a folder of its own.

The packages go into ``<QGIS profile>/python/unet-dependencies`` (no administrator rights, the
system Python untouched), which the plugin puts on ``sys.path`` when it loads, *before* the
site-packages folders: torch needs newer helpers than a distribution may ship (Debian 12's
sympy 1.11 lacks what torch 2.14 imports — found by the real install). QGIS's own numpy always
wins all the same: pip is pinned to the installed numpy (numpy 1.x builds stay on numpy 1.x,
which QGIS's GDAL needs), and the copy pip puts in the folder is removed (KEEP_FROM_QGIS). pip
runs in QGIS's own Python interpreter (:func:`python_executable`: on Windows ``sys.executable``
is ``qgis-bin.exe``, on macOS the bundle's python).

An install is all or nothing: pip writes into a staging folder beside the target, the result is
checked by importing it in a fresh interpreter, and only then does it replace the target (whose
completion marker is written last). A canceled or failed install removes the staging folder; a
target without its marker (a crash mid-way) is found at start-up and removed.

Offline and behind firewalls: ``wheels=`` a folder of wheels (``pip --no-index --find-links``;
:func:`download_command` prints the command that fills one for another platform), or an index
URL / proxy of the user's. The same code runs from the plugin's dialog (in a background task),
from ``python -m unet_plugin install`` and from Python, so IT departments can script it.

Nothing here imports torch, QGIS or Qt.
"""

from __future__ import annotations

import importlib
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from typing import Callable

FOLDER_NAME = "unet-dependencies"
MARKER = "UNET_INSTALL_COMPLETE.json"
#: versions tested together with this plugin (tests, benchmarks, the desktop)
PINS = {"torch": "2.14.1", "torchvision": "0.29.1"}
OPTIONAL_PINS = {"onnxruntime": "1.32.0", "onnx": "1.23.2"}
CPU_INDEX = "https://download.pytorch.org/whl/cpu"
# PyPI's Windows torch is CPU-only; its CUDA builds are on PyTorch's index, for the CUDA version that
# PyPI's Linux build of the pinned torch carries (the real install here got torch 2.14.1+cu130)
CUDA_INDEX = "https://download.pytorch.org/whl/cu130"
STALE_SECONDS = 6 * 3600  # staging folders older than this are leftovers of a crash
#: packages QGIS's Python must keep its own copy of (compiled against by GDAL and QGIS)
KEEP_FROM_QGIS = ("numpy",)


class InstallError(Exception):
    """An install that cannot go ahead or failed; the message says what to do."""


@dataclass
class InstallPlan:
    """What will be installed, where, from where, with which Python."""

    target: str
    python: str
    packages: list[str]
    build: str = "cpu"  # "cpu" or "cuda"
    wheels: str | None = None
    index_url: str | None = None
    proxy: str | None = None
    extra_args: list[str] = field(default_factory=list)

    def pip_command(self, staging: str, constraints: str) -> list[str]:
        cmd = [self.python, "-m", "pip", "install", "--target", staging, "--no-input", "--disable-pip-version-check",
               "--progress-bar", "off", "--no-warn-script-location", "--constraint", constraints]
        if self.wheels:
            cmd += ["--no-index", "--find-links", self.wheels]
        else:
            if self.index_url:
                cmd += ["--index-url", self.index_url]
            elif self.build == "cpu" and platform.system() in ("Linux", "Windows"):
                cmd += ["--extra-index-url", CPU_INDEX]  # PyPI's Linux torch is the CUDA build (GBs)
            elif self.build == "cuda" and platform.system() == "Windows":
                cmd += ["--extra-index-url", CUDA_INDEX]
            if self.proxy:
                cmd += ["--proxy", self.proxy]
        return cmd + self.extra_args + self.packages


def default_profile() -> str:
    """QGIS's default profile folder on this system (where QGIS 3 keeps it unless told otherwise)."""
    if os.name == "nt":
        base = os.path.join(os.environ.get("APPDATA", os.path.expanduser("~")), "QGIS", "QGIS3")
    elif sys.platform == "darwin":
        base = os.path.expanduser("~/Library/Application Support/QGIS/QGIS3")
    else:
        base = os.path.join(os.environ.get("XDG_DATA_HOME") or os.path.expanduser("~/.local/share"), "QGIS", "QGIS3")
    return os.path.join(base, "profiles", "default")


def default_target(profile_dir: str) -> str:
    """The install folder inside a QGIS profile folder (``QgsApplication.qgisSettingsDirPath()``)."""
    return os.path.join(profile_dir, "python", FOLDER_NAME)


def python_executable() -> str:
    """The Python interpreter that runs this process (QGIS's), as a program pip can be run with.

    ``sys.executable`` is QGIS's own binary on Windows (``qgis-bin.exe``) and inside QGIS.app on
    macOS; the interpreter of the same prefix and version is found beside it.
    """
    major, minor = sys.version_info[:2]
    exe = sys.executable or ""
    # a "python3" is not enough: in the embedded desktop sys.executable can be whatever came first on PATH
    # (a pyenv Python of the same minor version without GDAL); it must be this very interpreter
    if re.match(r"^python(\d(\.\d+)?)?(\.exe)?$", os.path.basename(exe).lower()) and _same_interpreter(exe):
        return exe
    prefixes = [sys.prefix, sys.exec_prefix, getattr(sys, "base_prefix", sys.prefix)]
    names = [f"python{major}.{minor}", f"python{major}", "python"]
    candidates = []
    for p in prefixes:
        for sub in ("bin", "", "Scripts", os.path.join("apps", f"Python{major}{minor}")):
            for n in names:
                candidates.append(os.path.join(p, sub, n + (".exe" if os.name == "nt" else "")))
    if sys.platform == "darwin" and exe:
        candidates.insert(0, os.path.join(os.path.dirname(exe), "bin", "python3"))  # QGIS.app/Contents/MacOS/bin
    for c in candidates:
        if os.path.isfile(c) and os.access(c, os.X_OK) and _same_interpreter(c):
            return c
    raise InstallError("the Python interpreter that runs QGIS was not found beside " + (exe or "QGIS")
                       + f" (looked for python{major}.{minor} under {sys.prefix}). Install with pip by hand: see the README.")


def _same_interpreter(path: str) -> bool:
    """Whether ``path`` runs this interpreter: the same version and the same installation (prefix)."""
    try:
        out = subprocess.run([path, "-c", "import sys; print(tuple(sys.version_info[:3])); print(sys.prefix)"],
                             capture_output=True, text=True, timeout=60, **_no_window())
    except (OSError, subprocess.TimeoutExpired):
        return False
    lines = out.stdout.strip().splitlines()
    if out.returncode != 0 or len(lines) != 2 or lines[0] != str(tuple(sys.version_info[:3])):
        return False
    ours = {os.path.normcase(os.path.realpath(p)) for p in (sys.prefix, getattr(sys, "base_prefix", sys.prefix))}
    return os.path.normcase(os.path.realpath(lines[1])) in ours


def _no_window() -> dict:
    """No console window flashing up on Windows for each child process."""
    return {"creationflags": 0x08000000} if os.name == "nt" else {}


def nvidia_gpu() -> str | None:
    """The NVIDIA GPU's name when a driver is installed (``nvidia-smi`` answers), else ``None``."""
    exe = shutil.which("nvidia-smi")
    if not exe:
        return None
    try:
        out = subprocess.run([exe, "--query-gpu=name", "--format=csv,noheader"], capture_output=True, text=True,
                             timeout=20, **_no_window())
    except (OSError, subprocess.TimeoutExpired):
        return None
    names = [line.strip() for line in out.stdout.splitlines() if line.strip()]
    return names[0] if out.returncode == 0 and names else None


def requirements(build: str = "cpu", with_onnx: bool = True, wheels: str | None = None,
                 index_url: str | None = None) -> list[str]:
    """The pinned requirements. CPU builds from PyTorch's index carry a ``+cpu`` local version on
    Linux and Windows; from a wheel folder or another index (a company's PyPI mirror), whatever build
    it holds under the plain version is taken."""
    local = ""
    own_index = not wheels and not index_url
    if own_index and platform.system() in ("Linux", "Windows") and build == "cpu":
        local = "+cpu"
    elif own_index and platform.system() == "Windows" and build == "cuda":
        local = "+" + CUDA_INDEX.rsplit("/", 1)[1]
    reqs = [f"torch=={PINS['torch']}{local}", f"torchvision=={PINS['torchvision']}{local}"]
    if with_onnx:
        reqs += [f"{name}=={version}" for name, version in OPTIONAL_PINS.items()]
    return reqs


def check_target(target: str) -> None:
    """Refuse a target folder that cannot be created or written, before anything is downloaded."""
    parent = os.path.dirname(os.path.abspath(target))
    try:
        os.makedirs(parent, exist_ok=True)
    except OSError as exc:
        raise InstallError(f"the folder '{parent}' cannot be created ({exc.strerror}). Choose another install folder.") from None
    probe = os.path.join(parent, f".unet-write-test-{os.getpid()}")
    try:
        with open(probe, "w"):
            pass
        os.remove(probe)
    except OSError as exc:
        raise InstallError(f"the folder '{parent}' is not writable ({exc.strerror}). Choose another install folder "
                           "(it needs no administrator rights when it is in your QGIS profile).") from None


def is_complete(target: str) -> bool:
    return os.path.isfile(os.path.join(target, MARKER))


def installed_versions(target: str) -> dict:
    try:
        with open(os.path.join(target, MARKER), encoding="utf-8") as f:
            return json.load(f).get("versions", {})
    except (OSError, ValueError):
        return {}


def repair(target: str, log: Callable[[str], None] = lambda m: None) -> bool:
    """Remove a half-written install (no completion marker) and stale staging folders; True if anything went."""
    removed = False
    parent = os.path.dirname(os.path.abspath(target))
    if os.path.isdir(parent):
        for name in os.listdir(parent):
            path = os.path.join(parent, name)
            stale = time.time() - os.path.getmtime(path) > STALE_SECONDS  # not another QGIS's install in progress
            if stale and (name.startswith(os.path.basename(target) + ".staging-") or name.startswith(os.path.basename(target) + ".old-")):
                shutil.rmtree(path, ignore_errors=True)
                removed = True
    if os.path.isdir(target) and not is_complete(target):
        log(f"Removing an incomplete install in {target}.")
        shutil.rmtree(target, ignore_errors=True)
        removed = True
    return removed


def path_position(path: list[str]) -> int:
    """Where the install folder goes in ``sys.path``: before the first site-packages / dist-packages folder."""
    for i, p in enumerate(path):
        if os.path.basename(os.path.normpath(p)) in ("site-packages", "dist-packages"):
            return i
    return len(path)


def activate(target: str) -> bool:
    """Put a complete install on ``sys.path``, before the site-packages folders (see the module docstring).

    Returns whether the folder is on the path now. Packages that were looked up before and not
    found become importable (import caches are invalidated); a package already imported from
    elsewhere stays as it is until QGIS restarts.
    """
    if not is_complete(target):
        return False
    if target not in sys.path:
        sys.path.insert(path_position(sys.path), target)
        importlib.invalidate_caches()
    return True


def restart_needed(target: str, packages=("torch", "torchvision")) -> list[str]:
    """Those of ``packages`` already imported in this process from outside ``target``: only a restart
    brings the new ones."""
    stale = []
    for p in packages:
        module = sys.modules.get(p)
        where = os.path.abspath(getattr(module, "__file__", None) or "") if module is not None else ""
        if module is not None and not where.startswith(os.path.abspath(target) + os.sep):
            stale.append(p)
    return stale


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
        tail, state = [], {}
        assert proc.stdout is not None
        for line in proc.stdout:
            line = line.rstrip()
            if line:
                log(line)
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
            raise InstallError(_explain(tail, plan))
        progress(0.92)
        for name in _prune_kept(staging):
            log(f"{name}: QGIS's own copy is kept (removed from the install folder).")
        modules = [re.split(r"[=<>!~\[ ]", p, 1)[0].replace("-", "_") for p in plan.packages]
        verified = _verify(plan.python, staging, modules)
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


def _prune_kept(folder: str) -> list[str]:
    """Remove from ``folder`` the packages of KEEP_FROM_QGIS that this Python already has."""
    removed = []
    for name in KEEP_FROM_QGIS:
        try:
            importlib.import_module(name)
        except ImportError:
            continue  # QGIS has none: the folder's copy is the one
        entries = [e for e in os.listdir(folder)
                   if e == name or e == f"{name}.libs" or re.match(rf"^{re.escape(name)}-[^-]+\.(dist|egg)-info$", e)]
        for e in entries:
            path = os.path.join(folder, e)
            shutil.rmtree(path) if os.path.isdir(path) else os.remove(path)
        if entries:
            removed.append(name)
    return removed


def _explain(tail: list[str], plan: InstallPlan) -> str:
    """pip's failure in one sentence with what to do."""
    text = "\n".join(tail)
    missing = re.search(r"No matching distribution found for ([^\s]+)", text)
    if missing and plan.wheels:
        return (f"{missing.group(1)} is not in the wheel folder '{plan.wheels}' (for this Python "
                f"{sys.version_info[0]}.{sys.version_info[1]} on {platform.system()} {platform.machine()}). "
                f"Fill the folder on a machine with internet: {download_command(plan.wheels)}")
    if missing:
        return (f"pip found no {missing.group(1)} for Python {sys.version_info[0]}.{sys.version_info[1]} on "
                f"{platform.system()} {platform.machine()}. Check the internet connection, proxy or index URL, or install "
                "from a folder of wheels.")
    if re.search(r"ProxyError|Connection(Error| refused| reset)|Failed to establish|Temporary failure in name resolution|"
                 r"Max retries exceeded", text):
        return ("pip could not reach the package index (no internet, or a firewall or proxy in the way). Give your "
                "proxy or company index, or install from a folder of wheels downloaded elsewhere.")
    if re.search(r"No space left on device", text):
        return "the disk is full (PyTorch needs up to a few GB). Free space or choose another install folder."
    last = tail[-1] if tail else "no output"
    return f"pip failed: {last}"


def download_command(dest: str, platform_tag: str | None = None, python_version: str | None = None,
                     build: str = "cpu") -> str:
    """The command that downloads the wheels for a target machine into ``dest``, to carry over.

    ``platform_tag``: e.g. ``win_amd64``, ``manylinux_2_28_x86_64``, ``macosx_11_0_arm64``
    (default: this machine's); ``python_version``: QGIS's Python there, e.g. ``3.12``.
    """
    pv = python_version or f"{sys.version_info[0]}.{sys.version_info[1]}"
    parts = ["python3", "-m", "pip", "download", "--only-binary=:all:", "--dest", dest, "--python-version", pv]
    if platform_tag:
        parts += ["--platform", platform_tag]
    target_system = platform_tag or platform.system().lower()
    if build == "cpu" and ("win" in target_system or "linux" in target_system):
        parts += ["--extra-index-url", CPU_INDEX]
        local = "+cpu"
    else:
        local = ""
    parts += [f"torch=={PINS['torch']}{local}", f"torchvision=={PINS['torchvision']}{local}"]
    parts += [f"{n}=={v}" for n, v in OPTIONAL_PINS.items()]
    return " ".join(f'"{p}"' if " " in p or "<" in p else p for p in parts)


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
