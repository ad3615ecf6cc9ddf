"""Why a model fails under a codec: which mel bands the codec changes, what the model's front-end makes of that
change, and which bands carry the accuracy lost.

For a model with a log-mel front-end and clips in their uncoded and coded versions, :func:`diagnose` measures

- the **change the codec makes** per band: mean log-mel difference coded − uncoded (dB), with its spread across
  clips;
- the **change after the front-end's normalisation**: the same difference in the model's input (after per-clip
  min–max scaling, say, a band the codec emptied lowers the clip's floor and so shifts *every* band);
- the **model's sensitivity per band**: its accuracy when that band alone is replaced by the coded version, the
  clip then normalised as the front-end does (``cost``), and the same replacement inside the normalised input
  with the uncoded clip's scale kept (``direct cost``). A band whose cost is much larger than its direct cost
  costs accuracy *through the normalisation*, not through its own content;

and sums it up in one line (:attr:`Diagnosis.verdict`). ``codecbench diagnose --model M --condition C`` runs it on
a dataset split and writes a figure, a table and JSON that ``codecbench report`` shows.
"""
from __future__ import annotations

from typing import Callable, Sequence

import numpy as np

from codecbench import codecs
from codecbench.core.dsp import signal_change
from codecbench.core.wording import counted
from codecbench.errors import UsageError
from codecbench.results.diagnoses import Band, Diagnosis
from codecbench.run.resolve import Run
from codecbench.signal import features
from codecbench.signal.frontends import FrontEnd, _at_rate
from codecbench.store.fill import coded_signal

#: In natural-log power units, one dB.
NEPER_TO_DB = 10 / np.log(10)


class DiagnosisError(UsageError):
    """A diagnosis that cannot run: a front-end with neither log-mel bands nor waveforms, no clips, or mismatched
    inputs."""


def band_edges(frontend: FrontEnd, n_bands: int) -> list[tuple[int, int, float, float]]:
    """``(first bin, last bin + 1, low Hz, high Hz)`` of ``n_bands`` groups of neighbouring mel bins."""
    import librosa  # the mel scale of the front-end

    fmax = frontend.fmax if frontend.fmax is not None else frontend.sample_rate / 2
    edges_hz = librosa.mel_frequencies(frontend.n_mels + 2, fmin=frontend.fmin, fmax=fmax, htk=frontend.htk)
    cuts = np.linspace(0, frontend.n_mels, n_bands + 1).round().astype(int)
    return [(int(a), int(b), float(edges_hz[a]), float(edges_hz[b + 1])) for a, b in zip(cuts[:-1], cuts[1:])]


