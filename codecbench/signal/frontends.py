"""Front-ends: what a model is fed, declared per model in its sidecar.

A :class:`FrontEnd` is either a log-mel recipe (sample rate, STFT, mel layout, log offset,
per-clip normalisation, deltas) or ``waveform`` at a sample rate. The codec round trip always
happens at the dataset's rate (44.1 kHz); a front-end resamples afterwards. Log-mel features are
cached per (clip, condition, front-end), so models with the same front-end share them; the
baseline recipe of Hu et al. (:data:`BASELINE`) keeps the cache keys it always had. Waveforms are
not cached: decoding a bitstream and resampling is about as cheap as reading them back.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json

import numpy as np

from codecbench.core.dsp import resample
from codecbench.errors import UsageError
from codecbench.signal import features

KINDS = ("logmel", "waveform")
NORMALISATIONS = ("minmax", "none")


class FrontEndError(UsageError):
    """A front-end declaration that cannot be used; the message names the field and the accepted values."""


@dataclasses.dataclass(frozen=True)
class FrontEnd:
    kind: str = "logmel"
    sample_rate: int = 44100
    n_fft: int = 2048
    hop_length: int = 1024
    n_mels: int = 128
    fmin: float = 0.0
    fmax: float | None = None
    htk: bool = True
    log_offset: float = 1e-8
    normalise: str = "minmax"
    deltas: bool = True
    #: log-mel computed by the model's device (:mod:`codecbench.models.frontend_layer`): the host decodes waveforms only
    on_device: bool = False

    def __post_init__(self):
        if self.kind not in KINDS:
            raise FrontEndError(f"front-end kind {self.kind!r}: expected one of {', '.join(KINDS)}")
        if not 8000 <= int(self.sample_rate) <= 192000:
            raise FrontEndError(f"front-end sample_rate {self.sample_rate!r}: expected 8000-192000 Hz")
        if self.kind == "logmel":
            if self.normalise not in NORMALISATIONS:
                raise FrontEndError(f"front-end normalise {self.normalise!r}: expected one of "
                                    f"{', '.join(NORMALISATIONS)}")
            if not isinstance(self.on_device, bool):
                raise FrontEndError(f"front-end on_device {self.on_device!r}: expected true or false")
            if not (0 < self.hop_length <= self.n_fft and 0 < self.n_mels <= self.n_fft // 2 + 1):
                raise FrontEndError(f"front-end n_fft {self.n_fft}, hop_length {self.hop_length}, n_mels "
                                    f"{self.n_mels}: need 0 < hop_length <= n_fft and 0 < n_mels <= n_fft/2+1")

    @property
    def is_baseline(self) -> bool:
        return self == BASELINE

    @property
    def cached(self) -> bool:
        """Whether the cache keeps this front-end's features (log-mel on the host; not waveforms, not on-device)."""
        return self.kind == "logmel" and not self.on_device

    @property
    def on_host(self) -> "FrontEnd":
        """The same recipe computed on the host (what an on-device front-end must match)."""
        return dataclasses.replace(self, on_device=False)

    def to_dict(self) -> dict:
        if self.kind == "waveform":
            return {"kind": "waveform", "sample_rate": self.sample_rate}
        fields = dataclasses.asdict(self)
        if not self.on_device:  # absent when false, so the keys of every host front-end stay what they were
            del fields["on_device"]
        return fields

    def spec(self) -> str:
        """The front-end as ``--frontend`` text, which :func:`parse_frontend` reads back to an equal front-end."""
        if self.kind == "waveform":
            return f"waveform:{self.sample_rate}"
        if self.on_host.is_baseline:
            return "hu2020:on_device" if self.on_device else "hu2020"

        def text(value) -> str:
            if isinstance(value, bool):
                return "true" if value else "false"
            return "none" if value is None else repr(value)  # repr: the shortest decimal that reads back
        return "logmel:" + ",".join(f"{k}={text(v) if k != 'normalise' else v}" for k, v in self.to_dict().items()
                                    if k != "kind")

    def cache_key(self) -> dict:
        """What identifies the front-end in feature cache keys (the baseline keeps its historical recipe)."""
        return features.RECIPE if self.is_baseline else {"frontend": self.to_dict(), "version": 1}

    @property
    def short_hash(self) -> str:
        return hashlib.sha256(json.dumps(self.to_dict(), sort_keys=True).encode()).hexdigest()[:10]

    def describe(self) -> str:
        if self.kind == "waveform":
            return f"waveform {self.sample_rate / 1000:g} kHz"
        where = " on the model's device" if self.on_device else ""
        if self.on_host.is_baseline:
            return "hu2020 log-mel + deltas" + where
        return (f"log-mel {self.n_mels} @ {self.sample_rate / 1000:g} kHz (n_fft {self.n_fft}, hop "
                f"{self.hop_length}{', deltas' if self.deltas else ''})" + where)

    def stored(self, signal: np.ndarray, sample_rate: int) -> np.ndarray:
        """What the cache keeps of a clip (log-mel front-ends): the normalised static log-mel, float32."""
        x = _at_rate(signal, sample_rate, self.sample_rate)
        if self.is_baseline:
            return features.static(x, self.sample_rate)
        mel = features.log_mel(x, self.sample_rate, self.n_fft, self.hop_length, self.n_mels, self.fmin, self.fmax,
                               self.log_offset, htk=self.htk)
        return (features.minmax_scale(mel) if self.normalise == "minmax" else mel).astype(np.float32)

    def finish(self, stored: np.ndarray) -> np.ndarray:
        """The model input of one clip from what the cache keeps: (n_mels, frames, channels) or (samples,)."""
        if self.kind == "waveform":
            return stored
        if self.deltas:
            return features.with_deltas(stored)
        return stored[..., None]

    def __call__(self, signal: np.ndarray, sample_rate: int) -> np.ndarray:
        """The model input of one clip."""
        if self.kind == "waveform" or self.on_device:
            return _at_rate(signal, sample_rate, self.sample_rate)
        return self.finish(self.stored(signal, sample_rate))


