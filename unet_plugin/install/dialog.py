"""The installer in QGIS: a message bar offer at start-up, a Plugins menu entry, and a dialog that
runs :func:`.installer.install` in a background task (QGIS stays responsive; progress, the pip
log and Cancel in the dialog and in QGIS's task bar)."""

from __future__ import annotations

import os

from qgis.core import Qgis, QgsApplication, QgsTask
from qgis.PyQt.QtCore import QObject, pyqtSignal
from qgis.PyQt.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPlainTextEdit,
    QProgressBar,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from .. import install as installer
from ..i18n import tr

MENU = "U-Net Segmentation"


def profile_target() -> str:
    return installer.default_target(QgsApplication.qgisSettingsDirPath())


def activate_at_startup(log=lambda m: None) -> bool:
    """Put the plugin's own install folder on the path (a half-written one is removed first)."""
    target = profile_target()
    installer.repair(target, log)
    return installer.activate(target)


class _Lines(QObject):
    """Log lines from the task's thread to the dialog (queued signal: widgets are touched in the GUI thread only)."""

    line = pyqtSignal(str)


class InstallTask(QgsTask):
    """pip in the background; ``finished`` runs in the GUI thread."""

    def __init__(self, plan: installer.InstallPlan, on_done):
        super().__init__(tr("Installing PyTorch for U-Net Segmentation"), QgsTask.Flag.CanCancel)
        self.plan, self.on_done = plan, on_done
        self.lines = _Lines()
        self.error, self.versions = None, None

    def run(self):
        try:
            self.versions = installer.install(self.plan, lambda f: self.setProgress(100.0 * f), self.isCanceled,
                                              self.lines.line.emit)
            return True
        except installer.InstallError as exc:
            self.error = str(exc)
        except Exception as exc:  # reported in the dialog, never lost in a thread
            self.error = f"{type(exc).__name__}: {exc}"
        return False

    def finished(self, result):
        self.on_done(self)


