"""Codec round trips: encode and decode a mono signal under a named condition.

This package owns the condition names (``aac@32``, ``he-aac@16``, ``aac-ld@64``,
``aac-eld@32``, ``mp3@64``, ``opus@64``, ``sbc@64``, ``wav``), the valid bit-rate range of
every codec, the in-process round trips (libavcodec through PyAV; Fraunhofer libfdk-aac through
ctypes, :mod:`codecbench.codecs.fdk`), and the time alignment of the decoded signal to its
input. HE-AAC v1, AAC-LD and AAC-ELD need libfdk-aac; the backends are tried in order:
in-process libfdk-aac, PyAV's FFmpeg with ``libfdk_aac``, an ``ffmpeg`` on PATH with it, the
``fdkaac`` command. Without any of them the condition is *unavailable*, never silently replaced.
"""
from __future__ import annotations

import dataclasses
import fractions
import functools
import os
import re
import shutil
import subprocess
import tempfile
from typing import Callable

import av
import numpy as np
import soxr

from ..errors import CodecbenchError, CodecError, UsageError

#: Bumped whenever a change here alters decoded samples, so cached entries are recomputed.
ROUNDTRIP_VERSION = 2


@dataclasses.dataclass(frozen=True)
class CodecSpec:
    """What codecbench needs to know of one codec."""

    name: str
    description: str
    encoder: str
    decoder: str
    min_kbps: int
    max_kbps: int
    sample_format: str
    #: Rates the encoder accepts; a signal at another rate is resampled to the first one.
    sample_rates: tuple[int, ...]
    constant_bitrate: bool
    note: str = ""
    #: The stream header carries the priming and the decoder drops it (Opus: pre-skip in OpusHead).
    header_carries_priming: bool = False
    #: The only bit rates the codec has (AMR-NB's modes, G.726's code sizes), if it is not a range.
    rates: tuple[float, ...] = ()
    #: A codec with one bit rate is named without ``@kbps`` (``aptx``, ``g711-mulaw``); this is that rate.
    fixed_kbps: float | None = None
    #: Channels the encoder is fed (the mono clip on each); the decoded channel 0 is kept.
    channels: int = 1
    #: Samples (at the codec rate) between input and decoded output, measured by cross-correlation on real
    #: codec output, where the encoder reports none or a wrong one. Negative: the decoder starts that many
    #: samples late (WMA drops its first frame), so that much silence is prepended before encoding.
    delay: int | None = None
    #: Codec family, for ``codecbench conditions`` and the extended matrix.
    family: str = "streaming"
    #: A quality-driven encoder: ``{encoder quality: kbps it gave}``, measured; the nominal rate picks the quality
    #: whose measured rate is nearest (see :func:`vorbis_quality`).
    quality_table: tuple[tuple[int, float], ...] = ()


