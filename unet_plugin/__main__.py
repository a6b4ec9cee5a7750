"""``python -m unet_plugin ALGORITHM KEY=VALUE ...`` (and under ``torchrun ... -m unet_plugin``): see :mod:`.cli`."""

import sys

from .cli import main

if __name__ == "__main__":
    sys.exit(main())
