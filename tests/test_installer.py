"""The dependency installer, with small real wheels written by the test (no torch, no internet)."""

from __future__ import annotations

import base64
import hashlib
import importlib
import json
import os
import platform
import subprocess
import sys
import time
import zipfile

import pytest

from conftest import ROOT, plugin_module

installer = plugin_module("unet_plugin.install")


def make_wheel(folder, name: str, version: str = "1.0", requires=(), body: str | None = None,
               package: str | None = None) -> str:
    """A pure-Python wheel of distribution ``name`` (import name ``package``, by default the same;
    ``__version__`` = version), as pip builds them."""
    dist = f"{name}-{version}.dist-info"
    files = {
        f"{package or name}/__init__.py": body if body is not None else f"__version__ = '{version}'\n",
        f"{dist}/METADATA": f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n"
                            + "".join(f"Requires-Dist: {r}\n" for r in requires),
        f"{dist}/WHEEL": "Wheel-Version: 1.0\nGenerator: unet-tests\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
    }
    record = []
    for path, text in files.items():
        data = text.encode()
        digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
        record.append(f"{path},sha256={digest},{len(data)}")
    files[f"{dist}/RECORD"] = "\n".join(record + [f"{dist}/RECORD,,"]) + "\n"
    os.makedirs(folder, exist_ok=True)
    path = os.path.join(folder, f"{name}-{version}-py3-none-any.whl")
    with zipfile.ZipFile(path, "w") as z:
        for p, text in files.items():
            z.writestr(p, text)
    return path


@pytest.fixture
def wheels(tmp_path):
    folder = str(tmp_path / "wheels")
    make_wheel(folder, "unettest_b", "2.0")
    make_wheel(folder, "unettest_a", "1.0", requires=["unettest_b>=2", "numpy"], body="import numpy\n__version__ = '1.0'\n")
    import numpy

    # a numpy that would shadow QGIS's (GDAL is built against it): pinned to the same version, then removed
    make_wheel(folder, "numpy", numpy.__version__, body="raise ImportError('the install folder shadowed QGIS numpy')\n")
    make_wheel(folder, "unettest_broken", "1.0", body="raise ImportError('this package is broken on purpose')\n")
    return folder


@pytest.fixture
def clean_modules():
    before = list(sys.path)
    yield
    sys.path[:] = before
    for name in [m for m in sys.modules if m.startswith("unettest_")]:
        del sys.modules[name]
    importlib.invalidate_caches()


def plan_for(target, wheels, packages):
    return installer.InstallPlan(target=str(target), python=installer.python_executable(), packages=packages, wheels=wheels)


def leftovers(target) -> list[str]:
    parent = os.path.dirname(str(target))
    return [n for n in os.listdir(parent) if ".staging-" in n or ".old-" in n] if os.path.isdir(parent) else []


def test_installs_from_a_wheel_folder_and_loads_without_restart(tmp_path, wheels, clean_modules):
    target = installer.default_target(str(tmp_path / "profile"))
    lines, fractions = [], []
    versions = installer.install(plan_for(target, wheels, ["unettest_a==1.0"]), fractions.append, log=lines.append)
    assert versions == {"unettest_a": "1.0"}
    assert installer.is_complete(target) and installer.installed_versions(target) == {"unettest_a": "1.0"}
    assert os.path.isdir(os.path.join(target, "unettest_b"))  # its dependency came from the folder too
    assert not [e for e in os.listdir(target) if e.startswith("numpy")]  # QGIS's numpy is kept
    assert any("numpy: QGIS's own copy is kept" in line for line in lines)
    assert any("--no-index" in line and "--find-links" in line for line in lines)
    assert fractions[-1] == 1.0 and fractions == sorted(fractions)
    assert not leftovers(target)
    with pytest.raises(ImportError):
        importlib.import_module("unettest_a")
    assert installer.activate(target)
    first_site = min(i for i, p in enumerate(sys.path) if os.path.basename(p) in ("site-packages", "dist-packages"))
    assert sys.path.index(target) < first_site  # before site-packages: newer helpers than the distribution's
    assert importlib.import_module("unettest_a").__version__ == "1.0"  # this process, no restart
    assert importlib.import_module("unettest_b").__version__ == "2.0"
    # installing again replaces it whole
    installer.install(plan_for(target, wheels, ["unettest_b==2.0"]), log=lambda m: None)
    assert installer.installed_versions(target) == {"unettest_b": "2.0"} and not leftovers(target)


