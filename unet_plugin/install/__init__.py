"""PyTorch into QGIS without a shell: install the plugin's dependencies into a folder of its own.

The packages go into ``<QGIS profile>/python/unet-dependencies`` (no administrator rights, the
system Python untouched), which the plugin puts on ``sys.path`` when it loads, *before* the
site-packages folders: torch needs newer helpers than a distribution may ship (Debian 12's
sympy 1.11 lacks what torch 2.14 imports — found by the real install). QGIS's own numpy always
wins all the same: pip is pinned to the installed numpy (numpy 1.x builds stay on numpy 1.x,
which QGIS's GDAL needs), and the copy pip puts in the folder is removed (KEEP_FROM_QGIS). pip
runs in QGIS's own Python interpreter (:func:`python_executable`: on Windows ``sys.executable``
is ``qgis-bin.exe``, on macOS the bundle's python).

An install is all or nothing: pip writes into a staging folder beside the target, the result is
checked by importing it in a fresh interpreter, and only then does it replace the target (whose
completion marker is written last). A canceled or failed install removes the staging folder; a
target without its marker (a crash mid-way) is found at start-up and removed.

Offline and behind firewalls: ``wheels=`` a folder of wheels (``pip --no-index --find-links``;
:func:`download_command` prints the command that fills one for another platform), or an index
URL / proxy of the user's. The same code runs from the plugin's dialog (in a background task),
from ``python -m unet_plugin install`` and from Python, so IT departments can script it.

Nothing here imports torch, QGIS or Qt, except :mod:`.dialog` (the plugin's dialog, imported
only by the plugin). :mod:`.deps` says what is installed and importable.
"""

from .command import main
from .environment import default_profile, nvidia_gpu, python_executable
from .folder import (
    FOLDER_NAME,
    MARKER,
    STALE_SECONDS,
    activate,
    check_target,
    default_target,
    installed_versions,
    is_complete,
    repair,
    restart_needed,
)
from .pip import install
from .plan import (
    CPU_INDEX,
    CUDA_INDEX,
    OPTIONAL_PINS,
    PINS,
    InstallError,
    InstallPlan,
    download_command,
    requirements,
)

__all__ = ["CPU_INDEX", "CUDA_INDEX", "FOLDER_NAME", "MARKER", "OPTIONAL_PINS", "PINS", "STALE_SECONDS", "InstallError",
           "InstallPlan", "activate", "check_target", "default_profile", "default_target", "download_command", "install",
           "installed_versions", "is_complete", "main", "nvidia_gpu", "python_executable", "repair", "requirements",
           "restart_needed"]
