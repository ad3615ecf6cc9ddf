"""Fraunhofer libfdk-aac in-process, through ctypes: HE-AAC v1, AAC-LD and AAC-ELD round trips.

The shared library is found with ``ctypes.util.find_library("fdk-aac")`` or named by
``$CODECBENCH_FDK_AAC`` (a path to ``libfdk-aac.so.2``). The encoder writes raw access units
(transport ``TT_MP4_RAW``) and an AudioSpecificConfig; HE-AAC is decoded by libavcodec's native
AAC decoder (PyAV), which implements SBR, and AAC-LD/ELD by the library's own decoder, because
libavcodec cannot decode 512-sample LD frames nor ELD with SBR. The delay the encoder reports
(``nDelay``, codec delay in samples) is removed, which aligns the output to its input within one
sample (tested by cross-correlation).

Speed: the buffer descriptors are built once per round trip and a pointer advances through the
signal, so the Python overhead per frame is a handful of attribute writes and one foreign call.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import functools
import os

import numpy as np

from codecbench.codecs.backend import Backend, register
from codecbench.codecs.bitstream import Bitstream, pack
from codecbench.codecs.table import CodecSpec, Condition
from codecbench.errors import CodecError

#: Audio object types (MPEG-4) of the conditions this backend codes.
AOT = {"he-aac": 5, "aac-ld": 23, "aac-eld": 39}
#: Upper bit rates codecbench offers per codec (kbps, mono), below the library's own ceiling:
#: above ~64 kbps mono HE-AAC is pointless (AAC-LC is used there); LD/ELD reach transparency near 256.
RATE_CAP = {"he-aac": 64, "aac-ld": 256, "aac-eld": 256}

_SET = {"aot": 0x0100, "bitrate": 0x0101, "samplerate": 0x0103, "channelmode": 0x0106, "afterburner": 0x0200,
        "transmux": 0x0300, "signaling": 0x0302}
_TT_MP4_RAW = 0
_SIGNALING_EXPLICIT_HIERARCHICAL = 2
_IN_AUDIO_DATA, _OUT_BITSTREAM_DATA = 0, 3
_ENCODE_EOF = 0x0080
_DEC_NOT_ENOUGH_BITS = 0x1002
_FDK_AACENC_MODULE, _FDK_MODULE_LAST = 4, 39

ENCODER_ERRORS = {
    0x0020: "invalid handle", 0x0021: "memory allocation failed", 0x0022: "unsupported parameter",
    0x0023: "invalid configuration (this object type, sample rate and bit rate do not go together)",
    0x0040: "initialisation error", 0x0041: "AAC core initialisation failed (unsupported sample rate or bit rate)",
    0x0042: "SBR initialisation failed (HE-AAC needs 16-48 kHz input and a bit rate its SBR tables cover)",
    0x0043: "transport initialisation failed", 0x0044: "metadata initialisation failed",
    0x0045: "MPS initialisation failed", 0x0060: "encoding failed",
}


class FdkError(CodecError):
    """libfdk-aac reported an error; the message says which call and what the code means."""


class _Info(ctypes.Structure):
    _fields_ = [("maxOutBufBytes", ctypes.c_uint), ("maxAncBytes", ctypes.c_uint),
                ("inBufFillLevel", ctypes.c_uint), ("inputChannels", ctypes.c_uint),
                ("frameLength", ctypes.c_uint), ("nDelay", ctypes.c_uint), ("nDelayCore", ctypes.c_uint),
                ("confBuf", ctypes.c_ubyte * 64), ("confSize", ctypes.c_uint)]


class _BufDesc(ctypes.Structure):
    _fields_ = [("numBufs", ctypes.c_int), ("bufs", ctypes.POINTER(ctypes.c_void_p)),
                ("bufferIdentifiers", ctypes.POINTER(ctypes.c_int)), ("bufSizes", ctypes.POINTER(ctypes.c_int)),
                ("bufElSizes", ctypes.POINTER(ctypes.c_int))]


class _InArgs(ctypes.Structure):
    _fields_ = [("numInSamples", ctypes.c_int), ("numAncBytes", ctypes.c_int)]


class _OutArgs(ctypes.Structure):
    _fields_ = [("numOutBytes", ctypes.c_int), ("numInSamples", ctypes.c_int), ("numAncBytes", ctypes.c_int),
                ("bitResState", ctypes.c_int)]


class _LibInfo(ctypes.Structure):
    _fields_ = [("title", ctypes.c_char_p), ("build_date", ctypes.c_char_p), ("build_time", ctypes.c_char_p),
                ("module_id", ctypes.c_int), ("version", ctypes.c_int), ("flags", ctypes.c_uint),
                ("versionStr", ctypes.c_char * 32)]


_HANDLE = ctypes.c_void_p


@functools.lru_cache(maxsize=1)
def library() -> tuple[ctypes.CDLL | None, str]:
    """``(library, where)`` or ``(None, why not)``."""
    path = os.environ.get("CODECBENCH_FDK_AAC") or ctypes.util.find_library("fdk-aac")
    if not path:
        return None, "libfdk-aac (libfdk-aac.so.2) not found"
    try:
        lib = ctypes.CDLL(path)
    except OSError as exc:
        return None, f"cannot load {path} ({exc})"
    try:
        lib.aacEncOpen.argtypes = [ctypes.POINTER(_HANDLE), ctypes.c_uint, ctypes.c_uint]
        lib.aacEncoder_SetParam.argtypes = [_HANDLE, ctypes.c_int, ctypes.c_uint]
        lib.aacEncoder_GetParam.argtypes = [_HANDLE, ctypes.c_int]
        lib.aacEncoder_GetParam.restype = ctypes.c_uint
        lib.aacEncEncode.argtypes = [_HANDLE, ctypes.POINTER(_BufDesc), ctypes.POINTER(_BufDesc),
                                     ctypes.POINTER(_InArgs), ctypes.POINTER(_OutArgs)]
        lib.aacEncInfo.argtypes = [_HANDLE, ctypes.POINTER(_Info)]
        lib.aacEncClose.argtypes = [ctypes.POINTER(_HANDLE)]
        lib.aacEncGetLibInfo.argtypes = [ctypes.POINTER(_LibInfo)]
        lib.aacDecoder_Open.argtypes = [ctypes.c_int, ctypes.c_uint]
        lib.aacDecoder_Open.restype = ctypes.c_void_p
        lib.aacDecoder_ConfigRaw.argtypes = [ctypes.c_void_p, ctypes.POINTER(ctypes.c_void_p),
                                             ctypes.POINTER(ctypes.c_uint)]
        lib.aacDecoder_Fill.argtypes = [ctypes.c_void_p, ctypes.POINTER(ctypes.c_void_p),
                                        ctypes.POINTER(ctypes.c_uint), ctypes.POINTER(ctypes.c_uint)]
        lib.aacDecoder_DecodeFrame.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int, ctypes.c_uint]
        # CStreamInfo begins with three INTs: sampleRate, frameSize, numChannels
        lib.aacDecoder_GetStreamInfo.argtypes = [ctypes.c_void_p]
        lib.aacDecoder_GetStreamInfo.restype = ctypes.POINTER(ctypes.c_int * 3)
        lib.aacDecoder_Close.argtypes = [ctypes.c_void_p]
    except AttributeError as exc:
        return None, f"{path} lacks the libfdk-aac API ({exc})"
    return lib, path


@functools.lru_cache(maxsize=1)
def version() -> str:
    """``"libfdk-aac AACENC 4.0.1"``, from ``aacEncGetLibInfo``."""
    lib, why = library()
    if lib is None:
        return f"libfdk-aac (missing: {why})"
    infos = (_LibInfo * _FDK_MODULE_LAST)()
    lib.aacEncGetLibInfo(infos)
    for info in infos:
        if info.module_id == _FDK_AACENC_MODULE:
            return f"libfdk-aac AACENC {info.versionStr.decode()}"
    return "libfdk-aac (version unknown)"


def _check(code: int, call: str) -> None:
    if code:
        raise FdkError(f"libfdk-aac {call}: error 0x{code:04x}, {ENCODER_ERRORS.get(code, 'unknown error')}")


class _Encoder:
    """One configured encoder handle (closed on exit)."""

    def __init__(self, codec: str, sample_rate: int, bits_per_s: int):
        lib, why = library()
        if lib is None:
            raise FdkError(why)
        self.lib: ctypes.CDLL = lib
        self.handle = _HANDLE()
        _check(self.lib.aacEncOpen(ctypes.byref(self.handle), 0, 1), "aacEncOpen")
        params = {"aot": AOT[codec], "samplerate": sample_rate, "channelmode": 1, "bitrate": bits_per_s,
                  "transmux": _TT_MP4_RAW, "afterburner": 1}
        if codec == "he-aac":  # the AudioSpecificConfig names SBR, so decoders output the full rate
            params["signaling"] = _SIGNALING_EXPLICIT_HIERARCHICAL
        try:
            for name, value in params.items():
                _check(self.lib.aacEncoder_SetParam(self.handle, _SET[name], value), f"aacEncoder_SetParam({name})")
            _check(self.lib.aacEncEncode(self.handle, None, None, None, None), "initialisation")
        except BaseException:
            self.close()
            raise

    @property
    def bitrate(self) -> int:
        return int(self.lib.aacEncoder_GetParam(self.handle, _SET["bitrate"]))

    def info(self) -> _Info:
        info = _Info()
        _check(self.lib.aacEncInfo(self.handle, ctypes.byref(info)), "aacEncInfo")
        return info

    def close(self) -> None:
        if self.handle:
            self.lib.aacEncClose(ctypes.byref(self.handle))
            self.handle = _HANDLE()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


@functools.lru_cache(maxsize=None)
def valid_kbps(codec: str, sample_rate: int) -> tuple[int, int] | None:
    """The bit rates (kbps, mono) the library takes unchanged at ``sample_rate``, capped by :data:`RATE_CAP`.

    Asked of the library itself: it clamps a requested rate into its tables, so the lowest and
    highest rates it reports back after initialisation bound the valid range. None: the library
    does not code this object type at this rate at all.
    """
    bounds = []
    for request in (1000, 10_000_000):
        try:
            with _Encoder(codec, sample_rate, request) as enc:
                bounds.append(enc.bitrate)
        except FdkError:
            return None
    low, high = -(-bounds[0] // 1000), bounds[1] // 1000
    high = min(high, RATE_CAP[codec])
    return (low, high) if low <= high else None


def encode(x: np.ndarray, sample_rate: int, codec: str, kbps: float) -> tuple[list[bytes], bytes, int]:
    """Encode mono float32 ``x``; return the raw access units, the AudioSpecificConfig and the codec delay."""
    bounds = valid_kbps(codec, sample_rate)
    if bounds is None:
        raise FdkError(f"{codec}: libfdk-aac does not code mono audio at {sample_rate} Hz")
    if not bounds[0] <= kbps <= bounds[1]:
        raise FdkError(f"{codec}@{kbps}: at {sample_rate} Hz mono the valid range is {bounds[0]}-{bounds[1]} kbps")
    pcm = np.ascontiguousarray(np.round(np.clip(x, -1.0, 1.0) * 32767.0), dtype=np.int16)
    with _Encoder(codec, sample_rate, int(round(kbps * 1000))) as enc:
        info = enc.info()
        lib, handle = enc.lib, enc.handle
        out = ctypes.create_string_buffer(info.maxOutBufBytes)
        in_ptr = (ctypes.c_void_p * 1)()
        in_size = (ctypes.c_int * 1)()
        in_desc = _BufDesc(1, in_ptr, (ctypes.c_int * 1)(_IN_AUDIO_DATA), in_size, (ctypes.c_int * 1)(2))
        out_desc = _BufDesc(1, (ctypes.c_void_p * 1)(ctypes.cast(out, ctypes.c_void_p)),
                            (ctypes.c_int * 1)(_OUT_BITSTREAM_DATA), (ctypes.c_int * 1)(info.maxOutBufBytes),
                            (ctypes.c_int * 1)(1))
        in_args, out_args = _InArgs(), _OutArgs()
        refs = [ctypes.byref(in_desc), ctypes.byref(out_desc), ctypes.byref(in_args), ctypes.byref(out_args)]
        base, pos, n = pcm.ctypes.data, 0, len(pcm)
        units: list[bytes] = []
        while True:
            left = n - pos
            in_ptr[0] = base + 2 * pos
            in_size[0] = 2 * left
            in_args.numInSamples = left if left > 0 else -1  # -1: flush the delay line
            code = lib.aacEncEncode(handle, *refs)
            if code == _ENCODE_EOF:
                break
            _check(code, "aacEncEncode")
            pos += out_args.numInSamples
            if out_args.numOutBytes:
                units.append(out.raw[:out_args.numOutBytes])
        return units, bytes(info.confBuf[:info.confSize]), int(info.nDelay)


#: aacDecoder_DecodeFrame's flag for a lost frame: its concealment makes a substitute (no input is read)
_AACDEC_CONCEAL = 1


def decode(units: list[bytes], config: bytes, lost: frozenset[int] = frozenset()) -> np.ndarray:
    """Decode raw access units with libfdk-aac's own decoder; mono float32 (channel 0). The units at the indices
    ``lost`` are not given to it: its concealment makes a frame in their place (faded repetition, then silence)."""
    lib, why = library()
    if lib is None:
        raise FdkError(why)
    handle = lib.aacDecoder_Open(_TT_MP4_RAW, 1)
    if not handle:
        raise FdkError("libfdk-aac aacDecoder_Open failed")
    try:
        conf = ctypes.create_string_buffer(config, len(config))
        _check(lib.aacDecoder_ConfigRaw(handle, (ctypes.c_void_p * 1)(ctypes.cast(conf, ctypes.c_void_p)),
                                        (ctypes.c_uint * 1)(len(config))), "aacDecoder_ConfigRaw")
        pcm = np.zeros(8 * 2048, dtype=np.int16)
        ptr, size, valid = (ctypes.c_void_p * 1)(), (ctypes.c_uint * 1)(), ctypes.c_uint()
        frames: list[np.ndarray] = []
        for i, unit in enumerate(units):
            if i in lost:
                if not frames:  # nothing decoded yet: no frame length to conceal with; a frame of silence
                    continue
                code = lib.aacDecoder_DecodeFrame(handle, pcm.ctypes.data, len(pcm), _AACDEC_CONCEAL)
                _check(code, "aacDecoder_DecodeFrame (concealment)")
                _, frame_size, channels = lib.aacDecoder_GetStreamInfo(handle).contents
                frames.append(pcm[:frame_size * channels].reshape(frame_size, channels)[:, 0].copy())
                continue
            buf = ctypes.create_string_buffer(unit, len(unit))
            ptr[0], size[0], valid.value = ctypes.cast(buf, ctypes.c_void_p), len(unit), len(unit)
            _check(lib.aacDecoder_Fill(handle, ptr, size, ctypes.byref(valid)), "aacDecoder_Fill")
            code = lib.aacDecoder_DecodeFrame(handle, pcm.ctypes.data, len(pcm), 0)
            if code == _DEC_NOT_ENOUGH_BITS:
                continue
            _check(code, "aacDecoder_DecodeFrame")
            _, frame_size, channels = lib.aacDecoder_GetStreamInfo(handle).contents
            frames.append(pcm[:frame_size * channels].reshape(frame_size, channels)[:, 0].copy())
    finally:
        lib.aacDecoder_Close(handle)
    if not frames:
        return np.zeros(0, dtype=np.float32)
    return np.concatenate(frames).astype(np.float32) / 32768.0


#: How to install libfdk-aac, for every message that says it is missing.
FDK_HINT = ("Fraunhofer libfdk-aac is not installed. Debian: add the non-free component to the apt source and "
            "`apt-get install libfdk-aac2`; Ubuntu: enable multiverse and `apt-get install libfdk-aac2`; macOS: "
            "`brew install fdk-aac`; elsewhere set CODECBENCH_FDK_AAC=/path/to/libfdk-aac.so.2")


class FdkBackend(Backend):
    """libfdk-aac in-process: HE-AAC v1, AAC-LD and AAC-ELD."""

    name = "fdk"
    decoders = ("fdk",)

    def unavailable(self, spec: CodecSpec) -> str | None:
        return None if library()[0] is not None else f"libfdk_aac not found for {spec.name}. {FDK_HINT}"

    def library(self, spec: CodecSpec) -> str:
        return f"{version()} (in-process)"

    def rule_concealable(self, spec: CodecSpec) -> bool:
        return spec.decoder == "aac"  # HE-AAC: libavcodec decodes what libfdk-aac codes

    def rate_problem(self, cond: Condition, codec_sr: int) -> str | None:
        bounds = valid_kbps(cond.codec, codec_sr)
        if bounds is not None and bounds[0] <= cond.kbps <= bounds[1]:
            return None
        valid = f"the valid range is {bounds[0]}-{bounds[1]} kbps" if bounds else "libfdk-aac codes none"
        return f"{cond.name}: for mono input at {codec_sr} Hz {valid}"

    def encode(self, x: np.ndarray, codec_sr: int, cond: Condition, sample_rate: int, n: int) -> Bitstream:
        units, config, delay = encode(x, codec_sr, cond.codec, cond.kbps)
        if cond.spec.decoder == "aac":
            # libavcodec implements SBR; its SBR synthesis runs one sample shorter than the delay libfdk-aac
            # reports for its own decoder (measured by cross-correlation at 16-48 kHz and 16-48 kbps: always -1)
            return pack(cond, "fdk", "pyav:aac", sample_rate, codec_sr, n, len(x), units, config, delay - 1)
        # libavcodec decodes neither 512-sample AAC-LD frames nor ELD with SBR: libfdk-aac's own decoder does
        return pack(cond, "fdk", "fdk", sample_rate, codec_sr, n, len(x), units, config, delay)

    def decode(self, bitstream: Bitstream) -> np.ndarray:
        return decode(bitstream.packets(), bitstream.config)


register(FdkBackend())
