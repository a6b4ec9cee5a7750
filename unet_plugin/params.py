"""The algorithms' parameters, declared once and without QGIS.

The Processing glue (``processing/``) builds its QGIS parameters from these declarations and
the command line (``python -m unet_plugin``) parses and documents ``KEY=VALUE`` arguments from
the same ones, so keys, types, defaults, enum names and help cannot drift apart (docs/contract.md).

Texts are English source strings marked with :func:`N_` for translation: the glue translates
them when it builds a dialog (``scripts/update_translations.py`` extracts them); the command
line prints them as they are.
"""

from __future__ import annotations

from dataclasses import dataclass


def N_(text: str) -> str:  # noqa: N802 - the usual name of a translation marker
    """Mark ``text`` for translation without translating it (translated where it is shown)."""
    return text


BACKBONES = ("resnet18", "resnet34", "resnet50", "resnet101", "resnet152")  # = ml.model.encoders.ENCODERS (a test checks)
LOSSES = ("cross-entropy", "focal", "cross-entropy+dice")
DEVICES = ("auto", "cpu", "cuda")
PRECISIONS = ("auto", "full")
UNLABELED = ("background", "ignore")
ALLOCATIONS = ("proportional", "equal", "minimum-per-class")
STRATEGIES = ("uncertainty", "diverse")

#: kinds of parameter: how QGIS shows them, how the command line reads them
INPUT_KINDS = ("raster", "bands", "polygons", "features", "field", "enum", "extent", "int", "float", "bool", "folder", "file")
OUTPUT_KINDS = ("folder_out", "file_out", "raster_out", "vector_out", "sink", "point_sink", "table")


@dataclass(frozen=True)
class Param:
    """One parameter: its key (``UPPER_SNAKE``), kind (see INPUT_KINDS / OUTPUT_KINDS), label and help."""

    key: str
    kind: str
    label: str
    help: str
    default: object = None
    optional: bool = False
    advanced: bool = False
    options: tuple = ()  # enum names
    minimum: float | None = None
    maximum: float | None = None
    extension: str = ""  # file: the expected extension; file_out: the default one
    file_filter: str = ""  # file_out: the dialog's filter, e.g. "HTML files (*.html)"
    parent: str = ""  # bands, field: the parameter they belong to
    create_by_default: bool = True  # optional outputs: written unless the user skips them

    @property
    def is_output(self) -> bool:
        return self.kind in OUTPUT_KINDS


@dataclass(frozen=True)
class Output:
    """A number an algorithm returns besides its files (for Modeler models)."""

    key: str
    label: str


@dataclass(frozen=True)
class Algorithm:
    """An algorithm's id (without ``unet:``), title, help, parameters and extra outputs."""

    id: str
    title: str
    help: str
    params: tuple
    outputs: tuple = ()
    needs_torch: bool = False
    distributed: bool = False  # runs data- or strip-parallel under torchrun

    def param(self, key: str) -> Param:
        for p in self.params:
            if p.key == key:
                return p
        raise KeyError(key)


def _p(key, kind, label, help, default=None, **kw) -> Param:
    return Param(key, kind, label, help, default, **kw)


