"""What a codec augmentation draws for a clip: a condition from a list, or a codec family by weight and a bit rate
from its range; validated once, at construction, so a bad value fails before any training loop starts."""
from __future__ import annotations

import numbers
from typing import Mapping, Sequence

import numpy as np

from codecbench.codecs import CODECS, CodecUnavailable, Condition, ConditionError, availability, parse_condition
from codecbench.errors import ArgumentError


class ConditionDraw:
    """Draws coding conditions.

    Parameters
    ----------
    conditions : sequence of str or Condition, or mapping of them to weights, optional
        Fixed conditions such as ``["mp3@32", "aac@64"]`` (equally likely), or ``{"mp3@32": 2, "opus@16": 1}``;
        transcoding chains and packet loss too (``"aac@128>mp3@32"``, ``"opus@24+loss5+burst3"``).
    codecs : sequence of str, or mapping of codec to weight, optional
        Codec families (``"mp3"``, ``"he-aac"``, ...) instead of fixed conditions; with ``bitrates``.
    bitrates : mapping of codec to (low, high) kbps, optional
        The range each codec's rate is drawn from, uniformly over whole kbps (or over the codec's own rates where it
        has only some, such as MP2 or AMR-NB); default: the codec's whole valid range. A codec with one rate
        (``aptx``) takes none.

    Raises
    ------
    ArgumentError, ConditionError, CodecUnavailable
        Naming the codec, condition or value at fault; a codec that cannot be coded on this machine is refused
        here, with its install hint, not in the training loop.
    """

    def __init__(self, conditions: Sequence | Mapping | None = None, *, codecs: Sequence[str] | Mapping | None = None,
                 bitrates: Mapping[str, tuple[float, float]] | None = None):
        if (conditions is None) == (codecs is None):
            raise ArgumentError("give either conditions (e.g. ['mp3@32', 'aac@64']) or codecs (e.g. {'mp3': 2, "
                                "'opus': 1}) with bitrates")
        if conditions is not None:
            if bitrates:
                raise ArgumentError("bitrates go with codecs, not with fixed conditions")
            weighted = _weights(conditions, "conditions")
            self.choices: list[tuple[Condition, tuple[float, ...]]] = [
                (parse_condition(c), (parse_condition(c).kbps,)) for c in weighted]
        else:
            weighted = _weights(codecs, "codecs")
            unknown = sorted(set(bitrates or {}) - set(weighted))
            if unknown:
                raise ArgumentError(f"bitrates: {', '.join(unknown)} is not among the codecs drawn "
                                    f"({', '.join(weighted)})")
            self.choices = [(Condition(codec, 0), _rates(codec, (bitrates or {}).get(codec))) for codec in weighted]
        self.weights = np.array(list(weighted.values()), dtype=float) / sum(weighted.values())
        for cond, rates in self.choices:
            # a fixed condition as it is (a chain's every codec, a loss's concealment), a family at one of its rates
            ok, why = availability(cond if cond.kbps or cond.is_original else Condition(cond.codec, rates[0]))
            if not ok:
                raise CodecUnavailable(f"{cond.name if cond.kbps else cond.codec} cannot be coded on this machine: "
                                       f"{why}")

    def draw(self, rng: np.random.Generator) -> Condition:
        """One condition, from ``rng``."""
        cond, rates = self.choices[int(rng.choice(len(self.choices), p=self.weights))]
        if cond.is_original or cond.kbps:
            return cond
        return Condition(cond.codec, rates[int(rng.integers(len(rates)))])

    def describe(self) -> list[str]:
        out = []
        for (cond, rates), w in zip(self.choices, self.weights):
            what = cond.name if cond.kbps or cond.is_original else (
                f"{cond.codec}@{rates[0]:g}" if len(rates) == 1 else f"{cond.codec}@{rates[0]:g}-{rates[-1]:g}")
            out.append(f"{what} ({w:.0%})")
        return out


def _weights(values, what: str) -> dict:
    if isinstance(values, (str, Condition)):
        values = [values]
    weighted = dict(values) if isinstance(values, Mapping) else {v: 1.0 for v in values}
    if not weighted:
        raise ArgumentError(f"{what}: empty; give at least one")
    for key, weight in weighted.items():
        if isinstance(weight, bool) or not isinstance(weight, numbers.Real) or not float(weight) > 0 \
                or not np.isfinite(float(weight)):
            raise ArgumentError(f"{what}: the weight of {key!r} must be a positive number, got {weight!r}")
    return weighted


def _rates(codec: str, bounds: tuple[float, float] | None) -> tuple[float, ...]:
    """The rates a codec's range allows, checked against the codec's own valid range."""
    if codec == "wav":
        return (0,)
    if codec not in CODECS:
        raise ConditionError(f"codecs: unknown codec {codec!r}; known codecs: {', '.join(CODECS)}")
    spec = CODECS[codec]
    if spec.fixed_kbps is not None:
        if bounds is not None:
            raise ArgumentError(f"bitrates: {codec} has one bit rate ({spec.fixed_kbps:g} kbps); give it no range")
        return (spec.fixed_kbps,)
    low, high = (spec.min_kbps, spec.max_kbps) if bounds is None else _pair(codec, bounds)
    if low > high:
        raise ArgumentError(f"bitrates: {codec} range {low:g}-{high:g} kbps is empty (low above high)")
    if low < spec.min_kbps or high > spec.max_kbps:
        raise ConditionError(f"bitrates: {codec} range {low:g}-{high:g} kbps leaves its valid range "
                             f"({spec.min_kbps:g}-{spec.max_kbps:g} kbps for mono)")
    rates = tuple(r for r in spec.rates if low <= r <= high) if spec.rates else tuple(
        float(r) for r in range(int(np.ceil(low)), int(np.floor(high)) + 1))
    if not rates:
        raise ArgumentError(f"bitrates: {codec} has no rate within {low:g}-{high:g} kbps"
                            + (f" (its rates: {', '.join(f'{r:g}' for r in spec.rates)})" if spec.rates else ""))
    return tuple(int(r) if float(r).is_integer() else r for r in rates)


def _pair(codec: str, bounds) -> tuple[float, float]:
    try:
        low, high = (float(b) for b in bounds)
    except (TypeError, ValueError):
        raise ArgumentError(f"bitrates: {codec} needs (low, high) in kbps, got {bounds!r}") from None
    if not (np.isfinite(low) and np.isfinite(high)):
        raise ArgumentError(f"bitrates: {codec} needs finite (low, high) in kbps, got {bounds!r}")
    return low, high

