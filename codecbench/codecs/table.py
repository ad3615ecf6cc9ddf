"""The codec table and the condition vocabulary: what codecbench knows of every codec, as data.

A :class:`Condition` names a codec at a nominal bit rate (``mp3@32``) or the uncoded original (``wav``);
:func:`parse_condition` is how text becomes one, at the edges (command line, TOML, the Python API).
Per-codec behaviour (rates, delays, channels, decoder options, which backends code it) lives in
:data:`CODECS`, so adding a codec is a row here and at most one backend file.
"""
from __future__ import annotations

import dataclasses
import functools
import re
from typing import Callable

from codecbench.codecs.loss import Loss, LossError, canonical_number, parse_loss
from codecbench.errors import CodecError, UsageError


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


@dataclasses.dataclass(frozen=True)
class CodecSpec:
    """What codecbench needs to know of one codec."""

    name: str
    description: str
    encoder: str
    decoder: str
    min_kbps: float
    max_kbps: float
    sample_format: str
    #: Rates the encoder accepts; a signal at another rate is coded at the nearest one above it (see
    #: :func:`codec_rate`).
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
    #: The backends that can code it, in order of preference (see :mod:`codecbench.codecs.backend`).
    backends: tuple[str, ...] = ("pyav",)
    #: The encoder profile libavcodec is asked for (``"HE-AAC"``), if not its default.
    profile: str = ""
    #: Samples of delay read from the first coded packet (SBC's filterbank depends on its subband count).
    delay_from_first_packet: Callable[[bytes], int] | None = None
    #: Options a libavcodec decoder needs besides the extradata, from the condition and the first packet.
    decoder_setup: Callable[[Condition, bytes], dict] | None = None
    #: The highest bit rate at a codec rate, where it is below :attr:`max_kbps`: ``((lowest rate, kbps), ...)``,
    #: highest rate first (MP3: MPEG-2 Layer III at 16-24 kHz codes at most 160 kbps, MPEG-2.5 at 8-12 kHz 64).
    max_kbps_by_rate: tuple[tuple[int, float], ...] = ()
    #: The decoder that conceals lost packets (:mod:`codecbench.codecs.conceal`): ``"libopus"`` (PLC, and in-band
    #: FEC), ``"liblc3"`` (PLC), ``"libfdk-aac"`` (Fraunhofer's AAC decoder); empty: the codec has none, and a loss
    #: condition must name a concealment.
    concealment: str = ""

    def max_kbps_at(self, codec_sr: int) -> float:
        """The highest bit rate this codec codes at ``codec_sr`` Hz."""
        for lowest, kbps in self.max_kbps_by_rate:
            if codec_sr >= lowest:
                return min(kbps, self.max_kbps)
        return self.max_kbps

    def quality_for(self, kbps: float) -> int:
        """The encoder quality (``global_quality``) whose measured rate is nearest ``kbps``."""
        return min(self.quality_table, key=lambda qr: (abs(qr[1] - kbps), qr[0]))[0]


