"""Write docs/parameters.md from the algorithms' declarations (unet_plugin/params.py).

The parameter tables of the contract are generated, not copied: keys, kinds, defaults, ranges,
enum names and help come from the one declaration the Processing dialogs and the command line are
built from. tests/test_docs.py checks that the committed file is what this script writes.

    python3 scripts/make_docs.py [path]
"""

from __future__ import annotations

import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DOCS = os.path.join(ROOT, "docs", "parameters.md")

KINDS = {
    "raster": "raster layer", "bands": "band numbers", "polygons": "polygon layer", "features": "polygon or point layer",
    "field": "field", "enum": "enum", "extent": "extent", "int": "integer", "float": "number", "bool": "boolean",
    "folder": "folder", "file": "file", "folder_out": "folder destination", "file_out": "file destination",
    "raster_out": "raster destination", "vector_out": "vector destination (polygons)", "sink": "feature sink (polygons)",
    "point_sink": "feature sink (points)", "table": "table destination",
}


def _cell(text: str) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def _default(p) -> str:
    if p.is_output or p.default is None:
        return "—"
    if isinstance(p.default, bool):
        return str(p.default).lower()
    return f"`{p.default}`" if p.kind == "enum" else f"{p.default:g}" if isinstance(p.default, float) else str(p.default)


def _kind(p) -> str:
    kind = KINDS[p.kind]
    if p.kind == "enum":
        kind += ": " + ", ".join(f"`{o}`" for o in p.options)
    if p.extension and p.kind in ("file", "file_out", "raster_out", "vector_out", "sink", "point_sink", "table"):
        kind += f" (.{p.extension})"
    flags = []
    if p.minimum is not None or p.maximum is not None:
        flags.append(f"{'' if p.minimum is None else f'{p.minimum:g}'}–{'' if p.maximum is None else f'{p.maximum:g}'}")
    if p.optional:
        flags.append("optional")
    if p.advanced:
        flags.append("advanced")
    return kind + (f" [{', '.join(flags)}]" if flags else "")


def render() -> str:
    sys.path.insert(0, ROOT)
    from unet_plugin import params as P

    out = ["# Parameters of the algorithms", "",
           "Generated from `unet_plugin/params.py` by `scripts/make_docs.py` — do not edit by hand. Keys and enum",
           "names are the stable contract (see [contract.md](contract.md)); `qgis_process`, `python -m unet_plugin`",
           "and saved Modeler models use them.", ""]
    for spec in P.ALGORITHMS.values():
        out += [f"## `unet:{spec.id}` — {spec.title}", ""]
        out += [" ".join(par.split()) + "\n" for par in spec.help.split("\n\n")]
        out += ["| key | kind | default | meaning |", "| --- | --- | --- | --- |"]
        out += [f"| {p.key} | {_cell(_kind(p))} | {_cell(_default(p))} | {_cell(p.help)} |" for p in spec.params]
        if spec.outputs:
            out += ["", "Numeric results: " + ", ".join(f"{o.key} ({o.label.lower()})" for o in spec.outputs) + "."]
        notes = []
        if spec.needs_torch:
            notes.append("needs PyTorch")
        else:
            notes.append("runs without PyTorch")
        if spec.distributed:
            notes.append("runs under `torchrun`")
        out += ["", "This algorithm " + " and ".join(notes) + ".", ""]
    return "\n".join(out).rstrip() + "\n"


def main(path: str = DOCS) -> None:
    with open(path, "w", encoding="utf-8") as f:
        f.write(render())
    print(path)


if __name__ == "__main__":
    main(*sys.argv[1:])
