"""Extract every ``tr("...")`` string of the plugin and merge it into the ``.ts`` files.

Existing translations are kept; new strings are added as unfinished, strings no longer
in the code are marked obsolete. Run after changing user-visible text:

    python3 scripts/update_translations.py
"""

from __future__ import annotations

import ast
import glob
import os
import sys
import xml.etree.ElementTree as ET

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CONTEXT = "UnetPlugin"


def source_strings() -> list[str]:
    """The literal arguments of ``tr(...)`` / ``self.tr(...)`` calls and ``N_(...)`` markers, in order of appearance."""
    found: list[str] = []
    for path in sorted(glob.glob(os.path.join(ROOT, "unet_plugin", "**", "*.py"), recursive=True)):
        with open(path, encoding="utf-8") as f:
            tree = ast.parse(f.read(), path)
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and node.args:
                fn = node.func
                name = fn.id if isinstance(fn, ast.Name) else fn.attr if isinstance(fn, ast.Attribute) else None
                arg = node.args[0]
                if name in ("tr", "N_") and isinstance(arg, ast.Constant) and isinstance(arg.value, str) and arg.value not in found:
                    found.append(arg.value)
    return found


def read_ts(path: str) -> dict[str, str]:
    """source → translation of the finished messages in a .ts file."""
    if not os.path.exists(path):
        return {}
    out = {}
    for msg in ET.parse(path).getroot().iter("message"):
        t = msg.find("translation")
        if t is not None and t.text and t.get("type") not in ("unfinished", "obsolete", "vanished"):
            out[msg.findtext("source")] = t.text
    return out


def write_ts(path: str, language: str, strings: list[str], translations: dict[str, str]) -> int:
    """Write the .ts; return the number of untranslated strings."""
    root = ET.Element("TS", version="2.1", language=language)
    ctx = ET.SubElement(root, "context")
    ET.SubElement(ctx, "name").text = CONTEXT
    missing = 0
    for s in strings:
        msg = ET.SubElement(ctx, "message")
        ET.SubElement(msg, "source").text = s
        t = ET.SubElement(msg, "translation")
        if s in translations:
            t.text = translations[s]
        else:
            t.set("type", "unfinished")
            missing += 1
    ET.indent(root)
    with open(path, "w", encoding="utf-8") as f:
        f.write('<?xml version="1.0" encoding="utf-8"?>\n<!DOCTYPE TS>\n')
        f.write(ET.tostring(root, encoding="unicode"))
        f.write("\n")
    return missing


def main() -> int:
    strings = source_strings()
    for path in sorted(glob.glob(os.path.join(ROOT, "i18n", "unet_plugin_*.ts"))):
        lang = os.path.basename(path)[len("unet_plugin_"):-3]
        missing = write_ts(path, lang, strings, read_ts(path))
        print(f"{path}: {len(strings)} strings, {missing} untranslated")
    return 0


if __name__ == "__main__":
    sys.exit(main())
