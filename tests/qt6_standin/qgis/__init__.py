"""A stand-in ``qgis`` package for checking the plugin under Qt 6 (QGIS 4) where no QGIS 4 is installed.

``qgis.PyQt.*`` is the real PyQt6 (from PyPI): every Qt name the plugin uses must exist there, with
PyQt6's scoped enums. ``qgis.core``, ``qgis.gui`` and ``qgis.utils`` are permissive stand-ins: any
name resolves to a class whose attributes resolve again — they check nothing of QGIS's own API,
which ``tests/test_plugin.py`` and friends check against a real QGIS.
"""
