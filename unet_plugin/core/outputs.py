"""One owner for every write: no output of ours ever destroys data.

Every algorithm, the command line and torchrun write their outputs through this module:

- Outputs are checked before any work: an output that is an input, or another output of the same
  run (also through a sidecar such as ``.aux.xml`` or ``.qml``, or the same GeoPackage layer), is
  refused with a message naming the output's key.
- A file is written under a unique partial name beside its target (``.NAME.unet-partial-PID-RANDOM``),
  every write *and close* error is an error, and the finished file is checked (read back) before it
  replaces the target: until then the earlier file is untouched.
- Multi-layer containers (GeoPackage, SpatiaLite) are never replaced as files: only our layer is
  written or replaced; the other layers, styles and metadata stay.
- Files get the user's umask (not the 0600 of temporary files), so colleagues can read them.
- Partial files and folders of runs that were killed are removed at the next start.
"""

from __future__ import annotations

import glob
import os
import re
import secrets
import shutil
import time
from contextlib import contextmanager

from .errors import UserInputError

PARTIAL_MARK = ".unet-partial-"
_PARTIAL_RE = re.compile(r"^\..+" + re.escape(PARTIAL_MARK) + r"(\d+)-[0-9a-f]{8}")
# hidden names left behind by versions before 0.5.0 (no process id in them): removed when an hour old.
# Their visible ones (OUTPUT.partial.tif) are not touched: such a name could be a user's file.
_LEGACY = (".chips-partial-*", ".model-*.pt.partial", ".polygons-*")
_LEGACY_AGE = 3600.0
#: files a format writes beside the named one (shapefiles) or that we write beside it
_SHAPEFILE_PARTS = (".shp", ".shx", ".dbf", ".prj", ".cpg", ".qix", ".sbn", ".sbx")


def split_layer(path: str) -> tuple[str, str | None]:
    """``"file.gpkg|layername=roads"`` → (``"file.gpkg"``, ``"roads"``); a plain path → (path, None)."""
    file, _, options = str(path).partition("|")
    layer = None
    for opt in options.split("|"):
        if opt.lower().startswith("layername="):
            layer = opt.split("=", 1)[1]
    return file, layer


def layer_name(path: str) -> str:
    """The layer an output writes: the one named in ``path|layername=``, else the file's name."""
    file, layer = split_layer(path)
    return layer or os.path.splitext(os.path.basename(file))[0] or "layer"


def _real(path: str) -> str:
    return os.path.normcase(os.path.realpath(os.path.abspath(os.path.expanduser(path))))


def style_path(output: str) -> str:
    """Where the ``.qml`` style of an output goes: ``NAME.qml`` beside the file, or for a layer of a
    GeoPackage not named after the file ``NAME.LAYER.qml`` — a project's ``NAME.qml`` is not ours."""
    file, layer = split_layer(output)
    stem = os.path.splitext(file)[0]
    if _is_container(file) and layer and layer != os.path.basename(stem):
        return f"{stem}.{layer}.qml"
    return stem + ".qml"


def sidecars(path: str) -> list[str]:
    """Files that belong to ``path``: GDAL's ``.aux.xml``, the ``.qml`` style, a shapefile's parts."""
    file = split_layer(path)[0]
    stem, ext = os.path.splitext(file)
    out = [file + ".aux.xml", style_path(path)]
    if ext.lower() == ".shp":
        out += [stem + e for e in _SHAPEFILE_PARTS if e != ".shp"]
    return out


def _is_container(path: str) -> bool:
    return os.path.splitext(split_layer(path)[0])[1].lower() in (".gpkg", ".sqlite", ".db")


def _resources(path: str, output: bool, styles: bool = True) -> list[tuple[str, str | None]]:
    """What a path reads or writes: (real file, layer) pairs; layer ``None`` is the whole file.
    ``styles``: with the ``.qml`` style an output writes beside itself."""
    file, layer = split_layer(path)
    if _is_container(file):
        main = [(_real(file), layer_name(path) if output else layer)]
    else:
        main = [(_real(file), None)]
    if not output:
        return main
    return main + [(_real(s), None) for s in sidecars(path) if styles or not s.endswith(".qml")]


