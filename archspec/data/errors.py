"""The error that every refusal of training data raises."""

from __future__ import annotations

from archspec.errors import ArchspecError


class DataError(ArchspecError):
    """Training data that cannot be used: the message starts with the file (or folder) at fault."""

    code = "AS1001"