def diagnose(model, clips: Sequence[tuple[np.ndarray, np.ndarray, int]], labels: Sequence[int],
             class_names: Sequence[str], *, condition: str, n_bands: int = 8, batch_size: int = 32) -> Diagnosis:
    """Diagnose ``model`` (a :class:`~codecbench.models.kinds.ScoringModel` with a log-mel front-end) on ``clips``:
    ``(uncoded, coded, sample rate)`` each, labelled ``labels`` (indices into ``class_names``, the dataset's
    classes). ``condition`` names what coded them."""
    frontend: FrontEnd = model.frontend
    if frontend.kind == "waveform":  # a model of its own front-end (a Hugging Face checkpoint, a PyTorch factory)
        return diagnose_waveform(model, clips, labels, class_names, condition=condition, n_bands=n_bands,
                                 batch_size=batch_size)
    if frontend.kind != "logmel":
        raise DiagnosisError(f"model {model.name!r}: its front-end ({frontend.describe()}) has no mel bands to "
                             "diagnose; diagnose works on log-mel and waveform front-ends")
    if frontend.on_device:
        raise DiagnosisError(f"model {model.name!r} computes its log-mel on its device from waveforms; diagnose "
                             "replaces bands of the log-mel, so it needs a model that takes log-mel input")
    if not clips or len(clips) != len(labels):
        raise DiagnosisError(f"diagnose needs clips and one label each, got {len(clips)} clips and {len(labels)} "
                             "labels")
    if not 1 <= n_bands <= frontend.n_mels:
        raise DiagnosisError(f"--bands {n_bands}: between 1 and the front-end's {frontend.n_mels} mel bins")
    host = frontend.on_host
    edges = band_edges(host, n_bands)
    order = model.dataset_order(list(class_names))
    truths = np.asarray(labels)

    def raw(signal, rate):
        x = _at_rate(signal, rate, host.sample_rate)
        return features.log_mel(x, host.sample_rate, host.n_fft, host.hop_length, host.n_mels, host.fmin,
                                host.fmax, host.log_offset, htk=host.htk)

    def scale(mel, reference):
        """The front-end's normalisation of ``mel`` with the scale taken from ``reference``."""
        if host.normalise != "minmax":
            return mel
        lo, hi = float(reference.min()), float(reference.max())
        return (mel - lo) / (hi - lo) if hi > lo else np.zeros_like(mel)

    def model_input(normalised):
        return host.finish(normalised.astype(np.float32))

    names = ["uncoded", "coded", *(f"band{b}" for b in range(n_bands)), *(f"direct{b}" for b in range(n_bands))]
    correct = {name: 0 for name in names}
    change = np.zeros((len(clips), n_bands))
    input_change = np.zeros((len(clips), n_bands))
    # a batch of clips at a time: every variant of a clip is a full model input, 2 + 2 x bands of them
    for start in range(0, len(clips), batch_size):
        variants: dict[str, list[np.ndarray]] = {name: [] for name in names}
        for i in range(start, min(start + batch_size, len(clips))):
            uncoded, coded, rate = clips[i]
            u, c = raw(uncoded, rate), raw(coded, rate)
            frames = min(u.shape[1], c.shape[1])
            u, c = u[:, :frames], c[:, :frames]
            nu, nc = scale(u, u), scale(c, c)
            variants["uncoded"].append(model_input(nu))
            variants["coded"].append(model_input(nc))
            for b, (first, last, _, _) in enumerate(edges):
                change[i, b] = float(np.mean(c[first:last] - u[first:last])) * NEPER_TO_DB
                input_change[i, b] = float(np.mean(nc[first:last] - nu[first:last]))
                mixed = u.copy()
                mixed[first:last] = c[first:last]
                variants[f"band{b}"].append(model_input(scale(mixed, mixed)))
                direct = nu.copy()
                direct[first:last] = scale(c[first:last], u)
                variants[f"direct{b}"].append(model_input(direct))
        _count_correct(model, variants, truths[start:start + batch_size], order, correct)

    def accuracy(name: str) -> float:
        return correct[name] / len(clips)

    bands = tuple(Band(b, low, high, float(change[:, b].mean()), float(change[:, b].std()),
                       float(input_change[:, b].mean()), float(input_change[:, b].std()),
                       accuracy(f"band{b}"), accuracy(f"direct{b}"))
                  for b, (_, _, low, high) in enumerate(edges))
    return Diagnosis(model.name, condition, frontend.describe(), host.normalise, len(clips),
                     accuracy("uncoded"), accuracy("coded"), bands,
                     signal_change([u for u, _, _ in clips], [c for _, c, _ in clips], [r for _, _, r in clips]))


def _count_correct(model, variants: dict[str, list[np.ndarray]], truth: np.ndarray, order: np.ndarray,
                   correct: dict[str, int]) -> None:
    """Add to ``correct`` each variant's clips the model classifies right (one batch per variant)."""
    for name, inputs in variants.items():
        predicted = np.argmax(model.predict(np.stack(inputs))[:, order], axis=1)
        correct[name] += int(np.sum(predicted == truth))


#: The STFT of a waveform diagnosis: 64-ms Hann frames, a quarter of a frame apart (perfect reconstruction).
STFT_FRAME_S = 0.064