CODECS: dict[str, CodecSpec] = {
    spec.name: spec
    for spec in (
        CodecSpec("aac", "AAC-LC (FFmpeg native encoder)", "aac", "aac", 16, 192, "fltp",
                  (44100, 48000, 32000, 24000, 22050, 16000), True,
                  "above ~192 kbps mono the native encoder saturates"),
        CodecSpec("he-aac", "HE-AAC v1 (AAC-LC + SBR, Fraunhofer libfdk-aac)", "libfdk_aac", "aac", 8, 64,
                  "s16", (48000, 44100, 32000, 24000, 22050, 16000), True,
                  "the valid range depends on the input rate (e.g. 12-64 kbps at 44.1/48 kHz); libfdk-aac's "
                  "tables decide"),
        CodecSpec("aac-ld", "AAC-LD (low delay, 512-sample frames, Fraunhofer libfdk-aac)", "libfdk_aac", "aac",
                  8, 256, "s16", (48000, 44100, 32000, 24000, 22050, 16000, 12000, 11025, 8000), True,
                  "real-time communication; the valid range depends on the input rate"),
        CodecSpec("aac-eld", "AAC-ELD (enhanced low delay, Fraunhofer libfdk-aac)", "libfdk_aac", "aac",
                  8, 256, "s16", (48000, 44100, 32000, 24000, 22050, 16000, 12000, 11025, 8000), True,
                  "real-time communication (e.g. FaceTime); SBR below ~64 kbps as libfdk-aac configures it"),
        CodecSpec("mp3", "MP3 (LAME, CBR)", "libmp3lame", "mp3float", 32, 320, "fltp",
                  (44100, 48000, 32000), True,
                  "MPEG-1 Layer III; LAME snaps other values to the nearest standard rate"),
        CodecSpec("opus", "Opus (libopus, VBR)", "libopus", "opus", 6, 256, "flt",
                  (48000,), False,
                  "always coded at 48 kHz and resampled back", header_carries_priming=True),
        CodecSpec("sbc", "SBC (Bluetooth A2DP, FFmpeg encoder)", "sbc", "sbc", 32, 320, "s16",
                  (44100, 48000, 32000, 16000), True, family="bluetooth"),
        # ---- beyond the paper: Bluetooth, telephony / VoIP, broadcast (all in-process libavcodec, or liblc3)
        CodecSpec("aptx", "aptX (Bluetooth, 4:1 ADPCM in 4 subbands, FFmpeg encoder)", "aptx", "aptx", 0, 0,
                  "s32p", (44100, 48000, 32000, 16000, 8000), True,
                  "stereo only: the mono clip goes on both channels (the rate counts both); 90-sample QMF delay",
                  fixed_kbps=352.8, channels=2, delay=90, family="bluetooth"),
        CodecSpec("aptx-hd", "aptX HD (Bluetooth, 24-bit aptX, FFmpeg encoder)", "aptx_hd", "aptx_hd", 0, 0,
                  "s32p", (44100, 48000, 32000, 16000, 8000), True,
                  "stereo only: the mono clip goes on both channels (the rate counts both); 90-sample QMF delay",
                  fixed_kbps=529.2, channels=2, delay=90, family="bluetooth"),
        CodecSpec("lc3", "LC3 (Bluetooth LE Audio, Google liblc3 via lc3py, 10-ms frames)", "lc3", "lc3", 16, 320,
                  "flt", (48000, 32000, 24000, 16000, 8000), True,
                  "coded at 48 kHz (44.1 kHz input is resampled to it and back); pip install 'codecbench[lc3]'",
                  family="bluetooth"),
        CodecSpec("amr-nb", "AMR-NB (3GPP narrow-band speech, opencore-amr)", "libopencore_amrnb",
                  "libopencore_amrnb", 4.75, 12.2, "s16", (8000,), True,
                  "8 kHz speech codec: the clip is resampled to 8 kHz and back; 40-sample delay (measured; FFmpeg "
                  "reports 50)", rates=(4.75, 5.15, 5.9, 6.7, 7.4, 7.95, 10.2, 12.2), delay=40, family="telephony"),
        CodecSpec("g711-mulaw", "G.711 mu-law (telephony PCM, 8 kHz)", "pcm_mulaw", "pcm_mulaw", 0, 0, "s16",
                  (8000,), True, "the clip is resampled to 8 kHz and back", fixed_kbps=64, family="telephony"),
        CodecSpec("g711-alaw", "G.711 A-law (telephony PCM, 8 kHz)", "pcm_alaw", "pcm_alaw", 0, 0, "s16",
                  (8000,), True, "the clip is resampled to 8 kHz and back", fixed_kbps=64, family="telephony"),
        CodecSpec("g722", "G.722 (wide-band telephony / VoIP, sub-band ADPCM, 16 kHz)", "g722", "g722", 64, 64,
                  "s16", (16000,), True, "the clip is resampled to 16 kHz and back; FFmpeg encodes the 64 kbps mode",
                  family="telephony"),
        CodecSpec("g726", "G.726 (ADPCM telephony, 8 kHz)", "g726", "g726", 16, 40, "s16", (8000,), True,
                  "the clip is resampled to 8 kHz and back", rates=(16, 24, 32, 40), family="telephony"),
        CodecSpec("mp2", "MPEG-1 Layer II (DAB/DVB broadcast, FFmpeg encoder)", "mp2", "mp2", 32, 192, "s16",
                  (44100, 48000, 32000), True, "mono Layer II: 32-192 kbps",
                  rates=(32, 48, 56, 64, 80, 96, 112, 128, 160, 192), family="broadcast"),
        CodecSpec("ac3", "AC-3 (Dolby Digital, broadcast/DVD, FFmpeg encoder)", "ac3", "ac3", 32, 640, "fltp",
                  (48000, 44100, 32000), True,
                  rates=(32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320, 384, 448, 512, 576, 640),
                  family="broadcast"),
        CodecSpec("eac3", "E-AC-3 (Dolby Digital Plus, broadcast/streaming, FFmpeg encoder)", "eac3", "eac3", 32, 640,
                  "fltp", (48000, 44100, 32000), True,
                  rates=(32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320, 384, 448, 512, 576, 640),
                  family="broadcast"),
        CodecSpec("vorbis", "Vorbis (FFmpeg's native encoder, quality-driven VBR)", "vorbis", "vorbis", 32, 196,
                  "fltp", (44100, 48000, 32000, 22050, 16000), False,
                  "FFmpeg's native encoder (the PyAV wheels have no libvorbis) is stereo-only and experimental; the "
                  "nominal rate picks its quality from rates measured on the synthetic scenes",
                  header_carries_priming=True, channels=2, family="streaming",
                  quality_table=((1, 31.9), (2, 53.1), (3, 72.8), (4, 89.8), (5, 106.0), (6, 120.8), (7, 133.8),
                                 (8, 145.3), (9, 155.8), (10, 165.0), (12, 181.4), (14, 196.2))),
        CodecSpec("wma", "WMA v2 (Windows Media Audio, FFmpeg encoder)", "wmav2", "wmav2", 24, 192, "fltp",
                  (44100, 48000, 32000, 22050), True,
                  "its decoder drops the first 2048-sample frame, so that much silence leads the clip in",
                  delay=-2048, family="streaming"),
    )
}

