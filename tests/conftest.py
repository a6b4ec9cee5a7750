"""Shared fixtures: the plugin importable under its package name, real data, a tiny trained model."""

from __future__ import annotations

import atexit
import gc
import importlib
import importlib.util
import os
import shutil
import subprocess
import sys
import sysconfig
import tempfile
import zipfile

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DATA = os.path.join(ROOT, "tests", "data")
NC = os.path.join(DATA, "nc_landsat7")
BEFL = os.path.join(DATA, "befl_fields_s2")
NC_IMAGE = os.path.join(NC, "nc_lsat7_2000_6band.tif")
NC_STRATA = os.path.join(NC, "strata.tif")
NC_POLYGONS = os.path.join(NC, "landsat96_polygons.shp")
BEFL_IMAGE = os.path.join(BEFL, "befl_s2_b08_b04_b03.tif")
BEFL_POLYGONS = os.path.join(BEFL, "fields_polygons.gpkg")
BEFL_LOCATIONS = os.path.join(BEFL, "fields_locations.gpkg")
PACKAGE = "unet_segmentation"
QGIS_PROCESS = shutil.which("qgis_process.bin") or shutil.which("qgis_process")

# The checkout may have any folder name; tests import it as the plugin package, as QGIS does.
_LINKS = tempfile.mkdtemp(prefix="unet-plugin-path-")
os.symlink(ROOT, os.path.join(_LINKS, PACKAGE))
sys.path.insert(0, _LINKS)
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
# exported ONNX graphs go to a cache of the test run, not the user's (child processes inherit it)
os.environ["UNET_CACHE_DIR"] = tempfile.mkdtemp(prefix="unet-test-cache-")
# both removed when the run ends (a cache holds about 400 MB of graphs; runs must not fill the disk)
atexit.register(shutil.rmtree, os.environ["UNET_CACHE_DIR"], True)
atexit.register(os.rmdir, _LINKS)  # runs last: after the link to the checkout (never the checkout) is gone
atexit.register(os.unlink, os.path.join(_LINKS, PACKAGE))


def qgis_python_path() -> str:
    """PYTHONPATH for QGIS processes (qgis_process, the desktop) started by the tests: the test venv's
    packages and the folder PyTorch is imported from here (on QGIS 3.40, the dependency folder the
    plugin's installer filled: scripts/trixie.sh)."""
    paths = [sysconfig.get_paths()["purelib"]]
    spec = importlib.util.find_spec("torch")
    if spec is not None and spec.origin:
        paths.append(os.path.dirname(os.path.dirname(spec.origin)))
    return os.pathsep.join(dict.fromkeys(paths))


def plugin_module(name: str = ""):
    """Import ``unet_segmentation[.name]``."""
    return importlib.import_module(PACKAGE + ("." + name if name else ""))


@pytest.fixture(scope="session", autouse=True)
def _collect_before_qgis_exits(qgis_app):
    """Free GDAL objects still held in reference cycles (the tracebacks of expected errors keep
    their frames) before pytest-qgis calls exitQgis(): freed after it, they crash the interpreter
    at exit (rc 139 with every test passed)."""
    yield
    gc.collect()


@pytest.fixture(scope="session")
def plugin_path():
    return _LINKS


@pytest.fixture(scope="session")
def provider(qgis_app, qgis_processing):
    """The plugin loaded as QGIS loads it: classFactory, then initProcessing."""
    from qgis.core import QgsApplication

    plugin = plugin_module().classFactory(None)
    plugin.initProcessing()
    yield QgsApplication.processingRegistry().providerById("unet")
    plugin.unload()


@pytest.fixture(scope="session")
def strata_chips(tmp_path_factory):
    """NC Landsat chips (64 px, stride 32) labelled from the 7-class land-cover raster."""
    from unet_segmentation.unet_plugin.core.chips import ExportConfig, export_chips

    out = str(tmp_path_factory.mktemp("chips") / "strata")
    export_chips(ExportConfig(input=NC_IMAGE, output=out, label_raster=NC_STRATA, chip_size=64, stride=32))
    return out


@pytest.fixture(scope="session")
def tiny_model(strata_chips, tmp_path_factory):
    """A resnet18 U-Net trained for a few epochs on the strata chips (seconds on a CPU)."""
    from unet_segmentation.unet_plugin.ml.train import TrainConfig, train

    path = str(tmp_path_factory.mktemp("model") / "nc.pt")
    result = train(TrainConfig(chips=strata_chips, output_model=path, backbone="resnet18", pretrained=False,
                               epochs=8, batch_size=8, learning_rate=2e-3, validation_percent=15,
                               early_stopping=0, class_balancing=False), log=lambda m: None)
    return path, result