EXPORT = Algorithm(
    "exporttrainingchips", N_("Export Training Chips"),
    N_("Cuts imagery and labels into georeferenced training chips for Train U-Net.\n\n"
       "Labels are class polygons (with a class field of codes 1–254 or of class names) or a classified raster "
       "on any grid. A mask limits chips to the areas where labels are known. The output folder holds "
       "images/ and labels/ GeoTIFF chips, dataset.json (classes, pixel counts, band statistics, one entry per "
       "chip) and the files of Esri's 'Classified Tiles' format, so the folder also trains in ArcGIS. "
       "Label values: 0 background, 1–254 classes, 255 ignored (image nodata, outside the mask)."),
    (
        _p("INPUT", "raster", N_("Input imagery"), N_("The image to cut chips from, any data type and band count.")),
        _p("BANDS", "bands", N_("Bands"), N_("Bands to export, in this order. Empty: all bands."), optional=True, parent="INPUT"),
        _p("LABELS", "polygons", N_("Class polygons"), N_("Polygons of the classes, in any CRS. Give these or a label raster."), optional=True),
        _p("CLASS_FIELD", "field", N_("Class field"), N_("Field with class codes 1–254 or class names. Empty: every polygon is class 1."),
           optional=True, parent="LABELS"),
        _p("LABEL_RASTER", "raster", N_("Label raster"), N_("A classified raster (values 1–254) instead of polygons, on any grid."), optional=True),
        _p("MASK", "polygons", N_("Labelled areas (mask)"), N_("Polygons where labels are known. Chips are cut only there; pixels outside are ignored."),
           optional=True),
        _p("UNLABELED", "enum", N_("Unlabelled pixels are"),
           N_("What pixels outside every label polygon mean: background (class 0) or unknown (ignored in training)."),
           "background", options=UNLABELED),
        _p("EXTENT", "extent", N_("Extent"), N_("Area to cut chips from. Empty: the whole image."), optional=True),
        _p("CHIP_SIZE", "int", N_("Chip size (pixels)"), N_("Width and height of the chips in pixels, a multiple of 32."), 256, minimum=32),
        _p("STRIDE", "int", N_("Stride (pixels)"),
           N_("Pixels between chip origins. 0: the chip size (no overlap); smaller values make overlapping chips."), 0,
           minimum=0, advanced=True),
        _p("MIN_LABELED", "float", N_("Minimum labelled share (%)"), N_("Skip chips with a smaller share of pixels of a non-background class."),
           0, minimum=0, maximum=100, advanced=True),
        _p("MAX_NODATA", "float", N_("Maximum nodata share (%)"), N_("Skip chips with a larger share of image nodata."), 50,
           minimum=0, maximum=100, advanced=True),
        _p("APPEND", "bool", N_("Add to an earlier export"),
           N_("Add the chips to the chip folder of an earlier export (same bands, data type and chip size): its classes and "
              "normalisation are kept, class names are matched to its classes. Off: the folder must be new, empty, or an "
              "earlier export of the same raster, which is replaced."), False, advanced=True),
        _p("OUTPUT", "folder_out", N_("Output chip folder"), N_("A new or empty folder for the chip data set.")),
        _p("FOOTPRINTS", "sink", N_("Chip footprints"), N_("One polygon per chip with its id and label shares."), optional=True,
           create_by_default=False, extension="gpkg"),
    ),
    (Output("CHIP_COUNT", N_("Number of chips")),),
)

