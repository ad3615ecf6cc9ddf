"""Codec facts: what each condition did to the run's own clips (achieved bit rate, surviving bandwidth, and how far
the decode is from the source: mel distance, SNR, SI-SDR).

Measured during the run (:func:`codecbench.core.dsp.measure_bandwidth`, called by the evaluator after coding) and
stored in the run's metadata, so a report shows what was measured on the data it scores, not what a codec does
to a test signal at render time.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
from tabulate import tabulate

from codecbench.report.table import GAP, ResultTable, markdown_text

#: The signal measures of :func:`codecbench.core.dsp.signal_change` (runs of codecbench before 0.3 have none).
SIGNAL_COLUMNS = ("mel_distance_db", "snr_db", "si_sdr_db")


def codec_facts(res: ResultTable) -> pd.DataFrame:
    """Per condition of the results: achieved kbps (mean over models' records), the bandwidth measured during
    the run, the source's bandwidth, and the codec's library."""
    measured = res.meta.get("codec_facts", {})
    rows = []
    for _, cond in res.conditions():
        if res.parsed[cond].is_original:
            continue
        kbps = [c["achieved_kbps"] for (m, c2), c in res.cells.items() if c2 == cond and c.get("achieved_kbps")]
        fact = measured.get(cond, {})
        rows.append({"condition": cond, "achieved_kbps": float(np.mean(kbps)) if kbps else None,
                     "bandwidth_hz": fact.get("bandwidth_hz"), "source_bandwidth_hz": fact.get("source_bandwidth_hz"),
                     "source_sample_rate": _rates(fact.get("source_sample_rate")),
                     "codec_sample_rate": _rates(fact.get("codec_sample_rate")), "library": fact.get("library", ""),
                     "packets_lost": fact.get("packets_lost"),
                     **{k: fact.get(k) for k in SIGNAL_COLUMNS}})
    columns = ["condition", "achieved_kbps", "bandwidth_hz", "source_bandwidth_hz", "source_sample_rate",
               "codec_sample_rate", *SIGNAL_COLUMNS, "library", "packets_lost"]
    if not any(r["packets_lost"] is not None for r in rows):  # a run without packet loss: no such column
        columns.remove("packets_lost")
    return pd.DataFrame(rows, columns=columns)


def _rates(value) -> str | None:
    """One rate or several (a dataset of mixed rates), as text: ``44100`` or ``22050/44100``."""
    if value is None:
        return None
    return "/".join(str(int(v)) for v in (value if isinstance(value, list) else [value]))


def facts_markdown(frame: pd.DataFrame) -> str:
    def khz(v):
        if v is None or (not isinstance(v, str) and pd.isna(v)):
            return GAP
        return " / ".join(f"{float(x) / 1000:g} kHz" for x in str(v).split("/")) if isinstance(v, str) else \
            f"{v / 1000:.1f} kHz"
    lossy = "packets_lost" in frame.columns

    def lost(v):
        return GAP if v is None or pd.isna(v) else f"{100 * v:.1f} %"

    def db(v):
        return GAP if v is None or pd.isna(v) else f"{v:.1f}"

    return tabulate([[r.condition, GAP if pd.isna(r.achieved_kbps) else f"{r.achieved_kbps:.1f}", khz(r.bandwidth_hz),
                      khz(r.source_bandwidth_hz), khz(r.source_sample_rate), khz(r.codec_sample_rate),
                      db(r.mel_distance_db), db(r.snr_db), db(r.si_sdr_db),
                      markdown_text(r.library) if r.library else GAP, *([lost(r.packets_lost)] if lossy else [])]
                     for r in frame.itertuples()],
                    headers=["condition", "achieved kbps", "bandwidth kept", "source bandwidth", "source rate",
                             "codec rate", "mel distance (dB)", "SNR (dB)", "SI-SDR (dB)", "library",
                             *(["packets lost (measured)"] if lossy else [])],
                    tablefmt="github", disable_numparse=True)
