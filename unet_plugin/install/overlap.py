"""Which packages of an install QGIS's Python already has: those stay QGIS's.

pip installs torch with every dependency into the folder (pillow, jinja2, sympy, …), and the
folder goes before site-packages on ``sys.path``. Left there, each would replace QGIS's own copy
for every plugin. So after pip, every distribution in the folder that QGIS's Python already has,
in a version that satisfies what the folder's packages require of it, is taken out: QGIS's copy
serves. Only what QGIS lacks, or has in a version too old (Debian 12's sympy 1.11 for torch's
``sympy>=1.13``), goes ahead of QGIS's packages. The packages asked for (torch, torchvision, …)
always stay.
"""

from __future__ import annotations

import email.parser
import os
import re
import shutil
import sys
from collections import defaultdict
from importlib import metadata


def canonical(name: str) -> str:
    """A distribution name as pip compares them (PEP 503)."""
    return re.sub(r"[-_.]+", "-", name).lower()


def _requirement_class():
    try:
        from packaging.requirements import Requirement
    except ImportError:  # QGIS's Python without packaging: pip's own copy
        from pip._vendor.packaging.requirements import Requirement
    return Requirement


def folder_distributions(folder: str) -> dict:
    """canonical name → (version, Requires-Dist lines, dist-info folder) of the distributions in ``folder``."""
    out = {}
    for entry in sorted(os.listdir(folder)):
        meta_path = os.path.join(folder, entry, "METADATA")
        if entry.endswith(".dist-info") and os.path.isfile(meta_path):
            with open(meta_path, encoding="utf-8", errors="replace") as f:
                meta = email.parser.Parser().parse(f, headersonly=True)
            out[canonical(meta["Name"])] = (meta["Version"], meta.get_all("Requires-Dist") or [], entry)
    return out


def qgis_versions(exclude: list[str]) -> dict:
    """canonical name → version of what this Python has, the folders in ``exclude`` (the install's own) left out."""
    skip = [os.path.normcase(os.path.abspath(p)) for p in exclude]
    path = [p for p in sys.path if p and not any(os.path.normcase(os.path.abspath(p)).startswith(s) for s in skip)]
    have = {}
    for dist in metadata.distributions(path=path):
        name = dist.metadata["Name"]
        if name and canonical(name) not in have:  # the first on the path is the one imported
            have[canonical(name)] = dist.version
    return have


def required_of(dists: dict) -> dict:
    """canonical name → the specifiers the folder's distributions put on it (extras left out)."""
    requirement = _requirement_class()
    needs = defaultdict(list)
    for _version, requires, _entry in dists.values():
        for line in requires:
            try:
                req = requirement(line)
            except Exception:  # an unparsable line constrains nothing we can check
                continue
            if req.marker is not None and not req.marker.evaluate({"extra": ""}):
                continue
            needs[canonical(req.name)].append(req.specifier)
    return needs


def take_out_provided(folder: str, wanted: set[str], exclude: list[str], held: str) -> list[str]:
    """Move out of ``folder`` (into ``held``) every distribution QGIS's Python provides well enough;
    return "name version" of QGIS's copies now used. ``wanted``: canonical names that always stay."""
    dists = folder_distributions(folder)
    needs, have = required_of(dists), qgis_versions(exclude)
    kept = []
    for name, (_version, _requires, entry) in dists.items():
        if name in wanted or name not in have:
            continue
        if all(spec.contains(have[name], prereleases=True) for spec in needs.get(name, [])):
            _move_distribution(folder, entry, held)
            kept.append(f"{name} {have[name]}")
    return kept


def put_back(held: str, folder: str) -> None:
    """Undo :func:`take_out_provided` (when the install does not load without the folder's copies)."""
    for root, _dirs, files in os.walk(held):
        for f in files:
            src = os.path.join(root, f)
            dst = os.path.join(folder, os.path.relpath(src, held))
            os.makedirs(os.path.dirname(dst), exist_ok=True)
            os.replace(src, dst)
    shutil.rmtree(held, ignore_errors=True)


def _move_distribution(folder: str, entry: str, held: str) -> None:
    """Every file the distribution's RECORD lists inside ``folder`` (and its dist-info) into ``held``."""
    files = []
    record = os.path.join(folder, entry, "RECORD")
    if os.path.isfile(record):
        with open(record, encoding="utf-8", errors="replace") as f:
            files = [line.rsplit(",", 2)[0] for line in f if line.strip()]
    root = os.path.abspath(folder)
    dirs = set()
    for rel in files + [os.path.join(entry, name) for name in os.listdir(os.path.join(folder, entry))]:
        src = os.path.abspath(os.path.join(folder, rel))
        if not src.startswith(root + os.sep) or not os.path.isfile(src):  # scripts in ../bin, files listed twice
            continue
        dst = os.path.join(held, os.path.relpath(src, root))
        os.makedirs(os.path.dirname(dst), exist_ok=True)
        os.replace(src, dst)
        dirs.add(os.path.dirname(src))
    for d in sorted(dirs, key=len, reverse=True):  # folders the move left empty (or holding only bytecode)
        while d.startswith(root + os.sep) and os.path.isdir(d) and set(os.listdir(d)) <= {"__pycache__"}:
            shutil.rmtree(d)
            d = os.path.dirname(d)
