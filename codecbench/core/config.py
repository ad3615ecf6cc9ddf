"""Settings from ``[tool.codecbench]`` in the nearest pyproject.toml, below command-line options.

Precedence everywhere: an explicit option, then this table, then the built-in default.
"""
from __future__ import annotations

import tomllib
from pathlib import Path

from codecbench.errors import UsageError

PATH_KEYS = {"model_dir", "cache_dir", "thresholds", "baseline", "results"}


class ConfigError(UsageError):
    """A [tool.codecbench] table that cannot be used; the message names file and key."""


def find_pyproject(start: str | Path | None = None) -> Path | None:
    here = Path(start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        candidate = folder / "pyproject.toml"
        if candidate.is_file():
            return candidate
    return None


def parse_toml(text: str, source: str, error: type[ValueError] = ConfigError) -> dict:
    """TOML text as a dict; malformed TOML raises ``error`` naming ``source``."""
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise error(f"{source}: malformed TOML: {exc}") from None


def read_toml(path: str | Path, error: type[ValueError] = ConfigError, what: str = "file") -> dict:
    """A TOML file as a dict; a missing or malformed file raises ``error`` naming it."""
    path = Path(path)
    if not path.is_file():
        raise error(f"{path}: {what} not found")
    return parse_toml(path.read_text(), str(path), error)


def load_config(start: str | Path | None = None, *, keys) -> dict:
    """The ``[tool.codecbench]`` table (keys with dashes normalised to underscores), or ``{}``.

    Keys outside ``keys`` (the settings :mod:`codecbench.run.spec` knows) are an error naming them.
    """
    path = find_pyproject(start)
    if path is None:
        return {}
    table = read_toml(path).get("tool", {}).get("codecbench", {})
    if not isinstance(table, dict):
        raise ConfigError(f"{path}: [tool.codecbench] must be a table")
    config = {k.replace("-", "_"): v for k, v in table.items()}
    unknown = sorted(set(config) - set(keys))
    if unknown:
        raise ConfigError(f"{path}: [tool.codecbench] has unknown key(s) {', '.join(unknown)}; "
                          f"known: {', '.join(sorted(keys))}")
    for key, value in config.items():  # paths in the table are relative to the pyproject's folder
        is_path = key in PATH_KEYS or (key == "matrix" and str(value).endswith(".toml"))
        if is_path and isinstance(value, str) and not Path(value).expanduser().is_absolute():
            config[key] = str(path.parent / value)
    return config
