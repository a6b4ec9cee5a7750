"""Processing glue for Assess Accuracy (no torch needed)."""

from __future__ import annotations

import os
import shutil
import tempfile

from qgis.core import (
    QgsFeature, QgsFeatureSink, QgsField, QgsFields, QgsProcessing, QgsProcessingOutputNumber,
    QgsProcessingParameterExtent, QgsProcessingParameterFeatureSink, QgsProcessingParameterFeatureSource,
    QgsProcessingParameterField, QgsProcessingParameterFileDestination, QgsProcessingParameterRasterLayer, QgsWkbTypes,
)
from qgis.PyQt.QtCore import QVariant

from ..core.accuracy import AccuracyConfig, assess
from ..core.errors import UserInputError
from ..core.labels import write_polygons
from .base import UnetAlgorithm, enum_param, log_of, progress_of, tr, with_help

UNLABELED = ["background", "ignore"]


class AssessAccuracy(UnetAlgorithm):
    INPUT, REFERENCE, CLASS_FIELD, REFERENCE_RASTER = "INPUT", "REFERENCE", "CLASS_FIELD", "REFERENCE_RASTER"
    UNLABELED, EXTENT, OUTPUT_TABLE, OUTPUT_REPORT = "UNLABELED", "EXTENT", "OUTPUT_TABLE", "OUTPUT_REPORT"

    def name(self):
        return "assessaccuracy"

    def displayName(self):
        return tr("Assess Accuracy")

    def shortHelpString(self):
        return tr(
            "How good is a class map? Compares a class raster (from Classify Raster, or any classified raster) with "
            "reference data: polygons with a class field (class names or codes, matched to the raster's class names "
            "and values) or a classified reference raster on any grid.\n\n"
            "Writes a table with, per class, the reference and mapped pixels, producer's accuracy (recall), user's "
            "accuracy (precision), F1 and IoU, and optionally an HTML report with the confusion matrix, overall "
            "accuracy and Cohen's kappa. Pixels that are nodata in either raster do not count; reference classes the "
            "map does not know are an error that lists both."
        )

    def initAlgorithm(self, config=None):
        self.addParameter(with_help(QgsProcessingParameterRasterLayer(self.INPUT, tr("Class raster")),
                                    tr("The class map to assess, e.g. the output of Classify Raster.")))
        self.addParameter(with_help(QgsProcessingParameterFeatureSource(self.REFERENCE, tr("Reference polygons"), [QgsProcessing.SourceType.TypeVectorPolygon], optional=True),
                                    tr("Polygons of known classes, in any CRS. Give these or a reference raster.")))
        self.addParameter(with_help(QgsProcessingParameterField(self.CLASS_FIELD, tr("Class field"), None, self.REFERENCE, QgsProcessingParameterField.DataType.Any, optional=True),
                                    tr("Field with the class names or codes of the map. Empty: every polygon is class 1.")))
        self.addParameter(with_help(QgsProcessingParameterRasterLayer(self.REFERENCE_RASTER, tr("Reference raster"), optional=True),
                                    tr("A classified reference raster instead of polygons, on any grid (resampled by nearest neighbour).")))
        self.addParameter(with_help(enum_param(self.UNLABELED, tr("Outside the reference polygons"), UNLABELED, "ignore"),
                                    tr("What the reference means outside every polygon: background (class 0) or unknown (not counted).")))
        self.addParameter(with_help(QgsProcessingParameterExtent(self.EXTENT, tr("Extent"), optional=True),
                                    tr("Area to assess. Empty: the whole class raster.")))
        self.addParameter(with_help(QgsProcessingParameterFeatureSink(self.OUTPUT_TABLE, tr("Accuracy table"), QgsProcessing.SourceType.TypeVector),
                                    tr("Per class: reference and mapped pixels, producer's and user's accuracy, F1 and IoU.")))
        self.addParameter(with_help(QgsProcessingParameterFileDestination(self.OUTPUT_REPORT, tr("Accuracy report"), tr("HTML files (*.html)"), optional=True, createByDefault=False),
                                    tr("A self-contained HTML page with the confusion matrix, overall accuracy and kappa.")))
        self.addOutput(QgsProcessingOutputNumber("OVERALL_ACCURACY", tr("Overall accuracy")))
        self.addOutput(QgsProcessingOutputNumber("KAPPA", tr("Kappa")))
        self.addOutput(QgsProcessingOutputNumber("MEAN_IOU", tr("Mean IoU")))

    def process(self, parameters, context, feedback):
        layer = self.raster_with_crs(parameters, self.INPUT, context)
        crs = layer.crs()
        reference = self.parameterAsSource(parameters, self.REFERENCE, context)
        reference_raster = self.parameterAsRasterLayer(parameters, self.REFERENCE_RASTER, context)
        if (reference is None) == (reference_raster is None):
            raise UserInputError(self.REFERENCE, tr("give exactly one reference: polygons (REFERENCE) or a classified raster (REFERENCE_RASTER)."))
        report = self.parameterAsFileOutput(parameters, self.OUTPUT_REPORT, context) if parameters.get(self.OUTPUT_REPORT) else None
        scratch = tempfile.mkdtemp(prefix="unet-reference-")
        try:
            polygons = values = None
            if reference is not None:
                field = self.parameterAsString(parameters, self.CLASS_FIELD, context)
                if field and reference.fields().lookupField(field) < 0:
                    raise UserInputError(self.CLASS_FIELD, tr("the field does not exist in the reference polygons."))
                feats = list(self.features_in(reference, field, crs, context))
                if not feats:
                    raise UserInputError(self.REFERENCE, tr("the layer has no polygons."))
                polygons = os.path.join(scratch, "reference.gpkg")
                write_polygons(polygons, crs.toWkt(), ((w, 1) for w, _ in feats))
                if field:
                    values = [None if v is None or (isinstance(v, QVariant) and v.isNull()) else (v.value() if hasattr(v, "value") else v)
                              for _, v in feats]
            cfg = AccuracyConfig(input=layer.source(), reference=polygons, reference_values=values,
                                 reference_raster=reference_raster.source() if reference_raster is not None else None,
                                 unlabeled=self.enum_value(parameters, self.UNLABELED, context),
                                 extent=self.extent_in(parameters, self.EXTENT, context, crs), output_report=report)
            result = assess(cfg, progress_of(feedback), feedback.isCanceled, log_of(feedback))
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
        fields = QgsFields()
        for name, kind in (("class_value", QVariant.Int), ("class_name", QVariant.String), ("reference_pixels", QVariant.LongLong),
                           ("mapped_pixels", QVariant.LongLong), ("producers_accuracy", QVariant.Double),
                           ("users_accuracy", QVariant.Double), ("f1", QVariant.Double), ("iou", QVariant.Double)):
            fields.append(QgsField(name, kind))
        sink, table = self.parameterAsSink(parameters, self.OUTPUT_TABLE, context, fields, QgsWkbTypes.Type.NoGeometry, crs)
        for row in result.rows:
            f = QgsFeature(fields)
            f.setAttributes([row[n] for n in fields.names()])
            sink.addFeature(f, QgsFeatureSink.Flag.FastInsert)
        sc = result.scores
        return {self.OUTPUT_TABLE: table, self.OUTPUT_REPORT: result.report,
                "OVERALL_ACCURACY": sc["accuracy"], "KAPPA": sc["kappa"], "MEAN_IOU": sc["miou"]}