_CONDITION_RE = re.compile(r"^(?P<codec>[a-z0-9-]+)@(?P<kbps>\d+(\.\d+)?)$")


@dataclasses.dataclass(frozen=True, order=True)
class Condition:
    """A codec at a nominal bit rate, or the uncoded original (``codec == "wav"``)."""

    codec: str
    kbps: int = 0

    @property
    def name(self) -> str:
        if self.is_original:
            return "wav"
        if self.spec.fixed_kbps is not None:
            return self.codec
        return f"{self.codec}@{self.kbps:g}"

    @property
    def bit_rate(self) -> int:
        """The nominal bit rate in bit/s."""
        return int(round(self.kbps * 1000))

    @property
    def is_original(self) -> bool:
        return self.codec == "wav"

    @property
    def spec(self) -> CodecSpec:
        return CODECS[self.codec]

    def __str__(self) -> str:
        return self.name


ORIGINAL = Condition("wav")


class ConditionError(UsageError):
    """A condition name that does not parse or lies outside its codec's valid range."""


def parse_condition(name: str | Condition) -> Condition:
    """Parse ``"<codec>@<kbps>"`` or ``"wav"``; raise :class:`ConditionError` naming what was expected."""
    if isinstance(name, Condition):
        return name
    text = str(name).strip().lower()
    if text in ("wav", "original", "uncoded"):
        return ORIGINAL
    if text in CODECS and CODECS[text].fixed_kbps is not None:
        return Condition(text, CODECS[text].fixed_kbps)
    match = _CONDITION_RE.match(text)
    if not match:
        raise ConditionError(
            f"condition {name!r} is not of the form '<codec>@<kbps>' (e.g. 'mp3@32') or 'wav'; "
            f"codecs: {', '.join(CODECS)}")
    codec, kbps = match["codec"], float(match["kbps"])
    kbps = int(kbps) if kbps.is_integer() else kbps
    if codec in ("he-aac-v2", "heaac-v2", "he-aacv2"):
        raise ConditionError(f"condition {name!r}: HE-AAC v2 adds parametric stereo and needs a stereo signal; "
                             "codecbench codes mono scenes, so use he-aac@kbps (HE-AAC v1)")
    if codec not in CODECS:
        raise ConditionError(f"condition {name!r}: unknown codec {codec!r}; known codecs: {', '.join(CODECS)}")
    spec = CODECS[codec]
    if spec.fixed_kbps is not None:
        raise ConditionError(f"condition {name!r}: {codec} has one bit rate ({spec.fixed_kbps:g} kbps); "
                             f"name it {codec!r} without @kbps")
    if spec.rates and kbps not in spec.rates:
        raise ConditionError(f"condition {name!r}: {codec} codes only at {', '.join(f'{r:g}' for r in spec.rates)} "
                             "kbps")
    if not spec.min_kbps <= kbps <= spec.max_kbps:
        raise ConditionError(
            f"condition {name!r}: {kbps} kbps is outside the valid range of {codec} "
            f"({spec.min_kbps}-{spec.max_kbps} kbps for mono)")
    return Condition(codec, kbps)


# --------------------------------------------------------------------------- availability

@functools.lru_cache(maxsize=None)
def _ffmpeg_has_encoder(encoder: str) -> bool:
    exe = shutil.which("ffmpeg")
    if not exe:
        return False
    try:
        out = subprocess.run([exe, "-hide_banner", "-encoders"], capture_output=True, text=True, timeout=30).stdout
    except (OSError, subprocess.SubprocessError):
        return False
    return any(line.split()[1:2] == [encoder] for line in out.splitlines() if line.strip())


