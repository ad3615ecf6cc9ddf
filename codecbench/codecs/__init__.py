"""Codec round trips: encode and decode a mono signal under a condition, time-aligned to its input.

This package owns the condition vocabulary and the codec table (:mod:`.table`), what a coded clip is
(:mod:`.bitstream`), and the backends that code (:mod:`.backend`, one file each: :mod:`.pyav`
for libavcodec, :mod:`.fdk` for Fraunhofer libfdk-aac, :mod:`.lame`, :mod:`.liblc3`, :mod:`.neural` for
EnCodec and DAC, :mod:`.external` for command-line encoders). The functions here are its public face; they
accept a condition's name or a :class:`Condition`. A codec no backend can code here is *unavailable*, never
silently replaced.
"""
from __future__ import annotations

import functools

import numpy as np
import soxr

from codecbench.codecs import conceal, external, fdk, lame, liblc3, neural, pyav  # noqa: F401  (each registers its backends)
from codecbench.codecs.backend import BACKENDS, Backend, for_decoder
from codecbench.codecs.bitstream import Bitstream, CodecUnavailable, DecodeError, RoundTrip
from codecbench.codecs.fdk import FDK_HINT
from codecbench.codecs.loss import Loss, lost_packets
from codecbench.codecs.table import CODECS, ORIGINAL, CodecSpec, Condition, ConditionError, codec_rate, parse_condition
from codecbench.core.dsp import SignalError, check_signal, fit_length, resample
from codecbench.core.parallel import stop_local_workers
from codecbench.errors import CodecError

__all__ = [
    "BACKENDS", "CODECS", "FDK_HINT", "ORIGINAL", "ROUNDTRIP_VERSION", "Backend", "Bitstream", "CodecSpec",
    "CodecUnavailable", "Condition", "ConditionError", "DecodeError", "Loss", "RoundTrip", "SignalError",
    "availability",
    "check_rate", "check_signal", "codec_library", "codec_rate", "decode", "encode", "encode_decode",
    "forget_availability", "library_versions", "parse_condition", "resample", "roundtrip",
]

#: Bumped whenever a change here alters decoded samples, so cached entries are recomputed.
ROUNDTRIP_VERSION = 2


@functools.lru_cache(maxsize=None)
def _route(cond: Condition) -> tuple[Backend | None, str]:
    """The backend that codes ``cond`` here, or None and the preferred backend's reason; asked once per process."""
    reasons = []
    for name in cond.spec.backends:
        backend = BACKENDS[name]
        why = backend.unavailable(cond.spec)
        if why is None:
            return backend, name
        reasons.append(why)
    return None, reasons[0]


def forget_availability() -> None:
    """Probe the libraries again on the next question (after an install, or a changed ``CODECBENCH_*`` setting),
    here and in the local worker processes: those are stopped, since they kept their own answers and the environment
    they started with; the next parallel map starts them afresh."""
    for probe in (_route, fdk.library, fdk.version, lame.library, lame.matches_libavcodec,
                  external.ffmpeg_has_encoder):
        probe.cache_clear()
    neural.forget()
    stop_local_workers()  # where joblib was never loaded, no worker can exist: nothing is imported or stopped


def availability(condition: str | Condition) -> tuple[bool, str]:
    """Whether a condition can be coded here (every codec of a chain, and the concealment of a loss).

    Parameters
    ----------
    condition : str or Condition
        ``"mp3@32"``, ``"wav"``, or a parsed :class:`Condition`.

    Returns
    -------
    (bool, str)
        ``(True, backend name)`` if it can, else ``(False, reason with an install hint)``.
    """
    return _can_code(parse_condition(condition))


def _can_code(cond: Condition) -> tuple[bool, str]:
    """:func:`availability` of a parsed condition: the routes of its codecs (found once per process) and the
    concealment of its loss."""
    if cond.is_original:
        return True, "uncoded"
    routes = []
    last: Backend | None = None
    for stage in cond.stages:
        last, what = _route(stage)
        if last is None:
            return False, what if cond.is_plain else f"{stage.name}: {what}"
        routes.append(what)
    if cond.loss is not None:
        if cond.loss.conceal == "codec":
            why = conceal.unavailable(cond.spec.concealment)
            if why:
                return False, why
        elif last is None or not last.rule_concealable(cond.spec):
            return False, (f"{cond.name}: +{cond.loss.conceal} conceals frames of a libavcodec decoder; {cond.codec} "
                           f"is decoded by the {routes[-1]} backend here")
    if cond.loss is not None:
        routes[-1] += f"+{cond.spec.concealment if cond.loss.conceal == 'codec' else cond.loss.conceal}"
    return True, ">".join(routes)


def codec_library(condition: str | Condition) -> str:
    """The library, version and route that code a condition; part of its cache key and of run metadata."""
    cond = parse_condition(condition)
    if cond.is_original:
        return "-"
    libraries = []
    for stage in cond.stages:
        backend, _ = _route(stage)
        if backend is None and stage.spec.backends[0] == "neural":  # names the weights it misses
            backend = BACKENDS["neural"]
        libraries.append(backend.library(stage.spec) if backend is not None else
                         {"fdk": "libfdk-aac (missing)", "lc3": "liblc3 (missing)"}.get(stage.spec.backends[0],
                                                                                         "missing"))
    if cond.loss is not None:
        libraries.append(conceal.library(cond.spec.concealment if cond.loss.conceal == "codec" else
                                         cond.loss.conceal))
    return " > ".join(libraries)


def library_versions() -> dict[str, str]:
    """Versions that change decoded samples; part of every cache key."""
    import av  # PyAV: loaded where a codec's version is asked, so conditions stay cheap to import

    versions = {"pyav": av.__version__, "soxr": soxr.__version__, "roundtrip": str(ROUNDTRIP_VERSION)}
    versions.update({k: ".".join(map(str, v)) for k, v in av.library_versions.items() if k == "libavcodec"})
    return versions


