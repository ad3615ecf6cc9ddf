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

import dataclasses
import json
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
from tabulate import tabulate

from . import codecs, features
from .codecs import Condition
from .errors import UsageError
from .frontends import FrontEnd, _at_rate
from .stats import wilson_interval
from .wording import counted
from .zoo import ZooError

#: Below this, a loss of accuracy (or a band's cost) is not worth a verdict on 100-odd clips.
MEANINGFUL = 0.02
#: In natural-log power units, one dB.
NEPER_TO_DB = 10 / np.log(10)


class DiagnosisError(UsageError):
    """A diagnosis that cannot run: a front-end without log-mel bands, no clips, or mismatched inputs."""


@dataclasses.dataclass(frozen=True)
class Band:
    """A group of neighbouring mel bins and what the codec did to it."""

    index: int
    low_hz: float
    high_hz: float
    #: mean log-mel change coded − uncoded in dB, and its standard deviation across clips
    change_db: float
    change_db_spread: float
    #: the mean change of the model's input (after the front-end's normalisation), and its spread across clips
    input_change: float
    input_change_spread: float
    #: accuracy with this band alone coded, renormalised as the front-end does
    accuracy: float
    #: accuracy with this band alone coded inside the normalised input (the uncoded clip's scale kept)
    direct_accuracy: float

    @property
    def label(self) -> str:
        return f"{self.low_hz / 1000:.1f}-{self.high_hz / 1000:.1f} kHz"


