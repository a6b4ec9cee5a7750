"""Everything that imports torch. Importing this package first keeps PyTorch's compiler stack
out of a process where loading it would crash QGIS (see ``unet_plugin.deps``)."""

from ..install.deps import guard_compiler_stack

guard_compiler_stack()
