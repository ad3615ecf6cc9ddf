"""LAME in-process through ctypes: the same MP3 bitstream as libavcodec's ``libmp3lame`` encoder, faster.

Why: the LAME inside the PyAV wheels is built for portability and takes ~300 ms to code 10 s of audio at its
default quality (3); the system's ``libmp3lame`` (Debian's ``libmp3lame0``, Homebrew's ``lame``) codes the same
audio to the *same bytes* in ~90 ms, as fast as the fastest peer (fast-mp3-augment at quality 3). See
``codecbench bench codecs``.

The coded audio does not change: this route reproduces FFmpeg's wrapper exactly (CBR, mono, output rate = input
rate, no Xing tag, LAME's default quality 3, samples scaled to +-32768 and passed to
``lame_encode_buffer_float``, the priming FFmpeg reports: encoder delay + 529). Before it is used, each process
codes a short test signal both ways and uses this route only if the bytes are identical; otherwise (another LAME
version) libavcodec codes MP3 as before. ``CODECBENCH_LAME=off`` turns the route off; ``CODECBENCH_LAME=<path>``
names the library.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import functools
import os

import numpy as np

from codecbench.codecs.backend import Backend, register
from codecbench.codecs.bitstream import Bitstream, pack
from codecbench.codecs.pyav import encode as pyav_encode
from codecbench.codecs.table import CodecSpec, Condition
from codecbench.errors import CodecError

#: LAME's mode for one channel, and its default ("-q 3") algorithm quality, which libavcodec leaves in place
_MONO = 3
QUALITY = 3
#: FFmpeg's libmp3lame wrapper: initial padding = encoder delay + 528 + 1 (the decoder's delay)
_DECODER_DELAY = 529

_BITRATES = {1: (0, 32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320),
             2: (0, 8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160)}
_RATES = {3: (44100, 48000, 32000), 2: (22050, 24000, 16000), 0: (11025, 12000, 8000)}


class LameError(CodecError):
    """LAME refused a setting or failed to encode; the message says which call."""


@functools.lru_cache(maxsize=1)
def library():
    """``(ctypes library or None, why not)``."""
    choice = os.environ.get("CODECBENCH_LAME", "").strip()
    if choice.lower() in ("off", "0", "no", "false"):
        return None, "turned off by CODECBENCH_LAME"
    path = choice or ctypes.util.find_library("mp3lame")
    if not path:
        return None, "no libmp3lame shared library (Debian: libmp3lame0; macOS: brew install lame)"
    try:
        lib = ctypes.CDLL(path)
    except OSError as exc:
        return None, f"{path}: {exc}"
    handle = ctypes.c_void_p
    lib.lame_init.restype = handle
    for name in ("lame_set_in_samplerate", "lame_set_out_samplerate", "lame_set_num_channels", "lame_set_brate",
                 "lame_set_quality", "lame_set_mode", "lame_set_bWriteVbrTag"):
        getattr(lib, name).argtypes = [handle, ctypes.c_int]
    for name in ("lame_init_params", "lame_get_encoder_delay", "lame_get_lowpassfreq", "lame_close"):
        getattr(lib, name).argtypes = [handle]
    lib.lame_encode_buffer_float.argtypes = [handle, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int,
                                             ctypes.c_void_p, ctypes.c_int]
    lib.lame_encode_flush.argtypes = [handle, ctypes.c_void_p, ctypes.c_int]
    lib.get_lame_version.restype = ctypes.c_char_p
    return lib, path


def version() -> str | None:
    lib, _ = library()
    return f"LAME {lib.get_lame_version().decode()}" if lib is not None else None


def lowpass_hz(sample_rate: int, kbps: float) -> int:
    """The low-pass LAME applies to mono CBR at ``kbps`` and ``sample_rate`` (``lame_get_lowpassfreq`` after its
    parameters are set, as codecbench sets them): what the codec facts' bandwidth is checked against."""
    lib, why = library()
    if lib is None:
        raise LameError(f"libmp3lame is not available: {why}")
    g = lib.lame_init()
    try:
        for call, value in (("lame_set_in_samplerate", sample_rate), ("lame_set_out_samplerate", sample_rate),
                            ("lame_set_num_channels", 1), ("lame_set_mode", _MONO), ("lame_set_brate", int(kbps)),
                            ("lame_set_quality", QUALITY)):
            getattr(lib, call)(g, int(value))
        if lib.lame_init_params(g) < 0:
            raise LameError(f"lame_init_params refused {kbps} kbps at {sample_rate} Hz")
        return int(lib.lame_get_lowpassfreq(g))
    finally:
        lib.lame_close(g)


