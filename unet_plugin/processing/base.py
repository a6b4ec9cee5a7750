"""What every algorithm of the provider shares: its parameters built from :mod:`..params`, error
reporting, and the resolution of QGIS parameters into the values :mod:`..run` works with."""

from __future__ import annotations

import os
import traceback

from qgis.core import (
    QgsCoordinateReferenceSystem, QgsFeature, QgsFeatureRequest, QgsFeatureSink, QgsField, QgsFields, QgsGeometry,
    QgsProcessing, QgsProcessingAlgorithm, QgsProcessingContext, QgsProcessingException,
    QgsProcessingOutputLayerDefinition, QgsProcessingOutputNumber,
    QgsProcessingParameterBand, QgsProcessingParameterBoolean, QgsProcessingParameterDefinition,
    QgsProcessingParameterEnum, QgsProcessingParameterExtent, QgsProcessingParameterFeatureSink,
    QgsProcessingParameterFeatureSource, QgsProcessingParameterField, QgsProcessingParameterFile,
    QgsProcessingParameterFileDestination, QgsProcessingParameterFolderDestination, QgsProcessingParameterNumber,
    QgsProcessingParameterRasterDestination, QgsProcessingParameterRasterLayer, QgsProcessingParameterVectorDestination,
    QgsWkbTypes,
)
from qgis.PyQt.QtGui import QIcon

from .. import params as P
from ..core.errors import Canceled, UserInputError
from ..i18n import tr
from ..inputs import Feedback
from ..run import RUNNERS

RESOURCES = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(__file__))), "resources")
ICON = os.path.join(RESOURCES, "icon.svg")


def field_types() -> dict:
    """Our field kinds as QGIS field types: ``QMetaType.Type`` from QGIS 3.38 (the only kind under Qt 6 /
    QGIS 4), ``QVariant.Type`` before (all that 3.22 accepts)."""
    from qgis.core import Qgis

    if Qgis.QGIS_VERSION_INT >= 33800:
        from qgis.PyQt.QtCore import QMetaType

        kinds = QMetaType.Type
        return {"str": kinds.QString, "int": kinds.Int, "int64": kinds.LongLong, "float": kinds.Double}
    from qgis.PyQt.QtCore import QVariant

    return {"str": QVariant.String, "int": QVariant.Int, "int64": QVariant.LongLong, "float": QVariant.Double}


def advanced(param):
    """Mark a parameter as advanced (collapsed in the dialog) and return it."""
    param.setFlags(param.flags() | QgsProcessingParameterDefinition.Flag.FlagAdvanced)
    return param


def enum_param(key: str, description: str, options, default: str):
    """An enum parameter whose values are its option names (``BACKBONE=resnet34``), not positions.

    Static strings (QGIS ≥ 3.18) are what ``qgis_process``, scripts and ``.model3`` files store,
    so inserting an option never changes what a saved model or script means.
    """
    return QgsProcessingParameterEnum(key, description, list(options), defaultValue=default, usesStaticStrings=True)


def with_help(param, text: str):
    """Attach help text to a parameter (shown by ``qgis_process help`` and as a tooltip)."""
    param.setHelp(text)
    return param


