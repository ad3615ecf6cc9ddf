"""Log-mel front-ends as a Keras layer, so an accelerator computes the features and the host only decodes.

:class:`LogMelLayer` computes, in ``keras.ops`` (TensorFlow, JAX and PyTorch alike), what
:meth:`codecbench.signal.frontends.FrontEnd.stored` and :meth:`~codecbench.signal.frontends.FrontEnd.finish` compute
with librosa and NumPy: centred frames with reflect padding, a periodic Hann window, the power spectrum, the mel filter
bank (librosa's own matrix, a constant), ``log(mel + offset)``, per-clip min-max scaling, and the baseline's 5-frame
deltas applied twice. It always computes in float32, whatever dtype policy the model around it runs under (a bfloat16
spectrum would lose the quiet bands that coding changes).

A model whose sidecar front-end has ``on_device = true`` (``import-model --frontend hu2020:on_device``) is run as
``waveform -> LogMelLayer -> network`` (:func:`with_frontend_layer`): the evaluator feeds decoded waveforms
(:class:`codecbench.store.inputs.CodedWaveforms`) and caches no features for it.
"""
from __future__ import annotations

import contextlib
import functools

import numpy as np

from codecbench.core.backend import keras
from codecbench.errors import ArgumentError


@functools.lru_cache(maxsize=8)
def _mel_matrix(sample_rate: int, n_fft: int, n_mels: int, fmin: float, fmax: float | None, htk: bool) -> np.ndarray:
    import librosa

    return librosa.filters.mel(sr=sample_rate, n_fft=n_fft, n_mels=n_mels, fmin=fmin,
                               fmax=fmax if fmax is not None else sample_rate / 2, htk=htk, norm=None, dtype=np.float64)


@functools.lru_cache(maxsize=8)
def _window(n_fft: int) -> np.ndarray:
    from scipy.signal import get_window

    return get_window("hann", n_fft, fftbins=True)  # librosa's "hann": periodic (float64, as librosa's)


