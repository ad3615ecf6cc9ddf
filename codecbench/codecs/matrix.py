"""The condition matrix: which conditions fine-tune a model and which validate it, by category.

A matrix is a TOML file (the paper's Table 1 ships as ``matrices/peters.toml``). This module
reads and validates it; every error names the file and the key that is wrong.
"""
from __future__ import annotations

import dataclasses
import re
from importlib import resources
from pathlib import Path

from codecbench.codecs import CODECS, ORIGINAL, Condition, parse_condition
from codecbench.core.config import parse_toml
from codecbench.errors import UsageError

DEFAULT_MATRIX = "peters"


class MatrixError(UsageError):
    """A matrix file that cannot be used; the message names file and key."""


@dataclasses.dataclass(frozen=True)
class Matrix:
    name: str
    source: str
    finetune: tuple[Condition, ...]
    include_original: bool
    categories: dict[str, tuple[Condition, ...]]
    descriptions: dict[str, str]

    @property
    def validation(self) -> list[Condition]:
        """Every validation condition, category by category, in file order."""
        return [c for conds in self.categories.values() for c in conds]

    @property
    def training(self) -> list[Condition]:
        """What a remedy trains on: the original (where ``finetune.include_original``), then the fine-tuning
        conditions."""
        return ([ORIGINAL] if self.include_original else []) + list(self.finetune)

    def category_of(self, condition: str | Condition) -> str | None:
        cond = parse_condition(condition)
        return next((cat for cat, conds in self.categories.items() if cond in conds), None)

    def all_conditions(self) -> list[Condition]:
        seen: dict[Condition, None] = {}
        for cond in [*self.validation, *self.finetune]:
            seen.setdefault(cond)
        return list(seen)

    def select(self, conditions=None, categories=None) -> list[Condition]:
        """Validation conditions filtered by name and/or category; unknown names are errors."""
        chosen = self.validation
        if categories:
            unknown = [c for c in categories if c not in self.categories]
            if unknown:
                raise MatrixError(f"{self.source}: unknown categor{'y' if len(unknown) == 1 else 'ies'} "
                                  f"{', '.join(unknown)}; this matrix has {', '.join(self.categories)}")
            chosen = [c for c in chosen if self.category_of(c) in categories]
        if conditions:
            wanted = [parse_condition(c) for c in conditions]
            chosen = [c for c in chosen if c in wanted] + [c for c in wanted if c not in self.validation]
        return chosen

    def to_dict(self) -> dict:
        """The matrix as the tables of its TOML file, which :func:`parse_matrix` reads back to an equal matrix."""
        return {"matrix": {"name": self.name},
                "finetune": {"conditions": [c.name for c in self.finetune], "include_original": self.include_original},
                "categories": {cat: {"description": self.descriptions.get(cat, ""),
                                     "conditions": [c.name for c in conds]}
                               for cat, conds in self.categories.items()}}

    def fingerprint(self) -> dict:
        return {"name": self.name, "finetune": [c.name for c in self.finetune],
                "include_original": self.include_original,
                "categories": {k: [c.name for c in v] for k, v in self.categories.items()}}


#: The bit rates a sweep ``codec@A..B`` visits for codecs without a fixed set of rates: the usual ladder of
#: encoders' presets (MP3's are exactly MPEG-1 Layer III's).
SWEEP_LADDER = (6, 8, 12, 16, 20, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320)


#: The loss rates (percent) a loss sweep ``opus@24+loss0..20`` visits: from a good link to a bad one.
LOSS_LADDER = (0, 1, 2, 3, 5, 10, 15, 20, 30, 40)
_LOSS_SWEEP_RE = re.compile(r"^(?P<head>.+\+loss)(?P<rates>[0-9.]+(?:\.\.[0-9.]+|(?:,[0-9.]+)+))(?P<tail>(?:\+.*)?)$")


def expand_sweep(text: str) -> list[str]:
    """``"mp3@32..320"`` -> every rate of the codec's ladder (its own rates, else :data:`SWEEP_LADDER`) within the
    bounds; ``"opus@12,24,48"`` -> those rates; ``"opus@24+loss0..20"`` -> the loss rates of :data:`LOSS_LADDER`
    within the bounds (``"opus@24+loss0,5,10"``: those); anything else -> ``[text]``."""
    loss = _LOSS_SWEEP_RE.match(str(text).strip().lower())
    if loss:
        return [f"{loss['head']}{rate:g}{loss['tail']}" for rate in _loss_rates(text, loss["rates"])]
    codec, at, rates = str(text).strip().lower().partition("@")
    if not at or (".." not in rates and "," not in rates):
        return [text]
    if codec not in CODECS:
        raise MatrixError(f"sweep {text!r}: unknown codec {codec!r}; known codecs: {', '.join(CODECS)}")
    spec = CODECS[codec]
    if ".." in rates:
        low, _, high = rates.partition("..")
        try:
            lo, hi = float(low), float(high)
        except ValueError:
            raise MatrixError(f"sweep {text!r}: expected '<codec>@<low>..<high>' in kbps, e.g. 'mp3@32..320'") from None
        if lo > hi:
            raise MatrixError(f"sweep {text!r}: the bounds are reversed ({low} > {high}); write "
                             f"'{codec}@{high}..{low}'")
        if spec.fixed_kbps is not None:
            raise MatrixError(f"sweep {text!r}: {codec} has one bit rate ({spec.fixed_kbps:g} kbps), nothing to "
                             f"sweep; name it '{codec}'")
        ladder = spec.rates or tuple(r for r in SWEEP_LADDER if spec.min_kbps <= r <= spec.max_kbps)
        chosen = [r for r in ladder if lo <= r <= hi]
        if not chosen:
            raise MatrixError(f"sweep {text!r}: no rate of {codec} lies in {low}..{high} kbps "
                             f"(its rates: {', '.join(f'{r:g}' for r in ladder)})")
    else:
        try:
            chosen = [float(r) for r in rates.split(",") if r.strip()]
        except ValueError:
            raise MatrixError(f"sweep {text!r}: expected '<codec>@<kbps>,<kbps>,...', e.g. 'opus@12,24,48'") from None
    return [f"{codec}@{r:g}" for r in chosen]


