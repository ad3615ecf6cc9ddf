"""Neural codecs (EnCodec, DAC) as a backend: the codebook indices are the bitstream, the network decodes them.

Both run through Hugging Face ``transformers`` (``EncodecModel``, ``DacModel``; ``pip install 'codecbench[neural]'``),
which ships maintained ports of Meta's EnCodec and Descript's DAC that load the published weights and need no
``torchaudio`` (the ``encodec`` package's own does, and pins PyTorch). The weights are never downloaded silently:
they are read from ``$CODECBENCH_CODEC_WEIGHTS/<model folder>`` (``encodec_24khz``, ``dac_44khz``, …: what
``hf download facebook/encodec_24khz --local-dir …`` writes) or from the Hugging Face cache where the package's own
download put them; without either, the condition is *unavailable*, naming the file expected and where to get it.

What a coded clip is: the residual-vector-quantiser codes (``uint16``, one row per codebook) and, for EnCodec's
48-kHz model, the per-chunk scales; its size in bits is ``codes x log2(codebook size)``, the rate the codec
transmits. The clip is padded to a whole number of frames before encoding (DAC drops a partial last frame), and
the decode is cut back to the input's length; both models are aligned to their input (no priming).

Settings (environment, so worker processes see them): ``CODECBENCH_CODEC_WEIGHTS`` (folder of weight folders),
``CODECBENCH_CODEC_DEVICE`` (``auto``: the accelerator when present, else ``cpu``; ``cpu``; ``cuda``; ``cuda:1``),
``CODECBENCH_CODEC_PRECISION`` (``float32``, ``bfloat16``, ``float16``). The weights' SHA-256, the package
versions, the device and the precision are all part of :meth:`NeuralBackend.library`, so of every cache key: a
decode on the GPU never stands in for one on the CPU (:func:`device_difference` measures how far they differ).
"""
from __future__ import annotations

import dataclasses
import functools
import importlib.metadata
import json
import math
import os
from pathlib import Path
from typing import Any

import numpy as np

from codecbench.codecs.backend import Backend, register
from codecbench.codecs.bitstream import Bitstream, pack
from codecbench.codecs.table import CodecSpec, Condition
from codecbench.core.fsutil import file_digest
from codecbench.errors import CodecError

WEIGHTS_ENV = "CODECBENCH_CODEC_WEIGHTS"
DEVICE_ENV = "CODECBENCH_CODEC_DEVICE"
PRECISION_ENV = "CODECBENCH_CODEC_PRECISION"
PRECISIONS = ("float32", "bfloat16", "float16")
INSTALL_HINT = "pip install 'codecbench[neural]' (PyTorch and Hugging Face transformers)"
#: The files a weight folder must hold (as the hub's repositories of these models do).
WEIGHT_FILES = ("config.json", "model.safetensors")


@dataclasses.dataclass(frozen=True)
class NeuralModel:
    """One published neural codec model: its hub repository and the ``transformers`` class that loads it."""

    repository: str
    family: str  # "encodec" or "dac"

    @property
    def folder(self) -> str:
        """The folder name under ``$CODECBENCH_CODEC_WEIGHTS`` (the repository's own name)."""
        return self.repository.split("/")[-1]


#: codec name (in the codec table) -> the model that codes it
MODELS = {
    "encodec": NeuralModel("facebook/encodec_24khz", "encodec"),
    "encodec-48k": NeuralModel("facebook/encodec_48khz", "encodec"),
    "dac": NeuralModel("descript/dac_44khz", "dac"),
    "dac-24k": NeuralModel("descript/dac_24khz", "dac"),
    "dac-16k": NeuralModel("descript/dac_16khz", "dac"),
}


class NeuralCodecError(CodecError):
    """A neural codec's weights or settings do not fit the condition (the message names the file or setting)."""


def weights_root() -> Path | None:
    value = os.environ.get(WEIGHTS_ENV, "").strip()
    return Path(value).expanduser() if value else None


