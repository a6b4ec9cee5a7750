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
    """``initProcessing`` is all ``qgis_process`` calls; ``initGui`` adds the installer's menu entry
    and, when PyTorch is missing, offers to install it."""

    def __init__(self, iface=None):
        self.iface = iface
        self.provider = None
        self.translator = None
        self.install_action = None
        self.dialog = None

    def initProcessing(self):  # noqa: N802 (QGIS API name)
        from .install.dialog import activate_at_startup
        from .processing.provider import UnetProvider

        activate_at_startup()  # PyTorch installed by the plugin's installer, in every QGIS process
        if self.translator is None:
            self.translator = install_translator()
        self.provider = UnetProvider()
        if QgsApplication.processingRegistry().addProvider(self.provider):
            self.provider.refreshAlgorithms()  # now the shipped models find their steps (processing/provider.py)

    def initGui(self):  # noqa: N802
        self.initProcessing()
        if self.iface is None:
            return
        from qgis.PyQt.QtGui import QIcon
        from qgis.PyQt.QtWidgets import QAction

        from .i18n import tr
        from .install.dialog import MENU, icon_path, offer_install

        self.install_action = QAction(QIcon(icon_path()), tr("Install PyTorch…"), self.iface.mainWindow())
        self.install_action.triggered.connect(self.show_installer)
        self.iface.addPluginToMenu(MENU, self.install_action)
        offer_install(self.iface, self.show_installer)

    def show_installer(self):
        from .install.dialog import InstallDialog

        if self.dialog is None:
            self.dialog = InstallDialog(self.iface.mainWindow() if self.iface else None, self.iface)
        self.dialog.show()
        self.dialog.raise_()

    def unload(self):
        if self.install_action is not None:
            from .install.dialog import MENU

            self.iface.removePluginMenu(MENU, self.install_action)
            self.install_action = None
        if self.dialog is not None:
            self.dialog.close()
            self.dialog = None
        if self.provider is not None:
            QgsApplication.processingRegistry().removeProvider(self.provider)
            self.provider = None
        if self.translator is not None:
            QCoreApplication.removeTranslator(self.translator)
            self.translator = None
