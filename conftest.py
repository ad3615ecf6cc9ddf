"""Registers the codecbench pytest plugin for runs from this repository.

Installed, codecbench is also the `pytest11` entry point `codecbench` (so `pytest -p codecbench`
works anywhere); pytest then loads it by itself, and registering it twice would be an error.
"""
import os
from importlib.metadata import entry_points

_autoloaded = not os.environ.get("PYTEST_DISABLE_PLUGIN_AUTOLOAD") and any(
    ep.name == "codecbench" for ep in entry_points(group="pytest11"))
pytest_plugins = [] if _autoloaded else ["codecbench.plugin"]