#: The codecs only Fraunhofer libfdk-aac codes here.
FDK_CODECS = ("he-aac", "aac-ld", "aac-eld")


def fdk_backend(codec: str = "he-aac") -> str | None:
    """Which libfdk-aac route codes ``codec`` here, in order of preference, or None.

    ``"fdk"`` (in-process, ctypes), ``"pyav"`` (PyAV's FFmpeg with libfdk_aac), ``"ffmpeg"`` (an
    ``ffmpeg`` on PATH with libfdk_aac), ``"fdkaac"`` (the command-line encoder). The command-line
    routes code HE-AAC only.
    """
    from . import fdk

    if fdk.library()[0] is not None:
        return "fdk"
    if codec != "he-aac":
        return None
    if "libfdk_aac" in av.codecs_available:
        return "pyav"
    if _ffmpeg_has_encoder("libfdk_aac"):
        return "ffmpeg"
    if shutil.which("fdkaac"):
        return "fdkaac"
    return None


FDK_HINT = ("Fraunhofer libfdk-aac is not installed. Debian: add the non-free component to the apt source and "
            "`apt-get install libfdk-aac2`; Ubuntu: enable multiverse and `apt-get install libfdk-aac2`; macOS: "
            "`brew install fdk-aac`; elsewhere set CODECBENCH_FDK_AAC=/path/to/libfdk-aac.so.2")


def availability(condition: str | Condition) -> tuple[bool, str]:
    """``(True, backend)`` if the condition can be coded here, else ``(False, reason with install hint)``."""
    cond = parse_condition(condition)
    if cond.is_original:
        return True, "uncoded"
    spec = cond.spec
    if cond.codec in FDK_CODECS:
        backend = fdk_backend(cond.codec)
        return (True, backend) if backend else (False, f"libfdk_aac not found for {cond.codec}. " + FDK_HINT)
    if cond.codec == "lc3":
        try:
            import lc3  # noqa: F401
        except ImportError:
            return False, "LC3 needs Google's liblc3 wrapper: pip install 'codecbench[lc3]' (or pip install lc3py)"
        return True, "lc3"
    missing = [c for c in {spec.encoder, spec.decoder} if c not in av.codecs_available]
    if missing:
        return False, f"this PyAV/libavcodec build lacks {', '.join(missing)}; reinstall `av` from PyPI wheels"
    return True, "pyav"


def codec_library(condition: str | Condition) -> str:
    """The library, version and route that codes a condition; part of its cache key and of run metadata."""
    cond = parse_condition(condition)
    if cond.is_original:
        return "-"
    libavcodec = ".".join(map(str, av.library_versions["libavcodec"]))
    if cond.codec in FDK_CODECS:
        from . import fdk

        backend = fdk_backend(cond.codec)
        return {"fdk": f"{fdk.version()} (in-process)", "pyav": f"libavcodec {libavcodec} libfdk_aac",
                "ffmpeg": "ffmpeg CLI libfdk_aac", "fdkaac": "fdkaac CLI (libfdk-aac)"}.get(
                    backend, "libfdk-aac (missing)")
    if cond.codec == "lc3":
        try:
            import importlib.metadata
            return f"liblc3 (lc3py {importlib.metadata.version('lc3py')})"
        except Exception:  # not installed: the condition is unavailable anyway
            return "liblc3 (missing)"
    if cond.codec == "mp3" and _lame_route():
        # the route that codes it, as the cache entry records it (the bytes equal libavcodec's libmp3lame's)
        from . import lame
        return f"{lame.version()} (system libmp3lame, in-process)"
    return f"libavcodec {libavcodec} {cond.spec.encoder}"


def library_versions() -> dict[str, str]:
    """Versions that change decoded samples; part of every cache key."""
    versions = {"pyav": av.__version__, "soxr": soxr.__version__, "roundtrip": str(ROUNDTRIP_VERSION)}
    versions.update({k: ".".join(map(str, v)) for k, v in av.library_versions.items() if k == "libavcodec"})
    return versions


# --------------------------------------------------------------------------- round trip