def _clash(a: tuple, b: tuple) -> bool:
    return a[0] == b[0] and (a[1] is None or b[1] is None or a[1] == b[1])


def check_aliases(inputs: dict, outputs: dict) -> None:
    """Refuse, before any work, outputs that would write over an input or over each other.

    Args:
        inputs: key → path (``path|layername=`` for a layer; folders too) of what the run reads.
        outputs: key → path of what it writes (``None`` for a skipped optional output).
    """
    read = [(r, key) for key, path in inputs.items() if path for r in _resources(path, False)]
    written: list[tuple[tuple, str]] = []
    for key, path in outputs.items():
        if not path:
            continue
        for r in _resources(path, True):
            for other, other_key in read:
                if _clash(r, other):
                    _refuse_alias(key, path, other_key, "input")
        # between this run's own outputs the styles do not count: map.tif and map.gpkg share map.qml (the
        # class raster's style, written last, is kept), as they always have
        mine = _resources(path, True, styles=False)
        for r in mine:
            for other, other_key in written:
                if _clash(r, other):
                    _refuse_alias(key, path, other_key, "output")
        written += [(r, key) for r in mine]


def _refuse_alias(key: str, path: str, other: str, what: str) -> None:
    raise UserInputError(key, f"'{split_layer(path)[0]}' is also the {what} {other}: it would be written over. "
                              "Choose another file name (or, in a GeoPackage, another layer: path.gpkg|layername=NAME).")


def pid_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    if os.name == "nt":  # os.kill would terminate it: ask the system instead
        import ctypes

        handle = ctypes.windll.kernel32.OpenProcess(0x1000, False, pid)  # PROCESS_QUERY_LIMITED_INFORMATION
        if not handle:
            return False
        code = ctypes.c_ulong()
        ctypes.windll.kernel32.GetExitCodeProcess(handle, ctypes.byref(code))
        ctypes.windll.kernel32.CloseHandle(handle)
        return code.value == 259  # STILL_ACTIVE
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _remove(path: str) -> None:
    if os.path.isdir(path) and not os.path.islink(path):
        shutil.rmtree(path, ignore_errors=True)
    else:
        try:
            os.remove(path)
        except OSError:
            pass


def remove_leftovers(folder: str) -> list[str]:
    """Remove the partial files and folders that killed runs left in ``folder``; return them.

    A partial name carries its process id: those of processes still running (another run writing
    beside us) are kept. Older versions' partial names carry none: they go when an hour old.
    """
    removed = []
    try:
        names = os.listdir(folder)
    except OSError:
        return removed
    for name in names:
        m = _PARTIAL_RE.match(name)
        if m and not pid_alive(int(m.group(1))):
            _remove(os.path.join(folder, name))
            removed.append(name)
    now = time.time()
    for pattern in _LEGACY:
        for path in glob.glob(os.path.join(glob.escape(folder), pattern)):
            try:
                old = now - os.stat(path).st_mtime > _LEGACY_AGE
            except OSError:
                continue
            if old:
                _remove(path)
                removed.append(os.path.basename(path))
    return removed


def partial_path(target: str) -> str:
    """A unique name beside ``target`` for writing it (this process's id and a random part; same extension)."""
    folder, base = os.path.split(os.path.abspath(target))
    ext = os.path.splitext(base)[1]
    return os.path.join(folder, f".{base}{PARTIAL_MARK}{os.getpid()}-{secrets.token_hex(4)}{ext}")


def _umask() -> int:
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except OSError:
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def apply_umask(path: str) -> None:
    """Give ``path`` (a folder: with everything in it) the permissions the user's umask gives new files."""
    mask = _umask()
    try:
        if os.path.isdir(path):
            os.chmod(path, 0o777 & ~mask)
            for root, dirs, files in os.walk(path):
                for d in dirs:
                    os.chmod(os.path.join(root, d), 0o777 & ~mask)
                for f in files:
                    os.chmod(os.path.join(root, f), 0o666 & ~mask)
        else:
            os.chmod(path, 0o666 & ~mask)
    except OSError:  # a file system without modes (FAT, some network shares)
        pass