@keras.saving.register_keras_serializable(package="codecbench")
class LogMelLayer(keras.layers.Layer):
    """``(batch, samples)`` waveform at ``sample_rate`` -> ``(batch, n_mels, frames', channels)`` features.

    Parameters are those of :class:`codecbench.signal.frontends.FrontEnd` (log-mel kind), keyword-only.
    """

    def __init__(self, *, sample_rate: int = 44100, n_fft: int = 2048, hop_length: int = 1024, n_mels: int = 128,
                 fmin: float = 0.0, fmax: float | None = None, htk: bool = True, log_offset: float = 1e-8,
                 normalise: str = "minmax", deltas: bool = True, **kwargs):
        kwargs["dtype"] = "float32"  # always: see the module's docstring
        super().__init__(**kwargs)
        self.sample_rate, self.n_fft, self.hop_length, self.n_mels = int(sample_rate), int(n_fft), int(hop_length), \
            int(n_mels)
        self.fmin, self.fmax, self.htk, self.log_offset = float(fmin), fmax, bool(htk), float(log_offset)
        self.normalise, self.deltas = normalise, bool(deltas)
        self._mel = _mel_matrix(self.sample_rate, self.n_fft, self.n_mels, self.fmin, self.fmax, self.htk).T.copy()
        self._win = _window(self.n_fft)

    @classmethod
    def from_frontend(cls, frontend, **kwargs) -> "LogMelLayer":
        """The layer of a log-mel :class:`~codecbench.signal.frontends.FrontEnd`."""
        return cls(sample_rate=frontend.sample_rate, n_fft=frontend.n_fft, hop_length=frontend.hop_length,
                   n_mels=frontend.n_mels, fmin=frontend.fmin, fmax=frontend.fmax, htk=frontend.htk,
                   log_offset=frontend.log_offset, normalise=frontend.normalise, deltas=frontend.deltas, **kwargs)

    def get_config(self) -> dict:
        config = super().get_config()
        config.update(sample_rate=self.sample_rate, n_fft=self.n_fft, hop_length=self.hop_length, n_mels=self.n_mels,
                      fmin=self.fmin, fmax=self.fmax, htk=self.htk, log_offset=self.log_offset,
                      normalise=self.normalise, deltas=self.deltas)
        return config

    def frames(self, samples: int) -> int:
        """Time frames of the static log-mel of a clip of ``samples`` samples (centred framing)."""
        return 1 + samples // self.hop_length

    def compute_output_shape(self, input_shape):
        samples = input_shape[-1]
        frames = None if samples is None else self.frames(samples) - (8 if self.deltas else 0)
        return (input_shape[0], self.n_mels, frames, 3 if self.deltas else 1)

    def call(self, waveform):
        scope, dtype = _spectrum_precision()
        with scope:
            return self._features(waveform, dtype)

    def _features(self, waveform, dtype: str):
        ops = keras.ops
        x = ops.cast(waveform, dtype)
        samples = x.shape[-1]
        if samples is None:
            raise ArgumentError("LogMelLayer needs a fixed number of samples per batch (the evaluator pads every "
                                "batch to the longest clip)")
        pad = self.n_fft // 2
        # reflect padding (librosa's centred frames), written with slices so every backend does the same
        left = ops.flip(x[:, 1:pad + 1], axis=1)
        right = ops.flip(x[:, samples - pad - 1:samples - 1], axis=1)
        padded = ops.concatenate([left, x, right], axis=1)
        n_frames = self.frames(samples)
        index = (np.arange(n_frames)[:, None] * self.hop_length + np.arange(self.n_fft)[None, :]).astype("int32")
        frames = ops.take(padded, ops.convert_to_tensor(index), axis=1)        # (batch, frames, n_fft)
        frames = frames * ops.convert_to_tensor(self._win.astype(dtype))
        real, imag = ops.rfft(frames, fft_length=self.n_fft)                   # (batch, frames, n_fft/2+1)
        power = real * real + imag * imag
        mel = ops.matmul(power, ops.convert_to_tensor(self._mel.astype(dtype)))  # (batch, frames, n_mels)
        # float32 from here on: the log has taken the quiet bands' dynamic range out of the numbers
        logmel = ops.cast(ops.transpose(ops.log(mel + self.log_offset), (0, 2, 1)), "float32")  # (batch, mels, frames)
        if self.normalise == "minmax":
            lo = ops.min(logmel, axis=(1, 2), keepdims=True)
            hi = ops.max(logmel, axis=(1, 2), keepdims=True)
            span = hi - lo
            logmel = ops.where(span > 0, (logmel - lo) / ops.where(span > 0, span, 1.0), 0.0)
        if not self.deltas:
            return logmel[..., None]
        d1 = _delta(logmel)
        d2 = _delta(d1)
        return ops.stack([logmel[:, :, 4:-4], d1[:, :, 2:-2], d2], axis=-1)


def _spectrum_precision():
    """``(context, dtype)`` for the spectrum: float64 wherever the backend computes it (TensorFlow and PyTorch always,
    JAX with x64 enabled while the layer is traced, not for the rest of the model). A float32 FFT leaks about 1e-7 of
    a frame's energy into every bin, and after the log a band 100 dB below the loudest (the top band of a coded
    clip) is off by up to 3e-4 of the feature range; in float64 the layer matches librosa within 1e-4."""

    if keras.backend.backend() == "jax":
        import jax

        if callable(getattr(jax, "enable_x64", None)):  # JAX >= 0.7: a context manager taking the setting
            return jax.enable_x64(True), "float64"
        import jax.experimental

        enable_x64 = getattr(jax.experimental, "enable_x64", None)  # older JAX
        if enable_x64 is None:  # a JAX without the switch: float32, within about 3e-4 of the range
            return contextlib.nullcontext(), "float32"
        return enable_x64(), "float64"
    return contextlib.nullcontext(), "float64"


def _delta(x):
    """The baseline's 5-frame delta along the last axis, valid frames only
    (see :func:`codecbench.signal.features.deltas`)."""
    return (x[..., 3:-1] - x[..., 1:-3]) / 10.0 + (x[..., 4:] - x[..., :-4]) / 5.0


def with_frontend_layer(model, frontend, samples: int | None = None):
    """``waveform (batch, samples) -> LogMelLayer(frontend) -> model``: the Keras network of a log-mel model fed with
    waveforms, its features computed on the device the model runs on. The network's layers are shared, not copied."""
    inputs = keras.Input((samples,), name="waveform", dtype="float32")
    features = LogMelLayer.from_frontend(frontend, name="logmel_on_device")(inputs)
    return keras.Model(inputs, model(features), name=f"{model.name}_on_device")