BASELINE = FrontEnd()


def _at_rate(signal: np.ndarray, rate: int, target: int) -> np.ndarray:
    return np.ascontiguousarray(resample(np.asarray(signal, dtype=np.float32), rate, target), dtype=np.float32)


def parse_frontend(value) -> FrontEnd:
    """A front-end from a sidecar dict, or from text: ``hu2020`` (the baseline), ``hu2020:on_device`` (the baseline
    computed on the model's device), ``waveform:16000``, ``logmel:sample_rate=32000,n_mels=64,deltas=false``."""
    if value is None or value == "hu2020" or value == "baseline":
        return BASELINE
    if value in ("hu2020:on_device", "baseline:on_device"):
        return dataclasses.replace(BASELINE, on_device=True)
    if isinstance(value, FrontEnd):
        return value
    if isinstance(value, dict):
        fields = {f.name: f for f in dataclasses.fields(FrontEnd)}
        unknown = sorted(set(value) - set(fields))
        if unknown:
            raise FrontEndError(f"front-end: unknown field(s) {', '.join(unknown)}; known: {', '.join(fields)}")
        return FrontEnd(**value)
    text = str(value).strip()
    kind, _, rest = text.partition(":")
    if kind == "waveform":
        try:
            return FrontEnd("waveform", int(rest))
        except ValueError:
            raise FrontEndError(f"front-end {text!r}: expected waveform:<sample rate>, e.g. waveform:16000") from None
    if kind != "logmel":
        raise FrontEndError(f"front-end {text!r}: expected hu2020, hu2020:on_device, waveform:<rate> or "
                            "logmel:key=value,...")
    params: dict = {}
    types = {f.name: f.type for f in dataclasses.fields(FrontEnd)}
    for part in filter(None, (p.strip() for p in rest.split(","))):
        key, eq, raw = part.partition("=")
        if key not in types or key == "kind" or not eq:
            raise FrontEndError(f"front-end {text!r}: bad item {part!r}; keys: "
                                f"{', '.join(k for k in types if k != 'kind')}")
        try:
            if raw.lower() in ("true", "false"):
                params[key] = raw.lower() == "true"
            elif key in ("normalise",):
                params[key] = raw
            elif raw.lower() == "none" and key == "fmax":   # none: half the sample rate; no other key has one
                params[key] = None
            elif key in ("sample_rate", "n_fft", "hop_length", "n_mels"):
                params[key] = int(raw)
            else:
                params[key] = float(raw)
        except ValueError:
            raise FrontEndError(f"front-end {text!r}: {key}={raw!r} is not a number") from None
    return FrontEnd("logmel", **params)
