"""What every algorithm of the provider shares: translation, icon, error reporting, feedback adapters."""

from __future__ import annotations

import os
import traceback

from qgis.core import (
    QgsFeatureRequest, QgsProcessingAlgorithm, QgsProcessingException, QgsProcessingParameterDefinition, QgsProcessingParameterEnum,
)
from qgis.PyQt.QtCore import QCoreApplication
from qgis.PyQt.QtGui import QIcon

from ..core.errors import Canceled, UserInputError

CONTEXT = "UnetPlugin"
ICON = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(__file__))), "resources", "icon.svg")
DEVICES = ["auto", "cpu", "cuda"]


def tr(text: str) -> str:
    """Translate ``text`` in the plugin's one translation context."""
    return QCoreApplication.translate(CONTEXT, text)


def advanced(param):
    """Mark a parameter as advanced (collapsed in the dialog) and return it."""
    param.setFlags(param.flags() | QgsProcessingParameterDefinition.Flag.FlagAdvanced)
    return param


def enum_param(key: str, description: str, options: list[str], default: str):
    """An enum parameter whose values are its option names (``BACKBONE=resnet34``), not positions.

    Static strings (QGIS ≥ 3.18) are what ``qgis_process``, scripts and ``.model3`` files store,
    so inserting an option never changes what a saved model or script means.
    """
    return QgsProcessingParameterEnum(key, description, options, defaultValue=default, usesStaticStrings=True)


def with_help(param, text: str):
    """Attach help text to a parameter (shown by ``qgis_process help`` and as a tooltip)."""
    param.setHelp(text)
    return param


class UnetAlgorithm(QgsProcessingAlgorithm):
    """Base class: subclasses define ``name``, ``displayName``, parameters and ``process``."""

    needs_torch = False

    def tr(self, text: str) -> str:
        return tr(text)

    def createInstance(self):
        return type(self)()

    def icon(self):
        return QIcon(ICON)

    def helpUrl(self):
        return "https://github.com/qgis-unet/qgis-unet#readme"

    def canExecute(self):
        if self.needs_torch:
            from ..deps import missing_dependencies

            missing = missing_dependencies()
            if missing:
                return False, tr("This algorithm needs PyTorch: ") + missing
        return True, ""

    def processAlgorithm(self, parameters, context, feedback):
        ok, message = self.canExecute()
        if not ok:
            raise QgsProcessingException(message)
        if self.needs_torch:
            from ..deps import import_ml

            failure = import_ml()  # here, not in canExecute: opening a dialog must stay instant
            if failure:
                raise QgsProcessingException(tr("This algorithm needs PyTorch: ") + failure)
        try:
            return self.process(parameters, context, feedback)
        except UserInputError as exc:
            # the frames of a failed run hold open GDAL datasets: free them now, not whenever
            # the garbage collector breaks the traceback's cycles (perhaps after GDAL shut down)
            traceback.clear_frames(exc.__traceback__)
            prefix = f"{exc.parameter}: " if exc.parameter else ""
            raise QgsProcessingException(prefix + exc.message) from None
        except Canceled as exc:
            traceback.clear_frames(exc.__traceback__)
            raise QgsProcessingException(tr("Canceled; partial outputs were removed.")) from None

    def enum_value(self, parameters, key, context) -> str:
        """The chosen option's name of an :func:`enum_param`."""
        return self.parameterAsEnumString(parameters, key, context)

    def raster_with_crs(self, parameters, key: str, context):
        """The raster layer of ``key``, refused (naming ``key``) when missing or without a CRS."""
        layer = self.parameterAsRasterLayer(parameters, key, context)
        if layer is None:
            raise UserInputError(key, tr("choose a raster layer."))
        if not layer.crs().isValid():
            raise UserInputError(key, tr("the raster has no coordinate reference system; assign one first."))
        return layer

    @staticmethod
    def features_in(source, field, crs, context):
        """(wkb, field value or 1) of every polygon of ``source``, reprojected to ``crs``."""
        request = QgsFeatureRequest().setDestinationCrs(crs, context.transformContext())
        for f in source.getFeatures(request):
            if f.hasGeometry():
                yield f.geometry().asWkb(), (f[field] if field else 1)

    def extent_in(self, parameters, key, context, crs):
        """The EXTENT parameter in ``crs`` as (xmin, ymin, xmax, ymax), or None when not set."""
        if parameters.get(key) in (None, ""):
            return None
        rect = self.parameterAsExtent(parameters, key, context, crs)
        if rect.isNull() or rect.isEmpty():
            return None
        return rect.xMinimum(), rect.yMinimum(), rect.xMaximum(), rect.yMaximum()

    def process(self, parameters, context, feedback):  # pragma: no cover - abstract
        raise NotImplementedError


def progress_of(feedback):
    """A ``progress(fraction)`` callable for core functions."""
    return lambda fraction: feedback.setProgress(100.0 * fraction)


def log_of(feedback):
    return lambda message: feedback.pushInfo(message)


def warn_of(feedback):
    return feedback.pushWarning
