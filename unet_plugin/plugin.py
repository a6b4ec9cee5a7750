"""The plugin class: registers the Processing provider and the translator."""

from __future__ import annotations

import os

from qgis.core import QgsApplication, QgsSettings
from qgis.PyQt.QtCore import QCoreApplication, QTranslator

I18N = os.path.join(os.path.dirname(os.path.dirname(__file__)), "i18n")


def install_translator():
    """Install the translation for the user's QGIS locale, if there is one; return it (or None)."""
    locale = (QgsSettings().value("locale/userLocale", "") or "")[:2]
    path = os.path.join(I18N, f"unet_plugin_{locale}.qm")
    if locale and os.path.exists(path):
        translator = QTranslator()
        if translator.load(path):
            QCoreApplication.installTranslator(translator)
            return translator
    return None


class UnetPlugin:
    """``initProcessing`` is all ``qgis_process`` calls; ``initGui`` adds nothing but the provider."""

    def __init__(self, iface=None):
        self.iface = iface
        self.provider = None
        self.translator = None

    def initProcessing(self):  # noqa: N802 (QGIS API name)
        from .processing.provider import UnetProvider

        if self.translator is None:
            self.translator = install_translator()
        self.provider = UnetProvider()
        QgsApplication.processingRegistry().addProvider(self.provider)

    def initGui(self):  # noqa: N802
        self.initProcessing()

    def unload(self):
        if self.provider is not None:
            QgsApplication.processingRegistry().removeProvider(self.provider)
            self.provider = None
        if self.translator is not None:
            QCoreApplication.removeTranslator(self.translator)
            self.translator = None