TRAIN = Algorithm(
    "trainunet", N_("Train U-Net"),
    N_("Trains a U-Net with a ResNet encoder on a chip folder from Export Training Chips (or an Esri "
       "'Classified Tiles' folder) and saves one model file (.pt) for Classify Raster.\n\n"
       "A share of the chips, in spatial blocks apart from the training chips, is held out for validation. "
       "Each epoch logs the losses, accuracy and per-class IoU; the saved model is the epoch with the best "
       "validation mean IoU. Learning rate 0 finds a rate automatically. Canceling keeps the best model so far. "
       "The optional HTML report shows the curves, per-class scores, the confusion matrix and example predictions.\n\n"
       "Polygons of several classes on a small share of the area, exported with UNLABELED=background and no MASK, are "
       "taken as samples: the land around them is labelled background although it holds the same classes, so "
       "background counts like one average class and validation scores the held-out polygons only (the log says so)."),
    (
        _p("CHIPS", "folder", N_("Chip folder"), N_("A folder written by Export Training Chips, or an Esri 'Classified Tiles' folder.")),
        _p("BACKBONE", "enum", N_("Backbone"), N_("The ResNet encoder. Larger ones are more accurate and slower."), "resnet34", options=BACKBONES),
        _p("PRETRAINED", "bool", N_("Start from ImageNet weights"),
           N_("Initialise the encoder with ImageNet weights. They are downloaded the first time (internet needed once) and kept in "
              "PyTorch's cache; offline, give a weights file as ENCODER_WEIGHTS or turn this off."), True),
        _p("ENCODER_WEIGHTS", "file", N_("Local encoder weights"), N_("A torchvision ResNet weights file (.pth), for machines without internet."),
           extension="pth", optional=True, advanced=True),
        _p("INIT_MODEL", "file", N_("Continue from model"), N_("A trained model to fine-tune; its bands and classes must match the chips."),
           extension="pt", optional=True, advanced=True),
        _p("EPOCHS", "int", N_("Epochs"),
           N_("Passes over the training chips, at most. 0: automatic — 20, or with a time limit as many as fit in it."), 0,
           minimum=0),
        _p("TIME_LIMIT", "float", N_("Time limit (minutes)"),
           N_("Stop after this many minutes, keeping the best model: the learning-rate schedule is planned to end at the limit, "
              "and everything (the learning-rate test, validation, saving) fits in it. 0: no limit (EPOCHS decides)."),
           0.0, minimum=0.0),
        _p("BATCH_SIZE", "int", N_("Batch size"), N_("Chips per training step. Lower it if memory runs out."), 8, minimum=1),
        _p("LEARNING_RATE", "float", N_("Learning rate"), N_("0: found automatically by a learning-rate range test."), 0.0,
           minimum=0.0, advanced=True),
        _p("VALIDATION_PERCENT", "float", N_("Validation share (%)"),
           N_("Share of chips held out for validation, in spatial blocks apart from the training chips."), 10,
           minimum=0, maximum=99, advanced=True),
        _p("EARLY_STOPPING", "int", N_("Early stopping (epochs)"),
           N_("Stop after this many epochs without a better validation mean IoU, once the learning rate has come down (the "
              "last 40 % of the schedule). Not used with a time limit, whose schedule ends at the limit. 0: never."), 5,
           minimum=0, advanced=True),
        _p("LOSS", "enum", N_("Loss"), N_("Cross-entropy; focal (for rare classes); or cross-entropy plus Dice."), "cross-entropy",
           options=LOSSES, advanced=True),
        _p("CLASS_BALANCING", "bool", N_("Balance classes"),
           N_("Weight classes by inverse frequency (square root, at most 10× the median class), so rare classes count more."),
           False, advanced=True),
        _p("AUGMENT", "bool", N_("Augment (windows, flips, rotations)"),
           N_("Cut training windows at random shifts (up to half a chip) from the mosaic of the training chips, flip and "
              "rotate them by 90°, and vary brightness and contrast per band (gain ±12.5 %, offset ±0.25 standard deviations)."),
           True,
           advanced=True),
        _p("FREEZE_ENCODER", "bool", N_("Freeze encoder"), N_("Train the decoder only (faster, for small data sets)."), False, advanced=True),
        _p("DEVICE", "enum", N_("Device"), N_("auto: a CUDA GPU when present, else the CPU."), "auto", options=DEVICES, advanced=True),
        _p("PRECISION", "enum", N_("Precision"),
           N_("auto: the fastest arithmetic this CPU or GPU does natively (bf16 on CPUs with native bf16, measured; float16 mixed "
              "precision on CUDA). full: float32 throughout."), "auto", options=PRECISIONS, advanced=True),
        _p("SEED", "int", N_("Random seed"), N_("Makes the split and the training reproducible."), 42, advanced=True),
        _p("OUTPUT_MODEL", "file_out", N_("Output model"), N_("The trained model file (.pt)."), extension="pt",
           file_filter=N_("U-Net model (*.pt)")),
        _p("OUTPUT_REPORT", "file_out", N_("Training report"), N_("A self-contained HTML page with curves, scores and example predictions."),
           optional=True, create_by_default=False, extension="html", file_filter=N_("HTML files (*.html)")),
        _p("OUTPUT_ONNX", "file_out", N_("Model as ONNX"),
           N_("The best model also as ONNX, with the metadata the Deepness plugin reads (needs the onnx package)."),
           optional=True, create_by_default=False, advanced=True, extension="onnx", file_filter=N_("ONNX models (*.onnx)")),
    ),
    (Output("VALIDATION_MIOU", N_("Validation mean IoU")), Output("VALIDATION_ACCURACY", N_("Validation pixel accuracy")),
     Output("EPOCHS_RUN", N_("Epochs run"))),
    needs_torch=True, distributed=True,
)

