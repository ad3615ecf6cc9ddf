"""Results of benchmark runs: per-clip predictions, probabilities and metrics as CSV and JSON, and a SQLite history.

A run folder holds one JSON file per (model, condition) as soon as it is evaluated, so an
interrupted run keeps what it finished; :func:`write_run` merges them into ``results.json``,
``accuracy.csv`` and ``predictions.csv``. Every result is also appended to
``history.sqlite``, so accuracy over time can be queried with plain SQL.
"""
from __future__ import annotations

import dataclasses
import json
import sqlite3
import time
from pathlib import Path

import pandas as pd
from tabulate import tabulate

from codecbench.core.fsutil import atomic_write, file_lock
from codecbench.errors import DataError
from codecbench.results.rows import METRIC_COLUMNS, facts_of_cells, row_problem
from codecbench.zoo import sort_key

FORMAT_VERSION = 1
#: How long a run waits for another process's lock on the history before naming it as locked
HISTORY_LOCK_TIMEOUT_S = 10.0
ACCURACY_COLUMNS = ["model", "condition", "category", "n", "correct", "accuracy", "ci_low", "ci_high",
                    *METRIC_COLUMNS, "achieved_kbps", "threshold", "baseline_accuracy", "p_value", "outcome",
                    "model_sha256"]


class ResultsError(DataError, ValueError):
    """A results file or folder that cannot be used; the message names it."""


def item_path(run_dir: Path, model: str, condition: str) -> Path:
    return run_dir / "items" / f"{model}--{condition.replace('@', '_')}.json"


def write_item(run_dir: Path, record: dict) -> None:
    atomic_write(item_path(run_dir, record["model"], record["condition"]), json.dumps(record), fsync=False)


def read_items(run_dir: Path) -> list[dict]:
    return [json.loads(p.read_text()) for p in sorted((run_dir / "items").glob("*.json"))]


def write_run(results_dir: Path, run_dir: Path, meta: dict) -> dict:
    """Merge a run's items into the results files of ``results_dir`` (and keep a copy in ``run_dir``)."""

    items = read_items(run_dir)
    doc = {"format": FORMAT_VERSION, "meta": meta, "results": items}
    text = json.dumps(doc, indent=1)
    atomic_write(run_dir / "results.json", text, fsync=False)
    acc = pd.DataFrame([{k: r.get(k) for k in ACCURACY_COLUMNS} for r in items], columns=ACCURACY_COLUMNS)
    digests = meta.get("dataset", {}).get("clip_digests") or {}
    rows = [{"model": r["model"], "condition": r["condition"], "clip": clip, "clip_sha256": digests.get(clip),
             "label": label, "prediction": pred}
            for r in items for clip, label, pred in zip(r["clips"], r["labels"], r["predictions"])]
    # two runs finishing into one results folder wait for each other: its three files always come from one run
    with file_lock(results_dir / ".results.lock"):
        atomic_write(results_dir / "results.json", text, fsync=False)
        atomic_write(results_dir / "accuracy.csv", acc.to_csv(index=False, float_format="%.6g"), fsync=False)
        atomic_write(results_dir / "predictions.csv", pd.DataFrame(rows).to_csv(index=False), fsync=False)
    return doc


def load_results(path: str | Path) -> dict:
    """A results.json (or a folder holding one), checked for its format version."""
    path = Path(path)
    if path.is_dir():
        path = path / "results.json"
    if not path.is_file():
        raise ResultsError(f"{path}: no results file; run `pytest benchmarks/` first (it writes reports/results.json)")
    try:
        doc = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise ResultsError(f"{path}: not valid JSON ({exc})") from None
    if not isinstance(doc, dict) or "results" not in doc:
        raise ResultsError(f"{path}: not a codecbench results file (no 'results' list)")
    if doc.get("format") != FORMAT_VERSION:
        raise ResultsError(f"{path}: results format {doc.get('format')!r}, this codecbench reads format "
                           f"{FORMAT_VERSION}; re-run the benchmark to regenerate it")
    if not isinstance(doc["results"], list):
        raise ResultsError(f"{path}: 'results' is not a list")
    for i, row in enumerate(doc["results"]):
        problem = row_problem(row)
        if problem:
            where = (f" ({row.get('model')!r} on {row.get('condition')!r})" if isinstance(row, dict) else "")
            raise ResultsError(f"{path}: results[{i}]{where}: {problem}; the file was altered or damaged: re-run "
                               "the benchmark, or restore it from runs/<run id>/results.json")
    return doc


SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (run_id TEXT PRIMARY KEY, started TEXT, git_commit TEXT, dataset TEXT,
    dataset_fingerprint TEXT, split TEXT, matrix TEXT, meta TEXT);
CREATE TABLE IF NOT EXISTS results (run_id TEXT, model TEXT, model_sha256 TEXT, condition TEXT, category TEXT,
    n INTEGER, correct INTEGER, accuracy REAL, ci_low REAL, ci_high REAL, achieved_kbps REAL, outcome TEXT,
    recorded TEXT, record TEXT, PRIMARY KEY (run_id, model, condition));
"""


class HistoryError(ResultsError):
    """The SQLite history cannot be read or written; the message names it and how to recover. A run's results
    never depend on it: they are in the run folder first."""


def _history_failure(path: Path, exc: BaseException) -> HistoryError:
    return HistoryError(f"{path}: the results history cannot be used ({type(exc).__name__}: {exc}); every run's "
                        "results are also in runs/<run id>/ beside it: `codecbench history check` tells what is "
                        "wrong, `codecbench history rebuild` sets the broken file aside and rebuilds the history "
                        "from the run folders")


def history_connect(path: Path) -> sqlite3.Connection:
    """The history for writing (created if missing); a corrupt, locked or unwritable one is a HistoryError."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        con = sqlite3.connect(path, timeout=HISTORY_LOCK_TIMEOUT_S)
        # a rollback journal, not WAL: a reader then opens the file read-only without creating -wal/-shm files
        # beside it (so a read-only or shared results folder reads), and writers hold the lock only briefly
        con.execute("PRAGMA journal_mode=DELETE")
        con.executescript(SCHEMA)
        columns = {row[1] for row in con.execute("PRAGMA table_info(results)")}
        if "record" not in columns:  # a history written before per-clip records were kept
            con.execute("ALTER TABLE results ADD COLUMN record TEXT")
    except (sqlite3.Error, OSError) as exc:
        raise _history_failure(path, exc) from None
    return con


def history_read(path: Path) -> sqlite3.Connection:
    """The history opened read-only (a read-only results folder, or a copy on a shared drive, reads too)."""
    if not Path(path).is_file():
        raise ResultsError(f"{path}: no results history; run `pytest benchmarks/` first")
    uri = Path(path).resolve().as_uri()
    with open(path, "rb") as fh:
        header = fh.read(20)
    wal = Path(f"{path}-wal")
    # a history written in WAL mode by an older codecbench: with nothing pending in its WAL it is read as an
    # immutable file, which creates no -wal/-shm files beside it
    mode = "immutable=1" if len(header) == 20 and header[18] == 2 and not (wal.exists() and wal.stat().st_size) \
        else "mode=ro"
    try:
        con = sqlite3.connect(f"{uri}?{mode}", uri=True, timeout=HISTORY_LOCK_TIMEOUT_S)
        con.execute("SELECT count(*) FROM sqlite_master").fetchone()
    except sqlite3.Error as exc:
        raise _history_failure(Path(path), exc) from None
    return con


def _write(path: Path, sql: str, values: tuple) -> None:
    con = history_connect(path)
    try:
        with con:
            con.execute(sql, values)
    except sqlite3.Error as exc:
        raise _history_failure(path, exc) from None
    finally:
        con.close()


def record_run(path: Path, run_id: str, meta: dict) -> None:
    _write(path, "INSERT OR IGNORE INTO runs VALUES (?,?,?,?,?,?,?,?)",
           (run_id, meta.get("started"), meta.get("git_commit"), meta.get("dataset", {}).get("name"),
            meta.get("dataset", {}).get("fingerprint"), meta.get("dataset", {}).get("split"),
            meta.get("matrix", {}).get("name"), json.dumps(meta)))