def check_rate(condition: str | Condition, sample_rate: int) -> None:
    """Refuse, before any work, a bit rate its codec cannot code at the rate it would run at for input of
    ``sample_rate`` (libfdk-aac's ranges depend on the rate: he-aac@8 codes nothing at 44.1 kHz).

    Raises
    ------
    ConditionError
        Naming the condition, the codec rate and the valid range.
    """
    cond = parse_condition(condition)
    if cond.is_original:
        return
    if not cond.is_plain:  # each codec of a chain is fed the signal at its source rate
        for stage in cond.stages:
            check_rate(stage, sample_rate)
        return
    codec_sr = codec_rate(cond, sample_rate)
    if cond.spec.max_kbps_by_rate and cond.kbps > cond.spec.max_kbps_at(codec_sr):
        raise ConditionError(f"{cond.name}: {cond.spec.description} codes at most {cond.spec.max_kbps_at(codec_sr):g} "
                             f"kbps at {codec_sr} Hz (the rate {sample_rate}-Hz input is coded at)")
    backend, _ = _route(cond)
    if backend is None:
        return
    problem = backend.rate_problem(cond, codec_sr)
    if problem:
        raise ConditionError(problem)


def roundtrip(signal: np.ndarray, sample_rate: int, condition: str | Condition) -> np.ndarray:
    """Encode and decode a signal under a condition.

    Parameters
    ----------
    signal : np.ndarray
        Mono float samples in [-1, 1], shape ``(n,)``.
    sample_rate : int
        Its rate in Hz; the codec runs at this rate if it takes it, else at the nearest it does.
    condition : str or Condition
        ``"mp3@32"``, ``"he-aac@16"``, ``"wav"``, ...

    Returns
    -------
    np.ndarray
        float32, same rate and length, time-aligned to the input within one sample.

    Raises
    ------
    ConditionError, SignalError, CodecUnavailable, CodecError
    """
    return encode_decode(signal, sample_rate, condition).signal


def encode_decode(signal: np.ndarray, sample_rate: int, condition: str | Condition) -> RoundTrip:
    """Like :func:`roundtrip`, but also return the achieved bit rate and the backend used."""
    cond = parse_condition(condition)
    x = check_signal(signal, sample_rate)
    if cond.is_original:
        return RoundTrip(x.copy(), cond, sample_rate, len(x) * 2, len(x) / sample_rate, "uncoded", sample_rate)
    bitstream = encode(x, sample_rate, cond)
    return RoundTrip(decode(bitstream), cond, sample_rate, bitstream.encoded_bytes, bitstream.duration_s,
                     bitstream.backend, bitstream.codec_sample_rate)


def encode(signal: np.ndarray, sample_rate: int, condition: str | Condition) -> Bitstream:
    """Encode a mono signal under a coded condition.

    Parameters
    ----------
    signal : np.ndarray
        Mono float samples, shape ``(n,)``.
    sample_rate : int
        Its rate in Hz.
    condition : str or Condition
        A coded condition (not ``"wav"``).

    Returns
    -------
    Bitstream
        What the encoder produced; :func:`decode` turns it into the aligned round trip. This is what the
        cache stores.
    """
    cond = parse_condition(condition)
    if cond.is_original:
        raise ConditionError("the original ('wav') is not coded; there is no bitstream")
    source = check_signal(signal, sample_rate)
    ok, why = _can_code(cond)
    if not ok:
        raise CodecUnavailable(f"{cond.name} is unavailable on this machine: {why}")
    check_rate(cond, sample_rate)
    x = source
    for stage in cond.before:  # a chain: each earlier codec coded and decoded, aligned, at the source rate
        x = decode(encode(x, sample_rate, stage))
    backend, _ = _route(cond.stages[-1])
    assert backend is not None  # availability said so
    codec_sr = codec_rate(cond, sample_rate)
    bitstream = backend.encode(resample(x, sample_rate, codec_sr), codec_sr, cond, sample_rate, len(x))
    if cond.loss is not None:
        if bitstream.decoder == "container":
            raise CodecError(f"{cond.name}: packet loss is modelled on packet bitstreams; the {bitstream.backend} "
                             "backend produced a coded file")
        bitstream.lost = lost_packets(cond.loss, len(bitstream.sizes), source.tobytes())
    return bitstream


def decode(bitstream: Bitstream) -> np.ndarray:
    """Decode a :class:`Bitstream` to the aligned signal: float32, at the input's rate and length.

    Raises
    ------
    DecodeError
        When the bitstream decodes to clearly fewer samples than it was coded from (truncated or damaged).
    """
    b = bitstream
    decoded = conceal.decode_with_loss(b) if b.lost else for_decoder(b.decoder).decode(b)
    shortfall = b.coded_samples - (len(decoded) - b.skip)
    # decoders legitimately end up to ~5 ms short (MP2 4.8 ms, SBC 4.6 ms at 16 kHz, measured); 10 ms is less
    # than one lost frame of the frame-based codecs: more is a truncated bitstream, never padded silently
    if shortfall > b.codec_sample_rate // 100:
        raise DecodeError(f"{b.condition}: the bitstream decodes to {len(decoded) - b.skip} samples, "
                          f"{shortfall} fewer than the {b.coded_samples} it was coded from (truncated or damaged)")
    decoded = fit_length(decoded[b.skip:], b.coded_samples)
    out = fit_length(resample(decoded, b.codec_sample_rate, b.sample_rate), b.n_samples)
    return np.ascontiguousarray(out, dtype=np.float32)