def test_cancel_leaves_nothing(tmp_path, wheels):
    target = installer.default_target(str(tmp_path / "profile"))
    lines = []
    with pytest.raises(installer.InstallError, match="canceled; nothing was installed"):
        installer.install(plan_for(target, wheels, ["unettest_a==1.0"]), is_canceled=lambda: bool(lines), log=lines.append)
    assert not os.path.exists(target) and not leftovers(target)


def test_a_previous_install_survives_a_failed_one(tmp_path, wheels):
    target = installer.default_target(str(tmp_path / "profile"))
    installer.install(plan_for(target, wheels, ["unettest_b==2.0"]), log=lambda m: None)
    with pytest.raises(installer.InstallError, match="do not load .*broken on purpose"):
        installer.install(plan_for(target, wheels, ["unettest_broken==1.0"]), log=lambda m: None)
    assert installer.installed_versions(target) == {"unettest_b": "2.0"} and not leftovers(target)


def test_missing_wheel_and_unwritable_folder_are_messages(tmp_path, wheels):
    target = installer.default_target(str(tmp_path / "profile"))
    with pytest.raises(installer.InstallError) as exc:
        installer.install(plan_for(target, wheels, ["unettest_missing==1.0"]), log=lambda m: None)
    assert "unettest_missing==1.0 is not in the wheel folder" in str(exc.value) and "pip download" in str(exc.value)
    assert not os.path.exists(target) and not leftovers(target)
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    with pytest.raises(installer.InstallError, match="cannot be created"):
        installer.install(plan_for(installer.default_target(str(blocker)), wheels, ["unettest_a==1.0"]), log=lambda m: None)
    with pytest.raises(installer.InstallError, match="does not exist"):
        installer.install(plan_for(target, str(tmp_path / "no-wheels"), ["unettest_a==1.0"]), log=lambda m: None)


def test_a_half_written_install_is_removed_at_startup(tmp_path):
    target = installer.default_target(str(tmp_path / "profile"))
    os.makedirs(os.path.join(target, "torch"))  # a crash mid-way: files, no completion marker
    stale = target + ".staging-1-1"
    os.makedirs(stale)
    old = time.time() - installer.STALE_SECONDS - 60
    os.utime(stale, (old, old))
    assert not installer.activate(target)
    assert installer.repair(target)
    assert not os.path.exists(target) and not os.path.exists(stale)


def test_the_python_is_the_one_running_qgis(monkeypatch):
    """The interpreter found is this process's (QGIS's), also where sys.executable is QGIS's binary (Windows, macOS)."""
    def prefix_and_version(exe):
        return subprocess.run([exe, "-c", "import sys; print(sys.prefix, sys.version_info[:3])"], capture_output=True,
                              text=True, check=True).stdout.strip()

    ours = f"{sys.prefix} {tuple(sys.version_info[:3])}"
    assert prefix_and_version(installer.python_executable()) == ours
    monkeypatch.setattr(sys, "executable", os.path.join(sys.prefix, "bin", "qgis-bin"))
    assert prefix_and_version(installer.python_executable()) == ours


def test_another_python_first_on_path_is_not_taken(monkeypatch, tmp_path):
    """In the embedded desktop sys.executable may be a 'python3' from PATH — another installation of the
    same minor version (a pyenv Python without GDAL): pip must run with QGIS's own interpreter."""
    impostor = tmp_path / "python3"
    impostor.write_text(f"#!/bin/sh\necho '{tuple(sys.version_info[:3])}'\necho /opt/another/python\n")
    impostor.chmod(0o755)
    monkeypatch.setattr(sys, "executable", str(impostor))
    found = installer.python_executable()
    assert found != str(impostor)
    assert subprocess.run([found, "-c", "import sys; print(sys.prefix)"], capture_output=True, text=True,
                          check=True).stdout.strip() == sys.prefix


