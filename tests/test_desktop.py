"""The real QGIS desktop under Xvfb: dialogs open, the chain runs, QGIS stays alive.

``qgis_process`` and the offscreen tests do not load what the desktop loads (Mesa's OpenGL
driver and, with it, the system LLVM), so they cannot show a crash there; this test can
(it caught torch's triton dying beside Mesa's LLVM on the first dialog).
"""

import json
import os
import shutil
import subprocess
import zipfile

import pytest
from conftest import NC, PACKAGE, ROOT, qgis_python_path

QGIS = shutil.which("qgis")
SCREENSHOTS = ("desktop.png", "loop_suggest.png", "loop_labelled.png", "loop_next.png")
XVFB_RUN = shutil.which("xvfb-run")


@pytest.fixture(scope="module")
def desktop_run(installed_zip, tmp_path_factory):
    """One desktop session: fresh profile, plugin from the zip, tests/desktop/desktop_session.py."""
    profiles = tmp_path_factory.mktemp("profiles")
    default = profiles / "profiles" / "default"
    plugins = default / "python" / "plugins"
    plugins.mkdir(parents=True)
    zipfile.ZipFile(os.path.join(ROOT, "dist", f"{PACKAGE}.zip")).extractall(plugins)
    (default / "QGIS").mkdir()
    # the plugin enabled, and no first-run dialogs in the way
    (default / "QGIS" / "QGIS3.ini").write_text(
        f"[PythonPlugins]\n{PACKAGE}=true\n\n[qgis]\ncheckVersion=false\nshowTips322=false\nshowTips=false\n"
        "allowCrashReporting=false\n\n[core]\nNewsFeed\\httpsfeedqgisorg\\disabled=true\n")
    out = tmp_path_factory.mktemp("desktop")
    env = dict(os.environ, UNET_DESKTOP_OUT=str(out), UNET_DESKTOP_DATA=NC, PYTHONPATH=qgis_python_path(),
               QGIS_PLUGINPATH="", HOME=str(profiles), PYTHONFAULTHANDLER="1")
    env.pop("QT_QPA_PLATFORM", None)  # the real xcb platform, as on a desktop
    cmd = [XVFB_RUN, "-a", "-s", "-screen 0 1600x1000x24", QGIS, "--nologo", "--noversioncheck", "--profiles-path",
           str(profiles), "--code", os.path.join(ROOT, "tests", "desktop", "desktop_session.py")]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
    path = out / "result.json"
    result = json.loads(path.read_text()) if path.exists() else {}
    return proc, result, out


@pytest.mark.skipif(not (QGIS and XVFB_RUN), reason="the QGIS desktop and xvfb-run are installed by scripts/setup.sh")
def test_desktop_dialogs_and_chain(desktop_run):
    proc, result, out = desktop_run
    log = (proc.stdout + proc.stderr)[-4000:]
    assert result.get("finished"), f"QGIS died or the session failed (rc {proc.returncode}): " \
                                    f"{result.get('exception') or result.get('steps', [])[-1:]}\n{log}"
    steps = {}
    for s in result["steps"]:
        steps.setdefault(s["step"], []).append(s)
    assert result["plugin_loaded"] and steps["provider"][0]["found"]
    for d in steps["dialog"]:
        assert d["can_execute"] and d["shown"], d
        assert not d["torch_imported"], f"opening {d['alg']} imported torch"
    assert steps["export"][0]["chips"] > 20
    assert steps["train"][0]["model"]
    if result["llvm_loaded"]:  # Mesa's LLVM is in the process: the guard must have kept triton out
        assert steps["train"][0]["triton"] == "None"
    cls = steps["classify"][0]
    assert cls["loaded"] and cls["renderer"] == "paletted"
    assert cls["legend"] == {"1": "developed", "2": "agriculture", "3": "herbaceous", "4": "shrubland", "5": "forest",
                             "6": "water", "7": "sediment"}
    assert steps["reload"][0]["unloaded"] and steps["reload"][0]["reloaded"]
    assert not result["errors"], result["errors"]
    for name in SCREENSHOTS:
        assert (out / name).stat().st_size > 20000, name
    target = os.environ.get("UNET_DIALOG_PNG_DIR")
    if target:  # scripts/screenshots.sh refreshes docs/ this way
        for name in SCREENSHOTS:
            shutil.copy(out / name, os.path.join(target, name))


@pytest.mark.skipif(not (QGIS and XVFB_RUN), reason="the QGIS desktop and xvfb-run are installed by scripts/setup.sh")
def test_desktop_labelling_round(desktop_run):
    """One round of the labelling loop in the desktop: the proposed windows load editable, styled and
    labelled by rank; the analyst's polygons go through the shipped Modeler model, which adds chips to
    the folder, fine-tunes, classifies, and proposes the next windows away from the labelled ones."""
    _, result, _ = desktop_run
    steps = {s["step"]: s for s in result.get("steps", [])}
    assert "round" in steps, result.get("exception") or result.get("steps", [])[-1:]
    first = steps["suggest"]
    assert first["loaded"] and first["editable"] and first["labelled_by"] == "rank"
    assert first["ranks"] == [1, 2, 3, 4, 5, 6] and first["overlaps"] == 0
    assert {"rank", "score", "uncertainty", "class"} <= set(first["fields"])
    assert steps["labelled"]["loaded"] and steps["labelled"]["polygons"] >= 6
    r = steps["round"]
    assert r["opened"] and r["appended"] and r["chips_after"] > r["chips_before"] and r["model"]
    assert r["classes_loaded"] and r["classes_renderer"] == "paletted"
    assert r["next_loaded"] and r["next_labelled_by"] == "rank"
    assert r["next_count"] == 6 and r["next_on_labelled"] == 0
