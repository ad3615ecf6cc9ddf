"""One typed run specification, built once at the edge from options, ``[tool.codecbench]`` and defaults.

Every setting codecbench takes is declared once in :data:`OPTIONS`: its flag, its default, its
help and the converter that validates it. :meth:`RunSpec.build` merges explicit values (command
line or pytest options) over the ``[tool.codecbench]`` table of the nearest pyproject.toml over
the defaults, converts each value once, and raises :class:`~codecbench.errors.UsageError` naming
the option (or the TOML key) and the accepted values. From there values travel as objects:
conditions as :class:`~codecbench.codecs.Condition`, paths as :class:`~pathlib.Path`, the matrix
as a :class:`~codecbench.codecs.matrix.Matrix`. The command line and the pytest plugin both use it.
"""
from __future__ import annotations

import dataclasses
import math
import os
import re
from pathlib import Path
from typing import Any, Callable, Mapping

from codecbench.codecs import ConditionError, parse_condition
from codecbench.core.config import find_pyproject, load_config
from codecbench.core.parallel import resolve_jobs, usable_cores
from codecbench.core.vocabulary import (
    ON_ERROR,
    PARALLEL_BACKENDS,
    PRECISIONS,
    OnError,
    ParallelBackend,
    Precision,
    one_of,
)
from codecbench.errors import UsageError, noted
from codecbench.results.metrics import METRICS
from codecbench.run.rates import Rates, RatesError

# --------------------------------------------------------------------------- converters
# Each takes the raw value and a label saying where it came from, and returns the typed value.

def _text_items(value, where: str) -> list[str]:
    items = value if isinstance(value, (list, tuple)) else [value]
    out = [part.strip() for item in items for part in str(item).split(",")]
    out = [p for p in out if p]
    if not out:
        raise UsageError(f"{where}: empty; give at least one value, or leave the option out for the default")
    return out


def to_names(value, where: str) -> list[str]:
    return list(dict.fromkeys(_text_items(value, where)))


def to_conditions(value, where: str) -> list:
    items = _text_items(value, where)
    for i, item in enumerate(items):
        # a sweep (opus@24+loss0..20, or opus@24+loss1,5,10, which this option splits at its commas)
        if ".." in item or (i and re.fullmatch(r"\d+(\.\d+)?", item)):
            end = i
            while end + 1 < len(items) and re.fullmatch(r"\d+(\.\d+)?", items[end + 1]):
                end += 1
            whole = item if ".." in item else ",".join(items[i - 1:end + 1])
            raise UsageError(f"{where}: {whole!r} is a sweep; sweeps are expanded in a matrix (a TOML file with "
                             f"conditions = [\"{whole}\"], passed with --matrix; see docs/conditions.md), while "
                             "this option takes single conditions, separated by commas")
    try:
        return list(dict.fromkeys(parse_condition(c) for c in items))
    except ConditionError as exc:
        raise UsageError(f"{where}: {exc}") from None


def to_jobs(value, where: str) -> int:
    text = str(value).strip().lower()
    if text in ("all", "-1"):
        return usable_cores()
    try:
        jobs = int(text)
    except ValueError:
        jobs = 0
    if jobs < 1 or isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
        raise UsageError(f"{where}: expected a positive whole number of workers, or 'all' (-1) for every core; "
                         f"got {value!r}")
    return resolve_jobs(jobs)   # capped at the cores, with a warning


def _number(value, where: str) -> float:
    """A finite number: NaN and infinity are refused with the rest (``float('nan') < 0`` is False, so a range check
    alone lets NaN through into a saved model or a timeout)."""
    try:
        if isinstance(value, bool):
            raise ValueError
        number = float(value)
    except (TypeError, ValueError):
        raise UsageError(f"{where}: expected a number, got {value!r}") from None
    if not math.isfinite(number):
        raise UsageError(f"{where}: expected a finite number, got {value!r}")
    return number


def _bounded(kind: type, minimum: float, strict: bool, what: str) -> Callable[[Any, str], Any]:
    """A validator: ``kind`` (int or float) above ``minimum`` (``strict``) or at least it."""
    def convert(value, where: str):
        try:
            if isinstance(value, bool):
                raise ValueError
            number = kind(value) if kind is float or isinstance(value, int) else int(str(value).strip())
        except (TypeError, ValueError, OverflowError):
            number = None
        if number is None or not math.isfinite(number) or (number <= minimum if strict else number < minimum):
            raise UsageError(f"{where}: expected {what}, got {value!r}")
        return number
    return convert


