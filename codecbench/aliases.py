"""Short names for the codecbench pytest options (``--model`` for ``--codecbench-model``, ``--plan``, ...).

The installed plugin registers only prefixed options, so that it claims no common name in other projects'
pytest runs. A project whose suite is the benchmark opts in to the short names by loading this plugin from its
``conftest.py`` (``pytest_plugins = ["codecbench.aliases"]``), as this repository does.
"""
from __future__ import annotations


def pytest_addoption(parser):
    from codecbench.plugin import add_options

    add_options(parser, lambda name: f"--{name}")