@dataclasses.dataclass
class Bitstream:
    """What an encoder produced, with everything needed to decode it again, and nothing more.

    This is what the cache stores for a coded clip (tens of kB instead of the decoded PCM):
    decoding is deterministic and cheap next to encoding, and :func:`decode` gives back exactly
    the samples :func:`encode_decode` returns.
    """

    condition: str
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
        meta = dataclasses.asdict(self)
        del meta["payload"]
        meta["config"] = self.config.hex()
        return meta

    @classmethod
    def from_header(cls, header: dict, payload: bytes) -> "Bitstream":
        fields = {f.name for f in dataclasses.fields(cls)}
        values = {k: v for k, v in header.items() if k in fields}
        return cls(**{**values, "config": bytes.fromhex(header["config"]), "payload": payload})


@dataclasses.dataclass
class RoundTrip:
    """A decoded signal and the facts of its coding."""

    signal: np.ndarray
    condition: str
    sample_rate: int
    encoded_bytes: int
    duration_s: float
    backend: str
    #: The rate the codec ran at (the signal is resampled to it and back when it differs).
    codec_sample_rate: int = 0

    @property
    def achieved_kbps(self) -> float:
        return self.encoded_bytes * 8 / self.duration_s / 1000 if self.duration_s else 0.0


MIN_RATE, MAX_RATE = 8000, 384000


class DecodeError(CodecError):
    """A bitstream that does not decode to what it was coded from; the message names the condition."""


class SignalError(CodecbenchError, ValueError):
    """A signal or sample rate that no codec round trip can take."""


def check_signal(signal: np.ndarray, sample_rate: int) -> np.ndarray:
    """Validate a mono signal; return it as contiguous float32."""
    x = np.asarray(signal)
    if x.ndim != 1:
        raise SignalError(f"expected a mono signal of shape (n,), got shape {x.shape}; downmix first")
    if x.size == 0:
        raise SignalError("the signal is empty (0 samples)")
    if not np.issubdtype(x.dtype, np.floating):
        raise SignalError(f"expected float samples in [-1, 1], got dtype {x.dtype}")
    if not np.all(np.isfinite(x)):
        raise SignalError(f"the signal has {int(np.sum(~np.isfinite(x)))} NaN/Inf samples")
    if not isinstance(sample_rate, (int, np.integer)) or not MIN_RATE <= int(sample_rate) <= MAX_RATE:
        raise SignalError(f"sample_rate must be an integer number of Hz in {MIN_RATE}-{MAX_RATE}, got {sample_rate!r}")
    return np.ascontiguousarray(x, dtype=np.float32)


def resample(signal: np.ndarray, orig_sr: int, target_sr: int) -> np.ndarray:
    """Band-limited, delay-compensated resampling (soxr, high quality)."""
    if orig_sr == target_sr:
        return signal
    return soxr.resample(signal, orig_sr, target_sr, quality="HQ").astype(np.float32)


def _fit_length(signal: np.ndarray, length: int) -> np.ndarray:
    if len(signal) >= length:
        return signal[:length]
    return np.concatenate([signal, np.zeros(length - len(signal), dtype=signal.dtype)])


def roundtrip(signal: np.ndarray, sample_rate: int, condition: str | Condition) -> np.ndarray:
    """Encode and decode ``signal`` under ``condition``; same rate, same length, time-aligned (±1 sample)."""
    return encode_decode(signal, sample_rate, condition).signal


def encode_decode(signal: np.ndarray, sample_rate: int, condition: str | Condition) -> RoundTrip:
    """Like :func:`roundtrip`, but also return the achieved bit rate and the backend used."""
    cond = parse_condition(condition)
    x = check_signal(signal, sample_rate)
    if cond.is_original:
        return RoundTrip(x.copy(), cond.name, sample_rate, len(x) * 2, len(x) / sample_rate, "uncoded", sample_rate)
    bitstream = encode(x, sample_rate, cond)
    return RoundTrip(decode(bitstream), cond.name, sample_rate, bitstream.encoded_bytes, bitstream.duration_s,
                     bitstream.backend, bitstream.codec_sample_rate)


def encode(signal: np.ndarray, sample_rate: int, condition: str | Condition) -> Bitstream:
    """Encode a mono signal under a coded condition; :func:`decode` turns the result into the round trip."""
    cond = parse_condition(condition)
    if cond.is_original:
        raise ConditionError("the original ('wav') is not coded; there is no bitstream")
    x = check_signal(signal, sample_rate)
    ok, backend = availability(cond)
    if not ok:
        raise CodecUnavailable(f"{cond.name} is unavailable on this machine: {backend}")
    codec_sr = codec_rate(cond, sample_rate)
    coded_in = resample(x, sample_rate, codec_sr)
    if backend == "pyav" and cond.codec == "mp3" and _lame_route():
        backend = "lame"  # the same bytes as libavcodec's libmp3lame (checked once per process), ~3x faster
    return _ENCODERS[backend](coded_in, codec_sr, cond, sample_rate, len(x))


