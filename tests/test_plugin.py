"""The plugin as QGIS sees it: provider, parameters (docs/contract.md), metadata, translation, zip, qgis_process, dialogs."""

import configparser
import os
import shutil
import subprocess
import sys

import pytest

from conftest import NC_IMAGE, NC_POLYGONS, NC_STRATA, PACKAGE, QGIS_PROCESS, ROOT

MODELS = ["unet:U-Net labelling round (add labels, fine-tune, classify, suggest)",
          "unet:U-Net workflow (export, train, classify)"]
DESIGN = {
    "unet:exporttrainingchips": ["INPUT", "BANDS", "LABELS", "CLASS_FIELD", "LABEL_RASTER", "MASK", "UNLABELED", "EXTENT",
                                 "CHIP_SIZE", "STRIDE", "MIN_LABELED", "MAX_NODATA", "APPEND", "OUTPUT", "FOOTPRINTS"],
    "unet:trainunet": ["CHIPS", "BACKBONE", "PRETRAINED", "ENCODER_WEIGHTS", "INIT_MODEL", "EPOCHS", "TIME_LIMIT",
                       "BATCH_SIZE", "LEARNING_RATE", "VALIDATION_PERCENT", "EARLY_STOPPING", "LOSS", "CLASS_BALANCING",
                       "AUGMENT", "FREEZE_ENCODER", "DEVICE", "PRECISION", "SEED", "OUTPUT_MODEL", "OUTPUT_REPORT", "OUTPUT_ONNX"],
    "unet:classifyraster": ["INPUT", "BANDS", "MODEL", "EXTENT", "TILE_SIZE", "OVERLAP", "BATCH_SIZE", "TTA", "DEVICE", "PRECISION", "MIN_AREA",
                            "OUTPUT", "OUTPUT_CONFIDENCE", "OUTPUT_PROBABILITIES", "OUTPUT_POLYGONS"],
    "unet:assessaccuracy": ["INPUT", "REFERENCE", "CLASS_FIELD", "REFERENCE_RASTER", "UNLABELED", "EXTENT", "OUTPUT_TABLE",
                            "OUTPUT_REPORT", "OUTPUT_AREAS"],
    "unet:createaccuracysample": ["INPUT", "SAMPLE_SIZE", "TARGET_STANDARD_ERROR", "EXPECTED_USERS_ACCURACY", "ALLOCATION",
                                  "MIN_PER_CLASS", "EXTENT", "SEED", "OUTPUT"],
    "unet:suggestlabelingareas": ["INPUT", "MODEL", "COUNT", "WINDOW_SIZE", "EXISTING_LABELS", "STRATEGY", "EXTENT", "DEVICE",
                                  "PRECISION", "SEED", "OUTPUT"],
}
OUTPUTS = {
    "unet:exporttrainingchips": {"OUTPUT", "FOOTPRINTS", "CHIP_COUNT"},
    "unet:trainunet": {"OUTPUT_MODEL", "OUTPUT_REPORT", "OUTPUT_ONNX", "VALIDATION_MIOU", "VALIDATION_ACCURACY", "EPOCHS_RUN"},
    "unet:classifyraster": {"OUTPUT", "OUTPUT_CONFIDENCE", "OUTPUT_PROBABILITIES", "OUTPUT_POLYGONS"},
    "unet:assessaccuracy": {"OUTPUT_TABLE", "OUTPUT_REPORT", "OUTPUT_AREAS", "OVERALL_ACCURACY", "OVERALL_ACCURACY_CI95", "KAPPA",
                            "MEAN_IOU"},
    "unet:createaccuracysample": {"OUTPUT", "POINT_COUNT"},
    "unet:suggestlabelingareas": {"OUTPUT", "WINDOW_COUNT"},
}
DEFAULTS = {
    "unet:exporttrainingchips": {"UNLABELED": "background", "CHIP_SIZE": 256, "STRIDE": 0, "MIN_LABELED": 0, "MAX_NODATA": 50},
    "unet:trainunet": {"BACKBONE": "resnet34", "PRETRAINED": True, "EPOCHS": 0, "BATCH_SIZE": 8, "LEARNING_RATE": 0,
                       "VALIDATION_PERCENT": 10, "EARLY_STOPPING": 5, "LOSS": "cross-entropy", "CLASS_BALANCING": False,
                       "AUGMENT": True, "FREEZE_ENCODER": False, "DEVICE": "auto", "SEED": 42,
                       "TIME_LIMIT": 0, "PRECISION": "auto"},
    "unet:classifyraster": {"TILE_SIZE": 0, "OVERLAP": 25, "BATCH_SIZE": 4, "TTA": False, "DEVICE": "auto", "MIN_AREA": 0, "PRECISION": "auto"},
    "unet:assessaccuracy": {"UNLABELED": "ignore"},
    "unet:createaccuracysample": {"SAMPLE_SIZE": 0, "TARGET_STANDARD_ERROR": 0.01, "EXPECTED_USERS_ACCURACY": 0.8,
                                  "ALLOCATION": "minimum-per-class", "MIN_PER_CLASS": 50, "SEED": 42},
    "unet:suggestlabelingareas": {"COUNT": 10, "WINDOW_SIZE": 0, "STRATEGY": "diverse", "DEVICE": "auto", "PRECISION": "auto",
                                  "SEED": 42},
}


