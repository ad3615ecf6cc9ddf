"""Bit-rate sweeps in a report: accuracy against bit rate per codec, retained accuracy, break-even bit rates.

A codec evaluated at three or more bit rates (a matrix entry such as ``mp3@32..320``) is a sweep. For each model
and sweep this module computes, on the paired predictions of the same clips:

- **retained accuracy**: the accuracy under the codec relative to the original's, averaged over the sweep's rates;
- **break-even bit rate**: the lowest rate from which on (that rate and every higher one in the sweep) the
  accuracy stays within ``margin`` (0.02) of the original's.

Both get 95 % intervals from a paired bootstrap over clips (the same resampled clips for the original and every
rate), so they carry the uncertainty of the clip sample, as the Wilson intervals of single accuracies do.
"""
from __future__ import annotations

import dataclasses
import math
from pathlib import Path

import numpy as np
from tabulate import tabulate

from codecbench.codecs import Condition
from codecbench.core.palette import SeriesStyle, styles_for

BREAK_EVEN_MARGIN = 0.02
#: models per panel of the static figure (the HTML report lets the reader pick them instead)
PANEL_MODELS = 6


def find_sweeps(conditions: list[Condition], min_rates: int = 3) -> dict[str, list[tuple[float, str]]]:
    """``{codec: [(kbps, condition name), ...]}`` (ascending) for codecs present at ``min_rates`` or more rates
    (plain conditions only: a chain or a loss is not a point of its last codec's bit-rate sweep)."""
    by_codec: dict[str, list[tuple[float, str]]] = {}
    for cond in conditions:
        if not cond.is_original and cond.is_plain:
            by_codec.setdefault(cond.codec, []).append((float(cond.kbps), cond.name))
    return {c: sorted(set(v)) for c, v in by_codec.items() if len(set(v)) >= min_rates}


def find_loss_sweeps(conditions: list[Condition], min_points: int = 3) -> dict[str, list[tuple[float, str]]]:
    """``{sweep: [(percent lost, condition name), ...]}`` (ascending) for a codec (or chain) at one bit rate with
    the same loss model (burst, seed, FEC, concealment) at ``min_points`` or more loss rates; the plain condition is
    its 0 % point."""
    plain = {c.stages: c.name for c in conditions if not c.is_original and c.loss is None}
    groups: dict[tuple, list[tuple[float, str]]] = {}
    for cond in conditions:
        if cond.loss is not None:
            key = (cond.stages, *dataclasses.astuple(dataclasses.replace(cond.loss, rate=0)))
            groups.setdefault(key, []).append((float(cond.loss.rate), cond.name))
    out = {}
    for (stages, *_), points in groups.items():
        if stages in plain:
            points.append((0.0, plain[stages]))
        if len(set(points)) >= min_points:
            loss_name = points[-1][1] if points[-1][0] else points[0][1]
            label = ">".join(s.name for s in stages) + "".join(
                f"+{part}" for part in loss_name.split("+")[1:] if not part.startswith("loss"))
            out[f"{label}+loss%"] = sorted(set(points))
    return out


def loss_markdown(res, sweeps: dict[str, list[tuple[float, str]]]) -> str:
    """Per loss sweep: one row per model, its accuracy at each loss rate with the Wilson interval."""
    from codecbench.results.stats import wilson_interval

    parts = []
    for label, points in sweeps.items():
        rows = []
        for model in res.models:
            cells = [res.get(model, name) for _, name in points]
            if not any(cells):
                continue
            rows.append([model] + [f"{c['accuracy']:.3f} [{lo:.3f}, {hi:.3f}]" if c else "-"
                                   for c, (lo, hi) in ((c, wilson_interval(int(c["correct"]), int(c["n"])) if c
                                                        else (0, 0)) for c in cells)])
        parts.append(f"**{label}**\n\n" + tabulate(rows, headers=["model", *(f"{r:g} % lost" for r, _ in points)],
                                                    tablefmt="github", disable_numparse=True))
    return "\n\n".join(parts)


def _correct(cell: dict, order: list[str]) -> np.ndarray:
    index = {clip: i for i, clip in enumerate(cell["clips"])}
    labels, predictions = np.asarray(cell["labels"]), np.asarray(cell["predictions"])
    return np.array([labels[index[c]] == predictions[index[c]] for c in order], dtype=float)


def _break_even(rates: np.ndarray, acc: np.ndarray, reference: float, margin: float) -> float:
    """Lowest rate from which on every accuracy is >= reference - margin; inf if even the highest is not."""
    ok = acc >= reference - margin - 1e-12
    if not ok[-1]:
        return math.inf
    i = len(ok) - 1
    while i > 0 and ok[i - 1]:
        i -= 1
    return float(rates[i])