def write_error(key: str, path: str, exc: BaseException) -> UserInputError:
    """A write failure as a message naming the output (disk full, read-only, no permission)."""
    text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    low = text.lower()
    if "no space" in low or getattr(exc, "errno", None) == 28 or (
            ("write" in low or "i/o" in low or "io error" in low) and _free_bytes(split_layer(path)[0]) < 1 << 20):
        why = "the disk is full"
    elif "read-only" in low or getattr(exc, "errno", None) == 30:
        why = "the file system is read-only"
    elif "permission" in low or getattr(exc, "errno", None) == 13:
        why = "no permission to write there"
    else:
        why = text
    return UserInputError(key, f"'{split_layer(path)[0]}' could not be written ({why}). Nothing was replaced; "
                               "free some space or choose another location, then run again.")


def _free_bytes(path: str) -> int:
    """Free bytes on the file system of ``path`` (its folder); a large number where unknown."""
    try:
        st = os.statvfs(os.path.dirname(os.path.abspath(path)) or ".")
        return st.f_bavail * st.f_frsize
    except (OSError, AttributeError):  # Windows: no statvfs
        try:
            return shutil.disk_usage(os.path.dirname(os.path.abspath(path)) or ".").free
        except OSError:
            return 1 << 62


def quiet_close_errors() -> None:
    """GDAL reports a failed write once more when the dataset is finally freed, as "Exception ignored"
    with a traceback on stderr. The error was already reported (:func:`close_raster`): drop that echo."""
    import sys

    previous = sys.unraisablehook

    def hook(unraisable):
        if "delete_Data" in repr(getattr(unraisable, "object", "")) and isinstance(unraisable.exc_value, RuntimeError):
            return
        previous(unraisable)
    sys.unraisablehook = hook


def fsync(path: str) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError as exc:
        if exc.errno not in (22, 9):  # EINVAL/EBADF: a file system without fsync
            raise
    finally:
        os.close(fd)


def commit(partial: str, target: str, key: str) -> None:
    """Replace ``target`` by the finished ``partial`` (and its ``.aux.xml``): flushed to disk,
    given the user's umask, renamed in one step. Stale sidecars of the old target go."""
    try:
        fsync(partial)
        apply_umask(partial)
        stale = target + ".aux.xml"  # the old file's statistics and names must not outlive it
        if os.path.exists(stale) and not os.path.exists(partial + ".aux.xml"):
            os.remove(stale)
        os.replace(partial, target)
        if os.path.exists(partial + ".aux.xml"):
            apply_umask(partial + ".aux.xml")
            os.replace(partial + ".aux.xml", target + ".aux.xml")
    except OSError as exc:
        discard(partial)
        raise write_error(key, target, exc) from None


def discard(partial: str | None) -> None:
    """Remove a partial file (and its sidecars) or folder; never fails."""
    if not partial:
        return
    for p in [partial] + sidecars(partial):
        if os.path.lexists(p):
            _remove(p)


@contextmanager
def partial_file(target: str, key: str):
    """Write ``target`` through a partial file: yields its path; on success the file replaces
    ``target``, on any error or cancel it is removed and ``target`` is untouched.

    Write errors (``OSError``, GDAL's ``RuntimeError`` naming a write failure) become a message
    naming ``key``.
    """
    tmp = partial_path(target)
    try:
        yield tmp
    except OSError as exc:
        discard(tmp)
        raise write_error(key, target, exc) from None
    except BaseException:
        discard(tmp)
        raise
    commit(tmp, target, key)


def write_text(target: str, key: str, text: str) -> str:
    """Write a text file (a report, a style) whole or not at all."""
    with partial_file(target, key) as tmp:
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
    return target