def weights_folder(spec: CodecSpec) -> tuple[Path | None, str]:
    """The folder holding ``spec``'s weights, or None and what is missing (the exact file and how to get it)."""
    model = MODELS[spec.name]
    root = weights_root()
    if root is not None:
        folder = root / model.folder
        missing = [f for f in WEIGHT_FILES if not (folder / f).is_file()]
        if not missing:
            return folder, ""
        where = f"{folder / missing[0]} (from {WEIGHTS_ENV}={root})"
    else:
        cached = _hub_cache_folder(model.repository)
        if cached is not None:
            return cached, ""
        where = (f"${WEIGHTS_ENV}/{model.folder}/{WEIGHT_FILES[1]} ({WEIGHTS_ENV} is not set, and the Hugging Face "
                 f"cache holds no {model.repository})")
    return None, (f"{spec.name} needs the weights of {model.repository}: expected {where}; on a machine with the "
                  f"network: hf download {model.repository} {' '.join(WEIGHT_FILES)} --local-dir "
                  f"<weights>/{model.folder}, then set {WEIGHTS_ENV}=<weights>")


def _hub_cache_folder(repository: str) -> Path | None:
    """The snapshot folder of ``repository`` in the Hugging Face cache, when both weight files are there."""
    try:
        from huggingface_hub import try_to_load_from_cache
    except ImportError:
        return None
    found = [try_to_load_from_cache(repository, f) for f in WEIGHT_FILES]
    if all(isinstance(f, str) for f in found):
        return Path(str(found[0])).parent
    return None


def device() -> str:
    """The torch device neural codecs run on here (``CODECBENCH_CODEC_DEVICE``; ``auto``: CUDA when present)."""
    choice = os.environ.get(DEVICE_ENV, "auto").strip().lower() or "auto"
    if choice == "auto":
        import torch
        return "cuda" if torch.cuda.is_available() else "cpu"
    if choice != "cpu" and not choice.startswith("cuda"):
        raise NeuralCodecError(f"{DEVICE_ENV}={choice!r}: expected auto, cpu, cuda or cuda:<index>")
    return choice


def precision() -> str:
    choice = os.environ.get(PRECISION_ENV, "float32").strip().lower() or "float32"
    if choice not in PRECISIONS:
        raise NeuralCodecError(f"{PRECISION_ENV}={choice!r}: expected one of {', '.join(PRECISIONS)}")
    return choice


@functools.lru_cache(maxsize=None)
def _digest(path: str, size: int, mtime_ns: int) -> str:
    return file_digest(path)


def weights_sha256(folder: Path) -> str:
    """SHA-256 of the weight file (hashed once per process and file version)."""
    path = folder / WEIGHT_FILES[1]
    stat = path.stat()
    return _digest(str(path), stat.st_size, stat.st_mtime_ns)


@functools.lru_cache(maxsize=1)
def _versions() -> str | None:
    """The package versions in every neural cache key, read once per process (a metadata scan costs milliseconds,
    and the key is made per clip)."""
    try:
        return (f"transformers {importlib.metadata.version('transformers')}, "
                f"torch {importlib.metadata.version('torch')}")
    except importlib.metadata.PackageNotFoundError:
        return None


@dataclasses.dataclass
class Loaded:
    """A neural codec model loaded on a device, with the facts of its configuration that coding needs."""

    network: Any
    family: str
    sample_rate: int
    channels: int
    hop: int
    frame_rate: float
    bits_per_code: int
    n_codebooks: int
    bandwidths: tuple[float, ...]
    device: str
    dtype: Any


