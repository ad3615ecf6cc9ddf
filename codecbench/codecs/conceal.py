"""Decoding a bitstream that lost packets: the codec's own concealment, or the one the condition names.

- ``libopus``: Opus's packet-loss concealment, through libopus (ctypes; the copy inside the PyAV wheel, which
  encoded the packets, else the system's): a lost packet is decoded as
  ``opus_decode_float(NULL)``, or, with ``+fec``, recovered from the in-band FEC of the next packet when that one
  arrived (``decode_fec=1``).
- ``liblc3``: LC3's concealment, through liblc3 (``lc3_decode(NULL)``).
- ``libfdk-aac``: the concealment of Fraunhofer's AAC decoder (AAC-LD, AAC-ELD: the codecs only it decodes),
  through libfdk-aac (``aacDecoder_DecodeFrame`` with ``AACDEC_CONCEAL``).
- ``+zerofill`` / ``+repeat`` (a codec without concealment, decoded packet by packet with its libavcodec decoder):
  a lost frame becomes silence, or the last good frame again; a packet the decoder rejects after a loss (an MP3
  frame whose bit reservoir was in the lost one) is concealed the same way.

Each returns the decoder's output before the bitstream's ``skip`` is dropped, like a backend's ``decode``, with
exactly one frame per packet, so the clip keeps its length and alignment.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import functools
from pathlib import Path
from typing import Any

import numpy as np

from codecbench.codecs import fdk
from codecbench.codecs.bitstream import Bitstream, CodecUnavailable
from codecbench.codecs.liblc3 import FRAME_US
from codecbench.codecs.pyav import channel0, decoded_to_float
from codecbench.errors import CodecError

#: The backends whose bitstreams a named concealment (``+zerofill``, ``+repeat``) decodes: libavcodec's packets
#: (and libfdk-aac's HE-AAC, which libavcodec decodes: :meth:`codecbench.codecs.backend.Backend.rule_concealable`).
RULE_BACKENDS = ("pyav", "lame")
#: The longest Opus frame (120 ms at 48 kHz), the size of the decoder's output buffer.
_OPUS_MAX_FRAME = 5760
LIBOPUS_HINT = ("this PyAV build bundles no libopus; install the system's (Debian/Ubuntu: apt-get install libopus0; "
                "macOS: brew install opus)")


@functools.lru_cache(maxsize=None)
def libopus() -> Any | None:
    """libopus through ctypes: the copy inside the PyAV wheel (the library that encoded the packets), else the
    system's; None when neither is there."""
    import av  # PyAV: where its wheel keeps the libraries it bundles

    package = Path(av.__file__).parent
    bundled = sorted([*package.parent.glob("av.libs/libopus*"), *package.glob(".dylibs/libopus*")])
    lib = None
    for path in [*map(str, bundled), ctypes.util.find_library("opus")]:
        if path is None:
            continue
        try:
            lib = ctypes.CDLL(path)
            break
        except OSError:
            continue
    if lib is None:
        return None
    lib.opus_decoder_create.restype = ctypes.c_void_p
    lib.opus_decoder_create.argtypes = [ctypes.c_int32, ctypes.c_int, ctypes.POINTER(ctypes.c_int)]
    lib.opus_decode_float.restype = ctypes.c_int
    lib.opus_decode_float.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_int32,
                                      ctypes.POINTER(ctypes.c_float), ctypes.c_int, ctypes.c_int]
    lib.opus_packet_get_nb_samples.restype = ctypes.c_int
    lib.opus_packet_get_nb_samples.argtypes = [ctypes.c_char_p, ctypes.c_int32, ctypes.c_int32]
    lib.opus_decoder_destroy.argtypes = [ctypes.c_void_p]
    lib.opus_get_version_string.restype = ctypes.c_char_p
    return lib


def unavailable(concealment: str) -> str | None:
    """Why a codec's concealment cannot run here, or None."""
    if concealment == "libopus" and libopus() is None:
        return f"Opus packet-loss concealment needs the system's libopus: {LIBOPUS_HINT}"
    if concealment == "libfdk-aac":
        if fdk.library()[0] is None:
            return f"AAC packet-loss concealment needs libfdk-aac's decoder: {fdk.FDK_HINT}"
    if concealment == "liblc3":
        try:
            import lc3  # noqa: F401  (optional: the LC3 extra)
        except ImportError:
            return "LC3 packet-loss concealment needs liblc3: pip install 'codecbench[lc3]'"
    return None


def library(concealment: str) -> str:
    """The library (and version) that conceals; part of a loss condition's cache key."""
    if concealment == "libopus":
        lib = libopus()
        return lib.opus_get_version_string().decode() if lib is not None else "libopus (missing)"
    if concealment == "liblc3":
        return "liblc3 PLC"
    if concealment == "libfdk-aac":
        return f"{fdk.version()} concealment"
    return f"{concealment} concealment"


def decode_with_loss(bitstream: Bitstream) -> np.ndarray:
    """Decode ``bitstream`` with its lost packets (``bitstream.lost``) concealed as its condition says."""
    loss = bitstream.condition.loss
    if loss is None:
        raise CodecError(f"{bitstream.condition}: no loss to conceal")
    if loss.conceal == "codec":
        concealment = bitstream.condition.spec.concealment
        if concealment == "libopus":
            return _libopus(bitstream, fec=loss.fec)
        if concealment == "liblc3":
            return _liblc3(bitstream)
        if concealment == "libfdk-aac":
            return _libfdk(bitstream)
        raise CodecError(f"{bitstream.condition}: {bitstream.condition.codec} has no concealment of its own")
    return _by_rule(bitstream, loss.conceal)