CLASSIFY = Algorithm(
    "classifyraster", N_("Classify Raster"),
    N_("Classifies a raster of any size with a model from Train U-Net and writes a class raster "
       "(GeoTIFF, one byte per pixel, with colour table, class names and a .qml style beside it).\n\n"
       "The raster is processed in overlapping tiles that are blended, so no seams show. The raster must have "
       "the bands the model was trained on, in the same order; its nodata becomes nodata (255) in the result. "
       "Optionally writes the probability of the chosen class."),
    (
        _p("INPUT", "raster", N_("Input imagery"), N_("Imagery with the bands the model was trained on, in the same order.")),
        _p("BANDS", "bands", N_("Bands"),
           N_("The raster's bands to feed the model, in the model's order. Empty: the bands the model was trained on (by "
              "number), checked against the model's band names."), optional=True, parent="INPUT", advanced=True),
        _p("MODEL", "file", N_("Model"), N_("A model file (.pt) from Train U-Net."), extension="pt"),
        _p("EXTENT", "extent", N_("Extent"), N_("Area to classify. Empty: the whole raster."), optional=True),
        _p("TILE_SIZE", "int", N_("Tile size (pixels)"), N_("Tile width and height, a multiple of 32. 0: the model's chip size."), 0,
           minimum=0, advanced=True),
        _p("OVERLAP", "int", N_("Tile overlap (%)"), N_("Overlap between neighbouring tiles; overlaps are blended to avoid seams."), 25,
           minimum=0, maximum=75, advanced=True),
        _p("BATCH_SIZE", "int", N_("Batch size"), N_("Tiles per forward pass."), 4, minimum=1, advanced=True),
        _p("TTA", "bool", N_("Test-time augmentation"),
           N_("Average the predictions of the 8 flips and rotations (8× slower, a little more accurate)."), False, advanced=True),
        _p("DEVICE", "enum", N_("Device"), N_("auto: a CUDA GPU when present, else the CPU."), "auto", options=DEVICES, advanced=True),
        _p("PRECISION", "enum", N_("Precision"),
           N_("auto: int8 or bf16 where this machine runs them faster and the map agrees with float32 on at least 99 % of pixels "
              "(checked on tiles of the raster), float16 on CUDA. full: float32 throughout."), "auto", options=PRECISIONS,
           advanced=True),
        _p("MIN_AREA", "int", N_("Minimum mapping unit (pixels)"),
           N_("Regions of one class smaller than this many pixels are merged into the largest neighbouring region, in the class "
              "raster and the polygons. 0: off."), 0, minimum=0),
        _p("OUTPUT", "raster_out", N_("Classified raster"), N_("The class raster."), extension="tif"),
        _p("OUTPUT_CONFIDENCE", "raster_out", N_("Confidence raster"), N_("Probability (0–1) of the chosen class per pixel."),
           optional=True, create_by_default=False, extension="tif"),
        _p("OUTPUT_PROBABILITIES", "raster_out", N_("Class probabilities"),
           N_("One band per class, named after it: its probability, stored as bytes with scale 1/255 (readers see 0–1); nodata "
              "where the input is nodata."), optional=True, create_by_default=False, extension="tif"),
        _p("OUTPUT_POLYGONS", "vector_out", N_("Class polygons"),
           N_("The class map as polygons, one per connected region (after the minimum mapping unit), with class value, class name "
              "and area in square metres; styled by class colour."), optional=True, create_by_default=False, extension="gpkg"),
    ),
    needs_torch=True, distributed=True,
)

