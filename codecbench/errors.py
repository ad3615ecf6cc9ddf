"""The one error base class of codecbench, and its six families by meaning.

Every error codecbench raises on purpose is a :class:`CodecbenchError` whose message names the file, key or value
at fault (``tests/test_errors.py`` walks the package for any other exception raised on purpose), and it belongs to
exactly one family, by what the user does about it:

- :class:`UsageError`: a setting or argument codecbench cannot use (an option, a TOML key, an environment
  variable, a Python API argument): change the command.
- :class:`DataError`: a dataset, clip, download, results file or export that cannot be used as found: fix or
  replace the data.
- :class:`ModelError`: a model that cannot be used as declared (its file, sidecar, zoo entry, shape or classes).
- :class:`CodecError`: a codec that failed on its input, or a bitstream that does not decode.
- :class:`CacheError`: a cache folder or namespace that cannot be used as asked.
- :class:`EnvironmentProblem`: something this machine lacks or holds (a library, an accelerator, disk space, a
  scheduler, a folder another process is writing): install, free or wait.

The stages subclass a family (``DatasetError`` is a :class:`DataError`, ``ZooError`` a :class:`ModelError`, ...).
The command line and the pytest plugin catch this base class only, so a genuine bug still shows its traceback.
An error met while using an option's value keeps its family; the option is noted on it (:func:`noted`), and the two
edges print it before the message (:func:`message`).
"""
from __future__ import annotations


class CodecbenchError(Exception):
    """Base class of every error codecbench raises on purpose."""


class UsageError(CodecbenchError, ValueError):
    """A setting (option, TOML key, environment variable) with a value codecbench cannot use."""


class CacheError(CodecbenchError, ValueError):
    """A cache folder or namespace that cannot be used as asked."""


class ModelError(CodecbenchError, ValueError):
    """A model that cannot be used as declared; the message names the model, what was expected and what came."""


class DataError(CodecbenchError):
    """Data that cannot be used as found: a dataset, clip, download, results file or export; the message names it."""


class CheckpointError(ModelError):
    """A model file that cannot be loaded (missing, unknown format, not of the FCNN family, unsafe code)."""


class ArgumentError(UsageError):
    """A function of the Python API called with a value it does not take; the message names it."""


class CodecError(CodecbenchError, RuntimeError):
    """A codec that failed on its input, or a bitstream that does not decode; the message names the condition."""


class EnvironmentProblem(CodecbenchError, RuntimeError):
    """A component this machine lacks (an accelerator, a backend's GPU build, a system library); the message names
    it and how to install it."""


class FolderBusy(EnvironmentProblem):
    """A work folder (download, reproduce, export, results) another codecbench process is writing; the message
    names the folder, the other process and what to do."""


class NotARegularFile(DataError, OSError):
    """A path that should be a file's (a clip, an entry) but names a device, FIFO or folder; an ``OSError`` too, so
    callers that handle unreadable files handle it."""


#: The families, in the order the module docstring gives them; every other error class derives from exactly one.
FAMILIES = (UsageError, DataError, ModelError, CodecError, CacheError, EnvironmentProblem)


#: How :func:`noted` marks its notes (PEP 678), so that :func:`message` tells them from a note of anyone else's.
_OPTION, _DETAIL = "codecbench option: ", "codecbench detail: "


def noted(exc: CodecbenchError, option: str, *, detail: str | None = None) -> CodecbenchError:
    """``exc``, kept in its family, with the option whose value led to it noted on it, and a ``detail`` the option's
    context adds (for example the dataset's rates). The command line and the pytest plugin print both with the
    message (:func:`message`); a Python caller sees the notes under the traceback."""
    exc.add_note(f"{_OPTION}{option}")
    if detail:
        exc.add_note(f"{_DETAIL}{detail}")
    return exc


def message(exc: BaseException) -> str:
    """How the edges print an error: ``OPTION: message (detail)``, with what :func:`noted` added (the option noted
    last, the outermost, first)."""
    text = str(exc)
    for note in getattr(exc, "__notes__", ()):
        if note.startswith(_OPTION):
            text = f"{note.removeprefix(_OPTION)}: {text}"
        elif note.startswith(_DETAIL):
            text = f"{text} ({note.removeprefix(_DETAIL)})"
    return text