def test_provider(provider):
    assert provider.id() == "unet" and provider.name() == "U-Net segmentation"
    assert provider.svgIconPath().endswith(".svg") and os.path.exists(provider.svgIconPath())
    assert sorted(a.id() for a in provider.algorithms()) == sorted(list(DESIGN) + MODELS)


def test_shipped_models_in_the_toolbox(provider):
    """The Modeler models in resources/ appear under the provider's "Workflows" group, valid and runnable."""
    models = [a for a in provider.algorithms() if a.id() in MODELS]
    assert len(models) == 2 and all(a.group() == "Workflows" for a in models)
    for model in models:
        ok, issues = model.validate()
        assert ok, issues
        assert model.create().id() == model.id()  # what the Toolbox runs is the registered algorithm


@pytest.mark.parametrize("alg_id", sorted(DESIGN))
def test_parameters_match_design(provider, alg_id):
    from qgis.core import QgsApplication

    alg = QgsApplication.processingRegistry().algorithmById(alg_id)
    assert [p.name() for p in alg.parameterDefinitions()] == DESIGN[alg_id]
    assert {o.name() for o in alg.outputDefinitions()} == OUTPUTS[alg_id]
    for p in alg.parameterDefinitions():
        assert p.help(), f"{alg_id} {p.name()} has no help text"
    for key, value in DEFAULTS[alg_id].items():
        assert alg.parameterDefinition(key).defaultValue() == value, key
    assert len(alg.shortHelpString()) > 200


def test_backbones_match_the_registry():
    from unet_segmentation.unet_plugin.ml.model.encoders import ENCODERS
    from unet_segmentation.unet_plugin.params import BACKBONES

    assert set(BACKBONES) <= set(ENCODERS)


def test_metadata_txt():
    cfg = configparser.ConfigParser()
    cfg.read(os.path.join(ROOT, "metadata.txt"), encoding="utf-8")
    g = cfg["general"]
    for key in ("name", "qgisMinimumVersion", "qgisMaximumVersion", "description", "about", "version", "author",
                "email", "repository", "tracker", "homepage", "tags", "category", "icon", "hasProcessingProvider", "changelog"):
        assert g.get(key, "").strip(), key
    assert g["qgisMinimumVersion"] == "3.22" and g["qgisMaximumVersion"] == "4.99"
    assert g["hasProcessingProvider"] == "yes"
    assert "torch" in g["about"] and "torchvision" in g["about"]
    assert os.path.exists(os.path.join(ROOT, g["icon"]))
    assert g["repository"].startswith("https://") and g["tracker"].startswith("https://")
    assert len([int(x) for x in g["version"].split(".")]) == 3


