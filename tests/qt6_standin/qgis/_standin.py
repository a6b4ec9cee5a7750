"""Any attribute of a stand-in is another stand-in: ``Qgis.MessageLevel.Info``, ``QgsTask.Flag.CanCancel``."""


class _Meta(type):
    def __getattr__(cls, name):
        if name.startswith("__"):
            raise AttributeError(name)
        return _standin(name)

    def __or__(cls, other):
        return cls

    __ror__ = __or__


def _standin(name: str):
    return _Meta(name, (object,), {"__init__": lambda self, *a, **k: None,
                                   "__getattr__": lambda self, n: _standin(n) if not n.startswith("__") else None,
                                   "__call__": lambda self, *a, **k: _standin(name)()})


def module_getattr(name: str):
    if name.startswith("__"):
        raise AttributeError(name)
    return _standin(name)