@functools.lru_cache(maxsize=None)
def load(codec: str, folder: str, device_name: str, precision_name: str) -> Loaded:
    """The model of ``codec`` from ``folder`` on ``device_name`` at ``precision_name``, once per process."""
    import torch
    import transformers
    from transformers import DacModel, EncodecModel

    transformers.utils.logging.disable_progress_bar()  # a bar per worker would break the fill's progress line
    model = MODELS[codec]
    cls: Any = EncodecModel if model.family == "encodec" else DacModel
    try:
        network = cls.from_pretrained(folder, local_files_only=True)
    except Exception as exc:  # a damaged or foreign folder: name it
        raise NeuralCodecError(f"{codec}: cannot load {model.repository} from {folder} "
                               f"({type(exc).__name__}: {exc})") from None
    dtype = getattr(torch, precision_name)
    network = network.to(device_name, dtype=dtype).eval()
    config = network.config
    if model.family == "encodec":
        # the 48-kHz model codes overlapping 1-s chunks and pads the last chunk's codes itself (recorded, and cut
        # before decoding); the 24-kHz model codes the clip whole, in frames of `hop`
        hop = int(np.prod(config.upsampling_ratios)) if config.chunk_length_s is None else 1
        channels, n_codebooks = int(config.audio_channels), int(config.num_quantizers)
        bandwidths = tuple(float(b) for b in config.target_bandwidths)
    else:
        hop = int(config.hop_length)
        channels, n_codebooks, bandwidths = 1, int(config.n_codebooks), ()
    frame_rate = float(config.sampling_rate) / float(np.prod(config.upsampling_ratios) if model.family == "encodec"
                                                    else config.hop_length)
    return Loaded(network, model.family, int(config.sampling_rate), channels, hop, frame_rate,
                  int(math.log2(config.codebook_size)), n_codebooks, bandwidths, device_name, dtype)


def _loaded(spec: CodecSpec) -> Loaded:
    folder, why = weights_folder(spec)
    if folder is None:
        raise NeuralCodecError(why)
    return load(spec.name, str(folder), device(), precision())


def codebooks(loaded: Loaded, kbps: float) -> int:
    """DAC: the number of codebooks whose rate is nearest the nominal ``kbps`` (at least 1, at most all)."""
    per_codebook = loaded.frame_rate * loaded.bits_per_code / 1000
    return int(min(max(round(kbps / per_codebook), 1), loaded.n_codebooks))


class NeuralBackend(Backend):
    """EnCodec and DAC through ``transformers``, on the accelerator when present."""

    name = "neural"
    decoders = ("neural",)

    def unavailable(self, spec: CodecSpec) -> str | None:
        try:
            import torch  # noqa: F401
            import transformers  # noqa: F401
        except ImportError:
            return f"neural codecs need PyTorch and transformers: {INSTALL_HINT}"
        folder, why = weights_folder(spec)
        if folder is None:
            return why
        try:
            device(), precision()
        except NeuralCodecError as exc:
            return str(exc)
        return None

    def library(self, spec: CodecSpec) -> str:
        folder, _ = weights_folder(spec)
        versions = _versions()
        if versions is None:
            return f"{MODELS[spec.name].repository} (transformers missing)"
        if folder is None:
            return f"{MODELS[spec.name].repository} (weights missing; {versions})"
        return (f"{MODELS[spec.name].repository} weights sha256:{weights_sha256(folder)[:16]} ({versions}, "
                f"{device()}, {precision()})")

    def rate_problem(self, cond: Condition, codec_sr: int) -> str | None:
        try:
            loaded = _loaded(cond.spec)
        except NeuralCodecError as exc:
            return str(exc)
        if loaded.sample_rate != codec_sr:
            return (f"{cond.name}: the weights in {weights_folder(cond.spec)[0]} are of a {loaded.sample_rate}-Hz "
                    f"model; {cond.codec} runs at {codec_sr} Hz")
        if loaded.family == "encodec" and float(cond.kbps) not in loaded.bandwidths:
            return (f"{cond.name}: these EnCodec weights code at {', '.join(f'{b:g}' for b in loaded.bandwidths)} "
                    "kbps")
        return None

    def encode(self, x: np.ndarray, codec_sr: int, cond: Condition, sample_rate: int, n: int) -> Bitstream:
        import torch

        loaded = _loaded(cond.spec)
        padded = np.concatenate([x, np.zeros((-len(x)) % loaded.hop, dtype=np.float32)])
        tensor = torch.from_numpy(padded)[None, None].repeat(1, loaded.channels, 1)
        tensor = tensor.to(loaded.device, dtype=loaded.dtype)
        header: dict = {"family": loaded.family}
        with torch.inference_mode():
            if loaded.family == "encodec":
                out = loaded.network.encode(tensor, bandwidth=float(cond.kbps))
                codes = out.audio_codes  # (chunks, batch 1, codebooks, frames)
                header["scales"] = [None if s is None else float(s.flatten()[0]) for s in out.audio_scales]
                header["last_frame_pad_length"] = pad = int(out.last_frame_pad_length or 0)
            else:
                codes = loaded.network.encode(tensor, n_quantizers=codebooks(loaded, cond.kbps)).audio_codes
                pad = 0
        array = codes.to("cpu").numpy().astype(np.uint16)
        header["shape"] = list(array.shape)
        # what is transmitted: every code but the padding of the last chunk's
        bits = (array.size - pad * array.shape[-2]) * loaded.bits_per_code
        return pack(cond, self.name, f"neural:{loaded.family}", sample_rate, codec_sr, n, len(x),
                    [array.tobytes()], json.dumps(header).encode(), 0, encoded_bytes=math.ceil(bits / 8))

    def decode(self, bitstream: Bitstream) -> np.ndarray:
        loaded = _loaded(bitstream.condition.spec)
        return decode_on(loaded, bitstream)


