"""Errors that carry the parameter the user has to change."""

from __future__ import annotations


class UserInputError(ValueError):
    """A mistake in the user's input, reported without a traceback.

    Args:
        parameter: the Processing parameter key to blame (``"CHIP_SIZE"``), or ``None``.
        message: what is wrong and what to do about it.
    """

    def __init__(self, parameter: str | None, message: str):
        self.parameter = parameter
        self.message = message
        super().__init__(f"{parameter}: {message}" if parameter else message)


class Canceled(Exception):
    """The user canceled the run; partial outputs have been removed."""