def qgis_parameter(p: P.Param):
    """The QGIS parameter of a declaration (label and help translated)."""
    label, opt, Number = tr(p.label), p.optional, QgsProcessingParameterNumber
    kind = p.kind
    if kind == "raster":
        q = QgsProcessingParameterRasterLayer(p.key, label, optional=opt)
    elif kind == "bands":
        q = QgsProcessingParameterBand(p.key, label, None, p.parent, optional=opt, allowMultiple=True)
    elif kind == "polygons":
        q = QgsProcessingParameterFeatureSource(p.key, label, [QgsProcessing.SourceType.TypeVectorPolygon], optional=opt)
    elif kind == "features":
        q = QgsProcessingParameterFeatureSource(
            p.key, label, [QgsProcessing.SourceType.TypeVectorPolygon, QgsProcessing.SourceType.TypeVectorPoint], optional=opt)
    elif kind == "field":
        q = QgsProcessingParameterField(p.key, label, None, p.parent, QgsProcessingParameterField.DataType.Any, optional=opt)
    elif kind == "enum":
        q = enum_param(p.key, label, p.options, p.default)
    elif kind == "extent":
        q = QgsProcessingParameterExtent(p.key, label, optional=opt)
    elif kind in ("int", "float"):
        bounds = {}
        if p.minimum is not None:
            bounds["minValue"] = p.minimum
        if p.maximum is not None:
            bounds["maxValue"] = p.maximum
        q = Number(p.key, label, Number.Type.Integer if kind == "int" else Number.Type.Double, p.default, opt, **bounds)
    elif kind == "bool":
        q = QgsProcessingParameterBoolean(p.key, label, p.default, opt)
    elif kind == "folder":
        q = QgsProcessingParameterFile(p.key, label, QgsProcessingParameterFile.Behavior.Folder, optional=opt)
    elif kind == "file":
        q = QgsProcessingParameterFile(p.key, label, extension=p.extension, optional=opt)
    elif kind == "folder_out":
        q = QgsProcessingParameterFolderDestination(p.key, label, optional=opt)
    elif kind == "file_out":
        q = QgsProcessingParameterFileDestination(p.key, label, tr(p.file_filter), optional=opt, createByDefault=p.create_by_default)
    elif kind == "raster_out":
        q = QgsProcessingParameterRasterDestination(p.key, label, optional=opt, createByDefault=p.create_by_default)
    elif kind == "vector_out":
        q = QgsProcessingParameterVectorDestination(p.key, label, QgsProcessing.SourceType.TypeVectorPolygon, optional=opt,
                                                    createByDefault=p.create_by_default)
    elif kind in ("sink", "point_sink", "table"):
        source_type = {"sink": QgsProcessing.SourceType.TypeVectorPolygon, "point_sink": QgsProcessing.SourceType.TypeVectorPoint,
                       "table": QgsProcessing.SourceType.TypeVector}[kind]
        q = QgsProcessingParameterFeatureSink(p.key, label, source_type, optional=opt, createByDefault=p.create_by_default)
    else:  # pragma: no cover - a declaration error
        raise ValueError(f"unknown parameter kind {kind!r} of {p.key}")
    with_help(q, tr(p.help))
    return advanced(q) if p.advanced else q


