"""Submissions: one model's results as one file another lab can add to a shared board, compared by content.

A submission (:func:`make_submission`, ``codecbench submit``) holds

- a model card: name, parameters, kind, front-end, the model file's SHA-256, and the training data and licence as
  the submitter declares them;
- per condition, every clip's label, prediction and probabilities (float16);
- the dataset's content fingerprint: its recipe and every clip's SHA-256;
- the matrix: each condition with its category and the codec library (and version) that coded it;
- the codecbench version that wrote it.

A board (:class:`Board`, ``codecbench leaderboard --add``) takes submissions whose dataset and conditions are the
board's by content: the same clips (by digest), labelled alike, the same conditions coded by the same codec
libraries. A mismatch is refused naming what differs. Every figure the board shows is recomputed from the per-clip
data; a number a submission states is never read.
"""
from __future__ import annotations

import json
from importlib import metadata
from pathlib import Path

from codecbench.core.fsutil import atomic_write
from codecbench.errors import DataError, UsageError
from codecbench.results.rows import record_metrics, row_problem
from codecbench.results.stats import wilson_interval
from codecbench.zoo import ZooError, check_name

FORMAT = "codecbench-submission"
VERSION = 1
#: What a record of a submission carries: the per-clip data, nothing computed from it.
PER_CLIP = ("model", "condition", "category", "n", "clips", "labels", "predictions", "probabilities",
            "achieved_kbps", "skipped")


def _version() -> str:
    try:
        return metadata.version("codecbench")
    except metadata.PackageNotFoundError:  # run from a source tree that was never installed
        return "unknown"


class SubmissionError(DataError):
    """A submission that cannot be written or added; the message names the file and what differs."""


def make_submission(doc: dict, model: str, *, training_data: str | None = None, licence: str | None = None,
                    source: str = "results") -> dict:
    """The submission of ``model`` from a results document (a results.json as loaded)."""
    meta = doc.get("meta", {})
    records = [r for r in doc["results"] if r["model"] == model]
    if not records:
        models = sorted({r["model"] for r in doc["results"]})
        raise UsageError(f"{source}: no results of model {model!r}; it holds {', '.join(models) or 'none'}")
    missing = [r["condition"] for r in records if r.get("probabilities") is None]
    if missing:
        raise SubmissionError(f"{source}: {model} on {', '.join(missing)} has no per-clip probabilities (results of "
                              "an older codecbench); re-run the benchmark for this model before submitting")
    dataset = meta.get("dataset", {})
    if not dataset.get("clip_digests"):
        raise SubmissionError(f"{source}: the run recorded no clip digests, so its dataset cannot be compared by "
                              "content; re-run the benchmark with this codecbench")
    facts = meta.get("model_facts", {}).get(model, {})
    codec_facts = meta.get("codec_facts", {})
    conditions = {}
    for r in records:
        library = "none (uncoded)" if r["condition"] == "wav" else \
            (codec_facts.get(r["condition"]) or {}).get("library")
        if not library:
            raise SubmissionError(f"{source}: the run recorded no codec library for {r['condition']} (codec facts "
                                  "of an older codecbench); re-run the benchmark before submitting")
        conditions[r["condition"]] = {"category": r.get("category"), "library": library}
    return {
        "format": FORMAT, "version": VERSION, "codecbench": _version(),
        "model": {"name": model, "sha256": meta.get("models", {}).get(model), "params": facts.get("params"),
                  "kind": facts.get("kind"), "frontend": facts.get("frontend"), "strategy": facts.get("strategy"),
                  "parent": facts.get("parent"), "training_data": training_data or "undeclared",
                  "licence": licence or "undeclared"},
        "dataset": {k: dataset.get(k) for k in ("name", "split", "fingerprint", "recipe", "clip_digests",
                                               "class_names")},
        "matrix": {"name": meta.get("matrix", {}).get("name"), "conditions": conditions},
        "run": {"run_id": meta.get("run_id"), "started": meta.get("started"),
                "libraries": meta.get("libraries", {})},
        "results": [{k: r.get(k) for k in PER_CLIP} for r in records],
    }


def write_submission(path: str | Path, submission: dict) -> Path:
    path = Path(path)
    atomic_write(path, json.dumps(submission, separators=(",", ":")))
    return path


