"""What a coded clip is: the :class:`Bitstream` a backend produced, and the :class:`RoundTrip` it decodes to."""
from __future__ import annotations

import dataclasses

import numpy as np

from codecbench.codecs.table import Condition, parse_condition
from codecbench.errors import CodecError, EnvironmentProblem


@dataclasses.dataclass
class Bitstream:
    """What an encoder produced, with everything needed to decode it again, and nothing more.

    This is what the cache stores for a coded clip (tens of kB instead of the decoded PCM):
    decoding is deterministic and cheap next to encoding, and :func:`decode` gives back exactly
    the samples :func:`encode_decode` returns.
    """

    condition: Condition
    backend: str
    #: ``"pyav:<decoder>"`` (packets through a libavcodec decoder), ``"fdk"`` (libfdk-aac's decoder) or
    #: ``"container"`` (a coded file, demuxed by libavformat)
    decoder: str
    sample_rate: int
    codec_sample_rate: int
    n_samples: int
    coded_samples: int
    payload: bytes
    #: packet sizes in ``payload`` (empty for a container)
    sizes: list[int]
    #: decoder configuration (extradata / AudioSpecificConfig)
    config: bytes
    #: samples to drop from the decoder's output: encoder priming, filterbank and codec delay
    skip: int
    encoded_bytes: int
    #: indices of the packets the condition's loss drops (decoded with concealment); empty without a loss
    lost: list[int] = dataclasses.field(default_factory=list)

    @property
    def duration_s(self) -> float:
        return self.n_samples / self.sample_rate

    @property
    def achieved_kbps(self) -> float:
        return self.encoded_bytes * 8 / self.duration_s / 1000 if self.n_samples else 0.0

    def packets(self) -> list[bytes]:
        out, pos = [], 0
        for size in self.sizes:
            out.append(self.payload[pos:pos + size])
            pos += size
        return out

    def header(self) -> dict:
        """Everything but the payload, as JSON-able data (the cache entry's metadata)."""
        meta = {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name != "payload"}
        meta["condition"] = self.condition.name
        meta["config"] = self.config.hex()
        return meta

    @classmethod
    def from_header(cls, header: dict, payload: bytes) -> "Bitstream":
        fields = {f.name for f in dataclasses.fields(cls)}
        values = {k: v for k, v in header.items() if k in fields}
        # stored data read back: an edge, where a condition's name becomes a Condition again
        return cls(**{**values, "condition": parse_condition(header["condition"]),
                      "config": bytes.fromhex(header["config"]), "payload": payload})


@dataclasses.dataclass
class RoundTrip:
    """A decoded signal and the facts of its coding."""

    signal: np.ndarray
    condition: Condition
    sample_rate: int
    encoded_bytes: int
    duration_s: float
    backend: str
    #: The rate the codec ran at (the signal is resampled to it and back when it differs).
    codec_sample_rate: int = 0

    @property
    def achieved_kbps(self) -> float:
        return self.encoded_bytes * 8 / self.duration_s / 1000 if self.duration_s else 0.0


class DecodeError(CodecError):
    """A bitstream that does not decode to what it was coded from; the message names the condition."""


class CodecUnavailable(EnvironmentProblem):
    """The condition's codec does not exist on this machine."""


def pack(cond: Condition, backend: str, decoder: str, sr: int, codec_sr: int, n: int, coded: int,
         packets: list[bytes], config: bytes, skip: int, encoded_bytes: int | None = None) -> Bitstream:
    """A :class:`Bitstream` from an encoder's packets: what every backend returns."""
    return Bitstream(cond, backend, decoder, sr, codec_sr, n, coded, b"".join(packets), [len(p) for p in packets],
                     bytes(config or b""), int(skip),
                     sum(map(len, packets)) if encoded_bytes is None else encoded_bytes)