@pytest.fixture(scope="session")
def installed_zip(tmp_path_factory):
    """The plugin zip built by the packaging command, unpacked into a fresh plugin path."""
    subprocess.run(["bash", os.path.join(ROOT, "scripts", "package.sh")], check=True, capture_output=True, timeout=120)
    zpath = os.path.join(ROOT, "dist", f"{PACKAGE}.zip")
    names = zipfile.ZipFile(zpath).namelist()
    assert {n.split("/")[0] for n in names} == {PACKAGE}
    assert not [n for n in names if "/tests/" in n or "__pycache__" in n or n.endswith((".pyc", "resources.py"))]
    assert f"{PACKAGE}/metadata.txt" in names and f"{PACKAGE}/i18n/unet_plugin_de.qm" in names
    plugins = tmp_path_factory.mktemp("plugins")
    zipfile.ZipFile(zpath).extractall(plugins)
    home = tmp_path_factory.mktemp("home")
    # a fresh profile of its own, so the plugin is enabled here and nowhere else
    env = dict(os.environ, QGIS_PLUGINPATH=str(plugins), QT_QPA_PLATFORM="offscreen", HOME=str(home),
               QGIS_CUSTOM_CONFIG_PATH=str(home),
               PYTHONPATH=qgis_python_path())
    enable = subprocess.run([QGIS_PROCESS, "plugins", "enable", PACKAGE], env=env, capture_output=True, text=True, timeout=300)
    assert enable.returncode == 0, enable.stdout + enable.stderr
    return env


def export_befl_fields(folder, stride: int = 48) -> str:
    """Belgian field chips (64 px): fields class 1, background inside the labelled windows, 255 outside."""
    from osgeo import gdal, ogr
    from unet_segmentation.unet_plugin.core.chips import ExportConfig, export_chips
    from unet_segmentation.unet_plugin.core.labels import write_polygons

    os.makedirs(folder, exist_ok=True)
    wkt = gdal.Open(BEFL_IMAGE).GetProjection()
    labels, mask = os.path.join(folder, "l.gpkg"), os.path.join(folder, "m.gpkg")
    for src_path, out in ((BEFL_POLYGONS, labels), (BEFL_LOCATIONS, mask)):
        src = ogr.Open(src_path)
        write_polygons(out, wkt, [(f.GetGeometryRef().ExportToWkb(), 1) for f in src.GetLayer(0) if f.GetGeometryRef()])
    out = os.path.join(folder, "chips")
    export_chips(ExportConfig(input=BEFL_IMAGE, output=out, labels=labels, mask=mask, unlabeled="background",
                              classes=[{"value": 1, "name": "field", "color": [0, 200, 0]}], chip_size=64, stride=stride))
    return out


def rasterize_like(ref_path: str, vector_path: str, attribute: str):
    """The vector's ``attribute`` burnt by pixel centre onto ``ref_path``'s grid (255 elsewhere), as an array."""
    from osgeo import gdal, ogr

    ref = gdal.Open(ref_path)
    out = gdal.GetDriverByName("MEM").Create("", ref.RasterXSize, ref.RasterYSize, 1, gdal.GDT_Byte)
    out.SetGeoTransform(ref.GetGeoTransform())
    out.SetProjection(ref.GetProjection())
    out.GetRasterBand(1).Fill(255)
    src = ogr.Open(vector_path)
    gdal.RasterizeLayer(out, [1], src.GetLayer(0), options=[f"ATTRIBUTE={attribute}"])
    return out.ReadAsArray()


# ---- the command line without QGIS (test_cli, test_safety) ----

BLOCK_QGIS = "raise ImportError('qgis is blocked in this test: the command line must not need it')\n"


@pytest.fixture(scope="session")
def no_qgis(tmp_path_factory):
    """A PYTHONPATH entry whose ``qgis`` package refuses to import, and an ``env(**extra)`` maker."""
    folder = tmp_path_factory.mktemp("no_qgis")
    (folder / "qgis").mkdir()
    (folder / "qgis" / "__init__.py").write_text(BLOCK_QGIS)

    def env(**extra):
        e = {k: v for k, v in os.environ.items() if k not in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT")}
        e["PYTHONPATH"] = os.pathsep.join([str(folder)] + [p for p in [extra.pop("PYTHONPATH", "")] if p])
        e.pop("QT_QPA_PLATFORM", None)
        e.update(extra)
        return e
    return env


def cli(env, *args, torchrun: int = 0, timeout: int = 600):
    """Run ``python -m unet_plugin ARGS`` (or under torchrun with ``torchrun`` processes) from the repository root."""
    if torchrun:
        cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={torchrun}", "-m", "unet_plugin"]
    else:
        cmd = [sys.executable, "-m", "unet_plugin"]
    return subprocess.run(cmd + [str(a) for a in args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout)


@pytest.fixture
def loading_iface(qgis_iface):
    """pytest-qgis's interface with a real layer tree view: processing.runAndLoadResults of QGIS 3.44
    hands ``iface.layerTreeView()`` to C++, which refuses a stand-in."""
    from qgis.core import QgsLayerTreeModel, QgsProject
    from qgis.gui import QgsLayerTreeView

    view = QgsLayerTreeView()
    model = QgsLayerTreeModel(QgsProject.instance().layerTreeRoot())
    view.setModel(model)
    view._model = model  # kept alive as long as the view
    qgis_iface.layerTreeView = lambda: view
    yield qgis_iface
    del qgis_iface.layerTreeView
