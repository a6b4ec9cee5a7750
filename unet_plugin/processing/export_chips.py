"""Processing glue for Export Training Chips."""

from __future__ import annotations

import os
import shutil
import tempfile

from qgis.core import (
    QgsFeature, QgsFeatureSink, QgsField, QgsFields,
    QgsGeometry, QgsProcessing, QgsProcessingOutputNumber, QgsProcessingParameterBand,
    QgsProcessingParameterExtent, QgsProcessingParameterFeatureSink,
    QgsProcessingParameterFeatureSource, QgsProcessingParameterField, QgsProcessingParameterFolderDestination,
    QgsProcessingParameterNumber, QgsProcessingParameterRasterLayer, QgsRectangle, QgsWkbTypes,
)
from qgis.PyQt.QtCore import QVariant

from ..core.chips import ExportConfig, export_chips
from ..core.errors import UserInputError
from ..core.labels import class_codes, write_polygons
from .base import UnetAlgorithm, advanced, enum_param, log_of, progress_of, tr, warn_of, with_help

UNLABELED = ["background", "ignore"]


class ExportTrainingChips(UnetAlgorithm):
    INPUT, BANDS, LABELS, CLASS_FIELD, LABEL_RASTER, MASK = "INPUT", "BANDS", "LABELS", "CLASS_FIELD", "LABEL_RASTER", "MASK"
    UNLABELED, EXTENT, CHIP_SIZE, STRIDE = "UNLABELED", "EXTENT", "CHIP_SIZE", "STRIDE"
    MIN_LABELED, MAX_NODATA, OUTPUT, FOOTPRINTS, CHIP_COUNT = "MIN_LABELED", "MAX_NODATA", "OUTPUT", "FOOTPRINTS", "CHIP_COUNT"

    def name(self):
        return "exporttrainingchips"

    def displayName(self):
        return tr("Export Training Chips")

    def shortHelpString(self):
        return tr(
            "Cuts imagery and labels into georeferenced training chips for Train U-Net.\n\n"
            "Labels are class polygons (with a class field of codes 1–254 or of class names) or a classified raster "
            "on any grid. A mask limits chips to the areas where labels are known. The output folder holds "
            "images/ and labels/ GeoTIFF chips, dataset.json (classes, pixel counts, band statistics, one entry per "
            "chip) and the files of Esri's 'Classified Tiles' format, so the folder also trains in ArcGIS. "
            "Label values: 0 background, 1–254 classes, 255 ignored (image nodata, outside the mask)."
        )

    def initAlgorithm(self, config=None):
        self.addParameter(with_help(QgsProcessingParameterRasterLayer(self.INPUT, tr("Input imagery")),
                                    tr("The image to cut chips from, any data type and band count.")))
        self.addParameter(with_help(QgsProcessingParameterBand(self.BANDS, tr("Bands"), None, self.INPUT, optional=True, allowMultiple=True),
                                    tr("Bands to export, in this order. Empty: all bands.")))
        self.addParameter(with_help(QgsProcessingParameterFeatureSource(self.LABELS, tr("Class polygons"), [QgsProcessing.SourceType.TypeVectorPolygon], optional=True),
                                    tr("Polygons of the classes, in any CRS. Give these or a label raster.")))
        self.addParameter(with_help(QgsProcessingParameterField(self.CLASS_FIELD, tr("Class field"), None, self.LABELS, QgsProcessingParameterField.DataType.Any, optional=True),
                                    tr("Field with class codes 1–254 or class names. Empty: every polygon is class 1.")))
        self.addParameter(with_help(QgsProcessingParameterRasterLayer(self.LABEL_RASTER, tr("Label raster"), optional=True),
                                    tr("A classified raster (values 1–254) instead of polygons, on any grid.")))
        self.addParameter(with_help(QgsProcessingParameterFeatureSource(self.MASK, tr("Labelled areas (mask)"), [QgsProcessing.SourceType.TypeVectorPolygon], optional=True),
                                    tr("Polygons where labels are known. Chips are cut only there; pixels outside are ignored.")))
        self.addParameter(with_help(enum_param(self.UNLABELED, tr("Unlabelled pixels are"), UNLABELED, "background"),
                                    tr("What pixels outside every label polygon mean: background (class 0) or unknown (ignored in training).")))
        self.addParameter(with_help(QgsProcessingParameterExtent(self.EXTENT, tr("Extent"), optional=True),
                                    tr("Area to cut chips from. Empty: the whole image.")))
        self.addParameter(with_help(QgsProcessingParameterNumber(self.CHIP_SIZE, tr("Chip size (pixels)"), QgsProcessingParameterNumber.Type.Integer, 256, minValue=32),
                                    tr("Width and height of the chips in pixels, a multiple of 32.")))
        self.addParameter(advanced(with_help(QgsProcessingParameterNumber(self.STRIDE, tr("Stride (pixels)"), QgsProcessingParameterNumber.Type.Integer, 0, minValue=0),
                                             tr("Pixels between chip origins. 0: the chip size (no overlap); smaller values make overlapping chips."))))
        self.addParameter(advanced(with_help(QgsProcessingParameterNumber(self.MIN_LABELED, tr("Minimum labelled share (%)"), QgsProcessingParameterNumber.Type.Double, 0, minValue=0, maxValue=100),
                                             tr("Skip chips with a smaller share of pixels of a non-background class."))))
        self.addParameter(advanced(with_help(QgsProcessingParameterNumber(self.MAX_NODATA, tr("Maximum nodata share (%)"), QgsProcessingParameterNumber.Type.Double, 50, minValue=0, maxValue=100),
                                             tr("Skip chips with a larger share of image nodata."))))
        self.addParameter(with_help(QgsProcessingParameterFolderDestination(self.OUTPUT, tr("Output chip folder")),
                                    tr("A new or empty folder for the chip data set.")))
        self.addParameter(with_help(QgsProcessingParameterFeatureSink(self.FOOTPRINTS, tr("Chip footprints"), QgsProcessing.SourceType.TypeVectorPolygon, optional=True, createByDefault=False),
                                    tr("One polygon per chip with its id and label shares.")))
        self.addOutput(QgsProcessingOutputNumber(self.CHIP_COUNT, tr("Number of chips")))

    def process(self, parameters, context, feedback):
        layer = self.raster_with_crs(parameters, self.INPUT, context)
        crs = layer.crs()
        label_raster = self.parameterAsRasterLayer(parameters, self.LABEL_RASTER, context)
        labels = self.parameterAsSource(parameters, self.LABELS, context)
        if (labels is None) == (label_raster is None):
            raise UserInputError(self.LABELS, tr("give exactly one label source: class polygons (LABELS) or a classified raster (LABEL_RASTER)."))
        extent = self.extent_in(parameters, self.EXTENT, context, crs)
        output = self.parameterAsString(parameters, self.OUTPUT, context)
        scratch = tempfile.mkdtemp(prefix="unet-labels-")
        try:
            labels_path = classes = mask_path = None
            if labels is not None:
                field = self.parameterAsString(parameters, self.CLASS_FIELD, context)
                labels_path, classes = self._write_labels(labels, field, crs, context, scratch, feedback)
            mask = self.parameterAsSource(parameters, self.MASK, context)
            if mask is not None:
                mask_path = os.path.join(scratch, "mask.gpkg")
                write_polygons(mask_path, crs.toWkt(), ((w, 1) for w, _ in self.features_in(mask, None, crs, context)))
            cfg = ExportConfig(
                input=layer.source(), output=output,
                bands=self.parameterAsInts(parameters, self.BANDS, context) or None,
                labels=labels_path, classes=classes,
                label_raster=label_raster.source() if label_raster is not None else None,
                mask=mask_path, unlabeled=self.enum_value(parameters, self.UNLABELED, context),
                extent=extent, chip_size=self.parameterAsInt(parameters, self.CHIP_SIZE, context),
                stride=self.parameterAsInt(parameters, self.STRIDE, context),
                min_labeled=self.parameterAsDouble(parameters, self.MIN_LABELED, context),
                max_nodata=self.parameterAsDouble(parameters, self.MAX_NODATA, context),
            )
            result = export_chips(cfg, progress_of(feedback), feedback.isCanceled, log_of(feedback), warn_of(feedback))
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
        outputs = {self.OUTPUT: output, self.CHIP_COUNT: result.chip_count}
        if parameters.get(self.FOOTPRINTS) is not None:
            outputs[self.FOOTPRINTS] = self._footprints(parameters, context, crs, result)
        return outputs

    def _write_labels(self, source, field, crs, context, folder, feedback):
        if field and source.fields().lookupField(field) < 0:
            raise UserInputError(self.CLASS_FIELD, tr("the field does not exist in the class polygons."))
        feats = list(self.features_in(source, field, crs, context))
        if not feats:
            raise UserInputError(self.LABELS, tr("the layer has no polygons."))
        values = [v.value() if hasattr(v, "value") else v for _, v in feats]
        values = [None if (v is None or (isinstance(v, QVariant) and v.isNull())) else v for v in values]
        mapping, classes = class_codes(values, self.CLASS_FIELD)
        skipped = sum(v is None for v in values)
        if skipped:
            feedback.pushInfo(tr("{} polygons without a class value were skipped.").format(skipped))
        path = os.path.join(folder, "labels.gpkg")
        write_polygons(path, crs.toWkt(), ((w, mapping[v]) for (w, _), v in zip(feats, values) if v is not None))
        return path, classes

    def _footprints(self, parameters, context, crs, result):
        fields = QgsFields()
        fields.append(QgsField("chip_id", QVariant.String))
        fields.append(QgsField("col", QVariant.Int))
        fields.append(QgsField("row", QVariant.Int))
        for c in result.classes:
            fields.append(QgsField(f"share_{c['value']}", QVariant.Double))
        fields.append(QgsField("share_ignored", QVariant.Double))
        sink, dest = self.parameterAsSink(parameters, self.FOOTPRINTS, context, fields, QgsWkbTypes.Type.Polygon, crs)
        for chip in result.chips:
            f = QgsFeature(fields)
            f.setGeometry(QgsGeometry.fromRect(QgsRectangle(*chip["bounds"])))
            shares = chip["label_shares"]
            f.setAttributes([chip["id"], chip["col"], chip["row"]]
                            + [shares.get(str(c["value"]), 0.0) for c in result.classes] + [shares.get("255", 0.0)])
            sink.addFeature(f, QgsFeatureSink.Flag.FastInsert)
        return dest
