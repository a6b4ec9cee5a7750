"""Output paths checked before any work: a run that cannot write its result must not start."""

from __future__ import annotations

import os

from .errors import UserInputError


def check_output_file(path: str, parameter: str) -> None:
    """Refuse an output file path that is a folder, on a missing drive, or not writable.

    The folder is created when it is missing (as QGIS does for its own outputs).
    """
    if not path:
        raise UserInputError(parameter, "choose an output file.")
    if os.path.isdir(path):
        raise UserInputError(parameter, f"'{path}' is a folder; give a file name inside it (e.g. "
                                        f"'{os.path.join(path, 'result' + _suffix(parameter))}').")
    folder = os.path.dirname(os.path.abspath(path)) or "."
    if not os.path.isdir(folder):
        try:
            os.makedirs(folder, exist_ok=True)
        except OSError as exc:
            raise UserInputError(parameter, f"cannot create folder '{folder}' ({exc.strerror}); is the drive there? "
                                            "Choose another location.") from None
    if not os.access(folder, os.W_OK) or (os.path.exists(path) and not os.access(path, os.W_OK)):
        raise UserInputError(parameter, f"'{path}' cannot be written (no permission). Choose another location.")


def _suffix(parameter: str) -> str:
    return {"OUTPUT_MODEL": ".pt", "OUTPUT_REPORT": ".html", "OUTPUT_ONNX": ".onnx"}.get(parameter, ".tif")