to_positive_int = _bounded(int, 0, True, "a positive whole number")
to_non_negative_int = _bounded(int, 0, False, "a whole number >= 0")
to_positive_float = _bounded(float, 0.0, True, "a positive number")
to_non_negative_float = _bounded(float, 0.0, False, "a number >= 0")


def to_tolerance(value, where: str) -> float:
    x = _number(value, where)
    if not 0.0 <= x < 1.0:
        raise UsageError(f"{where}: an accuracy drop tolerance lies in [0, 1), got {value!r}")
    return x


def to_fraction(value, where: str) -> float:
    x = _number(value, where)
    if not 0.0 <= x <= 1.0:
        raise UsageError(f"{where}: a fraction lies in [0, 1], got {value!r}")
    return x


def to_on_error(value, where: str) -> OnError:
    return one_of(value, ON_ERROR, where)


def to_metric(value, where: str) -> str:
    """A ranking metric's name (:mod:`codecbench.results.metrics`)."""
    text = str(value).strip().replace("-", "_")
    if text not in METRICS:
        raise UsageError(f"{where}: unknown metric {value!r}; expected one of {', '.join(METRICS)}")
    return text


def to_alpha(value, where: str) -> float:
    x = _number(value, where)
    if not 0.0 < x < 1.0:
        raise UsageError(f"{where}: a significance level lies strictly between 0 and 1 (e.g. 0.05), got {value!r}")
    return x


def to_folds(value, where: str) -> tuple[tuple[str, tuple[int, ...]], ...]:
    from codecbench.datasets import DatasetError, parse_folds

    try:
        if not isinstance(value, str):  # a TOML table: train = "1-9" or train = [1, 2, 3]
            value = ",".join(f"{k}={'+'.join(map(str, v)) if isinstance(v, (list, tuple)) else v}"
                             for k, v in value.items())
        return tuple(parse_folds(value).items())
    except DatasetError as exc:
        raise noted(exc, where) from None
    except AttributeError:
        raise UsageError(f"{where}: expected train=1-9,evaluate=10 or a table of split = folds, got {value!r}") \
            from None


def to_path(value, where: str) -> Path:
    text = str(value).strip()
    if not text:
        raise UsageError(f"{where}: empty path")
    return Path(text).expanduser()


def to_rates(value, where: str):
    """``FILE[,FILE]``: the JSON of ``codecbench bench model --json`` and/or ``bench feed --json`` written on the
    machine to price (:class:`codecbench.run.rates.Rates`), read and checked here."""

    paths = [Path(p.strip()).expanduser() for p in str(value).split(",") if p.strip()]
    if not paths:
        raise UsageError(f"{where}: empty; expected FILE[,FILE] written by `codecbench bench model|feed --json`")
    try:
        return Rates.from_files(paths)
    except RatesError as exc:
        raise noted(exc, where) from None


def to_text(value, where: str) -> str:
    text = str(value).strip()
    if not text:
        raise UsageError(f"{where}: empty value")
    return text


_RUN_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")


def to_run_id(value, where: str) -> str:
    text = str(value).strip()
    if not _RUN_ID.match(text) or ".." in text:
        raise UsageError(f"{where}: a run id is 1-100 letters, digits, '.', '_' or '-' (no '..', no '/'); "
                         f"got {value!r}")
    return text


_ADDRESS = re.compile(r"^(local|(tcp|tls|inproc|ucx)://[^\s/]+(:\d+)?|[A-Za-z0-9.\-]+:\d+)$")


def to_scheduler(value, where: str) -> str:
    text = str(value).strip()
    if not _ADDRESS.match(text):
        raise UsageError(f"{where}: expected 'local' (a LocalCluster here) or a dask scheduler address such as "
                         f"tcp://10.0.0.5:8786; got {value!r}")
    return text


def to_precision(value, where: str) -> Precision:
    return one_of(value, PRECISIONS, where)


def to_devices(value, where: str) -> str:
    text = str(value).strip()
    if text == "auto" or (text.isdigit() and int(text) >= 1):
        return text
    names = [] if text.isdigit() else [d.strip() for d in text.split(",")]
    if not names or not all(re.match(r"^[/A-Za-z0-9:_.\-]+$", d) for d in names):
        raise UsageError(f"{where}: expected 'auto', a device count such as 2, or device names such as "
                         f"/gpu:0,/gpu:1; got {value!r}")
    return ",".join(names)


def to_bool(value, where: str) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("1", "true", "yes", "on"):
        return True
    if text in ("0", "false", "no", "off"):
        return False
    raise UsageError(f"{where}: expected yes or no (true/false, on/off, 1/0); got {value!r}")