def _loss_rates(text: str, rates: str) -> list[float]:
    try:
        if ".." in rates:
            low, _, high = rates.partition("..")
            lo, hi = float(low), float(high)
            chosen = [float(r) for r in LOSS_LADDER if lo <= r <= hi]
        else:
            chosen = [float(r) for r in rates.split(",")]
    except ValueError:
        raise MatrixError(f"sweep {text!r}: expected '+loss<low>..<high>' or '+loss<a>,<b>,...' in percent") from None
    if not chosen:
        raise MatrixError(f"sweep {text!r}: no loss rate of {', '.join(map(str, LOSS_LADDER))} % lies in {rates}")
    return chosen


def _conditions(raw, source: str, key: str) -> tuple[Condition, ...]:
    if not isinstance(raw, list):
        raise MatrixError(f"{source}: {key} must be a list of condition names, got {type(raw).__name__}")
    if not raw:
        raise MatrixError(f"{source}: {key} is empty; list at least one condition")
    out: list[Condition] = []
    for i, item in enumerate(raw):
        try:
            conds = [parse_condition(name) for name in expand_sweep(item)]
        except ValueError as exc:
            raise MatrixError(f"{source}: {key}[{i}]: {exc}") from None
        for cond in conds:
            if cond in out:
                raise MatrixError(f"{source}: {key}[{i}]: duplicate condition {cond.name!r}")
            out.append(cond)
    return tuple(out)


def parse_matrix(data: dict, source: str = "<matrix>") -> Matrix:
    if not isinstance(data.get("categories"), dict) or not data["categories"]:
        raise MatrixError(f"{source}: missing [categories.<name>] tables; at least one category is required")
    categories: dict[str, tuple[Condition, ...]] = {}
    descriptions: dict[str, str] = {}
    seen: dict[Condition, str] = {}
    for cat, table in data["categories"].items():
        key = f"categories.{cat}.conditions"
        if not isinstance(table, dict) or "conditions" not in table:
            raise MatrixError(f"{source}: {key} is missing")
        conds = _conditions(table["conditions"], source, key)
        for cond in conds:
            if cond in seen:
                raise MatrixError(f"{source}: {key}: duplicate condition {cond.name!r} (already in {seen[cond]})")
            seen[cond] = f"categories.{cat}"
        categories[cat] = conds
        descriptions[cat] = str(table.get("description", ""))
    finetune_table = data.get("finetune", {})
    if not isinstance(finetune_table, dict):
        raise MatrixError(f"{source}: [finetune] must be a table")
    finetune = (_conditions(finetune_table["conditions"], source, "finetune.conditions")
                if "conditions" in finetune_table else ())
    if any(c.is_original for c in finetune):
        raise MatrixError(f"{source}: finetune.conditions: list coded conditions only; "
                          "the original audio is controlled by finetune.include_original")
    meta = data.get("matrix", {})
    return Matrix(name=str(meta.get("name", Path(source).stem)), source=source, finetune=finetune,
                  include_original=bool(finetune_table.get("include_original", True)),
                  categories=categories, descriptions=descriptions)


def load_matrix(path: str | Path | None = None) -> Matrix:
    """Load a matrix file, or the packaged one by name (default: the paper's Table 1)."""
    if path is None or str(path) == DEFAULT_MATRIX or (
            not Path(str(path)).exists() and (resources.files("codecbench") / "matrices" / f"{path}.toml").is_file()):
        ref = resources.files("codecbench") / "matrices" / f"{path or DEFAULT_MATRIX}.toml"
        text, source = ref.read_text(), f"{path or DEFAULT_MATRIX}.toml (packaged)"
    else:
        file = Path(path)
        if not file.is_file():
            raise MatrixError(f"{file}: matrix file not found")
        text, source = file.read_text(), str(file)
    return parse_matrix(parse_toml(text, source, MatrixError), source)