def test_translation_is_complete_and_used(qgis_app):
    import xml.etree.ElementTree as ET

    sys.path.insert(0, os.path.join(ROOT, "scripts"))
    import update_translations

    strings = update_translations.source_strings()
    messages = ET.parse(os.path.join(ROOT, "i18n", "unet_plugin_de.ts")).getroot().iter("message")
    translated = {m.findtext("source"): m.find("translation") for m in messages}
    for s in strings:
        t = translated.get(s)
        assert t is not None and t.text and t.get("type") is None, f"untranslated: {s[:60]}"
    assert os.path.exists(os.path.join(ROOT, "i18n", "unet_plugin_de.qm"))
    code = (
        "import os, sys; sys.path.insert(0, sys.argv[1])\n"
        "from qgis.core import QgsApplication, QgsSettings\n"
        "app = QgsApplication([], False); app.initQgis()\n"
        "QgsSettings().setValue('locale/userLocale', 'de_DE')\n"
        f"import {PACKAGE} as pkg\n"
        "p = pkg.classFactory(None); p.initProcessing()\n"
        "reg = QgsApplication.processingRegistry()\n"
        "print(reg.providerById('unet').name())\n"
        "for a in ('exporttrainingchips', 'trainunet', 'classifyraster'):\n"
        "    alg = reg.algorithmById('unet:' + a); print(alg.displayName()); print(alg.parameterDefinitions()[0].description())\n"
        "QgsSettings().remove('locale/userLocale')\n"
    )
    out = _python(code)
    assert "U-Net-Segmentierung" in out and "Trainingschips exportieren" in out and "U-Net trainieren" in out
    assert "Raster klassifizieren" in out and "Eingabebild" in out and "Chip-Ordner" in out


def _python(code, env=None):
    import conftest

    run = subprocess.run([sys.executable, "-c", code, conftest._LINKS], capture_output=True, text=True,
                         env=dict(os.environ, QT_QPA_PLATFORM="offscreen", **(env or {})), timeout=300)
    assert run.returncode == 0, run.stderr[-2000:]
    return run.stdout


def test_loads_and_explains_with_torch_blocked():
    code = (
        "import sys; sys.path.insert(0, sys.argv[1])\n"
        "sys.modules['torch'] = None; sys.modules['torchvision'] = None\n"
        "from qgis.core import QgsApplication\n"
        "app = QgsApplication([], False); app.initQgis()\n"
        f"import {PACKAGE} as pkg\n"
        "p = pkg.classFactory(None); p.initProcessing()\n"
        "reg = QgsApplication.processingRegistry()\n"
        "print(sorted(a.id() for a in reg.providerById('unet').algorithms()))\n"
        "print(reg.algorithmById('unet:trainunet').canExecute())\n"
        "print(reg.algorithmById('unet:classifyraster').canExecute())\n"
        "print(reg.algorithmById('unet:exporttrainingchips').canExecute())\n"
        "print('torch' in sys.modules and sys.modules['torch'] is not None)\n"
        "print(reg.algorithmById('unet:assessaccuracy').canExecute())\n"
        f"from {PACKAGE}.unet_plugin.core.accuracy import AccuracyConfig, assess\n"
        f"print(assess(AccuracyConfig(input={NC_STRATA!r}, reference_raster={NC_STRATA!r})).scores['accuracy'])\n"
    )
    lines = _python(code).strip().splitlines()
    assert lines[0] == repr(sorted(list(DESIGN) + MODELS))
    assert lines[5].startswith("(True,") and lines[6] == "1.0"  # Assess Accuracy runs without torch
    for line in lines[1:3]:
        assert line.startswith("(False,") and "torch" in line and "-m unet_plugin install" in line and "--user" not in line
    assert lines[3].startswith("(True,")  # export needs no torch
    assert lines[4] == "False"