def encode(x: np.ndarray, sample_rate: int, kbps: float, frame_size: int = 1152) -> tuple[list[bytes], int]:
    """MP3 frames of a mono float signal (padded with silence to whole frames, as libavcodec does) and the
    priming in samples (what the decoder's output starts with before the signal)."""
    lib, why = library()
    if lib is None:
        raise LameError(f"libmp3lame is not available: {why}")
    g = lib.lame_init()
    if not g:
        raise LameError("lame_init failed")
    try:
        for call, value in (("lame_set_in_samplerate", sample_rate), ("lame_set_out_samplerate", sample_rate),
                            ("lame_set_num_channels", 1), ("lame_set_mode", _MONO), ("lame_set_brate", int(kbps)),
                            ("lame_set_quality", QUALITY), ("lame_set_bWriteVbrTag", 0)):
            if getattr(lib, call)(g, int(value)) < 0:
                raise LameError(f"{call}({value}) was refused")
        if lib.lame_init_params(g) < 0:
            raise LameError(f"lame_init_params refused {kbps} kbps at {sample_rate} Hz")
        n = len(x) + (-len(x)) % frame_size
        scaled = np.zeros(n, dtype=np.float32)
        np.multiply(x, np.float32(32768.0), out=scaled[:len(x)], casting="unsafe")
        capacity = int(1.25 * n) + 7200  # LAME's documented worst case
        out = ctypes.create_string_buffer(capacity)
        # mono: LAME reads only the left buffer, but wants a pointer for the right one too
        written = lib.lame_encode_buffer_float(g, scaled.ctypes.data, scaled.ctypes.data, n, out, capacity)
        if written < 0:
            raise LameError(f"lame_encode_buffer_float failed ({written})")
        data = out.raw[:written]
        flushed = lib.lame_encode_flush(g, out, capacity)
        if flushed < 0:
            raise LameError(f"lame_encode_flush failed ({flushed})")
        data += out.raw[:flushed]
        delay = lib.lame_get_encoder_delay(g)
    finally:
        lib.lame_close(g)
    return split_frames(data), delay + _DECODER_DELAY


def split_frames(data: bytes) -> list[bytes]:
    """MPEG audio Layer III frames of a byte stream, from their headers."""
    frames, pos = [], 0
    while pos + 4 <= len(data):
        b1, b2 = data[pos + 1], data[pos + 2]
        if data[pos] != 0xFF or b1 & 0xE0 != 0xE0 or (b1 >> 1) & 3 != 1:
            raise LameError(f"not an MPEG Layer III frame header at byte {pos}")
        version = (b1 >> 3) & 3
        table = 1 if version == 3 else 2
        kbps = _BITRATES[table][b2 >> 4]
        rate = _RATES[version][(b2 >> 2) & 3]
        length = (144 if version == 3 else 72) * kbps * 1000 // rate + ((b2 >> 1) & 1)
        frames.append(data[pos:pos + length])
        pos += length
    if pos != len(data):
        raise LameError("the MP3 stream ends inside a frame")
    return frames


@functools.lru_cache(maxsize=1)
def matches_libavcodec() -> bool:
    """Whether this library codes a test signal to the same bytes (and priming) as libavcodec's libmp3lame."""
    if library()[0] is None:
        return False

    rng = np.random.default_rng(20261129)
    # MPEG-1 (44.1 kHz, 1152-sample frames) and MPEG-2 (22.05 kHz, 576-sample frames) Layer III
    for sr, kbps in ((44100, 32), (44100, 128), (22050, 32)):
        t = np.arange(sr // 2) / sr
        x = (0.3 * np.sin(2 * np.pi * 440 * t) + 0.05 * rng.standard_normal(len(t))).astype(np.float32)
        try:
            frames, priming = encode(x, sr, kbps, frame_size=1152 if sr >= 32000 else 576)
        except LameError:
            return False
        reference = pyav_encode(x, sr, Condition("mp3", kbps), sr, len(x))
        if b"".join(frames) != reference.payload or priming != reference.skip or \
                [len(f) for f in frames] != list(reference.sizes):
            return False
    return True


class LameBackend(Backend):
    """The system's libmp3lame in-process, used only where it codes the same bytes as libavcodec's wrapper."""

    name = "lame"
    decoders = ()  # its MP3 frames are decoded by libavcodec's mp3float

    def unavailable(self, spec: CodecSpec) -> str | None:
        if not matches_libavcodec():
            return "no system libmp3lame that codes the same bytes as libavcodec's (CODECBENCH_LAME, libmp3lame0)"
        return None

    def library(self, spec: CodecSpec) -> str:
        # the bytes equal libavcodec's libmp3lame's; the route is named as the cache entry records it
        return f"{version()} (system libmp3lame, in-process)"

    def encode(self, x: np.ndarray, codec_sr: int, cond: Condition, sample_rate: int, n: int) -> Bitstream:
        # MPEG-2/2.5 Layer III frames (below 32 kHz) hold 576 samples, MPEG-1's 1152: padded as libavcodec pads
        frames, priming = encode(x, codec_sr, cond.kbps, frame_size=1152 if codec_sr >= 32000 else 576)
        return pack(cond, "lame", f"pyav:{cond.spec.decoder}", sample_rate, codec_sr, n, len(x), frames, b"", priming)


register(LameBackend())