class InstallDialog(QDialog):
    """Choices (build, source, onnxruntime), then Install: progress, the pip log, Cancel."""

    def __init__(self, parent=None, iface=None):
        super().__init__(parent)
        self.iface, self.task = iface, None
        self.setWindowTitle(tr("Install PyTorch for U-Net Segmentation"))
        self.resize(720, 520)
        layout = QVBoxLayout(self)
        try:
            python = installer.python_executable()
        except installer.InstallError as exc:
            python = ""
            self._python_error = str(exc)
        else:
            self._python_error = None
        self.target = profile_target()
        gpu = installer.nvidia_gpu()
        intro = QLabel(tr("The plugin needs PyTorch. It is installed into a folder of the plugin inside your QGIS profile: "
                          "no administrator rights are needed and QGIS's own Python is not changed."))
        intro.setWordWrap(True)
        layout.addWidget(intro)
        form = QFormLayout()
        form.addRow(tr("Python"), QLabel(python or self._python_error))
        form.addRow(tr("Install folder"), QLabel(self.target))
        self.build = QComboBox()
        self.build.addItem(tr("CPU (works everywhere, about 200 MB)"), "cpu")
        self.build.addItem(tr("CUDA for NVIDIA GPUs (several GB)"), "cuda")
        self.build.setCurrentIndex(1 if gpu else 0)
        form.addRow(tr("Build"), self.build)
        form.addRow("", QLabel(tr("NVIDIA GPU found: {}").format(gpu) if gpu else tr("No NVIDIA GPU found.")))
        self.source = QComboBox()
        self.source.addItem(tr("Internet (PyPI and download.pytorch.org)"), "internet")
        self.source.addItem(tr("A folder of wheels (offline)"), "wheels")
        form.addRow(tr("From"), self.source)
        self.wheels = QLineEdit()
        browse = QPushButton(tr("Browse…"))
        browse.clicked.connect(self._browse)
        row = QHBoxLayout()
        row.setContentsMargins(0, 0, 0, 0)
        row.addWidget(self.wheels)
        row.addWidget(browse)
        self.wheels_row = QWidget()
        self.wheels_row.setLayout(row)
        form.addRow(tr("Wheel folder"), self.wheels_row)
        self.index_url = QLineEdit()
        self.index_url.setPlaceholderText(tr("optional: your company's package index"))
        form.addRow(tr("Index URL"), self.index_url)
        self.proxy = QLineEdit()
        self.proxy.setPlaceholderText("http://proxy:8080")
        form.addRow(tr("Proxy"), self.proxy)
        self.onnx = QCheckBox(tr("Also onnxruntime and onnx (about 1.3× faster classification on a CPU, int8 where it draws the same map)"))
        self.onnx.setChecked(True)
        form.addRow("", self.onnx)
        layout.addLayout(form)
        self.progress = QProgressBar()
        self.progress.setRange(0, 100)
        layout.addWidget(self.progress)
        self.log = QPlainTextEdit()
        self.log.setReadOnly(True)
        layout.addWidget(self.log, 1)
        self.status = QLabel()
        self.status.setWordWrap(True)
        layout.addWidget(self.status)
        self.buttons = QDialogButtonBox()
        self.install_button = self.buttons.addButton(tr("Install"), QDialogButtonBox.ButtonRole.AcceptRole)
        self.cancel_button = self.buttons.addButton(QDialogButtonBox.StandardButton.Cancel)
        self.close_button = self.buttons.addButton(QDialogButtonBox.StandardButton.Close)
        self.install_button.clicked.connect(self.start)
        self.cancel_button.clicked.connect(self.cancel)
        self.close_button.clicked.connect(self.reject)
        self.cancel_button.setEnabled(False)
        layout.addWidget(self.buttons)
        self.source.currentIndexChanged.connect(self._source_changed)
        self._source_changed()
        if self._python_error:
            self.install_button.setEnabled(False)
            self.status.setText(self._python_error)
        elif installer.is_complete(self.target):
            versions = installer.installed_versions(self.target)
            self.status.setText(tr("Installed: {}. Installing again replaces it.").format(
                ", ".join(f"{m} {v}" for m, v in versions.items())))

    def _browse(self):
        folder = QFileDialog.getExistingDirectory(self, tr("Folder of wheels"), self.wheels.text())
        if folder:
            self.wheels.setText(folder)

    def _source_changed(self):
        offline = self.source.currentData() == "wheels"
        self.wheels_row.setEnabled(offline)
        self.index_url.setEnabled(not offline)
        self.proxy.setEnabled(not offline)

    def plan(self) -> installer.InstallPlan:
        wheels = self.wheels.text().strip() if self.source.currentData() == "wheels" else None
        if self.source.currentData() == "wheels" and not wheels:
            raise installer.InstallError(tr("choose the folder of wheels."))
        build = self.build.currentData()
        return installer.InstallPlan(
            target=self.target, python=installer.python_executable(),
            packages=installer.requirements(build, self.onnx.isChecked(), wheels, self.index_url.text().strip() or None),
            build=build, wheels=wheels,
            index_url=self.index_url.text().strip() or None, proxy=self.proxy.text().strip() or None)

    def start(self):
        try:
            plan = self.plan()
            installer.check_target(plan.target)
        except installer.InstallError as exc:
            self.status.setText(tr("Cannot install: {}").format(exc))
            return
        self.log.clear()
        self.progress.setValue(0)
        self.status.setText(tr("Installing… QGIS stays usable; this dialog may be closed (the task bar shows the progress)."))
        self.install_button.setEnabled(False)
        self.cancel_button.setEnabled(True)
        self.task = InstallTask(plan, self._done)
        self.task.lines.line.connect(self.log.appendPlainText)
        self.task.progressChanged.connect(lambda p: self.progress.setValue(int(p)))
        QgsApplication.taskManager().addTask(self.task)

    def cancel(self):
        if self.task is not None:
            self.task.cancel()

    def _done(self, task: InstallTask):
        self.task = None
        self.cancel_button.setEnabled(False)
        self.install_button.setEnabled(True)
        if task.error:
            self.status.setText(tr("Not installed: {}").format(task.error))
            self.progress.setValue(0)
            return
        self.progress.setValue(100)
        installer.activate(task.plan.target)
        stale = installer.restart_needed(task.plan.target, list(task.versions or {}))
        if stale:
            message = tr("PyTorch is installed. Restart QGIS to use it (an older {} is loaded in this session).").format(", ".join(stale))
        else:
            message = tr("PyTorch is installed and ready: the U-Net algorithms run now, no restart needed.")
        self.status.setText(message)
        if self.iface is not None:
            self.iface.messageBar().pushMessage(MENU, message, Qgis.MessageLevel.Success, 10)


def offer_install(iface, open_dialog) -> None:
    """A message bar entry with an Install button, shown at start-up when PyTorch is missing."""
    from .deps import missing_dependencies

    missing = missing_dependencies(advice=False)  # at start-up: no Python started to name the command
    if not missing:
        return
    bar = iface.messageBar()
    widget = bar.createMessage(MENU, tr("The U-Net algorithms need PyTorch, which is not installed in QGIS's Python."))
    button = QPushButton(tr("Install PyTorch…"), widget)
    button.clicked.connect(open_dialog)
    widget.layout().addWidget(button)
    bar.pushWidget(widget, Qgis.MessageLevel.Warning)


def icon_path() -> str:
    return os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(__file__))), "resources", "icon.svg")
