"""``CodecAugment``: code and decode a clip under a drawn condition, numpy in and out, for any training loop.

It follows audiomentations' conventions (``__call__(samples, sample_rate)``, ``p``, ``randomize_parameters``,
``freeze_parameters``, a ``parameters`` dict), so it drops into ``audiomentations.Compose``. The round trip is
codecbench's: the in-process codecs of 18 families, aligned to the input within one sample, same length and rate;
with a ``cache`` the second time a clip meets a condition costs a decode, not an encode.
"""
from __future__ import annotations

import hashlib
from typing import Mapping, Sequence

import numpy as np

from .. import codecs
from ..cache import Cache
from ..codecs import Condition
from ..errors import ArgumentError
from .draw import ConditionDraw

#: How a multichannel clip (channels first, as audiomentations has them) is coded.
CHANNEL_MODES = ("per_channel", "downmix")


class CodecAugment:
    """Codes a clip under a randomly drawn condition (audiomentations-compatible).

    Parameters
    ----------
    conditions, codecs, bitrates
        What is drawn: see :class:`~codecbench.augment.draw.ConditionDraw` (fixed conditions, or codec families by
        weight with a bit-rate range each).
    p : float
        Probability of coding a clip; with ``1 - p`` it is returned uncoded.
    channels : {"per_channel", "downmix"}
        A multichannel clip (``(channels, samples)``): each channel coded alone with the same condition (the codecs
        are mono), or the channels averaged, coded once and the result copied to every channel.
    seed : int, optional
        Seeds this transform's draws; two transforms with one seed draw the same sequence.
    cache : Cache, optional
        Keep each (clip content, condition)'s bitstream, so a clip met again under a condition is only decoded.

    Attributes
    ----------
    parameters : dict
        The last draw: ``should_apply`` and ``condition`` (its name, e.g. ``"mp3@48"``), for a training log.
    """

    supports_multichannel = True

    def __init__(self, conditions: Sequence | Mapping | None = None, *, codecs: Sequence[str] | Mapping | None = None,
                 bitrates: Mapping[str, tuple[float, float]] | None = None, p: float = 0.5,
                 channels: str = "per_channel", seed: int | None = None, cache: Cache | None = None):
        if not isinstance(p, (int, float)) or not 0.0 <= float(p) <= 1.0:
            raise ArgumentError(f"p: a probability in [0, 1], got {p!r}")
        if channels not in CHANNEL_MODES:
            raise ArgumentError(f"channels: one of {', '.join(CHANNEL_MODES)}, got {channels!r}")
        self.draw = ConditionDraw(conditions, codecs=codecs, bitrates=bitrates)
        self.p, self.channels, self.cache = float(p), channels, cache
        self.rng = np.random.default_rng(seed)
        self.parameters: dict = {"should_apply": None, "condition": None}
        self.are_parameters_frozen = False

    def __repr__(self) -> str:
        return f"CodecAugment({', '.join(self.draw.describe())}, p={self.p:g}, channels={self.channels!r})"

    # -- audiomentations' interface -----------------------------------------------------------------------------
    def randomize_parameters(self, samples: np.ndarray, sample_rate: int) -> None:
        self.parameters["should_apply"] = bool(self.rng.random() < self.p)
        self.parameters["condition"] = self.draw.draw(self.rng).name if self.parameters["should_apply"] else None

    def freeze_parameters(self) -> None:
        self.are_parameters_frozen = True

    def unfreeze_parameters(self) -> None:
        self.are_parameters_frozen = False

    def __call__(self, samples: np.ndarray, sample_rate: int) -> np.ndarray:
        if not self.are_parameters_frozen:
            self.randomize_parameters(samples, sample_rate)
        if not self.parameters["should_apply"]:
            return samples
        return self.apply(samples, sample_rate, codecs.parse_condition(self.parameters["condition"]))

    # -- the round trip -----------------------------------------------------------------------------------------
    def apply(self, samples: np.ndarray, sample_rate: int, condition: Condition) -> np.ndarray:
        """``samples`` ((n,) or (channels, n)) coded under ``condition``: float32, same shape, aligned."""
        x = np.asarray(samples, dtype=np.float32)
        if x.ndim == 1:
            return self._mono(x, sample_rate, condition)
        if x.ndim != 2:
            raise ArgumentError(f"samples: (n,) or (channels, n), got shape {x.shape}")
        if self.channels == "downmix":
            return np.repeat(self._mono(x.mean(axis=0), sample_rate, condition)[None], len(x), axis=0)
        return np.stack([self._mono(channel, sample_rate, condition) for channel in x])

    def _mono(self, x: np.ndarray, sample_rate: int, condition: Condition) -> np.ndarray:
        if condition.is_original:
            return x
        if self.cache is None:
            return codecs.roundtrip(x, sample_rate, condition)
        return coded_in_cache(x, sample_rate, condition, self.cache)


def coded_in_cache(x: np.ndarray, sample_rate: int, condition: Condition, cache: Cache) -> np.ndarray:
    """The round trip of an in-memory signal, its bitstream kept in ``cache`` under the signal's content."""
    from ..encode import coded_key, decode_cached, load_bitstream, store_bitstream

    digest = hashlib.sha256(np.ascontiguousarray(x, dtype=np.float32).tobytes()
                            + str(int(sample_rate)).encode()).hexdigest()
    key = coded_key(f"array:{digest}", condition, int(sample_rate))
    bitstream = load_bitstream(cache, key, condition)
    if bitstream is not None:
        decoded = decode_cached(cache, key, bitstream)
        if decoded is not None:
            return decoded
    bitstream = codecs.encode(x, sample_rate, condition)
    cache.mark()
    store_bitstream(cache, key, bitstream)
    return codecs.decode(bitstream)
