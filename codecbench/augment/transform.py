"""``CodecAugment``: code and decode a clip under a drawn condition, numpy in and out, for any training loop.

It follows audiomentations' conventions (``__call__(samples, sample_rate)``, ``p``, ``randomize_parameters``,
``freeze_parameters``, a ``parameters`` dict), so it drops into ``audiomentations.Compose``. The round trip is
codecbench's: the in-process codecs of 18 families, aligned to the input within one sample, same length and rate;
with a ``cache`` the second time a clip meets a condition costs a decode, not an encode.
"""
from __future__ import annotations

import hashlib
import numbers
import threading
from typing import Mapping, Sequence

import numpy as np

from codecbench import codecs
from codecbench.augment.draw import ConditionDraw
from codecbench.codecs import Condition
from codecbench.core.cache import Cache
from codecbench.errors import ArgumentError
from codecbench.store.fill import coded_key, decode_cached, load_bitstream, store_bitstream

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
        The last draw of the calling thread: ``should_apply`` and ``condition`` (its name, e.g. ``"mp3@48"``), for a
        training log. Draws are made per call under a lock, so one instance serves several loader threads and each
        thread reads its own call's draw.

    Samples are float ``(n,)`` or ``(channels, n)`` in [-1, 1], as audiomentations takes them; integer samples, a
    channels-last ``(n, channels)`` array or another rank are refused, naming the shape or dtype and the fix.
    """

    supports_multichannel = True
    p: float
    channels: str
    cache: Cache | None
    draw: ConditionDraw
    rng: np.random.Generator
    are_parameters_frozen: bool
    _local: threading.local
    _lock: threading.Lock
    _frozen: dict | None

    def __init__(self, conditions: Sequence | Mapping | None = None, *, codecs: Sequence[str] | Mapping | None = None,
                 bitrates: Mapping[str, tuple[float, float]] | None = None, p: float = 0.5,
                 channels: str = "per_channel", seed: int | None = None, cache: Cache | None = None):
        if isinstance(p, bool) or not isinstance(p, numbers.Real) or not 0.0 <= float(p) <= 1.0:
            raise ArgumentError(f"p: a probability in [0, 1], got {p!r}")
        if channels not in CHANNEL_MODES:
            raise ArgumentError(f"channels: one of {', '.join(CHANNEL_MODES)}, got {channels!r}")
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, numbers.Integral) or seed < 0):
            raise ArgumentError(f"seed: None or a whole number >= 0, got {seed!r}")
        self.draw = ConditionDraw(conditions, codecs=codecs, bitrates=bitrates)
        self.p, self.channels, self.cache = float(p), channels, cache
        self.rng = np.random.default_rng(None if seed is None else int(seed))
        self._lock = threading.Lock()  # the generator is not thread-safe
        self._local = threading.local()
        self._frozen: dict | None = None
        self.are_parameters_frozen = False

    @property
    def parameters(self) -> dict:
        return getattr(self._local, "parameters", {"should_apply": None, "condition": None})

    @parameters.setter
    def parameters(self, value: dict) -> None:
        self._local.parameters = dict(value)

    def __repr__(self) -> str:
        return f"CodecAugment({', '.join(self.draw.describe())}, p={self.p:g}, channels={self.channels!r})"

    # -- audiomentations' interface -----------------------------------------------------------------------------
    def randomize_parameters(self, samples: np.ndarray, sample_rate: int) -> None:
        with self._lock:
            apply = bool(self.rng.random() < self.p)
            self.parameters = {"should_apply": apply, "condition": self.draw.draw(self.rng).name if apply else None}

    def freeze_parameters(self) -> None:
        self._frozen = dict(self.parameters)
        self.are_parameters_frozen = True

    def unfreeze_parameters(self) -> None:
        self._frozen = None
        self.are_parameters_frozen = False

    def __call__(self, samples: np.ndarray, sample_rate: int) -> np.ndarray:
        x = checked_samples(samples)
        if self.are_parameters_frozen and self._frozen is not None:
            self.parameters = self._frozen
        else:
            self.randomize_parameters(x, sample_rate)
        params = self.parameters  # this call's draw (thread-local), whatever other threads draw meanwhile
        if not params["should_apply"]:
            return samples
        return self.apply(x, sample_rate, codecs.parse_condition(params["condition"]))

    # -- the round trip -----------------------------------------------------------------------------------------
    def apply(self, samples: np.ndarray, sample_rate: int, condition: Condition) -> np.ndarray:
        """``samples`` ((n,) or (channels, n)) coded under ``condition``: float32, same shape, aligned."""
        x = checked_samples(samples)
        peak = float(np.max(np.abs(x)))
        if peak > 1.0 and not condition.is_original:
            # the benchmark's level policy (codecbench.signal.audio.LEVEL_POLICY): a codec is fed a signal within
            # full scale (above it each treats it its own way: MP3 kept a peak of 34.8, SBC clipped at 1.0); the
            # decode is scaled back, so the augmented example keeps the level of the one it replaces
            return self.apply(x / peak, sample_rate, condition) * np.float32(peak)
        if x.ndim == 1:
            return self._mono(x, sample_rate, condition)
        if self.channels == "downmix":
            return np.repeat(self._mono(x.mean(axis=0), sample_rate, condition)[None], len(x), axis=0)
        return np.stack([self._mono(channel, sample_rate, condition) for channel in x])

    def _mono(self, x: np.ndarray, sample_rate: int, condition: Condition) -> np.ndarray:
        if condition.is_original:
            return x
        if self.cache is None:
            return codecs.roundtrip(x, sample_rate, condition)
        return coded_in_cache(x, sample_rate, condition, self.cache)


def checked_samples(samples) -> np.ndarray:
    """``samples`` as float32 ``(n,)`` or ``(channels, n)``; anything else refused, naming the shape or dtype and the
    fix (an ``(n, 2)`` array would be coded as n channels of two samples; int16 would be coded 32,768 times too
    loud)."""
    x = np.asarray(samples)
    if not np.issubdtype(x.dtype, np.floating):
        hint = f" (samples / {2 ** (8 * x.dtype.itemsize - 1)})" if np.issubdtype(x.dtype, np.integer) else ""
        raise ArgumentError(f"samples: dtype {x.dtype}; CodecAugment takes float samples in [-1, 1]: convert them "
                            f"to float32{hint}")
    if x.ndim not in (1, 2) or x.size == 0:
        raise ArgumentError(f"samples: shape {x.shape}; CodecAugment takes (n,) or (channels, n)")
    if x.ndim == 2 and x.shape[0] > x.shape[1]:
        raise ArgumentError(f"samples: shape {x.shape} has more channels than samples: channels last? CodecAugment "
                            "takes (channels, n), as audiomentations does: pass samples.T")
    return np.asarray(x, dtype=np.float32)


def coded_in_cache(x: np.ndarray, sample_rate: int, condition: Condition, cache: Cache) -> np.ndarray:
    """The round trip of an in-memory signal, its bitstream kept in ``cache`` under the signal's content."""

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