def test_opening_a_dialog_does_not_import_torch():
    """canExecute (called on every double-click) finds torch without importing it (seconds, native libraries)."""
    code = (
        "import sys; sys.path.insert(0, sys.argv[1])\n"
        "from qgis.core import QgsApplication\n"
        "app = QgsApplication([], False); app.initQgis()\n"
        f"import {PACKAGE} as pkg\n"
        "p = pkg.classFactory(None); p.initProcessing()\n"
        "reg = QgsApplication.processingRegistry()\n"
        "print([reg.algorithmById(a).canExecute() for a in ('unet:trainunet', 'unet:classifyraster')])\n"
        "print(sorted(m for m in ('torch', 'torchvision', 'onnxruntime', 'triton') if sys.modules.get(m) is not None))\n"
    )
    lines = _python(code).strip().splitlines()
    assert lines[0] == "[(True, ''), (True, '')]"
    assert lines[1] == "[]"


def test_a_broken_torch_is_a_message_not_a_traceback(tmp_path):
    """torch found by canExecute but failing to load (wrong numpy ABI, missing native library)."""
    fake = tmp_path / "fake"
    (fake / "torch").mkdir(parents=True)
    (fake / "torch" / "__init__.py").write_text("raise OSError('libtorch_cpu.so: cannot open shared object file')\n")
    code = (
        "import sys; sys.path.insert(0, sys.argv[1]); sys.path.insert(0, sys.argv[2])\n"
        "from qgis.core import QgsApplication, QgsProcessingContext, QgsProcessingFeedback\n"
        "app = QgsApplication([], False); app.initQgis()\n"
        f"import {PACKAGE} as pkg\n"
        "p = pkg.classFactory(None); p.initProcessing()\n"
        "alg = QgsApplication.processingRegistry().algorithmById('unet:trainunet')\n"
        "print(alg.canExecute())\n"
        "from qgis.core import QgsProcessingException\n"
        "try:\n"
        "    alg.create().processAlgorithm({}, QgsProcessingContext(), QgsProcessingFeedback())\n"
        "except QgsProcessingException as exc:\n"
        "    print('MESSAGE', str(exc))\n"
    )
    import conftest

    run = subprocess.run([sys.executable, "-c", code, conftest._LINKS, str(fake)], capture_output=True, text=True,
                         env=dict(os.environ, QT_QPA_PLATFORM="offscreen"), timeout=300)
    out = run.stdout
    assert run.returncode == 0, run.stderr[-2000:]
    assert "MESSAGE" in out and "torch is installed but cannot be loaded" in out and "libtorch_cpu.so" in out
    assert "-m unet_plugin install" in out and "Traceback" not in out


def test_compiler_guard_only_where_llvm_is_loaded():
    """triton is marked absent only in a process with an LLVM mapped in (the desktop with Mesa)."""
    code = (
        "import sys, ctypes, ctypes.util; sys.path.insert(0, sys.argv[1])\n"
        f"from {PACKAGE}.unet_plugin.install import deps\n"
        "before = deps.guard_compiler_stack(), 'triton' in sys.modules\n"
        "import glob; ctypes.CDLL(sorted(glob.glob('/usr/lib/*/libLLVM*.so.*') + glob.glob('/usr/lib/*/libLLVM-*.so'))[0])\n"
        "after = deps.guard_compiler_stack(), sys.modules.get('triton', 0)\n"
        "import torch, torchvision, importlib.util\n"
        "print(before, after, importlib.util.find_spec('triton'), torch.utils._triton.has_triton())\n"
    )
    out = _python(code).strip().splitlines()[-1]
    assert out == "(False, False) (True, None) None False"


