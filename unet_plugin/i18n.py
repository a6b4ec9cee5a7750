"""Translation without a hard dependency on Qt: in QGIS the plugin's translator answers, elsewhere
(the command line, ``torchrun``) the English source text is the message."""

from __future__ import annotations

import sys

CONTEXT = "UnetPlugin"


def tr(text: str) -> str:
    """Translate ``text`` in the plugin's one translation context, when Qt is loaded in this process."""
    qtcore = sys.modules.get("qgis.PyQt.QtCore")
    if qtcore is None:
        return text
    return qtcore.QCoreApplication.translate(CONTEXT, text)
