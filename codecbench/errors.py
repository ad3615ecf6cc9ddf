"""The one error base class of codecbench, and the errors every stage shares.

Every error codecbench raises on purpose (bad input, a missing component, an unusable file) is a
:class:`CodecbenchError`, and its message names the file, key or value at fault. The command
line catches this base class only, so a genuine bug still shows its traceback.
"""
from __future__ import annotations


class CodecbenchError(Exception):
    """Base class of every error codecbench raises on purpose."""


class UsageError(CodecbenchError, ValueError):
    """A setting (option, TOML key, environment variable) with a value codecbench cannot use."""


class CacheError(CodecbenchError, ValueError):
    """A cache folder or namespace that cannot be used as asked."""


class CheckpointError(CodecbenchError, ValueError):
    """A model file that cannot be loaded (missing, unknown format, not of the FCNN family, unsafe code)."""