def _lame_route() -> bool:
    from . import lame
    return lame.matches_libavcodec()


def _encode_lame(x: np.ndarray, codec_sr: int, cond: Condition, sr: int, n: int) -> Bitstream:
    from . import lame

    frames, priming = lame.encode(x, codec_sr, cond.kbps)
    return _bitstream(cond, "lame", f"pyav:{cond.spec.decoder}", sr, codec_sr, n, len(x), frames, b"", priming)


def decode(bitstream: Bitstream) -> np.ndarray:
    """The decoded, aligned signal: float32, at the input's rate and length."""
    b = bitstream
    if b.decoder == "fdk":
        from . import fdk
        decoded = fdk.decode(b.packets(), b.config)
    elif b.decoder == "lc3":
        decoded = _decode_lc3(b.packets(), b.codec_sample_rate)
    elif b.decoder == "container":
        decoded = _decode_container(b.payload)[0]
    else:
        decoded = _decode_packets(b.decoder.split(":", 1)[1], b.codec_sample_rate, b.config, b.packets(),
                                  parse_condition(b.condition))
    shortfall = b.coded_samples - (len(decoded) - b.skip)
    # decoders legitimately end up to ~5 ms short (MP2 4.8 ms, SBC 4.6 ms at 16 kHz, measured); 10 ms is less
    # than one lost frame of the frame-based codecs: more is a truncated bitstream, never padded silently
    if shortfall > b.codec_sample_rate // 100:
        raise DecodeError(f"{b.condition}: the bitstream decodes to {len(decoded) - b.skip} samples, "
                          f"{shortfall} fewer than the {b.coded_samples} it was coded from (truncated or damaged)")
    decoded = _fit_length(decoded[b.skip:], b.coded_samples)
    out = _fit_length(resample(decoded, b.codec_sample_rate, b.sample_rate), b.n_samples)
    return np.ascontiguousarray(out, dtype=np.float32)


def vorbis_quality(kbps: float) -> int:
    """The Vorbis encoder quality (``global_quality``) whose measured rate is nearest ``kbps``."""
    return min(CODECS["vorbis"].quality_table, key=lambda qr: (abs(qr[1] - kbps), qr[0]))[0]


def _encode_lc3(x: np.ndarray, codec_sr: int, cond: Condition, sr: int, n: int) -> Bitstream:
    """LC3 through Google's liblc3 (the ``lc3py`` wrapper): 10-ms frames of ``kbps * 10 / 8`` bytes."""
    import lc3

    encoder = lc3.Encoder(10000, codec_sr)
    frame = encoder.get_frame_samples()
    nbytes = encoder.get_frame_bytes(cond.bit_rate)
    padded = np.concatenate([x, np.zeros((-len(x)) % frame + frame, dtype=np.float32)])  # + one: the delay
    packets = [encoder.encode(padded[i:i + frame], nbytes) for i in range(0, len(padded), frame)]
    return _bitstream(cond, "lc3", "lc3", sr, codec_sr, n, len(x), packets, b"", encoder.get_delay_samples())


def _decode_lc3(packets: list[bytes], sr: int) -> np.ndarray:
    import lc3

    decoder = lc3.Decoder(10000, sr)
    return np.concatenate([np.frombuffer(decoder.decode(p), dtype=np.float32) for p in packets]) if packets else \
        np.zeros(0, dtype=np.float32)


def codec_rate(condition: str | Condition, sample_rate: int) -> int:
    """The rate a signal at ``sample_rate`` is coded at: its own if the codec takes it, else the nearest it takes."""
    spec = parse_condition(condition).spec
    if sample_rate in spec.sample_rates:
        return sample_rate
    if len(spec.sample_rates) == 1:
        return spec.sample_rates[0]
    return min(spec.sample_rates, key=lambda r: (abs(r - sample_rate), -r))


class CodecUnavailable(CodecbenchError, RuntimeError):
    """The condition's codec does not exist on this machine."""


def _to_frame_array(chunk: np.ndarray, sample_format: str, channels: int = 1) -> np.ndarray:
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


def _channel0(frame) -> np.ndarray:
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