def record_result(path: Path, run_id: str, r: dict, recorded: str) -> None:
    _write(path, "INSERT OR REPLACE INTO results VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
           (run_id, r["model"], r["model_sha256"], r["condition"], r["category"], r["n"], r["correct"],
            r["accuracy"], r["ci_low"], r["ci_high"], r["achieved_kbps"], r.get("outcome"), recorded,
            json.dumps(r)))


def check_history(path: Path) -> list[str]:
    """What is wrong with a history file (empty: nothing)."""
    try:
        con = history_read(path)
        try:
            problems = [row[0] for row in con.execute("PRAGMA integrity_check")]
            tables = {row[0] for row in con.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        finally:
            con.close()
    except (ResultsError, sqlite3.Error) as exc:
        return [str(exc)]
    problems = [p for p in problems if p != "ok"]
    return problems + [f"table {t!r} is missing" for t in ("runs", "results") if t not in tables]


def rebuild_history(results_dir: Path) -> tuple[Path | None, int, int]:
    """Set a history aside (renamed ``history.sqlite.broken-<time>``) and record every run folder's meta and
    items anew; return (where the old one went, runs, results)."""

    results_dir = Path(results_dir)
    path = results_dir / "history.sqlite"
    aside = None
    if path.exists():
        aside = path.with_name(f"history.sqlite.broken-{time.strftime('%Y%m%dT%H%M%S')}")
        path.replace(aside)
        for extra in ("-wal", "-shm"):
            Path(f"{path}{extra}").unlink(missing_ok=True)
    runs = results = 0
    for run_dir in sorted((results_dir / "runs").glob("*/")):
        meta_path = run_dir / "meta.json"
        meta = json.loads(meta_path.read_text()) if meta_path.is_file() else {"run_id": run_dir.name}
        items = read_items(run_dir)
        if not items:
            continue
        record_run(path, run_dir.name, meta)
        runs += 1
        for item in items:
            record_result(path, run_dir.name, item, meta.get("started") or "")
            results += 1
    return aside, runs, results


def latest_document(path: Path, run_id: str | None = None) -> dict:
    """A results document from the history: exactly run ``run_id``, or else, for every (model, condition), the
    latest result recorded for the dataset fingerprint and matrix of the most recent run.

    Each result carries ``run_id``; ``meta`` is the most recent run's, with ``composed_from`` listing the runs
    that contributed (cells from older runs are marked in the report).
    """
    con = history_read(Path(path))
    try:
        rows = con.execute("SELECT run_id, started, dataset_fingerprint, meta FROM runs ORDER BY started, run_id")
        runs = [(rid, started, fp, json.loads(meta)) for rid, started, fp, meta in rows]
        if not runs:
            raise ResultsError(f"{path}: the history holds no runs yet; run `pytest benchmarks/` first")
        by_id = {r[0]: r for r in runs}
        if run_id is not None:
            if run_id not in by_id:
                raise ResultsError(f"{path}: no run {run_id!r}; recorded runs: {', '.join(by_id)}")
            chosen = [by_id[run_id]]
        else:
            newest = runs[-1]
            chosen = [r for r in runs if _group_key(r[2], r[3]) == _group_key(newest[2], newest[3])]
        return _compose(con, chosen, by_id)
    except sqlite3.Error as exc:
        raise _history_failure(Path(path), exc) from None
    finally:
        con.close()


def _group_key(dataset_fingerprint, meta: dict) -> tuple:
    """Runs whose results may share one table: the same data (by content) and the same matrix."""
    return dataset_fingerprint, json.dumps(meta.get("matrix", {}).get("fingerprint"), sort_keys=True)


def _compose(con, chosen: list, by_id: dict) -> dict:
    """One document of ``chosen`` runs (oldest first): for every (model, condition) the newest result."""
    meta = chosen[-1][3]
    cells: dict = {}
    for rid, *_ in chosen:  # oldest first: newer results replace older ones
        records = con.execute("SELECT model, condition, record FROM results WHERE run_id = ? AND record IS NOT NULL",
                              (rid,)).fetchall()
        for model, condition, record in records:
            cells[(model, condition)] = {**json.loads(record), "run_id": rid}
    used = sorted({r["run_id"] for r in cells.values()}, key=lambda rid: by_id[rid][1] or "")
    return {"format": FORMAT_VERSION, "meta": {**meta, **facts_of_cells(cells, by_id), "composed_from": used},
            "results": list(cells.values())}


def history_groups(path: Path) -> list[dict]:
    """Every (dataset, matrix) of a results history as one document, the newest result per cell; newest first."""
    con = history_read(Path(path))
    try:
        rows = con.execute("SELECT run_id, started, dataset_fingerprint, meta FROM runs ORDER BY started, run_id")
        runs = [(rid, started, fp, json.loads(meta)) for rid, started, fp, meta in rows]
        by_id = {r[0]: r for r in runs}
        groups: dict[tuple, list] = {}
        for run in runs:
            groups.setdefault(_group_key(run[2], run[3]), []).append(run)
        documents = [_compose(con, chosen, by_id) for chosen in groups.values()]
    except sqlite3.Error as exc:
        raise _history_failure(Path(path), exc) from None
    finally:
        con.close()
    return sorted((d for d in documents if d["results"]), key=lambda d: d["meta"].get("started") or "", reverse=True)


def leaderboard_documents(sources: list[Path]) -> list[dict]:
    """The documents of a leaderboard: from results histories, results folders or results.json files, merged
    per (dataset, matrix) with the newest result of each (model, condition); rows of different data or matrices
    are never merged."""
    documents: list[dict] = []
    for source in map(Path, sources):
        history = source / "history.sqlite"
        if source.is_dir() and history.is_file():
            documents += history_groups(history)
        else:
            doc = load_results(source)
            run = doc.get("meta", {}).get("run_id")
            documents.append({**doc, "results": [{"run_id": run, **r} for r in doc["results"]]})
    merged: dict[tuple, dict] = {}
    # each source document describes the models and conditions of its own cells: facts are taken per cell from
    # the document that provided it (the newest), as the history's composition takes them per run
    sources_meta: dict[str, tuple] = {}
    ordered = sorted(documents, key=lambda d: d["meta"].get("started") or "")  # oldest first
    for index, doc in enumerate(ordered):
        meta = doc["meta"]
        source_id = f"doc{index:06d}"
        sources_meta[source_id] = (source_id, f"{index:06d}", None, meta)
        key = _group_key(meta.get("dataset", {}).get("fingerprint"), meta)
        into = merged.setdefault(key, {"format": FORMAT_VERSION, "meta": meta, "results": {}, "origin": {}})
        into["meta"] = {**meta, "composed_from": sorted({*into["meta"].get("composed_from", []),
                                                         *meta.get("composed_from", [meta.get("run_id")])} - {None})}
        for r in doc["results"]:
            into["results"][(r["model"], r["condition"])] = r
            into["origin"][(r["model"], r["condition"])] = {"run_id": source_id}
    if not merged:
        raise ResultsError(f"no results in {', '.join(map(str, sources))}; run `pytest benchmarks/` first")
    return [{"format": d["format"], "meta": {**d["meta"], **facts_of_cells(d["origin"], sources_meta)},
             "results": list(d["results"].values())}
            for d in sorted(merged.values(), key=lambda d: d["meta"].get("started") or "", reverse=True)]


def summary_table(rows: list[dict], matrix) -> str:
    """Accuracy per model (rows) and condition (columns), in matrix order."""


    order = [c.name for c in matrix.validation]
    conditions = [c for c in order if any(r["condition"] == c for r in rows)]
    conditions += sorted({r["condition"] for r in rows} - set(conditions))
    models = sorted({r["model"] for r in rows}, key=sort_key)
    cell = {(r["model"], r["condition"]): r for r in rows}
    table = [[m] + [(f"{cell[m, c]['accuracy']:.3f}" + ("!" if cell[m, c].get("outcome") == "failed" else ""))
                    if (m, c) in cell else "" for c in conditions] for m in models]
    failed = any(r.get("outcome") == "failed" for r in rows)
    return tabulate(table, headers=["model"] + conditions, tablefmt="github", disable_numparse=True) + \
        ("\n(! = failed its check)" if failed else "")


# --------------------------------------------------------------------------- comparing two runs' datasets

@dataclasses.dataclass(frozen=True)
class DatasetMatch:
    """Whether two runs scored comparable data, and on which clips to compare them."""

    comparable: bool
    #: Clip keys whose content is equal in both runs (None: every clip, the datasets are identical).
    clips: frozenset | None
    changed: int
    total: int
    reason: str


def compare_datasets(reference: dict, candidate: dict, *, max_changed: float) -> DatasetMatch:
    """Compare the ``dataset`` sections of two runs' metadata by content and recipe, never by machine.

    Identical content (fingerprints) compares on every clip. The same clip keys (and, for generated data, the
    same recipe) with some clip contents differing compares on the clips whose content is equal, unless more
    than ``max_changed`` (a fraction) of them differ. Different keys or recipes are not comparable.
    """
    ref, cand = reference.get("dataset", {}), candidate.get("dataset", {})
    describe = lambda d: f"{d.get('name')} split {d.get('split')} (fingerprint {d.get('fingerprint')})"
    if ref.get("fingerprint") and ref.get("fingerprint") == cand.get("fingerprint"):
        n = len(cand.get("clip_digests") or ref.get("clip_digests") or {})
        return DatasetMatch(True, None, 0, n, "same content")
    if ref.get("recipe") != cand.get("recipe"):
        return DatasetMatch(False, None, 0, 0, f"the baseline was recorded on {describe(ref)} made by recipe "
                            f"{json.dumps(ref.get('recipe'), sort_keys=True)}, this run on {describe(cand)} made by "
                            f"recipe {json.dumps(cand.get('recipe'), sort_keys=True)}")
    ref_digests, cand_digests = ref.get("clip_digests"), cand.get("clip_digests")
    if not ref_digests or not cand_digests:
        which = "the baseline" if not ref_digests else "this run"
        return DatasetMatch(False, None, 0, 0, f"the datasets differ ({describe(ref)} against {describe(cand)}) "
                            f"and {which} recorded no per-clip digests to find the equal clips; re-record it")
    if set(ref_digests) != set(cand_digests):
        only_ref, only_cand = sorted(set(ref_digests) - set(cand_digests)), sorted(set(cand_digests) - set(ref_digests))
        examples = ", ".join((only_ref + only_cand)[:3])
        return DatasetMatch(False, None, 0, 0, f"different clips: {len(only_ref)} only in the baseline, "
                            f"{len(only_cand)} only in this run (e.g. {examples})")
    equal = frozenset(k for k, d in cand_digests.items() if ref_digests[k] == d)
    total, changed = len(cand_digests), len(cand_digests) - len(equal)
    if changed == 0:
        # the fingerprint covers keys, labels and contents: with every content equal, the labels differ
        return DatasetMatch(False, None, 0, total, f"the same audio, labelled differently ({describe(ref)} "
                            f"against {describe(cand)})")
    share = changed / total if total else 0.0
    if share > max_changed or not equal:
        return DatasetMatch(False, equal, changed, total, f"{changed} of {total} clips differ in content "
                            f"({share:.1%}), more than the {max_changed:.1%} allowed "
                            "(--baseline-max-changed); the same keys and recipe, yet other audio")
    return DatasetMatch(True, equal, changed, total, f"{changed} of {total} clips differ in content ({share:.1%}); "
                        f"compared on the {len(equal)} clips whose content is equal")


def restrict_record(record: dict, clips: frozenset | None) -> dict:
    """A result record narrowed to ``clips`` (None: unchanged)."""
    if clips is None:
        return record
    keep = [i for i, c in enumerate(record["clips"]) if c in clips]
    out = dict(record)
    for key in ("clips", "labels", "predictions"):
        out[key] = [record[key][i] for i in keep]
    return out

