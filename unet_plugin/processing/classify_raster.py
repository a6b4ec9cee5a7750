"""Processing glue for Classify Raster."""

from __future__ import annotations

import os

from qgis.core import (
    QgsProcessingLayerPostProcessorInterface, QgsProcessingParameterBoolean,
    QgsProcessingParameterExtent, QgsProcessingParameterFile, QgsProcessingParameterNumber,
    QgsProcessingParameterRasterDestination, QgsProcessingParameterRasterLayer, QgsProcessingParameterVectorDestination,
    QgsProcessing,
)

from .base import DEVICES, UnetAlgorithm, enum_param, advanced, log_of, progress_of, tr, warn_of, with_help


class ClassStyle(QgsProcessingLayerPostProcessorInterface):
    """Styles a loaded class raster or class polygons from the ``.qml`` written beside them."""

    # QGIS does not keep the post-processor alive; we do, for the latest runs only, so a long
    # batch does not pile them up (each is used right after its own run)
    instances = []
    KEEP = 32

    def __init__(self, qml: str):
        super().__init__()
        self.qml = qml

    def postProcessLayer(self, layer, context, feedback):
        if os.path.exists(self.qml):
            layer.loadNamedStyle(self.qml)
            layer.triggerRepaint()

    @classmethod
    def create(cls, qml: str):
        cls.instances = cls.instances[-(cls.KEEP - 1):] + [cls(qml)]
        return cls.instances[-1]