def test_a_pypi_mirror_gets_plain_versions(monkeypatch):
    """The CPU build pinned as +cpu lives only on PyTorch's index: with a company's PyPI mirror the plain version."""
    monkeypatch.setattr(platform, "system", lambda: "Linux")
    reqs = installer.requirements("cpu", False, index_url="https://pypi.example.org/simple")
    assert reqs == [f"torch=={installer.PINS['torch']}", f"torchvision=={installer.PINS['torchvision']}"]


def test_commands_for_offline_machines(tmp_path):
    """download-wheels prints (or runs) the pip command for another platform; install --check reports."""
    env = dict(os.environ)
    run = subprocess.run([sys.executable, "-m", "unet_plugin", "download-wheels", str(tmp_path / "w"), "--platform", "win_amd64",
                          "--python", "3.12", "--print-only"], cwd=ROOT, env=env, capture_output=True, text=True)
    assert run.returncode == 0
    cmd = run.stdout
    assert "pip download --only-binary=:all:" in cmd and "--platform win_amd64" in cmd and "--python-version 3.12" in cmd
    assert f"torch=={installer.PINS['torch']}+cpu" in cmd and installer.CPU_INDEX in cmd
    check = subprocess.run([sys.executable, "-m", "unet_plugin", "install", "--check", "--profile", str(tmp_path / "p")],
                           cwd=ROOT, env=env, capture_output=True, text=True)
    assert check.returncode == 1 and "not installed" in check.stdout


def test_missing_torch_message_names_the_installer():
    deps = plugin_module("unet_plugin.install.deps")
    original = deps.installed_version
    try:
        deps.installed_version = lambda name: None
        message = deps.missing_dependencies()
    finally:
        deps.installed_version = original
    assert "Plugins ▸ U-Net Segmentation ▸ Install PyTorch…" in message and "python -m unet_plugin install" in message


def test_the_dialog_installs_in_a_background_task(qgis_app, qgis_iface, tmp_path, wheels, monkeypatch, clean_modules):
    """The QGIS dialog: offline source, Install → a QgsTask runs pip; the log, the progress and the result show."""
    from qgis.core import QgsApplication

    dialog_module = plugin_module("unet_plugin.install.dialog")
    target = installer.default_target(str(tmp_path / "profile"))
    monkeypatch.setattr(dialog_module, "profile_target", lambda: target)
    monkeypatch.setattr(installer, "requirements", lambda build, onnx, wheels, index_url=None: ["unettest_a==1.0"])
    dialog = dialog_module.InstallDialog(None, qgis_iface)
    dialog.source.setCurrentIndex(dialog.source.findData("wheels"))
    assert not dialog.index_url.isEnabled() and dialog.wheels_row.isEnabled()
    dialog.start()
    assert "choose the folder of wheels" in dialog.status.text() and dialog.task is None
    dialog.wheels.setText(wheels)
    dialog.start()
    assert dialog.task is not None and not dialog.install_button.isEnabled()
    deadline = time.time() + 120
    while dialog.task is not None and time.time() < deadline:
        QgsApplication.processEvents()
        time.sleep(0.05)
    assert dialog.task is None, "the install task did not finish"
    assert "installed and ready" in dialog.status.text(), dialog.status.text()
    assert dialog.progress.value() == 100 and "Successfully installed" in dialog.log.toPlainText()
    assert target in sys.path and importlib.import_module("unettest_a").__version__ == "1.0"
    if os.environ.get("UNET_DIALOG_PNG_DIR"):
        dialog.resize(900, 620)
        dialog.grab().save(os.path.join(os.environ["UNET_DIALOG_PNG_DIR"], "installer.png"))
    dialog.close()