@dataclasses.dataclass(frozen=True)
class Diagnosis:
    """What :func:`diagnose` found for one model under one condition."""

    model: str
    condition: str
    frontend: str
    normalise: str
    n_clips: int
    accuracy_uncoded: float
    accuracy_coded: float
    bands: tuple[Band, ...]

    def cost(self, band: Band) -> float:
        return self.accuracy_uncoded - band.accuracy

    def direct_cost(self, band: Band) -> float:
        return self.accuracy_uncoded - band.direct_accuracy

    @property
    def ranked(self) -> list[Band]:
        """The bands by the accuracy they cost, highest first."""
        return sorted(self.bands, key=lambda b: (-self.cost(b), b.index))

    @property
    def verdict(self) -> str:
        """One line: where the loss comes from."""
        loss = self.accuracy_uncoded - self.accuracy_coded
        if loss < MEANINGFUL:
            return (f"{self.condition} costs {self.model} no measurable accuracy ({self.accuracy_uncoded:.3f} -> "
                    f"{self.accuracy_coded:.3f})")
        top = self.ranked[0]
        cost, direct = self.cost(top), self.direct_cost(top)
        if cost < max(MEANINGFUL, 0.3 * loss):
            return (f"the loss ({self.accuracy_uncoded:.3f} -> {self.accuracy_coded:.3f}) is spread over the bands: "
                    f"no band alone costs more than {cost:.3f}")
        position = {len(self.bands) - 1: "top", 0: "bottom"}.get(top.index) if len(self.bands) > 1 else None
        where = f"the loss comes from the {position} band ({top.label})" if position else \
            f"the loss comes from the {top.label} band"
        if self.normalise == "minmax" and cost - direct >= max(MEANINGFUL, 0.5 * cost):
            return (f"{where} through min-max scaling: coding that band alone costs {cost:.3f}, the same change "
                    f"with the clip's scale kept costs {direct:.3f} (the codec moves the clip's "
                    f"{'floor' if top.change_db < 0 else 'ceiling'}, which shifts every band)")
        return f"{where} itself: coding that band alone costs {cost:.3f} of the {loss:.3f} lost"

    def to_dict(self) -> dict:
        return {**{f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name != "bands"},
                "bands": [dataclasses.asdict(b) for b in self.bands], "verdict": self.verdict}

    @classmethod
    def from_dict(cls, data: dict) -> Diagnosis:
        values = {f.name: data[f.name] for f in dataclasses.fields(cls) if f.name != "bands"}
        return cls(**values, bands=tuple(Band(**b) for b in data["bands"]))

    def markdown(self) -> str:
        """The table ranking the bands by the accuracy they cost, and the verdict."""
        low, high = wilson_interval(round(self.accuracy_coded * self.n_clips), self.n_clips)
        rows = [[b.label, f"{b.change_db:+.1f} ± {b.change_db_spread:.1f}",
                 f"{b.input_change:+.3f} ± {b.input_change_spread:.3f}", f"{self.cost(b):+.3f}",
                 f"{self.direct_cost(b):+.3f}"] for b in self.ranked]
        return (f"**{self.model} under {self.condition}** ({self.frontend}, {counted(self.n_clips, 'clip')}): "
                f"accuracy {self.accuracy_uncoded:.3f} uncoded, {self.accuracy_coded:.3f} [{low:.3f}, {high:.3f}] "
                f"coded.\n\n"
                + tabulate(rows, headers=["band", "codec change (dB)", "input change", "cost (band alone)",
                                          "direct cost (scale kept)"], tablefmt="github")
                + f"\n\nVerdict: {self.verdict}.\n")

    def figure(self, path: str | Path) -> Path:
        """One figure: the change per band before and after the front-end, and the accuracy each band costs."""
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        from .report.palette import OKABE_ITO

        x = np.arange(len(self.bands))
        labels = [b.label for b in self.bands]
        fig, axes = plt.subplots(1, 3, figsize=(13, 3.6), constrained_layout=True)
        panels = [
            ([b.change_db for b in self.bands], [b.change_db_spread for b in self.bands], "codec change (dB)",
             "log-mel, coded - uncoded"),
            ([b.input_change for b in self.bands], [b.input_change_spread for b in self.bands], "input change",
             f"model input ({self.normalise} normalisation)"),
        ]
        for ax, (values, spread, ylabel, title) in zip(axes[:2], panels):
            ax.bar(x, values, yerr=spread, color=OKABE_ITO[0], capsize=2)
            ax.axhline(0, color="black", linewidth=0.8)
            ax.set(ylabel=ylabel, title=title)
        width = 0.4
        axes[2].bar(x - width / 2, [self.cost(b) for b in self.bands], width, color=OKABE_ITO[1],
                    label="band alone, renormalised")
        axes[2].bar(x + width / 2, [self.direct_cost(b) for b in self.bands], width, color=OKABE_ITO[2],
                    hatch="//", label="band alone, scale kept")
        axes[2].axhline(0, color="black", linewidth=0.8)
        axes[2].axhline(self.accuracy_uncoded - self.accuracy_coded, color="black", linestyle="--", linewidth=1,
                        label="every band coded")
        axes[2].set(ylabel="accuracy lost", title="which bands cost accuracy")
        axes[2].legend(fontsize=7, loc="best")
        for ax in axes:
            ax.set_xticks(x, labels, rotation=45, ha="right", fontsize=7)
        fig.suptitle(f"{self.model} under {self.condition}: {self.verdict}", fontsize=9, wrap=True)
        path = Path(path)
        fig.savefig(path, dpi=120)
        plt.close(fig)
        return path

    def write(self, folder: str | Path) -> dict[str, Path]:
        """``diagnosis-<model>-<condition>.{json,md,png}`` in ``folder`` (what ``codecbench report`` shows)."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        stem = f"diagnosis-{safe_name(self.model)}-{safe_name(self.condition)}"
        paths = {"json": folder / f"{stem}.json", "markdown": folder / f"{stem}.md", "figure": folder / f"{stem}.png"}
        paths["json"].write_text(json.dumps(self.to_dict(), indent=1))
        paths["markdown"].write_text(self.markdown())
        self.figure(paths["figure"])
        return paths


def safe_name(text: str) -> str:
    """``text`` as part of a file name."""
    return "".join(c if c.isalnum() or c in "-_.@" else "_" for c in text)


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
    if frontend.kind != "logmel":
        raise DiagnosisError(f"model {model.name!r}: its front-end ({frontend.describe()}) has no mel bands to "
                             "diagnose; diagnose works on log-mel front-ends")
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
        truth = truths[start:start + batch_size]
        for name, inputs in variants.items():
            predicted = np.argmax(model.predict(np.stack(inputs))[:, order], axis=1)
            correct[name] += int(np.sum(predicted == truth))

    def accuracy(name: str) -> float:
        return correct[name] / len(clips)

    bands = tuple(Band(b, low, high, float(change[:, b].mean()), float(change[:, b].std()),
                       float(input_change[:, b].mean()), float(input_change[:, b].std()),
                       accuracy(f"band{b}"), accuracy(f"direct{b}"))
                  for b, (_, _, low, high) in enumerate(edges))
    return Diagnosis(model.name, condition, frontend.describe(), host.normalise, len(clips),
                     accuracy("uncoded"), accuracy("coded"), bands)


def read_diagnoses(folder: str | Path) -> list[Diagnosis]:
    """The diagnoses written into a results folder (``diagnosis-*.json``), in name order."""
    out = []
    for path in sorted(Path(folder).glob("diagnosis-*.json")):
        try:
            out.append(Diagnosis.from_dict(json.loads(path.read_text())))
        except (ValueError, KeyError, TypeError) as exc:
            raise DiagnosisError(f"{path}: not a diagnosis written by codecbench diagnose ({exc})") from None
    return out


def diagnose_split(where, model: str, condition: Condition, *, max_clips: int | None = None, n_bands: int = 8,
                   say: Callable[[str], None] = print) -> Diagnosis:
    """Diagnose a zoo model under ``condition`` on the split of ``where`` (a :class:`~codecbench.run.Workspace`):
    the clips coded (and cached) as the benchmark codes them, at most ``max_clips`` of them spread over the split."""
    from .encode import coded_signal

    spec = where.spec
    zoo = where.zoo
    try:
        entry = zoo.entry(zoo.resolve(model))
    except ZooError as exc:
        raise UsageError(f"--model: {exc}") from None
    zoo.check_trust(entry)
    if condition.is_original:
        raise DiagnosisError("--condition: a coded condition; the original is what the diagnosis compares with")
    ok, why = codecs.availability(condition)
    if not ok:
        raise codecs.CodecUnavailable(f"{condition.name} is unavailable on this machine: {why}")
    dataset = where.dataset(splits=(spec.split,))
    clips, labels = dataset.clips(spec.split), dataset.labels(spec.split)
    for rate in dataset.sample_rates(spec.split):
        codecs.check_rate(condition, rate)
    picked = np.unique(np.linspace(0, len(clips) - 1, min(max_clips or len(clips), len(clips))).round().astype(int))
    scoring = zoo.scoring(entry)
    say(f"diagnose: {entry.name} under {condition.name} on {counted(len(picked), 'clip')} of {dataset.name} "
        f"{spec.split}, {counted(n_bands, 'band')}")
    pairs = []
    for i in picked:
        uncoded, rate = coded_signal(clips[i].path, codecs.ORIGINAL, where.cache)
        coded, _ = coded_signal(clips[i].path, condition, where.cache)
        pairs.append((uncoded, coded, rate))
    return diagnose(scoring, pairs, labels[picked].tolist(), dataset.class_names, condition=condition.name,
                    n_bands=n_bands)