ASSESS = Algorithm(
    "assessaccuracy", N_("Assess Accuracy"),
    N_("How good is a class map? Compares a class raster (from Classify Raster, or any classified raster) with "
       "reference data: polygons with a class field (class names or codes, matched to the raster's class names "
       "and values) or a classified reference raster on any grid.\n\n"
       "Writes a table with, per class, the reference and mapped pixels, producer's accuracy (recall), user's "
       "accuracy (precision), F1 and IoU, and optionally an HTML report with the confusion matrix, overall "
       "accuracy and Cohen's kappa. Pixels that are nodata in either raster do not count; reference classes the "
       "map does not know are an error that lists both.\n\n"
       "With labelled sample points as the reference (from Create Accuracy Sample), the map's classes are the strata "
       "and the stratified estimators of Olofsson et al. (2014) run instead of pixel counting: the error matrix in "
       "proportions of area, overall, user's and producer's accuracy and the error-adjusted area of every class, "
       "each with a 95 % confidence interval (OUTPUT_AREAS)."),
    (
        _p("INPUT", "raster", N_("Class raster"), N_("The class map to assess, e.g. the output of Classify Raster.")),
        _p("REFERENCE", "features", N_("Reference polygons or sample points"),
           N_("Polygons of known classes, or labelled sample points (Create Accuracy Sample) for area estimates with "
              "confidence intervals; in any CRS. Give these or a reference raster."), optional=True),
        _p("CLASS_FIELD", "field", N_("Class field"),
           N_("Field with the class names or codes of the map (for sample points: the field the analyst filled in, e.g. "
              "reference). Empty: every polygon is class 1."), optional=True, parent="REFERENCE"),
        _p("REFERENCE_RASTER", "raster", N_("Reference raster"),
           N_("A classified reference raster instead of polygons, on any grid (resampled by nearest neighbour)."), optional=True),
        _p("UNLABELED", "enum", N_("Outside the reference polygons"),
           N_("What the reference means outside every polygon: background (class 0) or unknown (not counted)."), "ignore",
           options=UNLABELED),
        _p("EXTENT", "extent", N_("Extent"), N_("Area to assess. Empty: the whole class raster."), optional=True),
        _p("OUTPUT_TABLE", "table", N_("Accuracy table"),
           N_("Per class: reference and mapped pixels, producer's and user's accuracy, F1 and IoU."), extension="csv"),
        _p("OUTPUT_REPORT", "file_out", N_("Accuracy report"), N_("A self-contained HTML page with the confusion matrix, overall accuracy and kappa."),
           optional=True, create_by_default=False, extension="html", file_filter=N_("HTML files (*.html)")),
        _p("OUTPUT_AREAS", "table", N_("Area estimates"),
           N_("With sample points as the reference: per class the mapped area, the error-adjusted area and its 95 % "
              "confidence interval (hectares), user's and producer's accuracy with their intervals."),
           optional=True, create_by_default=False, extension="csv"),
    ),
    (Output("OVERALL_ACCURACY", N_("Overall accuracy")), Output("OVERALL_ACCURACY_CI95", N_("Overall accuracy: 95 % interval (±)")),
     Output("KAPPA", N_("Kappa")), Output("MEAN_IOU", N_("Mean IoU"))),
)

SAMPLE = Algorithm(
    "createaccuracysample", N_("Create Accuracy Sample"),
    N_("A stratified random sample of points on a class map, for the good-practice accuracy assessment and area "
       "estimates of Olofsson et al. (2014): the map's classes are the strata.\n\n"
       "Label each point's reference field (the class you see in imagery of higher resolution or in the field), then "
       "give the points to Assess Accuracy: it estimates every class's area with a 95 % confidence interval, and "
       "overall, user's and producer's accuracy. The sample size follows from the standard error you want for overall "
       "accuracy (eq. 13) unless you set it; the default allocation gives rare classes at least MIN_PER_CLASS points "
       "and the rest of the sample in proportion to area. Nodata is never sampled; the same SEED gives the same points."),
    (
        _p("INPUT", "raster", N_("Class raster"), N_("The class map to sample, e.g. the output of Classify Raster.")),
        _p("SAMPLE_SIZE", "int", N_("Sample size (points)"),
           N_("Total number of points. 0: computed from the target standard error and the expected user's accuracy "
              "(Olofsson et al. 2014, equation 13)."), 0, minimum=0),
        _p("TARGET_STANDARD_ERROR", "float", N_("Target standard error of overall accuracy"),
           N_("For the computed sample size: 0.01 gives overall accuracy within about ±2 % (95 % confidence)."), 0.01,
           minimum=0.0001, maximum=0.5),
        _p("EXPECTED_USERS_ACCURACY", "float", N_("Expected user's accuracy"),
           N_("For the computed sample size: the user's accuracy you expect of the map's classes (0–1)."), 0.8,
           minimum=0.01, maximum=0.99),
        _p("ALLOCATION", "enum", N_("Allocation"),
           N_("How the points are shared among the classes: proportional to area, equal, or minimum-per-class (every class at "
              "least MIN_PER_CLASS points, the rest proportional; the paper's advice for rare classes)."),
           "minimum-per-class", options=ALLOCATIONS),
        _p("MIN_PER_CLASS", "int", N_("Minimum points per class"), N_("For ALLOCATION=minimum-per-class."), 50, minimum=1),
        _p("EXTENT", "extent", N_("Extent"), N_("Area to sample. Empty: the whole class raster."), optional=True),
        _p("SEED", "int", N_("Random seed"), N_("The same seed gives the same points."), 42, advanced=True),
        _p("OUTPUT", "point_sink", N_("Sample points"),
           N_("Points with map_value, map_class, an empty reference field to fill in, and their stratum's pixels and area."),
           extension="gpkg"),
    ),
    (Output("POINT_COUNT", N_("Number of points")),),
)