def to_backend(value, where: str) -> ParallelBackend:
    return one_of(value, PARALLEL_BACKENDS, where)


# --------------------------------------------------------------------------- the options

@dataclasses.dataclass(frozen=True)
class Option:
    name: str
    convert: Callable[[Any, str], Any]
    default: Any
    help: str
    repeatable: bool = False

    @property
    def flag(self) -> str:
        return "--" + self.name.replace("_", "-")

    @property
    def argparse_extra(self) -> dict:
        """A yes/no option may be given bare (``--trust-code`` means ``--trust-code yes``)."""
        return {"nargs": "?", "const": "yes"} if self.convert is to_bool else {}


OPTIONS: dict[str, Option] = {o.name: o for o in (
    Option("model", to_names, None, "model name from the zoo (repeatable or comma-separated; default: every model)",
           repeatable=True),
    Option("condition", to_conditions, None,
           "condition such as mp3@32 (repeatable or comma-separated; default: the matrix)", repeatable=True),
    Option("category", to_names, None, "matrix category such as cat2 (repeatable)", repeatable=True),
    Option("dataset", to_text, "synthetic", "'synthetic' (default), a TAU 2020 Mobile root (with evaluation_setup/), "
                                            "an UrbanSound8K or ESC-50 folder (with its metadata file; see --folds), "
                                            "or a folder per class"),
    Option("split", to_text, "evaluate", "dataset split (default: evaluate)"),
    Option("folds", to_folds, None, "UrbanSound8K / ESC-50: the folds of each split, e.g. train=1-9,evaluate=10 "
                                    "(default: the dataset's usual split)"),
    Option("matrix", to_text, "peters", "condition matrix: a packaged name or a TOML file (default: peters, "
                                        "the paper's Table 1)"),
    Option("model_dir", to_path, None, "model zoo folder (default: models are read from the packaged demo zoo and "
                                       "written by train, finetune and import-model to the user model folder, "
                                       "$CODECBENCH_MODELS or the user data folder's codecbench/models)"),
    Option("cache_dir", to_path, None, "cache folder (default: $CODECBENCH_CACHE or ~/.cache/codecbench)"),
    Option("codec_weights", to_path, None, "folder of neural codec weights, one folder per model (encodec_24khz/, "
           "dac_44khz/, ...; default: $CODECBENCH_CODEC_WEIGHTS, else the Hugging Face cache)"),
    Option("jobs", to_jobs, "all", "parallel workers for coding and features (default: all cores)"),
    Option("backend", to_backend, "loky", "local parallel backend: loky, threading or sequential"),
    Option("scheduler", to_scheduler, None, "dask scheduler address, or 'local' for a LocalCluster"),
    Option("thresholds", to_path, None, "thresholds TOML (default: benchmarks/thresholds.toml for the demo)"),
    Option("baseline", to_path, None, "results.json of an earlier run: fail on significant accuracy drops"),
    Option("baseline_max_changed", to_fraction, 0.02, "largest share of clips whose content may differ from the "
           "baseline's (same keys and recipe) before the comparison is refused (default: 0.02)"),
    Option("baseline_metric", to_metric, "accuracy", "what the regression gate compares with the baseline: "
           "accuracy (default; exact McNemar on paired clips) or log_loss, macro_accuracy, ece, brier (paired "
           "bootstrap over clips; lower or higher is better as the metric says)"),
    Option("tolerance", to_tolerance, 0.01, "worsening of the gated metric tolerated by the regression gate "
           "(default: 0.01)"),
    Option("alpha", to_alpha, 0.05, "significance level of the regression gate's McNemar test (default: 0.05)"),
    Option("results", to_path, None, "results folder (default: reports/ in the project folder)"),
    Option("precision", to_precision, "auto",
           "Keras dtype policy for evaluation, training and fine-tuning: auto (default: mixed_bfloat16 on an "
           "accelerator or a CPU with native bfloat16, float32 elsewhere and on a generated dataset), float32 or "
           "mixed_bfloat16"),
    Option("devices", to_devices, "auto", "training and fine-tuning devices, data-parallel: auto (every local "
           "accelerator if more than one), a count, or names such as /gpu:0,/gpu:1"),
    Option("rates", to_rates, None, "price the plan (--plan, reproduce --dry-run) with the rates of another machine: "
           "FILE[,FILE] written there by `codecbench bench model --json` and `bench feed --json`"),
    Option("frontend_on_device", to_bool, False, "compute the log-mel front-end of every Keras log-mel model on the "
           "model's device (a GPU), the host decoding bitstreams only: yes or no (default: no; features from the "
           "cache)"),
    Option("share_prefix", to_bool, True, "evaluate layers that several models share (same weights) once per "
           "batch: yes (default) or no"),
    Option("on_error", to_on_error, "raise", "a clip that cannot be coded: raise (default: the run fails naming it) "
           "or skip (left out, listed in the results and the report)"),
    Option("trust_code", to_bool, False, "let models of the model folder run code (Python entry points, Keras Lambda "
           "layers) without an import by you: yes or no (default: no)"),
    Option("run_id", to_run_id, None, "id of this run's folder under results/runs (default: time + random)"),
)}
#: Keys accepted in [tool.codecbench]; run_id comes from the option or $CODECBENCH_RUN_ID only.
TABLE_KEYS = frozenset(OPTIONS) - {"run_id"}


