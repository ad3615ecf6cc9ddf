"""Registers the codecbench pytest plugin for runs from this repository, with the short option names.

Installed, codecbench is also the `pytest11` entry point `codecbench` (so `pytest -p codecbench` works
anywhere, with options named --codecbench-*); pytest then loads it by itself, and registering it twice would
be an error. The short names (`pytest benchmarks/ --model finetuned_seg7`) come from codecbench.aliases.
"""
import os
from importlib.metadata import entry_points

_autoloaded = not os.environ.get("PYTEST_DISABLE_PLUGIN_AUTOLOAD") and any(
    ep.name == "codecbench" for ep in entry_points(group="pytest11"))
pytest_plugins = ["codecbench.aliases"] + ([] if _autoloaded else ["codecbench.plugin"])
