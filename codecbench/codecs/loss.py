"""Packet loss on a coded clip: the loss model of a condition (``opus@24+loss5``) and the packets it drops.

A :class:`Loss` is part of a :class:`~codecbench.codecs.table.Condition`. Its packets are dropped by a seeded
model, independently (Bernoulli) or in bursts (the two-state Gilbert model of a bursty link, with the mean burst
length in packets), and the decoder conceals them: with its own packet-loss concealment where the codec has one
(Opus through libopus, with in-band FEC on request; LC3 through liblc3), otherwise only with a concealment the
condition names (``+zerofill``: silence for a lost frame, ``+repeat``: the last good frame again), never silently.

The lost packets depend on the seed and the clip's content only (:func:`lost_packets`), so the same condition drops
the same packets of the same clip on every machine, and different clips lose different packets.
"""
from __future__ import annotations

import dataclasses
import decimal
import hashlib
import re

import numpy as np

from codecbench.errors import UsageError

#: How a lost packet is concealed: by the codec's decoder, or by a rule the condition names.
CONCEALMENTS = ("codec", "zerofill", "repeat")

_PART_RE = re.compile(r"^(?:loss(?P<loss>\d+(?:\.\d+)?)|burst(?P<burst>\d+(?:\.\d+)?)|seed(?P<seed>\d+)|"
                      r"(?P<flag>fec|zerofill|repeat))$")


def canonical_number(value: float) -> str:
    """``value`` as a condition name writes it: the shortest decimal that reads back as the same float, never in
    exponent form and without a trailing ``.0`` (``5``, ``0.5``, ``1000000``, ``1.0000001``). ``:g`` wrote 1e6 as
    ``1e+06``, which the grammar does not read, and 1.0000001 as ``1``, another condition."""
    text = format(decimal.Decimal(repr(float(value))), "f")
    return text.rstrip("0").rstrip(".") if "." in text else text


class LossError(UsageError):
    """A loss part of a condition that does not parse, or asks for what its codec cannot do."""


@dataclasses.dataclass(frozen=True, order=True)
class Loss:
    """Packets dropped from a coded clip: ``rate`` percent of them, in bursts of ``burst`` packets on average
    (1: independently), drawn with ``seed``; concealed by the codec or by ``conceal``; ``fec``: the encoder adds
    in-band forward error correction (Opus) and the decoder recovers a lost packet from the next one."""

    rate: float
    burst: float = 1.0
    seed: int = 0
    fec: bool = False
    conceal: str = "codec"

    def __post_init__(self):
        if not 0 <= self.rate < 100:
            raise LossError(f"loss{self.rate:g}: a loss rate is a percentage from 0 to below 100")
        if self.burst < 1:
            raise LossError(f"burst{self.burst:g}: a mean burst length is at least 1 packet")
        if self.conceal not in CONCEALMENTS:
            raise LossError(f"{self.conceal}: concealment is one of {', '.join(CONCEALMENTS)}")

    @property
    def suffix(self) -> str:
        """The condition-name suffix, canonical: ``+loss5+burst3+seed7+fec``."""
        parts = [f"loss{canonical_number(self.rate)}"]
        if self.burst != 1:
            parts.append(f"burst{canonical_number(self.burst)}")
        if self.seed:
            parts.append(f"seed{self.seed}")
        if self.fec:
            parts.append("fec")
        if self.conceal != "codec":
            parts.append(self.conceal)
        return "+" + "+".join(parts)

    @property
    def model(self) -> str:
        return "Bernoulli" if self.burst == 1 else f"Gilbert (mean burst {self.burst:g} packets)"


def parse_loss(parts: list[str], condition: str) -> Loss | None:
    """The :class:`Loss` of a condition's ``+`` parts (``["loss5", "burst3"]``), or None when there are none."""
    if not parts:
        return None
    values: dict = {}
    for part in parts:
        match = _PART_RE.match(part)
        if not match:
            raise LossError(f"condition {condition!r}: unknown part {'+' + part!r}; a loss is "
                            "+loss<percent>[+burst<packets>][+seed<n>][+fec][+zerofill|+repeat]")
        key = next(k for k, v in match.groupdict().items() if v is not None)
        if key == "flag":
            key = "fec" if part == "fec" else "conceal"
        if key in values:
            raise LossError(f"condition {condition!r}: {'+' + part!r} given twice")
        values[key] = {"loss": float, "burst": float, "seed": int}.get(key, lambda v: v)(match[key] if key in
                                                                                           ("loss", "burst", "seed")
                                                                                           else part)
    if "loss" not in values:
        raise LossError(f"condition {condition!r}: +burst, +seed, +fec and a concealment belong to a +loss<percent>")
    values["fec"] = values.get("fec") == "fec"
    rate = values.pop("loss")
    return Loss(int(rate) if rate.is_integer() else rate, **values)


def lost_packets(loss: Loss, n_packets: int, content: bytes) -> list[int]:
    """The indices of the packets ``loss`` drops from a clip of ``n_packets`` packets whose source samples are
    ``content``: drawn with PCG64 from the seed and the content's SHA-256, so the same on every machine.

    >>> lost_packets(Loss(10, seed=7), 40, b"codecbench")
    [6, 34]
    """
    if n_packets <= 0 or loss.rate == 0:
        return []
    digest = hashlib.sha256(content).digest()
    # uniform doubles from PCG64's raw 64-bit stream (which NumPy keeps stable across versions and machines), the
    # top 53 bits of each, as Generator.random takes them
    raw = np.random.PCG64([loss.seed, int.from_bytes(digest[:8], "little")]).random_raw(n_packets)
    draws = (np.asarray(raw, dtype=np.uint64) >> np.uint64(11)).astype(np.float64) * 2.0 ** -53
    p = loss.rate / 100
    if loss.burst == 1:
        return np.flatnonzero(draws < p).tolist()
    # the Gilbert model: a lossy state left with probability 1/burst, entered so that its share of time is p
    leave = 1 / loss.burst
    enter = p * leave / (1 - p)
    lost = np.zeros(n_packets, dtype=bool)
    state = draws[0] < p  # the first packet in the stationary distribution
    lost[0] = state
    for i in range(1, n_packets):
        state = draws[i] >= leave if state else draws[i] < enter
        lost[i] = state
    return np.flatnonzero(lost).tolist()