@dataclasses.dataclass(frozen=True)
class RunSpec:
    """Every setting of a run, validated and typed; a plain value. Build it with :meth:`build`; the places it names
    are opened by :class:`~codecbench.run.resolve.Workspace`
    and a run is resolved by :meth:`~codecbench.run.resolve.Run.resolve`."""

    model: tuple[str, ...] | None = None
    condition: tuple | None = None
    category: tuple[str, ...] | None = None
    dataset: str = "synthetic"
    split: str = "evaluate"
    folds: tuple[tuple[str, tuple[int, ...]], ...] | None = None
    matrix: str = "peters"
    model_dir: Path | None = None
    cache_dir: Path | None = None
    codec_weights: Path | None = None
    jobs: int = 1
    backend: ParallelBackend = "loky"
    scheduler: str | None = None
    thresholds: Path | None = None
    baseline: Path | None = None
    baseline_max_changed: float = 0.02
    baseline_metric: str = "accuracy"
    tolerance: float = 0.01
    alpha: float = 0.05
    results: Path = Path("reports")
    precision: Precision = "auto"
    rates: Any = None
    frontend_on_device: bool = False
    share_prefix: bool = True
    devices: str = "auto"
    on_error: OnError = "raise"
    trust_code: bool = False
    run_id: str | None = None
    #: The folder of the pyproject.toml the settings came from (or the starting folder).
    project_root: Path = Path(".")
    #: Where each value came from: "default", "option" or the pyproject path.
    sources: Mapping[str, str] = dataclasses.field(default_factory=dict, compare=False)

    @classmethod
    def build(cls, explicit: Mapping[str, Any] | None = None, *, start: str | os.PathLike | None = None,
              use_pyproject: bool = True, env: Mapping[str, str] | None = None,
              flags: Mapping[str, str] | None = None) -> "RunSpec":
        """Merge ``explicit`` (option values; None = not given) over ``[tool.codecbench]`` over defaults.
        ``flags``: the option names a command spells differently (``{"run_id": "--run"}``), for messages."""

        explicit = {k: v for k, v in (explicit or {}).items() if v is not None and k in OPTIONS}
        env = os.environ if env is None else env
        start_dir = Path(start or Path.cwd())
        pyproject = find_pyproject(start_dir) if use_pyproject else None
        table = load_config(start_dir, keys=TABLE_KEYS) if pyproject else {}
        values: dict[str, Any] = {}
        sources: dict[str, str] = {}
        for name, option in OPTIONS.items():
            if name in explicit:
                raw, where, source = explicit[name], (flags or {}).get(name, option.flag), "option"
            elif name in table:
                raw, where, source = table[name], f"{pyproject} [tool.codecbench] {name}", str(pyproject)
            elif name == "run_id" and env.get("CODECBENCH_RUN_ID"):
                raw, where, source = env["CODECBENCH_RUN_ID"], "$CODECBENCH_RUN_ID", "environment"
            else:
                raw, where, source = option.default, option.flag, "default"
            if raw is None:
                continue
            value = option.convert(raw, where)
            values[name] = tuple(value) if isinstance(value, list) else value
            sources[name] = source
        root = pyproject.parent if pyproject else start_dir
        results = values.get("results") or Path("reports")
        if not results.is_absolute():
            results = (root / results) if sources.get("results") != "option" else Path.cwd() / results
        values["results"] = results
        return cls(**values, project_root=root, sources=sources)

    @property
    def is_demo(self) -> bool:
        """The embedded default: packaged zoo on the synthetic dataset."""
        return self.model_dir is None and self.dataset == "synthetic"
