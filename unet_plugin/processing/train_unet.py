"""Processing glue for Train U-Net."""

from __future__ import annotations

from qgis.core import (
    QgsProcessingOutputNumber, QgsProcessingParameterBoolean,
    QgsProcessingParameterFile, QgsProcessingParameterFileDestination, QgsProcessingParameterNumber,
)

from .base import DEVICES, UnetAlgorithm, enum_param, advanced, log_of, progress_of, tr, warn_of, with_help

# Must match ml.encoders.ENCODERS (a test checks); kept here so listing needs no torch.
BACKBONES = ["resnet18", "resnet34", "resnet50", "resnet101", "resnet152"]
LOSSES = ["cross-entropy", "focal", "cross-entropy+dice"]
PRECISIONS = ["auto", "full"]


class TrainUnet(UnetAlgorithm):
    needs_torch = True
    CHIPS, BACKBONE, PRETRAINED, ENCODER_WEIGHTS, INIT_MODEL = "CHIPS", "BACKBONE", "PRETRAINED", "ENCODER_WEIGHTS", "INIT_MODEL"
    EPOCHS, BATCH_SIZE, LEARNING_RATE, VALIDATION_PERCENT = "EPOCHS", "BATCH_SIZE", "LEARNING_RATE", "VALIDATION_PERCENT"
    EARLY_STOPPING, LOSS, CLASS_BALANCING, AUGMENT = "EARLY_STOPPING", "LOSS", "CLASS_BALANCING", "AUGMENT"
    FREEZE_ENCODER, DEVICE, SEED, OUTPUT_MODEL, OUTPUT_REPORT = "FREEZE_ENCODER", "DEVICE", "SEED", "OUTPUT_MODEL", "OUTPUT_REPORT"
    OUTPUT_ONNX, TIME_LIMIT, PRECISION = "OUTPUT_ONNX", "TIME_LIMIT", "PRECISION"

    def name(self):
        return "trainunet"

    def displayName(self):
        return tr("Train U-Net")

    def shortHelpString(self):
        return tr(
            "Trains a U-Net with a ResNet encoder on a chip folder from Export Training Chips (or an Esri "
            "'Classified Tiles' folder) and saves one model file (.pt) for Classify Raster.\n\n"
            "A share of the chips, in spatial blocks apart from the training chips, is held out for validation. "
            "Each epoch logs the losses, accuracy and per-class IoU; the saved model is the epoch with the best "
            "validation mean IoU. Learning rate 0 finds a rate automatically. Canceling keeps the best model so far. "
            "The optional HTML report shows the curves, per-class scores, the confusion matrix and example predictions."
        )

    def initAlgorithm(self, config=None):
        self.addParameter(with_help(QgsProcessingParameterFile(self.CHIPS, tr("Chip folder"), QgsProcessingParameterFile.Behavior.Folder),
                                    tr("A folder written by Export Training Chips, or an Esri 'Classified Tiles' folder.")))
        self.addParameter(with_help(enum_param(self.BACKBONE, tr("Backbone"), BACKBONES, "resnet34"),
                                    tr("The ResNet encoder. Larger ones are more accurate and slower.")))
        self.addParameter(with_help(QgsProcessingParameterBoolean(self.PRETRAINED, tr("Start from ImageNet weights"), True),
                                    tr("Initialise the encoder with ImageNet weights. They are downloaded the first time (internet needed once) and kept in PyTorch's cache; offline, give a weights file as ENCODER_WEIGHTS or turn this off.")))
        self.addParameter(advanced(with_help(QgsProcessingParameterFile(self.ENCODER_WEIGHTS, tr("Local encoder weights"), extension="pth", optional=True),
                                             tr("A torchvision ResNet weights file (.pth), for machines without internet."))))
        self.addParameter(advanced(with_help(QgsProcessingParameterFile(self.INIT_MODEL, tr("Continue from model"), extension="pt", optional=True),
                                             tr("A trained model to fine-tune; its bands and classes must match the chips."))))
        self.addParameter(with_help(QgsProcessingParameterNumber(self.EPOCHS, tr("Epochs"), QgsProcessingParameterNumber.Type.Integer, 20, minValue=1),
                                    tr("Passes over the training chips.")))
        self.addParameter(with_help(QgsProcessingParameterNumber(self.TIME_LIMIT, tr("Time limit (minutes)"), QgsProcessingParameterNumber.Type.Double, 0.0, minValue=0.0),
                                    tr("Stop after this many minutes, keeping the best model; the learning-rate schedule is planned to end at the limit. 0: no limit (EPOCHS decides).")))
        self.addParameter(with_help(QgsProcessingParameterNumber(self.BATCH_SIZE, tr("Batch size"), QgsProcessingParameterNumber.Type.Integer, 8, minValue=1),
                                    tr("Chips per training step. Lower it if memory runs out.")))
        self.addParameter(advanced(with_help(QgsProcessingParameterNumber(self.LEARNING_RATE, tr("Learning rate"), QgsProcessingParameterNumber.Type.Double, 0.0, minValue=0.0),
                                             tr("0: found automatically by a learning-rate range test."))))
        self.addParameter(advanced(with_help(QgsProcessingParameterNumber(self.VALIDATION_PERCENT, tr("Validation share (%)"), QgsProcessingParameterNumber.Type.Double, 10, minValue=0, maxValue=99),
                                             tr("Share of chips held out for validation, in spatial blocks apart from the training chips."))))
        self.addParameter(advanced(with_help(QgsProcessingParameterNumber(self.EARLY_STOPPING, tr("Early stopping (epochs)"), QgsProcessingParameterNumber.Type.Integer, 5, minValue=0),
                                             tr("Stop after this many epochs without a better validation mean IoU. 0: never."))))
        self.addParameter(advanced(with_help(enum_param(self.LOSS, tr("Loss"), LOSSES, "cross-entropy"),
                                             tr("Cross-entropy; focal (for rare classes); or cross-entropy plus Dice."))))
        self.addParameter(advanced(with_help(QgsProcessingParameterBoolean(self.CLASS_BALANCING, tr("Balance classes"), False),
                                             tr("Weight classes by inverse frequency (square root, at most 10× the median class), so rare classes count more."))))
        self.addParameter(advanced(with_help(QgsProcessingParameterBoolean(self.AUGMENT, tr("Augment (flips and rotations)"), True),
                                             tr("Randomly flip and rotate chips by 90° while training."))))
        self.addParameter(advanced(with_help(QgsProcessingParameterBoolean(self.FREEZE_ENCODER, tr("Freeze encoder"), False),
                                             tr("Train the decoder only (faster, for small data sets)."))))
        self.addParameter(advanced(with_help(enum_param(self.DEVICE, tr("Device"), DEVICES, "auto"),
                                             tr("auto: a CUDA GPU when present, else the CPU."))))
        self.addParameter(advanced(with_help(enum_param(self.PRECISION, tr("Precision"), PRECISIONS, "auto"),
                                             tr("auto: the fastest arithmetic this CPU or GPU does natively (bf16 on CPUs with native bf16, measured; float16 mixed precision on CUDA). full: float32 throughout."))))
        self.addParameter(advanced(with_help(QgsProcessingParameterNumber(self.SEED, tr("Random seed"), QgsProcessingParameterNumber.Type.Integer, 42),
                                             tr("Makes the split and the training reproducible."))))
        self.addParameter(with_help(QgsProcessingParameterFileDestination(self.OUTPUT_MODEL, tr("Output model"), tr("U-Net model (*.pt)")),
                                    tr("The trained model file (.pt).")))
        self.addParameter(with_help(QgsProcessingParameterFileDestination(self.OUTPUT_REPORT, tr("Training report"), tr("HTML files (*.html)"), optional=True, createByDefault=False),
                                    tr("A self-contained HTML page with curves, scores and example predictions.")))
        self.addParameter(advanced(with_help(QgsProcessingParameterFileDestination(self.OUTPUT_ONNX, tr("Model as ONNX"), tr("ONNX models (*.onnx)"), optional=True, createByDefault=False),
                                             tr("The best model also as ONNX, with the metadata the Deepness plugin reads (needs the onnx package)."))))
        self.addOutput(QgsProcessingOutputNumber("VALIDATION_MIOU", tr("Validation mean IoU")))
        self.addOutput(QgsProcessingOutputNumber("VALIDATION_ACCURACY", tr("Validation pixel accuracy")))
        self.addOutput(QgsProcessingOutputNumber("EPOCHS_RUN", tr("Epochs run")))

    def process(self, parameters, context, feedback):
        from ..ml.train import TrainConfig, train

        report = self.parameterAsFileOutput(parameters, self.OUTPUT_REPORT, context) if parameters.get(self.OUTPUT_REPORT) else None
        onnx_path = self.parameterAsFileOutput(parameters, self.OUTPUT_ONNX, context) if parameters.get(self.OUTPUT_ONNX) else None
        cfg = TrainConfig(
            chips=self.parameterAsFile(parameters, self.CHIPS, context),
            output_model=self.parameterAsFileOutput(parameters, self.OUTPUT_MODEL, context),
            backbone=self.enum_value(parameters, self.BACKBONE, context),
            pretrained=self.parameterAsBool(parameters, self.PRETRAINED, context),
            encoder_weights=self.parameterAsFile(parameters, self.ENCODER_WEIGHTS, context) or None,
            init_model=self.parameterAsFile(parameters, self.INIT_MODEL, context) or None,
            epochs=self.parameterAsInt(parameters, self.EPOCHS, context),
            time_limit=self.parameterAsDouble(parameters, self.TIME_LIMIT, context),
            batch_size=self.parameterAsInt(parameters, self.BATCH_SIZE, context),
            learning_rate=self.parameterAsDouble(parameters, self.LEARNING_RATE, context),
            validation_percent=self.parameterAsDouble(parameters, self.VALIDATION_PERCENT, context),
            early_stopping=self.parameterAsInt(parameters, self.EARLY_STOPPING, context),
            loss=self.enum_value(parameters, self.LOSS, context),
            class_balancing=self.parameterAsBool(parameters, self.CLASS_BALANCING, context),
            augment=self.parameterAsBool(parameters, self.AUGMENT, context),
            freeze_encoder=self.parameterAsBool(parameters, self.FREEZE_ENCODER, context),
            device=self.enum_value(parameters, self.DEVICE, context),
            precision=self.enum_value(parameters, self.PRECISION, context),
            seed=self.parameterAsInt(parameters, self.SEED, context),
            output_report=report or None,
            output_onnx=onnx_path or None,
        )
        result = train(cfg, progress_of(feedback), feedback.isCanceled, log_of(feedback))
        if result.canceled:
            warn_of(feedback)(tr("Training was canceled; the best model so far was saved."))
        return {self.OUTPUT_MODEL: result.model_path, self.OUTPUT_REPORT: result.report_path, self.OUTPUT_ONNX: result.onnx_path,
                "VALIDATION_MIOU": result.miou, "VALIDATION_ACCURACY": result.accuracy, "EPOCHS_RUN": result.epochs_run}
