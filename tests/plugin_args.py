"""Running codecbench's plugin through pytester: the options that load it with its short option names, and
:func:`run_plugin`, which runs a pytest session with it inside the test's own process."""
from __future__ import annotations

import importlib
import pkgutil

PLUGIN_ARGS = ("-p", "codecbench", "-p", "codecbench.aliases")

_imported = False


def _import_codecbench() -> None:
    """Every codecbench module and Keras's backend, imported once per test process.

    pytester drops, after an in-process run, every module first imported during it; importing such a module again
    makes a second copy of its classes (an ``except UsageError`` that no longer catches) and, for soxr's nanobind
    extension, aborts the process. Imported here first, they outlive the runs."""
    global _imported
    if _imported:
        return
    import codecbench
    from codecbench.core.backend import keras  # noqa: F401  (the backend's import is most of a start-up)

    for module in pkgutil.walk_packages(codecbench.__path__, "codecbench."):
        if module.name.endswith(".__main__"):  # the command line itself, run on import
            continue
        try:
            importlib.import_module(module.name)
        except ImportError:  # an optional component missing here: its own tests skip, naming it
            continue
    _imported = True


def run_plugin(pytester, *args):
    """``pytest *args`` with codecbench's plugin, in this process.

    A subprocess would import TensorFlow again (10 to 20 s of a 2-core machine) for each run; what the runs check
    (options, outcomes, files, exit codes, output) is the same in process. Tests of what differs between processes
    (start-up, environment variables read at import) keep ``runpytest_subprocess``."""
    from codecbench.codecs import forget_availability

    _import_codecbench()
    # a new process has no worker processes yet and probes the codec libraries afresh, with this test's CODECBENCH_*
    # settings, and so do the runs here: an earlier test's answers (encodec@6 unavailable without its weights), in
    # this process or in the workers it started, are not carried into this one, nor this one's into the next
    forget_availability()
    try:
        return pytester.runpytest_inprocess(*PLUGIN_ARGS, "-p", "no:cacheprovider", *args)
    finally:
        forget_availability()