def _decoded_to_float(frames: list[np.ndarray]) -> np.ndarray:
    """Channel 0 of decoded frames as float32 (libavcodec decodes implicit-SBR mono as two identical channels)."""
    if not frames:
        return np.zeros(0, dtype=np.float32)
    y = np.concatenate([f.reshape(f.shape[0], -1)[:1] if f.ndim == 2 else f[None] for f in frames], axis=1)[0]
    if y.dtype == np.int16:
        return y.astype(np.float32) / 32768.0
    if y.dtype == np.int32:
        return (y.astype(np.float64) / 2.0 ** 31).astype(np.float32)
    return y.astype(np.float32)


def _sbc_filter_delay(first_packet: bytes) -> int:
    """The SBC analysis+synthesis filterbank delay, 9 × subbands + 1, read from the frame header.

    libavcodec's SBC encoder reports no priming, but its polyphase filterbank delays the
    signal by 73 samples (8 subbands) or 37 (4 subbands); the subband count depends on the
    bit rate, so it is read from the first frame (syncword 0x9C, bit 0 of byte 1).
    """
    if len(first_packet) < 2 or first_packet[0] != 0x9C:
        raise CodecError("sbc: unexpected SBC frame header from the encoder")
    subbands = 8 if first_packet[1] & 0x01 else 4
    return 9 * subbands + 1


def _bitstream(cond: Condition, backend: str, decoder: str, sr: int, codec_sr: int, n: int, coded: int,
               packets: list[bytes], config: bytes, skip: int, encoded_bytes: int | None = None) -> Bitstream:
    return Bitstream(cond.name, backend, decoder, sr, codec_sr, n, coded, b"".join(packets), [len(p) for p in packets],
                     bytes(config or b""), int(skip),
                     sum(map(len, packets)) if encoded_bytes is None else encoded_bytes)