SUGGEST = Algorithm(
    "suggestlabelingareas", N_("Suggest Areas to Label"),
    N_("Where would new labels help the model most? Proposes square windows where the model is least sure of its map, "
       "ranked, for you to label next.\n\n"
       "The raster is classified as Classify Raster does it; every candidate window is scored by the mean entropy of the "
       "class probabilities (0: sure, 1: every class equally likely). Windows touching areas already labelled "
       "(EXISTING_LABELS) or with little image are never proposed, and proposals do not overlap. The diverse strategy "
       "also spreads them over the map and over the predicted classes. Draw the polygons of the classes inside the "
       "windows (or fill in the class field of a window that is one class), export them with the windows as MASK "
       "and UNLABELED=ignore, and fine-tune with INIT_MODEL."),
    (
        _p("INPUT", "raster", N_("Input imagery"), N_("Imagery with the bands the model was trained on.")),
        _p("MODEL", "file", N_("Model"), N_("A model file (.pt) from Train U-Net."), extension="pt"),
        _p("COUNT", "int", N_("Windows"), N_("How many windows to propose."), 10, minimum=1),
        _p("WINDOW_SIZE", "int", N_("Window size (pixels)"), N_("Side of each square window. 0: the model's chip size."), 0,
           minimum=0),
        _p("EXISTING_LABELS", "polygons", N_("Areas already labelled"),
           N_("Polygons of the areas labelled so far (e.g. the MASK of the last export): never proposed again."),
           optional=True),
        _p("STRATEGY", "enum", N_("Strategy"),
           N_("uncertainty: the most uncertain windows; diverse: uncertain windows spread over the map and the predicted "
              "classes."), "diverse", options=STRATEGIES),
        _p("EXTENT", "extent", N_("Extent"), N_("Area to search. Empty: the whole raster."), optional=True),
        _p("DEVICE", "enum", N_("Device"), N_("auto: a CUDA GPU when present, else the CPU."), "auto", options=DEVICES,
           advanced=True),
        _p("PRECISION", "enum", N_("Precision"), N_("As on Classify Raster: auto uses faster arithmetic where it draws the same "
                                                   "map; full is float32."), "auto", options=PRECISIONS, advanced=True),
        _p("SEED", "int", N_("Random seed"), N_("Breaks ties between equal scores; the same seed gives the same windows."), 42,
           advanced=True),
        _p("OUTPUT", "sink", N_("Windows to label"),
           N_("Square polygons on the raster's pixel grid with rank, score, uncertainty, the predicted class shares and an "
              "empty class field to fill in."), extension="gpkg"),
    ),
    (Output("WINDOW_COUNT", N_("Number of windows")),),
    needs_torch=True,
)

ALGORITHMS = {a.id: a for a in (EXPORT, TRAIN, CLASSIFY, ASSESS, SAMPLE, SUGGEST)}