def test_startup_offers_the_installer_when_torch_is_missing(qgis_iface, monkeypatch):
    """The message bar's Install PyTorch… button opens the installer; nothing is offered when torch is there."""
    from qgis.PyQt.QtWidgets import QPushButton

    deps = plugin_module("unet_plugin.install.deps")
    dialog_module = plugin_module("unet_plugin.install.dialog")
    bar = qgis_iface.messageBar()
    bar.clearWidgets()
    dialog_module.offer_install(qgis_iface, lambda: None)
    assert bar.currentItem() is None  # torch is installed here
    monkeypatch.setattr(deps, "missing_dependencies", lambda advice=True: "missing Python package(s): torch (not installed)")
    opened = []
    dialog_module.offer_install(qgis_iface, lambda: opened.append(True))
    item = bar.currentItem()
    assert item is not None and "need PyTorch" in item.text()
    [button] = [b for b in item.findChildren(QPushButton) if b.text() == "Install PyTorch…"]
    button.click()
    assert opened == [True]
    if os.environ.get("UNET_DIALOG_PNG_DIR"):
        bar.resize(1000, 48)
        bar.grab().save(os.path.join(os.environ["UNET_DIALOG_PNG_DIR"], "installer_bar.png"))
    bar.clearWidgets()


def test_restart_is_asked_only_for_packages_loaded_from_elsewhere(tmp_path, wheels, clean_modules):
    target = installer.default_target(str(tmp_path / "profile"))
    installer.install(plan_for(target, wheels, ["unettest_a==1.0"]), log=lambda m: None)
    installer.activate(target)
    importlib.import_module("unettest_a")
    assert installer.restart_needed(target, ["unettest_a"]) == []  # loaded from the new folder
    assert installer.restart_needed(target, ["numpy"]) == ["numpy"]  # loaded before, from QGIS's Python
    assert installer.restart_needed(target, ["unettest_never_imported"]) == []


@pytest.mark.parametrize("system,build,local,index", [
    ("Linux", "cpu", "+cpu", "CPU_INDEX"), ("Linux", "cuda", "", None), ("Windows", "cpu", "+cpu", "CPU_INDEX"),
    ("Windows", "cuda", "+cu130", "CUDA_INDEX"), ("Darwin", "cpu", "", None)])
def test_the_build_fits_the_platform(monkeypatch, system, build, local, index):
    """PyPI's Linux torch is the CUDA build and its Windows torch the CPU build: the other one comes from PyTorch's index."""
    monkeypatch.setattr(platform, "system", lambda: system)
    reqs = installer.requirements(build, False)
    assert reqs == [f"torch=={installer.PINS['torch']}{local}", f"torchvision=={installer.PINS['torchvision']}{local}"]
    cmd = installer.InstallPlan("t", "python", reqs, build=build).pip_command("s", "c.txt")
    urls = [cmd[i + 1] for i, a in enumerate(cmd) if a == "--extra-index-url"]
    assert urls == ([getattr(installer, index)] if index else [])
    offline = installer.requirements(build, False, wheels="w")  # a wheel folder holds whatever build it holds
    assert all("+" not in r for r in offline)


QGIS_COPIES = ("import sys, json; sys.path.insert(0, sys.argv[1])\n"
               "from unet_segmentation.unet_plugin.install import activate\n"
               "if len(sys.argv) > 2: activate(sys.argv[2])\n"
               "import jinja2, PIL, numpy\n"
               "print(json.dumps({m.__name__: [m.__version__, m.__file__] for m in (jinja2, PIL, numpy)}))\n")


