from ._standin import _standin
from ._standin import module_getattr as __getattr__  # noqa: F401

Qgis = _standin("Qgis")
Qgis.QGIS_VERSION_INT = 40000  # QGIS 4: Qt 6


class QgsApplication(_standin("QgsApplication")):
    @staticmethod
    def qgisSettingsDirPath() -> str:  # noqa: N802 - QGIS's name
        import tempfile

        return tempfile.gettempdir()
