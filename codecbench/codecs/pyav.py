"""The libavcodec backend, through PyAV: most codecs of the table, and the decoder of several others.

Every encoder runs single-threaded (bit-identical output; parallelism lives above), fed the whole
signal as one frame that PyAV cuts into codec frames in C. The priming to drop comes from the
encoder's report, the stream header, the table's measured delay or the first packet, in that order
of precedence as the table says.
"""
from __future__ import annotations

import fractions
import io
from typing import Any

import numpy as np

from codecbench.codecs.backend import Backend, register
from codecbench.codecs.bitstream import Bitstream, pack
from codecbench.codecs.table import CodecSpec, Condition
from codecbench.errors import CodecError


def to_frame_array(chunk: np.ndarray, sample_format: str, channels: int = 1) -> np.ndarray:
    """(channels, n) for planar formats, (1, n * channels) interleaved for packed ones; the mono chunk on each."""
    if sample_format.startswith("s16"):
        a = np.round(np.clip(chunk, -1.0, 1.0) * 32767.0).astype(np.int16)[None]
    elif sample_format.startswith("s32"):
        a = np.round(np.clip(chunk.astype(np.float64), -1.0, 1.0) * 2147483647.0).astype(np.int32)[None]
    else:
        a = chunk[None].astype(np.float32)
    if channels == 1:
        return a
    return np.repeat(a, channels, axis=0) if sample_format.endswith("p") else np.repeat(a, channels, axis=1)


_SAMPLE_DTYPES = {"u8": np.uint8, "s16": np.int16, "s32": np.int32, "flt": np.float32, "dbl": np.float64}


def channel0(frame) -> np.ndarray:
    """Channel 0 of a decoded frame, (1, samples), read straight from its first plane.

    ``AudioFrame.to_ndarray`` stacks every plane with ``np.vstack``, which costs more per MP3 frame than decoding
    it; the samples are the same."""
    fmt = frame.format
    dtype = _SAMPLE_DTYPES.get(fmt.name.rstrip("p"))
    if dtype is None:
        return frame.to_ndarray()
    if fmt.is_planar:
        return np.frombuffer(frame.planes[0], dtype, count=frame.samples).copy()[None]
    channels = len(frame.layout.channels)
    return np.frombuffer(frame.planes[0], dtype, count=frame.samples * channels)[::channels].copy()[None]


def channel0_raw(frame) -> np.ndarray:
    """:func:`channel0` without its copy for planar and mono frames: a view of the bytes of channel 0 (one copy out
    of the frame's buffer, none into a second array). Per MP3 frame (1,152 samples) the copies and array calls cost
    about as much as decoding; :func:`decoded_to_float` concatenates the views once."""
    fmt = frame.format
    dtype = _SAMPLE_DTYPES.get(fmt.name.rstrip("p"))
    if dtype is None or not (fmt.is_planar or len(frame.layout.channels) == 1):
        return channel0(frame)
    size = frame.samples * np.dtype(dtype).itemsize
    return np.frombuffer(memoryview(frame.planes[0])[:size].tobytes(), dtype)[None]


def decoded_to_float(frames: list[np.ndarray]) -> np.ndarray:
    """Channel 0 of decoded frames as float32 (libavcodec decodes implicit-SBR mono as two identical channels)."""
    if not frames:
        return np.zeros(0, dtype=np.float32)
    y = np.concatenate([f.reshape(f.shape[0], -1)[:1] if f.ndim == 2 else f[None] for f in frames], axis=1)[0]
    if y.dtype == np.int16:
        return y.astype(np.float32) / 32768.0
    if y.dtype == np.int32:
        return (y.astype(np.float64) / 2.0 ** 31).astype(np.float32)
    return y.astype(np.float32, copy=False)  # float32 already (most decoders): the concatenation is the copy


