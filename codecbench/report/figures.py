"""The report's static figures (Matplotlib): Figure 2 of the study, and the shared writer."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from codecbench.core.palette import styles_for
from codecbench.report.table import ResultTable
from codecbench.results.stats import wilson_interval
from codecbench.zoo import full_name, model_kind


def figure2(res: ResultTable, out_base: Path, formats=("png", "svg")) -> list[Path]:
    """Write Figure 2 (:func:`draw_figure2`) as ``out_base.<format>``; nothing when the run has no segment model."""
    fig = draw_figure2(res)
    return save_figure(fig, out_base, formats) if fig is not None else []


def draw_figure2(res: ResultTable):
    """Accuracy change vs base per fine-tuned segment, the full model dotted in the same colour (a Matplotlib figure,
    or None without base and segment models)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    segs = [(model_kind(m)[1], m) for m in res.models if model_kind(m)[0] == "segment"]
    if "base" not in res.models or not segs:
        return None
    segs.sort()
    fig, ax = plt.subplots(figsize=(11, 5.2), dpi=120)
    styles = styles_for(cond for _, cond in res.conditions())
    offsets = np.linspace(-0.2, 0.2, max(1, len(res.conditions())))
    for (cat, cond), dx in zip(res.conditions(), offsets):
        base = res.get("base", cond)
        if not base:
            continue
        xs, ys, lo, hi = [], [], [], []
        for k, m in segs:
            cell = res.get(m, cond)
            if not cell:
                continue
            low, high = wilson_interval(int(cell["correct"]), int(cell["n"]))
            xs.append(k + dx)
            ys.append(cell["accuracy"] - base["accuracy"])
            lo.append(cell["accuracy"] - low)
            hi.append(high - cell["accuracy"])
        style = styles[cond]
        colour = style.colour
        # measured segments only: points with their intervals, and a line only between neighbouring segments,
        # so a gap (segments not fine-tuned) is never drawn over as if it had been measured
        ax.errorbar(xs, ys, yerr=[lo, hi], marker=style.mpl_marker, ms=5, ls="none", capsize=2, color=colour,
                    label=f"{cond} ({cat})")
        for (x1, y1), (x2, y2) in zip(zip(xs, ys), zip(xs[1:], ys[1:])):
            if round(x2 - x1) == 1:
                ax.plot([x1, x2], [y1, y2], color=colour, lw=1.5, ls=style.mpl_linestyle)
        full = res.get(full_name(10), cond)
        if full:
            ax.axhline(full["accuracy"] - base["accuracy"], color=colour, ls=":", lw=1.2, alpha=0.9)
    ax.axhline(0, color="black", lw=0.8)
    ax.set_xticks([k for k, _ in segs])
    ax.set_xlabel("fine-tuned segment (1-9: convolution + BatchNorm, 10: channel attention)")
    ax.set_ylabel("accuracy change vs base model (absolute)")
    dataset = res.meta.get("dataset", {}).get("name", "?")
    ax.set_title(f"Segmental fine-tuning ({dataset}): markers = one segment fine-tuned alone, "
                 "dotted = the full model (10 epochs)", fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0), title="condition (category)",
              title_fontsize=8, frameon=False)
    return fig


def save_figure(fig, out_base: Path, formats) -> list[Path]:
    """Write ``fig`` as ``out_base.<format>`` for each format, close it, and return the paths."""
    import matplotlib.pyplot as plt

    fig.tight_layout()
    paths = []
    for fmt in formats:
        path = out_base.with_suffix(f".{fmt}")
        # the same figure gives the same file: no creation date, element ids from a fixed salt (a re-rendered
        # report otherwise differed in every SVG line that names an id)
        with plt.rc_context({"svg.hashsalt": "codecbench"}):
            fig.savefig(path, metadata={"Date": None} if fmt in ("svg", "pdf") else None)
        paths.append(path)
    plt.close(fig)
    return paths
