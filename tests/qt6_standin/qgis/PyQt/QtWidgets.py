from PyQt6.QtWidgets import *  # noqa: F403