def decode_on(loaded: Loaded, bitstream: Bitstream) -> np.ndarray:
    """Decode ``bitstream``'s codes with ``loaded`` (float32 at the codec rate, channel 0)."""
    import torch

    header = json.loads(bitstream.config)
    codes = torch.from_numpy(np.frombuffer(bitstream.payload, dtype=np.uint16).astype(np.int64)
                             .reshape(header["shape"])).to(loaded.device)
    with torch.inference_mode():
        if loaded.family == "encodec":
            scales = [None if s is None else torch.tensor([[s]], device=loaded.device, dtype=loaded.dtype)
                      for s in header["scales"]]
            audio = loaded.network.decode(codes, scales, last_frame_pad_length=header["last_frame_pad_length"])[0]
        else:
            audio = loaded.network.decode(audio_codes=codes).audio_values
    audio = audio.float().to("cpu").numpy()
    return np.ascontiguousarray(audio.reshape(-1, audio.shape[-1])[0], dtype=np.float32)


def device_difference(spec: CodecSpec, bitstream: Bitstream, other_device: str) -> dict:
    """How far a decode on ``other_device`` differs from one on the CPU, for the same codes: the largest absolute
    sample difference and the SNR of the CPU decode against it (dB); measured, never assumed away."""
    folder, why = weights_folder(spec)
    if folder is None:
        raise NeuralCodecError(why)
    cpu = decode_on(load(spec.name, str(folder), "cpu", precision()), bitstream)
    other = decode_on(load(spec.name, str(folder), other_device, precision()), bitstream)
    n = min(len(cpu), len(other))
    diff = cpu[:n].astype(np.float64) - other[:n]
    power = float(np.mean(cpu[:n].astype(np.float64) ** 2))
    noise = float(np.mean(diff ** 2))
    return {"device": other_device, "max_abs_diff": float(np.max(np.abs(diff))) if n else 0.0,
            "snr_db": math.inf if noise == 0 else 10 * math.log10(max(power, 1e-30) / noise)}


def forget() -> None:
    """Load models and hash weight files again (after the weights or settings changed)."""
    load.cache_clear()
    _digest.cache_clear()
    _versions.cache_clear()


register(NeuralBackend())
