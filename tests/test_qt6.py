"""Qt 6 readiness (QGIS 4), as far as it can be checked without a QGIS 4: the plugin's modules import
and its Qt code runs under the real PyQt6, with a stand-in ``qgis`` package whose ``qgis.PyQt`` is
PyQt6 (``tests/qt6_standin``). What QGIS's own API does under Qt 6 is not checked here."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest
from conftest import PACKAGE, ROOT

STANDIN = os.path.join(ROOT, "tests", "qt6_standin")

CODE = f"""
import importlib, json, sys
sys.path[:0] = [sys.argv[1], sys.argv[2]]
from PyQt6.QtWidgets import QApplication
app = QApplication([])
import qgis.PyQt.QtCore as qtcore
assert qtcore.PYQT_VERSION_STR.startswith("6"), qtcore.PYQT_VERSION_STR
names = [m for m in sys.argv[3:]]
for m in names:
    importlib.import_module("{PACKAGE}." + m)
base = importlib.import_module("{PACKAGE}.unet_plugin.processing.base")
from qgis.PyQt.QtCore import QMetaType
types = base.field_types()
assert all(isinstance(t, QMetaType.Type) for t in types.values()), types
params = importlib.import_module("{PACKAGE}.unet_plugin.params")
for spec in params.ALGORITHMS.values():
    for p in spec.params:
        base.qgis_parameter(p)
dialog = importlib.import_module("{PACKAGE}.unet_plugin.install.dialog")
d = dialog.InstallDialog(None, None)
d.show(); app.processEvents(); d.close()
plugin = importlib.import_module("{PACKAGE}.unet_plugin.plugin")
print(json.dumps(sorted(names)))
"""


def qt_modules() -> list[str]:
    """The plugin's modules that import Qt or QGIS (the others never see Qt)."""
    out = []
    for folder, _dirs, files in os.walk(os.path.join(ROOT, "unet_plugin")):
        for f in files:
            path = os.path.join(folder, f)
            if f.endswith(".py") and re.search(r"^\s*(from|import) qgis\b", open(path, encoding="utf-8").read(), re.M):
                rel = os.path.relpath(path, ROOT)[:-3].replace(os.sep, ".")
                out.append(rel[: -len(".__init__")] if rel.endswith(".__init__") else rel)
    return sorted(out)


def test_no_pyqt5_only_imports():
    """Qt only through qgis.PyQt (which QGIS maps to PyQt5 or PyQt6), and no PyQt5-only calls."""
    offenders = []
    for folder, _dirs, files in os.walk(os.path.join(ROOT, "unet_plugin")):
        for f in files:
            if f.endswith(".py"):
                text = open(os.path.join(folder, f), encoding="utf-8").read()
                # QVariant's field types only where QGIS before 3.38 needs them (processing.base.field_types)
                text = re.sub(r"\ndef field_types\(.*?(?=\n\S)", "", text, flags=re.S)
                for pattern in (r"^\s*(from|import) PyQt[56]", r"^\s*(from|import) sip\b", r"\.exec_\(",
                                r"QVariant\.(String|Int|Double|LongLong)"):
                    offenders += [f"{f}: {m.group(0).strip()}" for m in re.finditer(pattern, text, re.M)]
    assert not offenders, offenders


def test_the_plugin_imports_and_its_qt_code_runs_under_pyqt6():
    pytest.importorskip("PyQt6.QtWidgets")
    import conftest

    modules = qt_modules()
    assert "unet_plugin.install.dialog" in modules and "unet_plugin.processing.base" in modules
    run = subprocess.run([sys.executable, "-c", CODE, STANDIN, conftest._LINKS] + modules, capture_output=True, text=True,
                         timeout=300, env=dict(os.environ, QT_QPA_PLATFORM="offscreen"))
    assert run.returncode == 0, run.stderr[-3000:]
    assert run.stdout.strip().splitlines()[-1].count("unet_plugin") == len(modules)