@pytest.mark.skipif(not QGIS_PROCESS, reason="qgis_process not installed")
def test_qgis_process_without_pytorch_says_once_how_to_install_it(installed_zip, tmp_path):
    """Without PyTorch, qgis_process fails at the parameter check with the advice once (not three times),
    and the advice is the plugin's own installer run by QGIS's Python — no pip --user (refused by
    Debian 12: externally managed), no bare ``python`` (Debian has python3)."""
    env = {k: v for k, v in installed_zip.items() if k != "PYTHONPATH"}  # QGIS's Python as it is: no torch
    run = subprocess.run([QGIS_PROCESS, "run", "unet:trainunet", "--", f"CHIPS={tmp_path}", f"OUTPUT_MODEL={tmp_path / 'm.pt'}"],
                         env=env, capture_output=True, text=True, timeout=300)
    out = run.stdout + run.stderr
    assert run.returncode != 0 and out.count("This algorithm needs PyTorch") == 1, out[-3000:]
    advice = out.split("in a terminal: ", 1)[1].splitlines()[0]
    assert "-m unet_plugin install" in advice and "--user" not in advice and " python " not in f" {advice} "
    folder = advice.split('cd "', 1)[1].split('"', 1)[0]
    assert os.path.isfile(os.path.join(folder, "unet_plugin", "__main__.py"))  # the command runs from there
    assert not os.path.exists(tmp_path / "m.pt")


@pytest.mark.skipif(not QGIS_PROCESS, reason="qgis_process not installed")
def test_qgis_process_lists_and_documents_the_algorithms(installed_zip):
    listing = subprocess.run([QGIS_PROCESS, "list"], env=installed_zip, capture_output=True, text=True, timeout=300).stdout
    for alg_id in DESIGN:
        assert alg_id in listing
    helptext = subprocess.run([QGIS_PROCESS, "help", "unet:trainunet"], env=installed_zip, capture_output=True, text=True, timeout=300).stdout
    for key in DESIGN["unet:trainunet"]:
        assert key in helptext
    assert "spatial blocks" in helptext  # the parameters' help


@pytest.mark.skipif(not QGIS_PROCESS, reason="qgis_process not installed")
def test_qgis_process_runs_the_chain(installed_zip, tmp_path):
    def run(alg, **params):
        args = [QGIS_PROCESS, "run", alg, "--"] + [f"{k}={v}" for k, v in params.items()]
        r = subprocess.run(args, env=installed_zip, capture_output=True, text=True, timeout=600)
        assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
        return r.stdout

    chips = tmp_path / "chips"
    out = run("unet:exporttrainingchips", INPUT=NC_IMAGE, LABEL_RASTER=NC_STRATA, CHIP_SIZE=64, OUTPUT=chips)
    assert "CHIP_COUNT" in out and (chips / "dataset.json").exists()
    model = tmp_path / "m.pt"
    out = run("unet:trainunet", CHIPS=chips, BACKBONE="resnet18", PRETRAINED="false", EPOCHS=1, BATCH_SIZE=4, LOSS="focal",
              DEVICE="cpu", OUTPUT_MODEL=model)
    assert "VALIDATION_MIOU" in out and model.exists()
    classes = tmp_path / "classes.tif"
    run("unet:classifyraster", INPUT=NC_IMAGE, MODEL=model, OUTPUT=classes)
    assert classes.exists() and (tmp_path / "classes.qml").exists()
    bad = subprocess.run([QGIS_PROCESS, "run", "unet:exporttrainingchips", "--", f"INPUT={NC_IMAGE}", "CHIP_SIZE=100",
                          f"LABEL_RASTER={NC_STRATA}", f"OUTPUT={tmp_path / 'bad'}"], env=installed_zip, capture_output=True, text=True, timeout=300)
    assert bad.returncode != 0 and "CHIP_SIZE" in bad.stdout + bad.stderr and "Traceback" not in bad.stdout + bad.stderr