def read_submission(path: str | Path) -> dict:
    """A submission file, checked for its form and its per-clip data (not yet against a board)."""
    path = Path(path)
    try:
        doc = json.loads(path.read_text())
    except OSError as exc:
        raise SubmissionError(f"{path}: cannot be read ({exc.strerror or exc})") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise SubmissionError(f"{path}: not a JSON submission ({exc})") from None
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise SubmissionError(f"{path}: not a codecbench submission (no \"format\": \"{FORMAT}\")")
    if doc.get("version") != VERSION:
        raise SubmissionError(f"{path}: submission version {doc.get('version')!r}; this codecbench reads {VERSION}")
    for key in ("model", "dataset", "matrix", "results"):
        if key not in doc:
            raise SubmissionError(f"{path}: the submission has no {key!r}")
    try:
        name = check_name(str(doc["model"].get("name")))
    except (AttributeError, ZooError) as exc:  # the file's content: the submission is what to fix
        raise SubmissionError(f"{path}: model name: {exc}") from None
    if not isinstance(doc["results"], list) or not doc["results"]:
        raise SubmissionError(f"{path}: the submission holds no results")
    for i, record in enumerate(doc["results"]):
        if not isinstance(record, dict) or record.get("model") != name:
            raise SubmissionError(f"{path}: results[{i}] is not a result of model {name!r}")
        # only the per-clip data are read: whatever numbers the record states are never looked at
        problem = row_problem({**{k: record.get(k) for k in PER_CLIP if k in record}, **_counts(record)})
        if problem or record.get("probabilities") is None:
            raise SubmissionError(f"{path}: results[{i}] ({record.get('condition')!r}): "
                                  f"{problem or 'no per-clip probabilities'}")
    return doc


def _counts(record: dict) -> dict:
    """A record's count and accuracy with its interval, from its per-clip data (whatever numbers it states)."""
    correct = sum(int(a == b) for a, b in zip(record.get("labels") or [], record.get("predictions") or []))
    n = len(record.get("clips") or [])
    low, high = wilson_interval(correct, n)
    return {"n": n, "correct": correct, "accuracy": correct / n if n else None, "ci_low": low, "ci_high": high}


def _recomputed(record: dict) -> dict:
    """Every number of a record, from its per-clip data: the counts and the bootstrapped metrics."""
    return {**_counts(record), **record_metrics(record)}


def _difference(what: str, ours: set, theirs: set, show: int = 3) -> str:
    parts = []
    if theirs - ours:
        parts.append(f"{len(theirs - ours)} {what} the board lacks ({', '.join(sorted(theirs - ours)[:show])}, ...)")
    if ours - theirs:
        parts.append(f"{len(ours - theirs)} of the board's {what} missing ({', '.join(sorted(ours - theirs)[:show])}"
                     ", ...)")
    return "; ".join(parts)


def check_against(board: dict, submission: dict, source: str) -> None:
    """Refuse ``submission`` where its dataset or conditions differ from the board identity ``board``."""
    ours, theirs = board["dataset"]["clip_digests"], submission["dataset"].get("clip_digests") or {}
    if set(ours) != set(theirs):
        raise SubmissionError(f"{source}: other clips than the board's "
                              f"({_difference('clips', set(ours), set(theirs))})")
    changed = sorted(c for c in ours if ours[c] != theirs[c])
    if changed:
        raise SubmissionError(f"{source}: {len(changed)} clips differ in content from the board's (SHA-256), "
                              f"e.g. {', '.join(changed[:3])}")
    if list(board["dataset"].get("class_names") or []) != list(submission["dataset"].get("class_names") or []):
        raise SubmissionError(f"{source}: classes {submission['dataset'].get('class_names')} differ from the "
                              f"board's {board['dataset'].get('class_names')}")
    mine, given = board["conditions"], submission["matrix"].get("conditions") or {}
    if set(mine) != set(given):
        raise SubmissionError(f"{source}: other conditions than the board's "
                              f"({_difference('conditions', set(mine), set(given))})")
    for condition in sorted(mine):
        if mine[condition]["library"] != given[condition].get("library"):
            raise SubmissionError(f"{source}: condition {condition} was coded by {given[condition].get('library')!r}"
                                  f", the board's by {mine[condition]['library']!r}; a codec library of another "
                                  "version codes other audio")
    labels = board["labels"]
    for record in submission["results"]:
        for clip, label in zip(record["clips"], record["labels"]):
            if labels.get(clip, label) != label:
                raise SubmissionError(f"{source}: {record['condition']}: clip {clip} is labelled {label}, the "
                                      f"board's label is {labels[clip]}")


