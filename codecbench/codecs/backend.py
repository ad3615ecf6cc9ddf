"""The one small interface every codec backend implements, and the registry the dispatcher asks.

A backend is a way of coding (libavcodec through PyAV, Fraunhofer libfdk-aac, LAME, liblc3, an
external command). :data:`codecbench.codecs.table.CODECS` lists, per codec, the backends that can code
it in order of preference; the first one :meth:`Backend.unavailable` does not refuse codes it. Decoding
is dispatched on :attr:`Bitstream.decoder`'s prefix (``"pyav:aac"`` → the backend that declared
``"pyav"`` among its :attr:`Backend.decoders`).
"""
from __future__ import annotations

import numpy as np

from codecbench.codecs.bitstream import Bitstream
from codecbench.codecs.table import CodecSpec, Condition
from codecbench.errors import CodecError


class Backend:
    """A way of coding. Subclasses set :attr:`name` and implement what they support."""

    #: recorded in :attr:`Bitstream.backend` and shown by ``codecbench conditions``
    name: str = ""
    #: the :attr:`Bitstream.decoder` prefixes this backend decodes
    decoders: tuple[str, ...] = ()

    def unavailable(self, spec: CodecSpec) -> str | None:
        """Why this backend cannot code ``spec`` here (with an install hint), or None when it can."""
        return None

    def library(self, spec: CodecSpec) -> str:
        """The library, version and route; part of a coded clip's cache key and of run metadata."""
        raise NotImplementedError

    def rate_problem(self, cond: Condition, codec_sr: int) -> str | None:
        """Why it cannot code ``cond`` at ``codec_sr`` when its valid bit rates depend on the rate, else None.

        The table's range is checked when a condition is parsed; this is for what only the library knows."""
        return None

    def rule_concealable(self, spec: CodecSpec) -> bool:
        """Whether its bitstreams of ``spec`` are decoded packet by packet by libavcodec, so that ``+zerofill`` and
        ``+repeat`` can conceal their lost packets."""
        return self.name in ("pyav", "lame")

    def encode(self, x: np.ndarray, codec_sr: int, cond: Condition, sample_rate: int, n: int) -> Bitstream:
        """Code ``x`` (float32, already at ``codec_sr``); ``sample_rate`` and ``n`` describe the original input."""
        raise NotImplementedError

    def decode(self, bitstream: Bitstream) -> np.ndarray:
        """The decoder's raw output (float32 at the codec rate, priming not yet removed)."""
        raise NotImplementedError


BACKENDS: dict[str, Backend] = {}


def register(backend: Backend) -> Backend:
    """Add a backend to the registry (each backend module registers its instances on import)."""
    BACKENDS[backend.name] = backend
    return backend


def for_decoder(decoder: str) -> Backend:
    """The backend that decodes a :attr:`Bitstream.decoder`."""
    kind = decoder.split(":", 1)[0]
    for backend in BACKENDS.values():
        if kind in backend.decoders:
            return backend
    raise CodecError(f"no backend decodes {decoder!r} (a cache entry from another codecbench version?)")