def test_processing_run_with_polygons_and_footprints(provider, tmp_path):
    import processing
    from qgis.core import QgsVectorLayer

    res = processing.run("unet:exporttrainingchips", {
        "INPUT": NC_IMAGE, "LABELS": NC_POLYGONS, "CLASS_FIELD": "label", "UNLABELED": "ignore", "CHIP_SIZE": 64,
        "STRIDE": 32, "OUTPUT": str(tmp_path / "c"), "FOOTPRINTS": str(tmp_path / "fp.gpkg")})
    assert res["CHIP_COUNT"] > 20
    fp = QgsVectorLayer(res["FOOTPRINTS"], "fp")
    assert fp.featureCount() == res["CHIP_COUNT"] and fp.fields().lookupField("share_2") >= 0


def test_processing_errors_name_the_parameter(provider, tmp_path):
    import processing
    from qgis.core import QgsProcessingException

    with pytest.raises(QgsProcessingException, match="LABELS: give exactly one"):
        processing.run("unet:exporttrainingchips", {"INPUT": NC_IMAGE, "OUTPUT": str(tmp_path / "c")})


def test_run_and_load_results_styles_the_layer(provider, tiny_model, tmp_path, loading_iface):
    import processing
    from qgis.core import QgsProcessingContext, QgsProcessingFeedback, QgsProject

    project = QgsProject.instance()
    context = QgsProcessingContext()
    context.setProject(project)
    out = str(tmp_path / "styled.tif")
    res = processing.runAndLoadResults("unet:classifyraster", {"INPUT": NC_IMAGE, "MODEL": tiny_model[0], "OUTPUT": out},
                                       feedback=QgsProcessingFeedback(), context=context)
    layers = [lyr for lyr in project.mapLayers().values() if lyr.source() == res["OUTPUT"]]
    assert layers, "the class raster was not loaded"
    renderer = layers[0].renderer()
    assert renderer.type() == "paletted"
    from unet_segmentation.unet_plugin.ml.model.modelfile import read_model_file

    classes = read_model_file(tiny_model[0])["metadata"]["classes"]
    entries = {c.value: (c.label, c.color.name()) for c in renderer.classes()}
    for c in classes:
        assert entries[c["value"]][0] == c["name"]
        assert entries[c["value"]][1] == "#{:02x}{:02x}{:02x}".format(*c["color"])
    project.removeAllMapLayers()


@pytest.mark.parametrize("alg_id", sorted(DESIGN))
def test_toolbox_dialog_renders(provider, alg_id, tmp_path, monkeypatch):
    """Build the dialog as a double-click in the Toolbox does, offscreen, and render it to a PNG."""
    import processing.gui.AlgorithmDialog as dialog_module
    import processing.gui.ParametersPanel as panel_module
    from processing.gui.AlgorithmDialog import AlgorithmDialog

    # pytest-qgis's stand-in iface has no browser model; a headless QGIS has no iface at all
    monkeypatch.setattr(panel_module, "iface", None, raising=False)
    monkeypatch.setattr(dialog_module, "iface", None, raising=False)
    from qgis.core import QgsApplication
    from qgis.PyQt.QtWidgets import QLabel

    alg = QgsApplication.processingRegistry().algorithmById(alg_id)
    dialog = AlgorithmDialog(alg.create(), False, None)
    dialog.resize(900, 1000)
    dialog.show()
    QgsApplication.processEvents()
    png = tmp_path / (alg_id.split(":")[1] + ".png")
    assert dialog.grab().save(str(png))
    assert png.stat().st_size > 10000
    labels = " ".join(w.text() for w in dialog.findChildren(QLabel))
    assert alg.parameterDefinitions()[0].description() in labels
    target = os.environ.get("UNET_DIALOG_PNG_DIR")
    if target:  # scripts/screenshots.sh refreshes docs/ this way
        shutil.copy(png, target)
    dialog.close()