def diagnose_waveform(model, clips: Sequence[tuple[np.ndarray, np.ndarray, int]], labels: Sequence[int],
                      class_names: Sequence[str], *, condition: str, n_bands: int = 8,
                      batch_size: int = 32) -> Diagnosis:
    """:func:`diagnose` for a model fed waveforms: the bands are mel-spaced ranges of an STFT at the model's rate, a
    band is coded alone by taking its STFT bins from the coded clip and resynthesising, and the model's own
    front-end does the rest. With no normalisation of codecbench's between the band and the model, the direct
    cost is the cost."""
    import librosa

    if not clips or len(clips) != len(labels):
        raise DiagnosisError(f"diagnose needs clips and one label each, got {len(clips)} clips and {len(labels)} "
                             "labels")
    rate = int(model.frontend.sample_rate)
    if not 1 <= n_bands <= 64:
        raise DiagnosisError(f"--bands {n_bands}: between 1 and 64 for a waveform model")
    n_fft = int(2 ** np.ceil(np.log2(STFT_FRAME_S * rate)))
    hop = n_fft // 4
    freqs = np.fft.rfftfreq(n_fft, 1 / rate)
    edges_hz = librosa.mel_frequencies(n_bands + 1, fmin=0.0, fmax=rate / 2)
    bins = [(freqs >= lo) & ((freqs < hi) if b < n_bands - 1 else (freqs <= hi))
            for b, (lo, hi) in enumerate(zip(edges_hz[:-1], edges_hz[1:]))]
    order = model.dataset_order(list(class_names))
    truths = np.asarray(labels)
    names = ["uncoded", "coded", *(f"band{b}" for b in range(n_bands))]
    correct = {name: 0 for name in names}
    change = np.zeros((len(clips), n_bands))
    for start in range(0, len(clips), batch_size):
        variants: dict[str, list[np.ndarray]] = {name: [] for name in names}
        for i in range(start, min(start + batch_size, len(clips))):
            uncoded, coded, source_rate = clips[i]
            u, c = model.frontend(uncoded, source_rate), model.frontend(coded, source_rate)
            n = min(len(u), len(c))
            u, c = u[:n], c[:n]
            spec_u, spec_c = (librosa.stft(x.astype(np.float64), n_fft=n_fft, hop_length=hop) for x in (u, c))
            variants["uncoded"].append(u)
            variants["coded"].append(c)
            for b, mask in enumerate(bins):
                power_u = float(np.mean(np.abs(spec_u[mask]) ** 2)) + 1e-20
                power_c = float(np.mean(np.abs(spec_c[mask]) ** 2)) + 1e-20
                change[i, b] = 10 * np.log10(power_c / power_u)
                mixed = spec_u.copy()
                mixed[mask] = spec_c[mask]
                variants[f"band{b}"].append(librosa.istft(mixed, hop_length=hop, length=n).astype(np.float32))
        _count_correct(model, variants, truths[start:start + batch_size], order, correct)

    def accuracy(name: str) -> float:
        return correct[name] / len(clips)

    bands = tuple(Band(b, float(lo), float(hi), float(change[:, b].mean()), float(change[:, b].std()),
                       float(change[:, b].mean()), float(change[:, b].std()), accuracy(f"band{b}"),
                       accuracy(f"band{b}"))
                  for b, (lo, hi) in enumerate(zip(edges_hz[:-1], edges_hz[1:])))
    return Diagnosis(model.name, condition, model.frontend.describe(), "none", len(clips), accuracy("uncoded"),
                     accuracy("coded"), bands,
                     signal_change([u for u, _, _ in clips], [c for _, c, _ in clips], [r for _, _, r in clips]))


def diagnose_split(run: Run, *, max_clips: int | None = None, n_bands: int = 8,
                   say: Callable[[str], None] = print) -> Diagnosis:
    """Diagnose the one model of a resolved ``run`` under its one condition on its split: the clips coded (and
    cached) as the benchmark codes them, at most ``max_clips`` of them spread over the split."""

    if len(run.models) != 1 or len(run.conditions) != 1:
        raise UsageError("--model, --condition: name one model and one coded condition to diagnose")
    entry, condition, split = run.models[0], run.conditions[0], run.split
    if condition.is_original:
        raise DiagnosisError("--condition: a coded condition; the original is what the diagnosis compares with")
    why = run.unavailable(condition)
    if why is not None:
        raise codecs.CodecUnavailable(f"{condition.name} is unavailable on this machine: {why}")
    dataset = run.dataset
    clips, labels = dataset.clips(split), dataset.labels(split)
    picked = np.unique(np.linspace(0, len(clips) - 1, min(max_clips or len(clips), len(clips))).round().astype(int))
    scoring = run.zoo.scoring(entry)
    say(f"diagnose: {entry.name} under {condition.name} on {counted(len(picked), 'clip')} of {dataset.name} "
        f"{split}, {counted(n_bands, 'band')}")
    pairs = []
    for i in picked:
        uncoded, rate = coded_signal(clips[i].path, codecs.ORIGINAL, run.cache)
        coded, _ = coded_signal(clips[i].path, condition, run.cache)
        pairs.append((uncoded, coded, rate))
    return diagnose(scoring, pairs, labels[picked].tolist(), dataset.class_names, condition=condition.name,
                    n_bands=n_bands)