def _libopus(b: Bitstream, *, fec: bool) -> np.ndarray:
    lib = libopus()
    if lib is None:
        raise CodecUnavailable(f"{b.condition}: {LIBOPUS_HINT}")
    error = ctypes.c_int(0)
    decoder = lib.opus_decoder_create(b.codec_sample_rate, 1, ctypes.byref(error))
    if error.value != 0 or not decoder:
        raise CodecError(f"{b.condition}: opus_decoder_create failed ({error.value})")
    pcm = (ctypes.c_float * _OPUS_MAX_FRAME)()
    lost = set(b.lost)
    packets = b.packets()
    out: list[np.ndarray] = []
    frame = 960  # 20 ms, libopus's default, until a packet says otherwise
    try:
        for i, packet in enumerate(packets):
            if i not in lost:
                n = lib.opus_decode_float(decoder, packet, len(packet), pcm, _OPUS_MAX_FRAME, 0)
                frame = lib.opus_packet_get_nb_samples(packet, len(packet), b.codec_sample_rate)
            elif fec and i + 1 < len(packets) and i + 1 not in lost:
                following = packets[i + 1]
                n = lib.opus_decode_float(decoder, following, len(following), pcm, frame, 1)
            else:
                n = lib.opus_decode_float(decoder, None, 0, pcm, frame, 0)
            if n < 0:
                raise CodecError(f"{b.condition}: libopus could not decode packet {i} ({n})")
            out.append(np.ctypeslib.as_array(pcm)[:n].copy())
    finally:
        lib.opus_decoder_destroy(decoder)
    # libavcodec applies the OpusHead's pre-skip itself; here it is dropped the same way
    pre_skip = int.from_bytes(b.config[10:12], "little") if len(b.config) >= 12 else 0
    return np.concatenate(out)[pre_skip:] if out else np.zeros(0, dtype=np.float32)


def _libfdk(b: Bitstream) -> np.ndarray:
    if b.decoder != "fdk":  # HE-AAC is decoded by libavcodec, whose alignment its skip holds; it takes +zerofill
        raise CodecError(f"{b.condition}: libfdk-aac conceals the bitstreams its own decoder decodes (AAC-LD, "
                         f"AAC-ELD); this one is decoded by {b.decoder}")
    return fdk.decode(b.packets(), b.config, frozenset(b.lost))


def _liblc3(b: Bitstream) -> np.ndarray:
    import lc3  # optional: the LC3 extra

    decoder = lc3.Decoder(FRAME_US, b.codec_sample_rate)
    lost = set(b.lost)
    # lc3py decodes bytes only; concealment is liblc3's lc3_decode with no input, on the wrapper's own decoder
    handle = decoder._Decoder__decoders[0]
    pcm_format, pcm_type = decoder._resolve_pcm_format(None)
    samples = decoder.get_frame_samples()
    out = []
    for i, packet in enumerate(b.packets()):
        if i in lost:
            pcm = (pcm_type * samples)()
            if decoder.lib.lc3_decode(handle, None, 0, pcm_format, pcm, 1) < 0:
                raise CodecError(f"{b.condition}: liblc3 could not conceal packet {i}")
            out.append(np.ctypeslib.as_array(pcm).astype(np.float32))
        else:
            out.append(np.frombuffer(decoder.decode(packet), dtype=np.float32))
    return np.concatenate(out) if out else np.zeros(0, dtype=np.float32)


def _by_rule(b: Bitstream, rule: str) -> np.ndarray:
    """Packet by packet through the codec's libavcodec decoder; a lost or rejected packet becomes a frame of
    silence (``zerofill``) or the last good frame (``repeat``)."""
    import av  # PyAV: loaded with the codecs that need it

    if not b.decoder.startswith("pyav:"):
        raise CodecError(f"{b.condition}: packet loss is modelled on packet bitstreams; {b.decoder} decodes a file")
    decoder: Any = av.CodecContext.create(b.decoder.split(":", 1)[1], "r")
    decoder.sample_rate = b.codec_sample_rate
    spec = b.condition.spec
    decoder.layout = "mono" if spec.channels == 1 else "stereo"
    if b.config:
        decoder.extradata = b.config
    packets = b.packets()
    setup = spec.decoder_setup(b.condition, packets[0]) if packets and spec.decoder_setup else {}
    if "options" in setup:
        decoder.options = setup["options"]
    if "bit_rate" in setup:
        decoder.bit_rate = setup["bit_rate"]
    lost = set(b.lost)
    pieces: list[np.ndarray | None] = []  # None: a frame to conceal, once a good frame's length is known
    for i, packet in [*enumerate(packets), (len(packets), None)]:  # the last: the decoder's flush
        if i in lost:
            pieces.append(None)
            continue
        try:
            pieces.append(decoded_to_float([channel0(f) for f in decoder.decode(
                None if packet is None else av.Packet(packet))]))
        except av.error.FFmpegError:
            pieces.append(None)  # the decoder rejects a frame that needs the lost one: conceal it too
    good = [p for p in pieces if p is not None and len(p)]
    if not good:
        raise CodecError(f"{b.condition}: every packet was lost; nothing to conceal from")
    frame = int(np.median([len(p) for p in good]))
    out, last = [], np.zeros(frame, dtype=np.float32)
    for piece in pieces:
        if piece is None:
            piece = np.zeros(frame, dtype=np.float32) if rule == "zerofill" else last
        elif len(piece):
            last = piece[-frame:]
        out.append(piece)
    return np.concatenate(out)