CODECS: dict[str, CodecSpec] = {
    spec.name: spec
    for spec in (
        CodecSpec("aac", "AAC-LC (FFmpeg native encoder)", "aac", "aac", 16, 192, "fltp",
                  (44100, 48000, 32000, 24000, 22050, 16000), True,
                  "above ~192 kbps mono the native encoder saturates"),
        CodecSpec("he-aac", "HE-AAC v1 (AAC-LC + SBR, Fraunhofer libfdk-aac)", "libfdk_aac", "aac", 8, 64,
                  "s16", (48000, 44100, 32000, 24000, 22050, 16000), True,
                  "the valid range depends on the input rate (e.g. 12-64 kbps at 44.1/48 kHz); libfdk-aac's "
                  "tables decide", backends=("fdk", "pyav", "ffmpeg", "fdkaac"), profile="HE-AAC"),
        CodecSpec("aac-ld", "AAC-LD (low delay, 512-sample frames, Fraunhofer libfdk-aac)", "libfdk_aac", "fdk",
                  8, 256, "s16", (48000, 44100, 32000, 24000, 22050, 16000, 12000, 11025, 8000), True,
                  "real-time communication; the valid range depends on the input rate", backends=("fdk",),
                  concealment="libfdk-aac"),
        CodecSpec("aac-eld", "AAC-ELD (enhanced low delay, Fraunhofer libfdk-aac)", "libfdk_aac", "fdk",
                  8, 256, "s16", (48000, 44100, 32000, 24000, 22050, 16000, 12000, 11025, 8000), True,
                  "real-time communication (e.g. FaceTime); SBR below ~64 kbps as libfdk-aac configures it",
                  backends=("fdk",), concealment="libfdk-aac"),
        CodecSpec("mp3", "MP3 (LAME, CBR)", "libmp3lame", "mp3float", 32, 320, "fltp",
                  (44100, 48000, 32000, 22050, 24000, 16000, 11025, 12000, 8000), True,
                  "MPEG-1 Layer III at 32-48 kHz, MPEG-2 at 16-24 kHz (at most 160 kbps), MPEG-2.5 at 8-12 kHz (at "
                  "most 64 kbps); LAME snaps other values to the nearest standard rate",
                  backends=("lame", "pyav"), max_kbps_by_rate=((32000, 320), (16000, 160), (8000, 64))),
        CodecSpec("opus", "Opus (libopus, VBR)", "libopus", "opus", 6, 256, "flt",
                  (48000,), False,
                  "always coded at 48 kHz and resampled back", header_carries_priming=True,
                  concealment="libopus"),
        CodecSpec("sbc", "SBC (Bluetooth A2DP, FFmpeg encoder)", "sbc", "sbc", 32, 320, "s16",
                  (44100, 48000, 32000, 16000), True, family="bluetooth",
                  delay_from_first_packet=_sbc_filter_delay),
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
                  family="bluetooth", backends=("lc3",), concealment="liblc3"),
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
                  "the clip is resampled to 8 kHz and back", rates=(16, 24, 32, 40), family="telephony",
                  decoder_setup=lambda cond, first: {"options": {"bits_per_coded_sample": str(round(cond.kbps / 8))}}),
        CodecSpec("g723-1", "G.723.1 (video telephony / VoIP, 8 kHz, FFmpeg encoder)", "g723_1", "g723_1", 6.3, 6.3,
                  "s16", (8000,), True, "the clip is resampled to 8 kHz and back; FFmpeg encodes the 6.3 kbps mode; "
                  "60-sample delay (measured)", rates=(6.3,), delay=60, family="telephony"),
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
                  delay=-2048, family="streaming",
                  decoder_setup=lambda cond, first: {"options": {"block_align": str(len(first))},
                                                     "bit_rate": cond.bit_rate}),
        # ---- neural codecs (codecbench.codecs.neural): codebook indices are the bitstream; the user names the weights
        CodecSpec("encodec", "EnCodec 24 kHz (Meta, neural: convolutional autoencoder + residual VQ)",
                  "facebook/encodec_24khz", "encodec", 1.5, 24, "flt", (24000,), True,
                  "coded at 24 kHz and resampled back; 75 frames/s, 2-32 codebooks of 10 bits; "
                  "pip install 'codecbench[neural]' and the weights (docs/conditions.md)",
                  rates=(1.5, 3, 6, 12, 24), family="neural", backends=("neural",)),
        CodecSpec("encodec-48k", "EnCodec 48 kHz (Meta, neural, stereo model, 1-s chunks)", "facebook/encodec_48khz",
                  "encodec", 3, 24, "flt", (48000,), True,
                  "the mono clip goes on both channels; coded at 48 kHz and resampled back; 150 frames/s",
                  rates=(3, 6, 12, 24), channels=2, family="neural", backends=("neural",)),
        CodecSpec("dac", "DAC 44.1 kHz (Descript Audio Codec, neural, residual VQ)", "descript/dac_44khz", "dac",
                  0.5, 8, "flt", (44100,), True,
                  "86 frames/s, up to 9 codebooks of 10 bits (7.75 kbps): the nominal rate picks the number of "
                  "codebooks whose rate is nearest (the achieved rate is recorded)",
                  family="neural", backends=("neural",)),
        CodecSpec("dac-24k", "DAC 24 kHz (Descript Audio Codec, neural)", "descript/dac_24khz", "dac", 0.5, 24,
                  "flt", (24000,), True, "75 frames/s, up to 32 codebooks of 10 bits (24 kbps)",
                  family="neural", backends=("neural",)),
        CodecSpec("dac-16k", "DAC 16 kHz (Descript Audio Codec, neural)", "descript/dac_16khz", "dac", 0.5, 6,
                  "flt", (16000,), True, "50 frames/s, up to 12 codebooks of 10 bits (6 kbps)",
                  family="neural", backends=("neural",)),
    )
}

_CONDITION_RE = re.compile(r"^(?P<codec>[a-z0-9-]+)@(?P<kbps>\d+(\.\d+)?)(kbps)?$")