class UnetAlgorithm(QgsProcessingAlgorithm):
    """An algorithm of :mod:`..params`: subclasses only name their declaration (``spec``)."""

    spec: P.Algorithm

    @property
    def needs_torch(self) -> bool:
        return self.spec.needs_torch

    def tr(self, text: str) -> str:
        return tr(text)

    def createInstance(self):
        return type(self)()

    def name(self):
        return self.spec.id

    def displayName(self):
        return tr(self.spec.title)

    def shortHelpString(self):
        return tr(self.spec.help)

    def icon(self):
        return QIcon(ICON)

    def helpUrl(self):
        return "https://github.com/qgis-unet/qgis-unet#readme"

    def initAlgorithm(self, config=None):
        for p in self.spec.params:
            self.addParameter(qgis_parameter(p))
        for o in self.spec.outputs:
            self.addOutput(QgsProcessingOutputNumber(o.key, tr(o.label)))

    def canExecute(self):
        if self.needs_torch:
            from ..install.deps import missing_dependencies

            missing = missing_dependencies()
            if missing:
                return False, tr("This algorithm needs PyTorch: ") + missing
        return True, ""

    def checkParameterValues(self, parameters, context):
        """Missing PyTorch is said here, once, before the run: ``qgis_process`` reports a failed check
        as one line, where an exception from processAlgorithm comes out three times."""
        ok, message = self.canExecute()
        if not ok:
            return False, message
        return super().checkParameterValues(parameters, context)

    def processAlgorithm(self, parameters, context, feedback):
        ok, message = self.canExecute()
        if not ok:
            raise QgsProcessingException(message)
        if self.needs_torch:
            from ..install.deps import import_ml

            failure = import_ml()  # here, not in canExecute: opening a dialog must stay instant
            if failure:
                raise QgsProcessingException(tr("This algorithm needs PyTorch: ") + failure)
        try:
            fb = Feedback(progress_of(feedback), feedback.isCanceled, log_of(feedback), warn_of(feedback))
            outputs = RUNNERS[self.spec.id](QgisInputs(self, parameters, context), fb)
            self.postprocess(outputs, context)
            return outputs
        except UserInputError as exc:
            # the frames of a failed run hold open GDAL datasets: free them now, not whenever
            # the garbage collector breaks the traceback's cycles (perhaps after GDAL shut down)
            traceback.clear_frames(exc.__traceback__)
            prefix = f"{exc.parameter}: " if exc.parameter else ""
            raise QgsProcessingException(prefix + exc.message) from None
        except Canceled as exc:
            traceback.clear_frames(exc.__traceback__)
            raise QgsProcessingException(tr("Canceled; partial outputs were removed.")) from None

    def postprocess(self, outputs: dict, context) -> None:
        """After a successful run, e.g. style the layers QGIS will load."""


