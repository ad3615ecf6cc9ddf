"""The LC3 backend (Bluetooth LE Audio), through Google's liblc3 and its ``lc3py`` wrapper (an optional extra)."""
from __future__ import annotations

import importlib.metadata

import numpy as np

from codecbench.codecs.backend import Backend, register
from codecbench.codecs.bitstream import Bitstream, pack
from codecbench.codecs.table import CodecSpec, Condition

#: LC3's frame duration here, in microseconds
FRAME_US = 10000


class LC3Backend(Backend):
    """liblc3 in-process: 10-ms frames of ``kbps * 10 / 8`` bytes."""

    name = "lc3"
    decoders = ("lc3",)

    def unavailable(self, spec: CodecSpec) -> str | None:
        try:
            import lc3  # noqa: F401
        except ImportError:
            return "LC3 needs Google's liblc3 wrapper: pip install 'codecbench[lc3]' (or pip install lc3py)"
        return None

    def library(self, spec: CodecSpec) -> str:
        try:
            return f"liblc3 (lc3py {importlib.metadata.version('lc3py')})"
        except importlib.metadata.PackageNotFoundError:  # not installed: the condition is unavailable anyway
            return "liblc3 (missing)"

    def encode(self, x: np.ndarray, codec_sr: int, cond: Condition, sample_rate: int, n: int) -> Bitstream:
        import lc3

        encoder = lc3.Encoder(FRAME_US, codec_sr)
        frame = encoder.get_frame_samples()
        nbytes = encoder.get_frame_bytes(cond.bit_rate)
        padded = np.concatenate([x, np.zeros((-len(x)) % frame + frame, dtype=np.float32)])  # + one: the delay
        packets = [encoder.encode(padded[i:i + frame], nbytes) for i in range(0, len(padded), frame)]
        return pack(cond, "lc3", "lc3", sample_rate, codec_sr, n, len(x), packets, b"", encoder.get_delay_samples())

    def decode(self, bitstream: Bitstream) -> np.ndarray:
        import lc3

        packets = bitstream.packets()
        if not packets:
            return np.zeros(0, dtype=np.float32)
        decoder = lc3.Decoder(FRAME_US, bitstream.codec_sample_rate)
        return np.concatenate([np.frombuffer(decoder.decode(p), dtype=np.float32) for p in packets])


register(LC3Backend())