@functools.total_ordering
@dataclasses.dataclass(frozen=True)
class Condition:
    """A codec at a nominal bit rate, or the uncoded original (``codec == "wav"``); optionally after other codecs
    (a transcoding chain, ``aac@128>mp3@32``) and with packets lost on the way (``opus@24+loss5``).

    ``codec`` and ``kbps`` are the last codec of a chain, the one whose bitstream is stored and decoded; ``before``
    the codecs the signal went through first, in order (each coded and decoded); ``loss`` the packets of the last
    codec's bitstream that are dropped and concealed (:mod:`codecbench.codecs.loss`).
    """

    codec: str
    kbps: float = 0
    before: tuple[Condition, ...] = ()
    loss: Loss | None = None

    @property
    def name(self) -> str:
        if self.is_original:
            return "wav"
        own = self.codec if self.spec.fixed_kbps is not None else f"{self.codec}@{canonical_number(self.kbps)}"
        return ">".join([c.name for c in self.before] + [own]) + (self.loss.suffix if self.loss else "")

    @property
    def stages(self) -> tuple[Condition, ...]:
        """The codecs of the chain in order, each a plain condition (no chain, no loss)."""
        return (*self.before, Condition(self.codec, self.kbps)) if not self.is_original else ()

    @property
    def is_plain(self) -> bool:
        """One codec, no loss: what the paper's conditions are."""
        return not self.before and self.loss is None

    @property
    def bit_rate(self) -> int:
        """The nominal bit rate in bit/s (of the last codec of a chain)."""
        return int(round(self.kbps * 1000))

    @property
    def is_original(self) -> bool:
        return self.codec == "wav"

    @property
    def spec(self) -> CodecSpec:
        """The table row of the (last) codec."""
        return CODECS[self.codec]

    def _key(self) -> tuple:
        return (self.codec, self.kbps, tuple(c._key() for c in self.before),
                () if self.loss is None else dataclasses.astuple(self.loss))

    def __lt__(self, other: Condition) -> bool:
        if not isinstance(other, Condition):
            return NotImplemented
        return self._key() < other._key()

    def __str__(self) -> str:
        return self.name


ORIGINAL = Condition("wav")


class ConditionError(UsageError):
    """A condition name that does not parse or lies outside its codec's valid range."""


#: The most codecs a chain may have: a phone's recording, a server's re-encode, a player's (more is a typo).
MAX_CHAIN = 4


def parse_condition(name: str | Condition) -> Condition:
    """Parse ``"<codec>@<kbps>"``, ``"wav"``, a chain ``"aac@128>mp3@32"`` and a loss ``"opus@24+loss5+burst3"``;
    raise :class:`ConditionError` naming what was expected."""
    if isinstance(name, Condition):
        return name
    text = str(name).strip().lower()
    head, *loss_parts = [p.strip() for p in text.split("+")]
    stages = [p.strip() for p in head.split(">")]
    if len(stages) > MAX_CHAIN:
        raise ConditionError(f"condition {name!r}: a chain of at most {MAX_CHAIN} codecs")
    parsed = [_parse_single(stage, name) for stage in stages]
    if len(parsed) > 1 and any(c.is_original for c in parsed):
        raise ConditionError(f"condition {name!r}: 'wav' is not a codec of a chain; name the codecs only")
    last = parsed[-1]
    try:
        loss = parse_loss(loss_parts, str(name))
    except LossError as exc:
        raise ConditionError(str(exc)) from None
    if loss is not None:
        if last.is_original:
            raise ConditionError(f"condition {name!r}: the original is not coded, so it has no packets to lose")
        if loss.rate == 0:
            loss = None  # nothing is dropped: the plain condition, bit for bit
        elif last.spec.family == "neural":
            raise ConditionError(f"condition {name!r}: packet loss is modelled on a codec's packets; {last.codec} is "
                                 "a neural codec, whose codes codecbench does not packetise")
        elif loss.fec and last.spec.concealment != "libopus":
            raise ConditionError(f"condition {name!r}: +fec is Opus's in-band forward error correction; "
                                 f"{last.codec} has none")
        elif loss.conceal == "codec" and not last.spec.concealment:
            raise ConditionError(
                f"condition {name!r}: {last.spec.description} has no packet-loss concealment of its own; name one: "
                f"{last.name}{loss.suffix}+zerofill (silence for a lost frame) or {last.name}{loss.suffix}+repeat "
                "(the last good frame again)")
    return Condition(last.codec, last.kbps, tuple(parsed[:-1]), loss)


def _parse_single(text: str, name) -> Condition:
    """One codec at one rate (or the original)."""
    if text in ("wav", "original", "uncoded"):
        return ORIGINAL
    fixed = CODECS[text].fixed_kbps if text in CODECS else None
    if fixed is not None:
        return Condition(text, fixed)
    match = _CONDITION_RE.match(text)
    if not match:
        raise ConditionError(
            f"condition {name!r} is not of the form '<codec>@<kbps>' (e.g. 'mp3@32'), a chain "
            f"('aac@128>mp3@32'), a loss ('opus@24+loss5') or 'wav'; codecs: {', '.join(CODECS)}")
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


def codec_rate(condition: Condition, sample_rate: int) -> int:
    """The rate a signal at ``sample_rate`` is coded at: its own if the codec takes it, else the nearest rate above it
    (resampling up loses nothing), else, when the codec has no higher rate, its highest. The one place that decides.

    >>> codec_rate(parse_condition("sbc@64"), 22050)   # SBC: 16, 32, 44.1, 48 kHz
    32000
    """
    rates = condition.spec.sample_rates
    if sample_rate in rates:
        return sample_rate
    above = [r for r in rates if r > sample_rate]
    return min(above) if above else max(rates)
