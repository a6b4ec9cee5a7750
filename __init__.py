"""QGIS plugin entry point: ``classFactory`` only, nothing heavy is imported here."""


def classFactory(iface):  # noqa: N802 (QGIS API name)
    """Return the plugin instance; QGIS calls this when it loads the plugin."""
    from .unet_plugin.plugin import UnetPlugin

    return UnetPlugin(iface)