def _encode_pyav(x: np.ndarray, codec_sr: int, cond: Condition, sr: int, n: int) -> Bitstream:
    spec = cond.spec
    encoder = av.CodecContext.create(spec.encoder, "w")
    encoder.sample_rate = codec_sr
    layout = "mono" if spec.channels == 1 else "stereo"
    encoder.layout = layout
    encoder.format = spec.sample_format
    if spec.quality_table:  # a quality-driven (VBR) encoder: the nominal rate picks the quality
        encoder.qscale = True
        encoder.global_quality = vorbis_quality(cond.kbps)
    elif spec.fixed_kbps is None:
        encoder.bit_rate = cond.bit_rate
    encoder.thread_count = 1  # one thread: bit-identical output, parallelism lives above us
    if cond.codec == "he-aac":
        encoder.profile = "HE-AAC"
    if encoder.codec.experimental:  # (FFmpeg's native Vorbis) opens only when asked for explicitly
        encoder.options = {"strict": "experimental"}
    encoder.open()
    frame_size = encoder.frame_size or 1024
    lead_in = -spec.delay if spec.delay is not None and spec.delay < 0 else 0
    # Fixed-frame encoders need whole frames: pad the tail with silence. The signal goes in as
    # one frame, which PyAV cuts into codec frames in C (per-frame Python calls cost more than
    # the SBC encoder itself).
    padded = np.concatenate([np.zeros(lead_in, dtype=np.float32), x,
                             np.zeros((-(len(x) + lead_in)) % frame_size, dtype=np.float32)])
    frame = av.AudioFrame.from_ndarray(_to_frame_array(padded, spec.sample_format, spec.channels),
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
    if cond.codec == "sbc":
        priming += _sbc_filter_delay(bytes(first))
    return _bitstream(cond, "pyav", f"pyav:{spec.decoder}", sr, codec_sr, n, len(x), [bytes(p) for p in packets],
                      encoder.extradata or b"", priming)


def _decoder_setup(cond: Condition, first_packet: bytes) -> dict:
    """What a decoder needs besides the extradata: G.726 its code size, WMA its block size and bit rate."""
    if cond.codec == "g726":
        return {"options": {"bits_per_coded_sample": str(int(round(cond.kbps / 8)))}}
    if cond.codec == "wma":
        return {"options": {"block_align": str(len(first_packet))}, "bit_rate": cond.bit_rate}
    return {}


def _decode_packets(decoder_name: str, sr: int, config: bytes, packets: list[bytes],
                    cond: Condition | None = None) -> np.ndarray:
    decoder = av.CodecContext.create(decoder_name, "r")
    decoder.sample_rate = sr
    decoder.layout = "mono" if cond is None or cond.spec.channels == 1 else "stereo"
    if config:
        decoder.extradata = config
    setup = _decoder_setup(cond, packets[0]) if cond is not None and packets else {}
    if "options" in setup:
        decoder.options = setup["options"]
    if "bit_rate" in setup:
        decoder.bit_rate = setup["bit_rate"]
    frames = []
    for packet in [*packets, None]:
        frames.extend(_channel0(f) for f in decoder.decode(None if packet is None else av.Packet(packet)))
    return _decoded_to_float(frames)


def check_rate(condition: str | Condition, sample_rate: int) -> None:
    """Refuse, before any work, a condition its codec cannot code at the rate it would run at for input of
    ``sample_rate`` (libfdk-aac's bit-rate ranges depend on the rate: he-aac@8 codes nothing at 44.1 kHz)."""
    cond = parse_condition(condition)
    if cond.is_original or cond.codec not in FDK_CODECS or not availability(cond)[0]:
        return
    from . import fdk

    codec_sr = codec_rate(cond, sample_rate)
    bounds = fdk.valid_kbps(cond.codec, codec_sr)
    if bounds is None or not bounds[0] <= cond.kbps <= bounds[1]:
        valid = f"the valid range is {bounds[0]}-{bounds[1]} kbps" if bounds else "libfdk-aac codes none"
        raise ConditionError(f"{cond.name}: for mono input at {codec_sr} Hz {valid}")


def _encode_fdk(x: np.ndarray, codec_sr: int, cond: Condition, sr: int, n: int) -> Bitstream:
    from . import fdk

    check_rate(cond, codec_sr)
    units, config, delay = fdk.encode(x, codec_sr, cond.codec, cond.kbps)
    if cond.codec == "he-aac":
        # libavcodec implements SBR; its SBR synthesis runs one sample shorter than the delay libfdk-aac
        # reports for its own decoder (measured by cross-correlation at 16-48 kHz and 16-48 kbps: always -1)
        return _bitstream(cond, "fdk", "pyav:aac", sr, codec_sr, n, len(x), units, config, delay - 1)
    # libavcodec decodes neither 512-sample AAC-LD frames nor ELD with SBR: libfdk-aac's own decoder does
    return _bitstream(cond, "fdk", "fdk", sr, codec_sr, n, len(x), units, config, delay)


def _decode_container(payload: bytes) -> tuple[np.ndarray, int]:
    """Decode a coded file (the demuxer applies edit-list priming); return samples and audio payload bytes."""
    import io

    with av.open(io.BytesIO(payload)) as container:
        stream = container.streams.audio[0]
        frames, nbytes = [], 0
        for packet in container.demux(stream):
            nbytes += packet.size
            frames.extend(_channel0(f) for f in packet.decode())
    return _decoded_to_float(frames), nbytes


def _encode_external(x: np.ndarray, codec_sr: int, cond: Condition, sr: int, n: int, tool: str) -> Bitstream:
    import soundfile as sf

    with tempfile.TemporaryDirectory(prefix="codecbench-") as tmp:
        src, dst = os.path.join(tmp, "in.wav"), os.path.join(tmp, "out.m4a")
        sf.write(src, x, codec_sr, subtype="PCM_16")
        if tool == "ffmpeg":
            cmd = [shutil.which("ffmpeg") or "ffmpeg", "-nostdin", "-hide_banner", "-loglevel", "error", "-y",
                   "-i", src, "-c:a", "libfdk_aac", "-profile:a", "aac_he", "-b:a", f"{cond.kbps}k", dst]
        else:  # fdkaac: profile 5 = HE-AAC v1; -G 1 writes ISO edit lists so the demuxer trims priming
            cmd = [shutil.which("fdkaac") or "fdkaac", "-S", "-p", "5", "-b", str(cond.kbps * 1000), "-G", "1",
                   "-o", dst, src]
        proc = subprocess.run(cmd, capture_output=True, text=True)
        if proc.returncode != 0:
            raise CodecError(f"{cond.name}: {tool} failed ({proc.returncode}): {proc.stderr.strip()[-500:]}")
        payload = open(dst, "rb").read()
    _, nbytes = _decode_container(payload)
    return _bitstream(cond, tool, "container", sr, codec_sr, n, len(x), [payload], b"", 0, nbytes)


_ENCODERS: dict[str, Callable[..., Bitstream]] = {
    "pyav": _encode_pyav,
    "lame": _encode_lame,
    "lc3": _encode_lc3,
    "fdk": _encode_fdk,
    "ffmpeg": lambda *a: _encode_external(*a, tool="ffmpeg"),
    "fdkaac": lambda *a: _encode_external(*a, tool="fdkaac"),
}