class ClassifyRaster(UnetAlgorithm):
    needs_torch = True
    INPUT, MODEL, EXTENT, TILE_SIZE, OVERLAP = "INPUT", "MODEL", "EXTENT", "TILE_SIZE", "OVERLAP"
    BATCH_SIZE, TTA, DEVICE, OUTPUT, OUTPUT_CONFIDENCE = "BATCH_SIZE", "TTA", "DEVICE", "OUTPUT", "OUTPUT_CONFIDENCE"
    MIN_AREA, OUTPUT_PROBABILITIES, OUTPUT_POLYGONS = "MIN_AREA", "OUTPUT_PROBABILITIES", "OUTPUT_POLYGONS"
    PRECISION = "PRECISION"

    def name(self):
        return "classifyraster"

    def displayName(self):
        return tr("Classify Raster")

    def shortHelpString(self):
        return tr(
            "Classifies a raster of any size with a model from Train U-Net and writes a class raster "
            "(GeoTIFF, one byte per pixel, with colour table, class names and a .qml style beside it).\n\n"
            "The raster is processed in overlapping tiles that are blended, so no seams show. The raster must have "
            "the bands the model was trained on, in the same order; its nodata becomes nodata (255) in the result. "
            "Optionally writes the probability of the chosen class."
        )

    def initAlgorithm(self, config=None):
        self.addParameter(with_help(QgsProcessingParameterRasterLayer(self.INPUT, tr("Input imagery")),
                                    tr("Imagery with the bands the model was trained on, in the same order.")))
        self.addParameter(with_help(QgsProcessingParameterFile(self.MODEL, tr("Model"), extension="pt"),
                                    tr("A model file (.pt) from Train U-Net.")))
        self.addParameter(with_help(QgsProcessingParameterExtent(self.EXTENT, tr("Extent"), optional=True),
                                    tr("Area to classify. Empty: the whole raster.")))
        self.addParameter(advanced(with_help(QgsProcessingParameterNumber(self.TILE_SIZE, tr("Tile size (pixels)"), QgsProcessingParameterNumber.Type.Integer, 0, minValue=0),
                                             tr("Tile width and height, a multiple of 32. 0: the model's chip size."))))
        self.addParameter(advanced(with_help(QgsProcessingParameterNumber(self.OVERLAP, tr("Tile overlap (%)"), QgsProcessingParameterNumber.Type.Integer, 25, minValue=0, maxValue=75),
                                             tr("Overlap between neighbouring tiles; overlaps are blended to avoid seams."))))
        self.addParameter(advanced(with_help(QgsProcessingParameterNumber(self.BATCH_SIZE, tr("Batch size"), QgsProcessingParameterNumber.Type.Integer, 4, minValue=1),
                                             tr("Tiles per forward pass."))))
        self.addParameter(advanced(with_help(QgsProcessingParameterBoolean(self.TTA, tr("Test-time augmentation"), False),
                                             tr("Average the predictions of the 8 flips and rotations (8× slower, a little more accurate)."))))
        self.addParameter(advanced(with_help(enum_param(self.DEVICE, tr("Device"), DEVICES, "auto"),
                                             tr("auto: a CUDA GPU when present, else the CPU."))))
        self.addParameter(advanced(with_help(enum_param(self.PRECISION, tr("Precision"), ["auto", "full"], "auto"),
                                             tr("auto: int8 or bf16 where this machine runs them faster and the map agrees with float32 on at least 99 % of pixels (checked on tiles of the raster), float16 on CUDA. full: float32 throughout."))))
        self.addParameter(with_help(QgsProcessingParameterNumber(self.MIN_AREA, tr("Minimum mapping unit (pixels)"), QgsProcessingParameterNumber.Type.Integer, 0, minValue=0),
                                    tr("Regions of one class smaller than this many pixels are merged into the largest neighbouring region, in the class raster and the polygons. 0: off.")))
        self.addParameter(with_help(QgsProcessingParameterRasterDestination(self.OUTPUT, tr("Classified raster")),
                                    tr("The class raster.")))
        self.addParameter(with_help(QgsProcessingParameterRasterDestination(self.OUTPUT_CONFIDENCE, tr("Confidence raster"), optional=True, createByDefault=False),
                                    tr("Probability (0–1) of the chosen class per pixel.")))
        self.addParameter(with_help(QgsProcessingParameterRasterDestination(self.OUTPUT_PROBABILITIES, tr("Class probabilities"), optional=True, createByDefault=False),
                                    tr("One band per class, named after it: its probability, stored as bytes with scale 1/255 (readers see 0–1); nodata where the input is nodata.")))
        self.addParameter(with_help(QgsProcessingParameterVectorDestination(self.OUTPUT_POLYGONS, tr("Class polygons"), QgsProcessing.SourceType.TypeVectorPolygon, optional=True, createByDefault=False),
                                    tr("The class map as polygons, one per connected region (after the minimum mapping unit), with class value, class name and area in square metres; styled by class colour.")))

    def process(self, parameters, context, feedback):
        from ..ml.predict import ClassifyConfig, classify

        layer = self.raster_with_crs(parameters, self.INPUT, context)
        extent = self.extent_in(parameters, self.EXTENT, context, layer.crs())
        output = self.parameterAsOutputLayer(parameters, self.OUTPUT, context)
        confidence = self.parameterAsOutputLayer(parameters, self.OUTPUT_CONFIDENCE, context) if parameters.get(self.OUTPUT_CONFIDENCE) else None
        probabilities = self.parameterAsOutputLayer(parameters, self.OUTPUT_PROBABILITIES, context) if parameters.get(self.OUTPUT_PROBABILITIES) else None
        polygons = self.parameterAsOutputLayer(parameters, self.OUTPUT_POLYGONS, context) if parameters.get(self.OUTPUT_POLYGONS) else None
        cfg = ClassifyConfig(
            input=layer.source(), model=self.parameterAsFile(parameters, self.MODEL, context), output=output,
            extent=extent, tile_size=self.parameterAsInt(parameters, self.TILE_SIZE, context),
            overlap=self.parameterAsInt(parameters, self.OVERLAP, context),
            batch_size=self.parameterAsInt(parameters, self.BATCH_SIZE, context),
            tta=self.parameterAsBool(parameters, self.TTA, context),
            device=self.enum_value(parameters, self.DEVICE, context),
            output_confidence=confidence or None,
            output_probabilities=probabilities or None,
            min_area=self.parameterAsInt(parameters, self.MIN_AREA, context),
            precision=self.enum_value(parameters, self.PRECISION, context),
            output_polygons=polygons or None,
        )
        classify(cfg, progress_of(feedback), feedback.isCanceled, log_of(feedback), warn_of(feedback))
        for path in (output, polygons):
            if path and context.willLoadLayerOnCompletion(path):
                details = context.layerToLoadOnCompletionDetails(path)
                details.setPostProcessor(ClassStyle.create(os.path.splitext(path)[0] + ".qml"))
        return {self.OUTPUT: output, self.OUTPUT_CONFIDENCE: confidence, self.OUTPUT_PROBABILITIES: probabilities,
                self.OUTPUT_POLYGONS: polygons}