def encode(x: np.ndarray, codec_sr: int, cond: Condition, sr: int, n: int) -> Bitstream:
    """Code ``x`` with the libavcodec encoder the table names for the condition's codec."""
    import av  # PyAV: loaded where a codec runs, so conditions stay cheap to import
    spec = cond.spec
    encoder: Any = av.CodecContext.create(spec.encoder, "w")  # an audio encoder context
    encoder.sample_rate = codec_sr
    layout = "mono" if spec.channels == 1 else "stereo"
    encoder.layout = layout
    encoder.format = spec.sample_format
    if spec.quality_table:  # a quality-driven (VBR) encoder: the nominal rate picks the quality
        encoder.qscale = True
        encoder.global_quality = spec.quality_for(cond.kbps)
    elif spec.fixed_kbps is None:
        encoder.bit_rate = cond.bit_rate
    encoder.thread_count = 1  # one thread: bit-identical output, parallelism lives above us
    if spec.profile:
        encoder.profile = spec.profile
    if encoder.codec.experimental:  # (FFmpeg's native Vorbis) opens only when asked for explicitly
        encoder.options = {"strict": "experimental"}
    if cond.loss is not None and cond.loss.fec:  # Opus's in-band FEC, tuned to the expected loss
        encoder.options = {"fec": "1", "packet_loss": str(max(1, min(100, round(cond.loss.rate))))}
    encoder.open()
    frame_size = encoder.frame_size or 1024
    lead_in = -spec.delay if spec.delay is not None and spec.delay < 0 else 0
    # Fixed-frame encoders need whole frames: pad the tail with silence. The signal goes in as
    # one frame, which PyAV cuts into codec frames in C (per-frame Python calls cost more than
    # the SBC encoder itself).
    padded = np.concatenate([np.zeros(lead_in, dtype=np.float32), x,
                             np.zeros((-(len(x) + lead_in)) % frame_size, dtype=np.float32)])
    frame = av.AudioFrame.from_ndarray(to_frame_array(padded, spec.sample_format, spec.channels),
                                       format=spec.sample_format, layout=layout)
    frame.sample_rate = codec_sr
    frame.pts = 0
    frame.time_base = fractions.Fraction(1, codec_sr)
    packets = [*encoder.encode(frame), *encoder.encode(None)]
    if not packets:
        raise CodecError(f"{cond.name}: the encoder produced no packets")
    # Priming: the encoder reports it as a negative first pts (and LAME also as skip-samples side
    # data, which we do not keep: dropping those samples ourselves is the same operation); Opus
    # carries it as pre-skip in its header, which its decoder applies itself. SBC reports none,
    # but its filterbank delays the signal (read from the frame header); codecs with a measured
    # fixed delay (aptX, AMR-NB, WMA) use that instead of the report.
    first = packets[0]
    priming = -int(first.pts) if first.pts is not None and first.pts < 0 else 0
    if first.has_sidedata("skip_samples"):
        priming = int.from_bytes(bytes(first.get_sidedata("skip_samples"))[:4], "little")
    if spec.header_carries_priming:
        priming = 0
    if spec.delay is not None:
        priming = max(spec.delay, 0)
    if spec.delay_from_first_packet is not None:
        priming += spec.delay_from_first_packet(bytes(first))
    return pack(cond, "pyav", f"pyav:{spec.decoder}", sr, codec_sr, n, len(x), [bytes(p) for p in packets],
                      encoder.extradata or b"", priming)


def decode_packets(decoder_name: str, sr: int, config: bytes, packets: list[bytes],
                   cond: Condition | None = None) -> np.ndarray:
    """Decode packets with a libavcodec decoder; channel 0 as float32 at ``sr``."""
    import av  # PyAV: loaded where a codec runs, so conditions stay cheap to import
    decoder: Any = av.CodecContext.create(decoder_name, "r")  # an audio decoder context
    decoder.sample_rate = sr
    decoder.layout = "mono" if cond is None or cond.spec.channels == 1 else "stereo"
    if config:
        decoder.extradata = config
    setup = cond.spec.decoder_setup(cond, packets[0]) if cond is not None and packets and \
        cond.spec.decoder_setup else {}
    if "options" in setup:
        decoder.options = setup["options"]
    if "bit_rate" in setup:
        decoder.bit_rate = setup["bit_rate"]
    frames: list[np.ndarray] = []
    decode, to_packet = decoder.decode, av.Packet
    for packet in [*packets, None]:
        frames.extend(channel0_raw(f) for f in decode(None if packet is None else to_packet(packet)))
    return decoded_to_float(frames)


def decode_container(payload: bytes) -> tuple[np.ndarray, int]:
    """Decode a coded file (the demuxer applies edit-list priming); return samples and audio payload bytes."""
    import av  # PyAV: loaded where a codec runs, so conditions stay cheap to import
    with av.open(io.BytesIO(payload), "r") as container:
        stream = container.streams.audio[0]
        frames: list[np.ndarray] = []
        nbytes = 0
        for packet in container.demux(stream):
            nbytes += packet.size
            frames.extend(channel0_raw(f) for f in packet.decode())
    return decoded_to_float(frames), nbytes


def libavcodec_version() -> str:
    """libavcodec's version, dotted."""
    import av  # PyAV: loaded where a codec runs, so conditions stay cheap to import
    return ".".join(map(str, av.library_versions["libavcodec"]))


class PyAVBackend(Backend):
    """libavcodec in-process: the encoder and decoder the table names."""

    name = "pyav"
    decoders = ("pyav", "container")

    def unavailable(self, spec: CodecSpec) -> str | None:
        import av  # PyAV: loaded where a codec runs, so conditions stay cheap to import
        missing = [c for c in {spec.encoder, spec.decoder} if c not in av.codecs_available]
        if missing:
            return f"this PyAV/libavcodec build lacks {', '.join(sorted(missing))}; reinstall `av` from PyPI wheels"
        return None

    def library(self, spec: CodecSpec) -> str:
        return f"libavcodec {libavcodec_version()} {spec.encoder}"

    def encode(self, x, codec_sr, cond, sample_rate, n):
        return encode(x, codec_sr, cond, sample_rate, n)

    def decode(self, bitstream: Bitstream) -> np.ndarray:
        if bitstream.decoder == "container":
            return decode_container(bitstream.payload)[0]
        return decode_packets(bitstream.decoder.split(":", 1)[1], bitstream.codec_sample_rate, bitstream.config,
                              bitstream.packets(), bitstream.condition)


register(PyAVBackend())