def summarise(res, *, margin: float = BREAK_EVEN_MARGIN, n_boot: int = 1000, seed: int = 0) -> list[dict]:
    """One row per (model, codec) sweep: retained accuracy and break-even bit rate with bootstrap intervals."""
    sweeps = find_sweeps([res.parsed[c] for _, c in res.conditions()])
    rows = []
    rng = np.random.default_rng(seed)
    for codec, points in sweeps.items():
        rates = np.array([k for k, _ in points])
        for model in res.models:
            original = res.get(model, "wav")
            cells = [res.get(model, name) for _, name in points]
            if original is None or any(c is None for c in cells) or "predictions" not in original:
                continue
            common = set(original["clips"]).intersection(*(cell["clips"] for cell in cells))
            clips = [c for c in original["clips"] if c in common]
            if not clips:
                continue
            ref = _correct(original, clips)
            per_rate = np.stack([_correct(cell, clips) for cell in cells])  # (rates, clips)
            acc, ref_acc = per_rate.mean(axis=1), ref.mean()
            retained = float(np.mean(acc / ref_acc)) if ref_acc else math.nan
            break_even = _break_even(rates, acc, ref_acc, margin)
            boots_retained, boots_break = [], []
            for _ in range(n_boot):
                idx = rng.integers(0, len(clips), len(clips))
                r, a = ref[idx].mean(), per_rate[:, idx].mean(axis=1)
                if r:
                    boots_retained.append(np.mean(a / r))
                boots_break.append(_break_even(rates, a, r, margin))
            lo_r, hi_r = (np.percentile(boots_retained, [2.5, 97.5]) if boots_retained else (math.nan, math.nan))
            lo_b, hi_b = np.percentile(np.array(boots_break), [2.5, 97.5], method="nearest")
            rows.append({"model": model, "codec": codec, "rates": rates.tolist(), "clips": len(clips),
                         "original_accuracy": float(ref_acc), "accuracies": acc.tolist(),
                         "retained": retained, "retained_low": float(lo_r), "retained_high": float(hi_r),
                         "break_even_kbps": break_even, "break_even_low": float(lo_b),
                         "break_even_high": float(hi_b)})
    return rows


def _kbps(value: float) -> str:
    return "never" if math.isinf(value) else f"{value:g}"


def markdown(rows: list[dict], margin: float = BREAK_EVEN_MARGIN) -> str:

    table = [[r["model"], r["codec"], f"{r['rates'][0]:g}-{r['rates'][-1]:g} ({len(r['rates'])})",
              f"{r['original_accuracy']:.3f}",
              f"{r['retained']:.3f} [{r['retained_low']:.3f}, {r['retained_high']:.3f}]",
              f"{_kbps(r['break_even_kbps'])} [{_kbps(r['break_even_low'])}, {_kbps(r['break_even_high'])}]"]
             for r in rows]
    return tabulate(table, headers=["model", "codec", "kbps swept (rates)", "original accuracy",
                                    "retained accuracy (mean over rates, 95% CI)",
                                    f"break-even kbps (within {margin} of original, 95% CI)"],
                    tablefmt="github", disable_numparse=True)


def figure(res, out_base: Path, formats=("png", "svg"), models: list[str] | None = None, *,
           loss: bool = False) -> list[Path]:
    """Accuracy against bit rate (log x; ``loss``: against the share of packets lost), one panel per sweep, one line
    per model with its Wilson band; the model's accuracy on the original as a dotted line of the same colour."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    conditions = [res.parsed[c] for _, c in res.conditions()]
    sweeps = find_loss_sweeps(conditions) if loss else find_sweeps(conditions)
    if not sweeps:
        return []
    models = models or res.models
    # more than PANEL_MODELS models with their bands in one panel are unreadable: one row of panels per group
    # of models, each with the first model (the base, where present) as the reference
    first, rest = models[0], models[1:]
    groups = [[first, *rest[i:i + PANEL_MODELS - 1]] for i in range(0, max(1, len(rest)), PANEL_MODELS - 1)]
    fig, axes = plt.subplots(len(groups), len(sweeps), figsize=(5.2 * len(sweeps) + 2.5, 4.4 * len(groups)),
                             dpi=120, squeeze=False)
    styles = styles_for(models)
    for row, group in zip(axes, groups):
        _panels(res, row, sweeps, group, [styles[m] for m in group], loss=loss)
    from codecbench.report.figures import save_figure
    return save_figure(fig, out_base, formats)


def _panels(res, axes, sweeps: dict, models: list[str], styles: list[SeriesStyle], *, loss: bool = False) -> None:
    """One panel per sweep: bit rate on a log axis, or (``loss``) the share of packets lost on a linear one."""
    from codecbench.results.stats import wilson_interval

    for ax, (codec, points) in zip(axes, sweeps.items()):
        for model, style in zip(models, styles):
            colour = style.colour
            cells = [(k, res.get(model, name)) for k, name in points]
            cells = [(k, c) for k, c in cells if c]
            if not cells:
                continue
            ks = [k for k, _ in cells]
            acc = [c["accuracy"] for _, c in cells]
            bands = [wilson_interval(int(c["correct"]), int(c["n"])) for _, c in cells]
            ax.plot(ks, acc, marker=style.mpl_marker, ms=4, lw=1.4, ls=style.mpl_linestyle, color=colour, label=model)
            ax.fill_between(ks, [b[0] for b in bands], [b[1] for b in bands], color=colour, alpha=0.12, lw=0)
            original = res.get(model, "wav")
            if original:
                ax.axhline(original["accuracy"], color=colour, ls=":", lw=0.9)
        if not loss:
            ax.set_xscale("log")
        ticks = [k for k, _ in points]
        ax.set_xticks(ticks)
        ax.set_xticklabels([f"{k:g}" for k in ticks], rotation=60, fontsize=7)
        ax.minorticks_off()
        ax.set_xlabel(f"{codec}: packets lost (%)" if loss else f"{codec} bit rate (kbps, log scale)")
        ax.set_ylabel("accuracy")
        ax.set_title(f"{codec}: dotted = the model on the original", fontsize=9)
        ax.grid(alpha=0.3)
    axes[-1].legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False, title="model",
                    title_fontsize=7)