class QgisInputs:
    """The :class:`..inputs.Inputs` of a Processing run: parameters resolved by QGIS."""

    def __init__(self, alg: QgsProcessingAlgorithm, parameters: dict, context):
        self.alg, self.parameters, self.context = alg, parameters, context
        self._crs = {}  # WKT → the raster layer's own CRS object (no round trip through WKT)

    def _crs_of(self, wkt: str):
        return self._crs.get(wkt) or QgsCoordinateReferenceSystem.fromWkt(wkt)

    def _given(self, key: str) -> bool:
        return self.parameters.get(key) not in (None, "")

    def value(self, key: str):
        p, a, prm, ctx = self.alg.spec.param(key), self.alg, self.parameters, self.context
        kind = p.kind
        if kind == "int":
            return a.parameterAsInt(prm, key, ctx)
        if kind == "float":
            return a.parameterAsDouble(prm, key, ctx)
        if kind == "bool":
            return a.parameterAsBool(prm, key, ctx)
        if kind == "enum":
            return a.parameterAsEnumString(prm, key, ctx)
        if kind in ("file", "folder"):
            return a.parameterAsFile(prm, key, ctx) or None
        if kind == "bands":
            return a.parameterAsInts(prm, key, ctx) or None
        return a.parameterAsString(prm, key, ctx) or None

    def raster(self, key: str):
        layer = self.alg.parameterAsRasterLayer(self.parameters, key, self.context)
        if layer is None:
            if self.alg.spec.param(key).optional:
                return None
            raise UserInputError(key, tr("choose a raster layer."))
        if not layer.crs().isValid():
            raise UserInputError(key, tr("the raster has no coordinate reference system; assign one first."))
        wkt = layer.crs().toWkt()
        self._crs[wkt] = layer.crs()
        return layer.source(), wkt

    def polygons(self, key: str, crs_wkt: str, field: str | None = None, field_key: str = "CLASS_FIELD"):
        source = self.alg.parameterAsSource(self.parameters, key, self.context)
        if source is None:
            return None
        if field and source.fields().lookupField(field) < 0:
            raise UserInputError(field_key, tr("the field does not exist in the class polygons.") if key == "LABELS"
                                 else tr("the field does not exist in the reference polygons."))
        crs = self._crs_of(crs_wkt)
        request = QgsFeatureRequest().setDestinationCrs(crs, self.context.transformContext())
        return [(f.geometry().asWkb(), (f[field] if field else 1)) for f in source.getFeatures(request) if f.hasGeometry()]

    def extent(self, key: str, crs_wkt: str):
        if not self._given(key):
            return None
        rect = self.alg.parameterAsExtent(self.parameters, key, self.context, self._crs_of(crs_wkt))
        if rect.isNull() or rect.isEmpty():
            return None
        return rect.xMinimum(), rect.yMinimum(), rect.xMaximum(), rect.yMaximum()

    def output(self, key: str):
        p, a, prm, ctx = self.alg.spec.param(key), self.alg, self.parameters, self.context
        if p.optional and not prm.get(key):
            return None
        if p.kind in ("raster_out", "vector_out"):
            return a.parameterAsOutputLayer(prm, key, ctx) or None
        if p.kind == "file_out":
            return a.parameterAsFileOutput(prm, key, ctx) or None
        if p.kind == "folder_out":
            return a.parameterAsString(prm, key, ctx) or None
        return self._sink_value(key)  # sinks: created by write_table

    def _sink_value(self, key: str):
        """A sink's destination as text: a file path, ``TEMPORARY_OUTPUT``, ``memory:…`` or a provider URI."""
        value = self.parameters.get(key)
        if isinstance(value, QgsProcessingOutputLayerDefinition):
            value = value.sink.valueAsString(self.context.expressionContext())[0]
        return value or None

    def source(self, key: str):
        kind = self.alg.spec.param(key).kind
        if not self._given(key):
            return None
        if kind == "raster":
            layer = self.alg.parameterAsRasterLayer(self.parameters, key, self.context)
            return layer.source() if layer is not None else None
        if kind in ("polygons", "features"):
            layer = self.alg.parameterAsVectorLayer(self.parameters, key, self.context)
            if layer is None or layer.providerType() != "ogr":
                return None
            return layer.source()
        return self.value(key)

    def write_table(self, key, fields, rows, crs_wkt, geometry):
        from ..core.layers import write_table
        from ..inputs import output_file

        path = output_file(self._sink_value(key))
        if path:  # a file: written by the plugin's writer (whole or not at all; one layer of a GeoPackage)
            from ..core.layers import CONTAINER_DRIVERS
            from ..core.outputs import layer_name, split_layer
            from ..core.paths import vector_driver

            write_table(path, key, fields, rows, crs_wkt, geometry)
            file, name = split_layer(path)[0], layer_name(path)
            if vector_driver(file, key) in CONTAINER_DRIVERS:
                path = f"{file}|layername={name}"
            project = getattr(self.parameters.get(key), "destinationProject", None)
            if project is not None:
                self.context.addLayerToLoadOnCompletion(path, QgsProcessingContext.LayerDetails(name, project, key))
            return path
        qfields, types = QgsFields(), field_types()
        for name, kind in fields:
            qfields.append(QgsField(name, types[kind]))
        wkb_type = {"point": QgsWkbTypes.Type.Point, True: QgsWkbTypes.Type.Polygon,
                    "polygon": QgsWkbTypes.Type.Polygon}.get(geometry, QgsWkbTypes.Type.NoGeometry)
        sink, dest = self.alg.parameterAsSink(self.parameters, key, self.context, qfields, wkb_type,
                                              self._crs_of(crs_wkt))
        for wkb, attributes in rows:
            f = QgsFeature(qfields)
            if wkb is not None:
                g = QgsGeometry()
                g.fromWkb(wkb)
                f.setGeometry(g)
            f.setAttributes(list(attributes))
            sink.addFeature(f, QgsFeatureSink.Flag.FastInsert)
        return dest


def progress_of(feedback):
    """A ``progress(fraction)`` callable for core functions."""
    return lambda fraction: feedback.setProgress(100.0 * fraction)


def log_of(feedback):
    return lambda message: feedback.pushInfo(message)


def warn_of(feedback):
    return feedback.pushWarning
