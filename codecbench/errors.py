"""The one error base class of codecbench, and the errors every stage shares.

Every error codecbench raises on purpose (bad input, a missing component, an unusable file) is a
:class:`CodecbenchError`, and its message names the file, key or value at fault (``tests/test_errors.py``
walks the package for any other exception raised on purpose). The families: :class:`UsageError` (settings),
:class:`ArgumentError` (API arguments), :class:`CacheError`, :class:`CheckpointError`, :class:`CodecError`,
:class:`ModelError`, :class:`EnvironmentProblem`, :class:`FolderBusy`; the stages subclass them
(``DatasetError``, ``MatrixError``,
``ZooError``, ...). The command line catches this base class only, so a genuine bug still shows its traceback.
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


class ArgumentError(CodecbenchError, ValueError):
    """A function of the Python API called with a value it does not take; the message names it."""


class CodecError(CodecbenchError, RuntimeError):
    """A codec that failed on its input, or a bitstream that does not decode; the message names the condition."""


class ModelError(CodecbenchError, ValueError):
    """A model that cannot be used as declared; the message names the model, what was expected and what came."""


class EnvironmentProblem(CodecbenchError, RuntimeError):
    """A component this machine lacks (an accelerator, a backend's GPU build, a system library); the message names
    it and how to install it."""


class FolderBusy(CodecbenchError, RuntimeError):
    """A work folder (download, reproduce, export, results) another codecbench process is writing; the message
    names the folder, the other process and what to do."""


class NotARegularFile(CodecbenchError, OSError):
    """A path that should be a file's (a clip, an entry) but names a device, FIFO or folder; an ``OSError`` too, so
    callers that handle unreadable files handle it."""
