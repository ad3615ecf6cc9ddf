"""A diagnosis as recorded: the bands a codec changed and what each cost a model (:class:`Diagnosis`), with its
verdict, table, figure and JSON, and the diagnoses a folder holds (:func:`read_diagnoses`). Measured by
:mod:`codecbench.run.diagnose`; shown by ``codecbench report``."""
from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
from tabulate import tabulate

from codecbench.core.palette import OKABE_ITO
from codecbench.core.wording import counted
from codecbench.errors import DataError
from codecbench.results.stats import wilson_interval

#: Below this, a loss of accuracy (or a band's cost) is not worth a verdict on 100-odd clips.
MEANINGFUL = 0.02


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
    #: how far the coded clips are from the uncoded ones (:func:`codecbench.core.dsp.signal_change`: mel distance,
    #: SNR, SI-SDR in dB), the measures the codec facts report; empty in diagnoses of codecbench before 0.3
    signal: dict = dataclasses.field(default_factory=dict, hash=False)

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
        values = {f.name: data[f.name] for f in dataclasses.fields(cls) if f.name not in ("bands", "signal")}
        values["signal"] = dict(data.get("signal") or {})
        return cls(**values, bands=tuple(Band(**b) for b in data["bands"]))

    def markdown(self) -> str:
        """The table ranking the bands by the accuracy they cost, and the verdict."""
        low, high = wilson_interval(round(self.accuracy_coded * self.n_clips), self.n_clips)
        rows = [[b.label, f"{b.change_db:+.1f} ± {b.change_db_spread:.1f}",
                 f"{b.input_change:+.3f} ± {b.input_change_spread:.3f}", f"{self.cost(b):+.3f}",
                 f"{self.direct_cost(b):+.3f}"] for b in self.ranked]
        return (f"**{self.model} under {self.condition}** ({self.frontend}, {counted(self.n_clips, 'clip')}): "
                f"accuracy {self.accuracy_uncoded:.3f} uncoded, {self.accuracy_coded:.3f} [{low:.3f}, {high:.3f}] "
                f"coded."
                + (f" The coded clips: mel distance {self.signal['mel_distance_db']:.1f} dB, SNR "
                   f"{self.signal['snr_db']:.1f} dB, SI-SDR {self.signal['si_sdr_db']:.1f} dB." if self.signal else "")
                + "\n\n"
                + tabulate(rows, headers=["band", "codec change (dB)", "input change", "cost (band alone)",
                                          "direct cost (scale kept)"], tablefmt="github")
                + f"\n\nVerdict: {self.verdict}.\n")

    def figure(self, path: str | Path) -> Path:
        """One figure: the change per band before and after the front-end, and the accuracy each band costs."""
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

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



def read_diagnoses(folder: str | Path) -> list[Diagnosis]:
    """The diagnoses written into a results folder (``diagnosis-*.json``), in name order."""
    out = []
    for path in sorted(Path(folder).glob("diagnosis-*.json")):
        try:
            out.append(Diagnosis.from_dict(json.loads(path.read_text())))
        except (ValueError, KeyError, TypeError) as exc:
            raise DataError(f"{path}: not a diagnosis written by codecbench diagnose ({exc})") from None
    return out