def test_processing_extent_is_honoured(provider, tiny_model, tmp_path):
    import processing
    from osgeo import gdal

    out = str(tmp_path / "part.tif")
    processing.run("unet:classifyraster", {"INPUT": NC_IMAGE, "MODEL": tiny_model[0], "OUTPUT": out,
                                           "EXTENT": "632529,635379,218994,221844"})
    ds = gdal.Open(out)
    assert (ds.RasterXSize, ds.RasterYSize) == (100, 100)
    assert ds.GetGeoTransform()[0] == 632529


@pytest.mark.skipif(not QGIS_PROCESS, reason="qgis_process not installed")
def test_qgis_process_takes_enum_names_and_refuses_positions(installed_zip, tmp_path):
    """`UNLABELED=ignore` works; `UNLABELED=1` (a position) is refused before any work, naming the key."""
    helptext = subprocess.run([QGIS_PROCESS, "help", "unet:trainunet"], env=installed_zip, capture_output=True, text=True,
                              timeout=300).stdout
    for name in ("resnet18", "resnet152", "cross-entropy+dice", "focal", "cuda"):
        assert name in helptext
    good = subprocess.run([QGIS_PROCESS, "run", "unet:exporttrainingchips", "--", f"INPUT={NC_IMAGE}", f"LABELS={NC_POLYGONS}",
                           "CLASS_FIELD=label", "UNLABELED=ignore", "CHIP_SIZE=64", f"OUTPUT={tmp_path / 'ok'}"],
                          env=installed_zip, capture_output=True, text=True, timeout=300)
    assert good.returncode == 0, good.stdout[-2000:] + good.stderr[-2000:]
    import json

    assert json.load(open(tmp_path / "ok" / "dataset.json"))["unlabeled"] == "ignore"
    bad = subprocess.run([QGIS_PROCESS, "run", "unet:exporttrainingchips", "--", f"INPUT={NC_IMAGE}", f"LABELS={NC_POLYGONS}",
                          "CLASS_FIELD=label", "UNLABELED=1", "CHIP_SIZE=64", f"OUTPUT={tmp_path / 'bad'}"],
                         env=installed_zip, capture_output=True, text=True, timeout=300)
    assert bad.returncode != 0 and "UNLABELED" in bad.stdout + bad.stderr and not (tmp_path / "bad").exists()


def test_run_and_load_results_styles_the_polygons(provider, tiny_model, tmp_path, loading_iface):
    """OUTPUT_POLYGONS loads into QGIS categorized by class, with the model's names and colours."""
    import processing
    from qgis.core import QgsProcessingContext, QgsProcessingFeedback, QgsProject

    project = QgsProject.instance()
    context = QgsProcessingContext()
    context.setProject(project)
    res = processing.runAndLoadResults("unet:classifyraster", {
        "INPUT": NC_IMAGE, "MODEL": tiny_model[0], "OUTPUT": str(tmp_path / "c.tif"), "MIN_AREA": 30,
        "OUTPUT_POLYGONS": str(tmp_path / "c_polygons.gpkg")}, feedback=QgsProcessingFeedback(), context=context)
    layers = [lyr for lyr in project.mapLayers().values() if lyr.source().split("|")[0] == res["OUTPUT_POLYGONS"]]
    assert layers and layers[0].featureCount() > 10
    renderer = layers[0].renderer()
    assert renderer.type() == "categorizedSymbol" and renderer.classAttribute() == "class_value"
    from unet_segmentation.unet_plugin.ml.model.modelfile import read_model_file

    classes = read_model_file(tiny_model[0])["metadata"]["classes"]
    cats = {int(c.value()): (c.label(), c.symbol().color().name()) for c in renderer.categories()}
    for c in classes:
        assert cats[c["value"]] == (c["name"], "#{:02x}{:02x}{:02x}".format(*c["color"]))
    project.removeAllMapLayers()