def _another_plugin_sees(target=None) -> dict:
    """What a process of QGIS's Python imports for jinja2, PIL and numpy — after the install folder
    was activated as the plugin does at start-up, or without it."""
    import conftest

    run = subprocess.run([sys.executable, "-c", QGIS_COPIES, conftest._LINKS] + ([str(target)] if target else []),
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr[-2000:]
    return json.loads(run.stdout.strip().splitlines()[-1])


def test_packages_qgis_has_stay_qgis_own_for_every_plugin(tmp_path, clean_modules):
    """pip brings torch's helpers along (here: newer jinja2 and pillow); those QGIS already has in a version
    that suits are taken out of the folder, so another plugin importing them gets QGIS's versions."""
    pytest.importorskip("jinja2")
    pytest.importorskip("PIL")
    folder = str(tmp_path / "wheels")
    make_wheel(folder, "jinja2", "99.0", body="__version__ = '99.0'\n")
    make_wheel(folder, "pillow", "99.0", package="PIL", body="__version__ = '99.0'\n")
    import numpy

    make_wheel(folder, "numpy", numpy.__version__, body="raise ImportError('the install folder shadowed QGIS numpy')\n")
    make_wheel(folder, "unettest_c", "1.0", requires=["jinja2>=2.0", "pillow>=1.0", "numpy", "unettest_b"])
    make_wheel(folder, "unettest_b", "2.0")
    before = _another_plugin_sees()
    target = installer.default_target(str(tmp_path / "profile"))
    lines = []
    installer.install(plan_for(target, folder, ["unettest_c==1.0"]), log=lines.append)
    left = set(os.listdir(target))
    assert {"unettest_c", "unettest_b"} <= left  # what QGIS lacks is there
    assert not {"jinja2", "PIL", "numpy"} & left and not [e for e in left if e.startswith(("jinja2-", "pillow-"))]
    assert any("QGIS's own copies serve" in line and "jinja2 " + before["jinja2"][0] in line for line in lines)
    after = _another_plugin_sees(target)
    assert after == before  # the same versions, from the same files
    assert "99.0" not in {v for v, _ in after.values()}


def test_a_package_qgis_has_too_old_goes_ahead_of_qgis_copy(tmp_path, clean_modules):
    """Where QGIS's version does not satisfy what the install needs (Debian 12's sympy 1.11 for torch's
    sympy>=1.13), the install's own copy stays in the folder, ahead of QGIS's."""
    jinja2 = pytest.importorskip("jinja2")
    folder = str(tmp_path / "wheels")
    make_wheel(folder, "jinja2", "99.0", body="__version__ = '99.0'\n")
    make_wheel(folder, "unettest_d", "1.0", requires=["jinja2>=50"])
    target = installer.default_target(str(tmp_path / "profile"))
    installer.install(plan_for(target, folder, ["unettest_d==1.0"]), log=lambda m: None)
    assert os.path.isdir(os.path.join(target, "jinja2"))
    seen = _another_plugin_sees(target)["jinja2"]
    assert seen[0] == "99.0" and seen[1].startswith(str(target)) and jinja2.__version__ != "99.0"


def pypi_like_mirror(root) -> str:
    """A package index laid out as PyPI's simple API (one page per project), holding stand-ins for the
    pinned torch and torchvision under their plain versions — no ``+cpu`` builds, as on PyPI."""
    simple = os.path.join(str(root), "simple")
    for name, version in installer.PINS.items():
        folder = os.path.join(simple, name)
        wheel = make_wheel(folder, name, version, body=f"__version__ = '{version}'\n")
        with open(os.path.join(folder, "index.html"), "w", encoding="utf-8") as f:
            f.write(f'<html><body><a href="{os.path.basename(wheel)}">{os.path.basename(wheel)}</a></body></html>\n')
    with open(os.path.join(simple, "index.html"), "w", encoding="utf-8") as f:
        f.write("<html><body>" + "".join(f'<a href="{n}/">{n}</a>' for n in installer.PINS) + "</body></html>\n")
    return "file://" + simple


def test_the_cpu_build_installs_from_a_pypi_like_mirror_without_cpu_builds(tmp_path, monkeypatch, clean_modules):
    """A company's PyPI mirror has no ``+cpu`` builds: with its index URL the plain pinned versions are asked
    for (and found), not ``torch==2.14.1+cpu`` that only PyTorch's own index holds."""
    monkeypatch.setenv("PIP_CONFIG_FILE", os.devnull)  # this machine's own pip settings stay out of it
    for var in ("PIP_FIND_LINKS", "PIP_INDEX_URL", "PIP_EXTRA_INDEX_URL"):
        monkeypatch.delenv(var, raising=False)
    index = pypi_like_mirror(tmp_path / "mirror")
    packages = installer.requirements("cpu", False, None, index)
    assert packages == [f"torch=={installer.PINS['torch']}", f"torchvision=={installer.PINS['torchvision']}"]
    target = installer.default_target(str(tmp_path / "profile"))
    plan = installer.InstallPlan(target=target, python=installer.python_executable(), packages=packages, index_url=index)
    lines = []
    versions = installer.install(plan, log=lines.append)
    assert versions == {"torch": installer.PINS["torch"], "torchvision": installer.PINS["torchvision"]}
    assert any("--index-url " + index in line and installer.CPU_INDEX not in line for line in lines)


def test_an_unreachable_index_is_named(tmp_path, monkeypatch):
    """pip's connection failure becomes a sentence naming the host it could not reach."""
    monkeypatch.setenv("PIP_CONFIG_FILE", os.devnull)
    monkeypatch.delenv("PIP_FIND_LINKS", raising=False)
    target = installer.default_target(str(tmp_path / "profile"))
    plan = installer.InstallPlan(target=target, python=installer.python_executable(), packages=["unettest_zz==1.0"],
                                 index_url="http://127.0.0.1:9/simple", extra_args=["--retries", "1", "--timeout", "5"])
    with pytest.raises(installer.InstallError, match=r"could not reach 127\.0\.0\.1 "):
        installer.install(plan, log=lambda m: None)
    assert not os.path.exists(target) and not leftovers(target)


def test_pytorch_index_out_of_reach_offers_pypi_and_says_the_size():
    """Where only PyTorch's index is blocked, the message says so, offers PyPI and what it costs on Linux."""
    explain = plugin_module("unet_plugin.install.pip")._explain
    pip_log = ["Looking in indexes: https://pypi.org/simple, https://download.pytorch.org/whl/cpu",
               "WARNING: Retrying (Retry(total=4, connect=None, read=None, redirect=None, status=None)) after connection "
               "broken by 'NewConnectionError(\"<pip._vendor.urllib3.connection.HTTPSConnection object at 0x7f>: Failed to "
               "establish a new connection: [Errno 111] Connection refused\")': /whl/cpu/torch/",
               "ERROR: Could not find a version that satisfies the requirement torch==2.14.1+cpu",
               "ERROR: HTTPSConnectionPool(host='download.pytorch.org', port=443): Max retries exceeded with url: /whl/cpu/torch/"]
    plan = installer.InstallPlan(target="/x", python="python3", packages=["torch==2.14.1+cpu"])
    message = explain(pip_log, plan)
    assert "could not reach download.pytorch.org" in message and "https://pypi.org/simple" in message
    assert "3 GB" in message and "CUDA" in message


def test_start_up_learns_what_is_missing_without_starting_a_python(monkeypatch):
    """QGIS's start-up asks only what is missing (the message bar): finding QGIS's Python for the terminal
    command runs an interpreter, which only the messages that show the command may pay for."""
    deps = plugin_module("unet_plugin.install.deps")
    environment = plugin_module("unet_plugin.install.environment")
    monkeypatch.setattr(deps, "installed_version", lambda name: None)
    started = []
    monkeypatch.setattr(environment, "python_executable", lambda: started.append(1) or "/qgis/python3")
    deps.install_command.cache_clear()
    message = deps.missing_dependencies(advice=False)
    assert "torch (not installed)" in message and "in a terminal" not in message and not started
    with_advice = deps.missing_dependencies()
    assert "in a terminal: " in with_advice and "/qgis/python3 -m unet_plugin install" in with_advice and started == [1]
    deps.missing_dependencies()  # dialogs opened again: the command is not looked for again
    assert started == [1]
    deps.install_command.cache_clear()