def identity_of(submission: dict) -> dict:
    """What a board created by ``submission`` requires of every later one: its dataset by content, its conditions
    with their codec libraries, and each clip's label."""
    labels: dict[str, int] = {}
    for record in submission["results"]:
        labels.update(zip(record["clips"], record["labels"]))
    dataset = submission["dataset"]
    return {"dataset": {k: dataset.get(k) for k in ("name", "split", "fingerprint", "recipe", "clip_digests",
                                                   "class_names")},
            "conditions": submission["matrix"]["conditions"], "matrix": submission["matrix"].get("name"),
            "labels": labels}


class Board:
    """A shared leaderboard folder: ``board.json`` (the dataset and conditions every submission must match, set by
    the first one added) and ``submissions/<model>.json``."""

    def __init__(self, root: str | Path):
        self.root = Path(root)
        self.identity_path = self.root / "board.json"
        self.folder = self.root / "submissions"

    def identity(self) -> dict | None:
        if not self.identity_path.is_file():
            return None
        try:
            return json.loads(self.identity_path.read_text())
        except (OSError, ValueError) as exc:
            raise SubmissionError(f"{self.identity_path}: the board's identity cannot be read ({exc})") from None

    def submissions(self) -> list[dict]:
        return [read_submission(p) for p in sorted(self.folder.glob("*.json"))]

    def add(self, paths: list[str | Path], *, replace: bool = False) -> list[str]:
        """Check and add submission files; returns the models added. Nothing is added unless all pass (an empty
        board takes its dataset and conditions from the first)."""
        identity = self.identity()
        incoming = []
        for path in paths:
            submission = read_submission(path)
            if identity is None:
                identity = identity_of(submission)
            check_against(identity, submission, str(path))
            incoming.append((submission, path))
        names = [s["model"]["name"] for s, _ in incoming]
        twice = sorted({n for n in names if names.count(n) > 1})
        if twice:
            raise SubmissionError(f"model {twice[0]!r} is submitted twice in one call")
        for submission, path in incoming:
            target = self.folder / f"{submission['model']['name']}.json"
            if target.exists() and not replace:
                held = json.loads(target.read_text())["model"].get("sha256")
                if held != submission["model"].get("sha256"):
                    raise SubmissionError(f"{path}: the board already holds a model {submission['model']['name']!r} "
                                          "with another file (SHA-256); add it under another name, or --replace")
        self.folder.mkdir(parents=True, exist_ok=True)
        if not self.identity_path.is_file() and identity is not None:
            atomic_write(self.identity_path, json.dumps(identity, indent=1))
        for submission, _ in incoming:
            write_submission(self.folder / f"{submission['model']['name']}.json", submission)
        return names

    def document(self) -> dict:
        """The board as a results document: every submission's records with each number recomputed from its
        per-clip data, and metadata the report reads (model facts from the model cards)."""
        board = self.identity()
        if board is None:
            raise UsageError(f"{self.root}: an empty board; add submissions with codecbench leaderboard --add FILE")
        results, models, facts, cards = [], {}, {}, {}
        for submission in self.submissions():
            card = submission["model"]
            name = card["name"]
            models[name] = card.get("sha256")
            cards[name] = card
            facts[name] = {k: card.get(k) for k in ("params", "kind", "frontend", "strategy", "parent")}
            for record in submission["results"]:
                results.append({**{k: record.get(k) for k in PER_CLIP}, **_recomputed(record),
                                "model_sha256": card.get("sha256")})
        categories: dict[str, list[str]] = {}
        for condition, info in board["conditions"].items():
            categories.setdefault(info.get("category") or "other", []).append(condition)
        return {"format": 1, "meta": {
            "run_id": "board", "dataset": {**board["dataset"]},
            "matrix": {"name": board.get("matrix"), "fingerprint": {"categories": categories}},
            "models": models, "model_facts": facts, "model_cards": cards,
            "codec_facts": {c: {"library": info["library"]} for c, info in board["conditions"].items()}},
            "results": results}
