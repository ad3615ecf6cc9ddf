"""Scene datasets: TAU Urban Acoustic Scenes 2020 Mobile, a folder per class, and synthetic scenes.

All three end up as a :class:`Dataset`: clips per split, each with its path, scene label and
recording device, and the class names in sorted order. The synthetic scenes are written to
disk in the TAU layout and read back by the TAU loader, so the embedded default exercises
the same code path as the real data.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import random
from pathlib import Path

import numpy as np
import pandas as pd
import soundfile as sf

from .bitexact import quantize_pcm
from .cache import default_cache_dir
from .errors import CodecbenchError
from .fsutil import atomic_write, file_digest, file_lock
from .synth import DEVICES, SCENES  # noqa: E402  (the scene names and recording devices)

AUDIO_SUFFIXES = (".wav", ".flac", ".ogg")
SPLIT_FILES = {"train": "fold1_train.csv", "evaluate": "fold1_evaluate.csv", "test": "fold1_test.csv"}


class DatasetError(CodecbenchError, ValueError):
    """A dataset that cannot be used as asked; the message names the file or folder."""


@dataclasses.dataclass(frozen=True)
class Clip:
    path: Path
    label: str | None
    device: str | None
    #: The clip's path relative to the dataset root (POSIX form): its identity in results and pairings.
    key: str = ""

    @property
    def name(self) -> str:
        return self.key or self.path.name


@dataclasses.dataclass
class Dataset:
    name: str
    root: Path
    class_names: list[str]
    splits: dict[str, list[Clip]]
    #: How a generated dataset was made (generator version and parameters); None for recorded data.
    recipe: dict | None = None

    def clips(self, split: str) -> list[Clip]:
        if split not in self.splits:
            raise DatasetError(f"{self.root}: no split {split!r}; available: {', '.join(self.splits)}")
        if not self.splits[split]:
            others = [f"{s} ({len(c)} clips)" for s, c in self.splits.items() if c and s != split]
            raise DatasetError(f"{self.root}: split {split!r} holds no clips"
                               + (f"; use another split ({', '.join(others)}) or add clips" if others
                                  else "; add clips") +
                               (" (a folder per class puts 30 % of each class, rounded, into 'evaluate': "
                                "give each class at least 2 clips)" if self.name.startswith("folder:") else ""))
        return self.splits[split]

    def labels(self, split: str) -> np.ndarray:
        if any(c.label is None for c in self.clips(split)):
            raise DatasetError(f"{self.root}: split {split!r} has unlabelled clips; a classifier cannot be scored")
        index = {c: i for i, c in enumerate(self.class_names)}
        return np.array([index[c.label] for c in self.clips(split)], dtype=np.int64)

    def clip_digests(self, split: str) -> dict[str, str]:
        """The SHA-256 of each clip's file, by clip key: what a run scored, clip by clip."""
        return {clip.key: file_digest(clip.path) for clip in self.clips(split)}

    def fingerprint(self, split: str) -> str:
        """Content fingerprint of a split: clip keys, labels and file digests."""
        h = hashlib.sha256()
        digests = self.clip_digests(split)
        for clip in self.clips(split):
            h.update(f"{clip.key}\t{clip.label}\t{digests[clip.key]}\n".encode())
        return h.hexdigest()[:16]


def make_clip(root: Path, relative: str, label: str | None, device: str | None, *, source: str = "") -> Clip:
    """A clip at ``root / relative``; a path that is absolute or leaves the root is refused (``source`` says where
    it was listed)."""
    rel = str(relative).replace("\\", "/")
    where = f"{source}: " if source else ""
    if not rel or Path(rel).is_absolute() or rel.startswith("/"):
        raise DatasetError(f"{where}{rel!r} is not a path relative to the dataset root {root}")
    normal = os.path.normpath(rel).replace(os.sep, "/")
    if normal == ".." or normal.startswith("../") or normal == ".":
        raise DatasetError(f"{where}{rel!r} leaves the dataset root {root}; split files may only list files "
                           "inside it")
    return Clip(root / normal, label, device, normal)


def check_unique(clips: list[Clip], source: str) -> list[Clip]:
    """Refuse two clips with the same key: results pair clips by key."""
    seen: dict[str, int] = {}
    for i, clip in enumerate(clips):
        if clip.key in seen:
            raise DatasetError(f"{source}: {clip.key!r} is listed twice (entries {seen[clip.key] + 1} and {i + 1}); "
                               "each clip may appear once per split")
        seen[clip.key] = i
    return clips


def device_of(filename: str) -> str | None:
    """The TAU recording device is the last dash-separated token: ``...-6129-a.wav`` -> ``a``."""
    stem = Path(filename).stem
    return stem.rsplit("-", 1)[-1] if "-" in stem else None


def read_split_file(path: str | os.PathLike) -> pd.DataFrame:
    """A TAU split file: tab-separated, header ``filename[\\tscene_label]``, CRLF or LF endings."""
    path = Path(path)
    try:
        frame = pd.read_csv(path, sep="\t", dtype=str, keep_default_na=False)
    except (OSError, pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
        raise DatasetError(f"{path}: cannot read split file ({exc})") from None
    frame.columns = [c.strip() for c in frame.columns]
    if "filename" not in frame.columns:
        raise DatasetError(f"{path}: expected a tab-separated header with 'filename', got {list(frame.columns)}")
    return frame.apply(lambda col: col.str.strip())


TAU2020_MOBILE = "TAU Urban Acoustic Scenes 2020 Mobile, development set (fold 1)"
TAU2020_SPLIT_SIZES = {"train": 13965, "evaluate": 2970}


def load_tau(root: str | os.PathLike, splits=("train", "evaluate"), allow_partial: bool = False,
             name: str | None = None, listing_only: bool = False) -> Dataset:
    """Load the TAU 2020 Mobile layout: ``audio/``, ``meta.csv``, ``evaluation_setup/fold1_*.csv``.

    ``listing_only`` keeps every listed clip, present or not (for planning a run before the audio is there).
    """
    root = Path(root)
    setup = root / "evaluation_setup"
    if not setup.is_dir():
        raise DatasetError(f"{root}: not a TAU dataset folder (no evaluation_setup/ folder)")
    out: dict[str, list[Clip]] = {}
    labels: set[str] = set()
    listed: dict[str, int] = {}
    for split in splits:
        if split not in SPLIT_FILES:
            raise DatasetError(f"{root}: no split {split!r} in the TAU layout; splits: {', '.join(SPLIT_FILES)}")
        file = setup / SPLIT_FILES[split]
        if not file.is_file():
            raise DatasetError(f"{file}: split file not found")
        frame = read_split_file(file)
        has_labels = "scene_label" in frame.columns
        clips = check_unique([make_clip(root, row.filename, row.scene_label if has_labels else None,
                                        device_of(row.filename), source=f"{file}, row {i + 2}")
                              for i, row in enumerate(frame.itertuples(index=False))], str(file))
        missing = [] if listing_only else [c for c in clips if not c.path.is_file()]
        if missing and not allow_partial:
            shown = ", ".join(c.key for c in missing[:5])
            raise DatasetError(f"{root}: {len(missing)} of {len(clips)} audio files of split {split!r} are "
                               f"missing (e.g. {shown}); to use the rest pass allow_partial=True (Python) or "
                               "--allow-partial (codecbench encode); a benchmark scores every clip of its split")
        out[split] = [c for c in clips if c.path.is_file()] if missing else clips
        labels.update(c.label for c in clips if c.label is not None)
        listed[split] = len(clips)
    if name is None:  # named by what it is: a folder in the TAU layout is not necessarily TAU 2020 Mobile
        is_tau2020 = sorted(labels) == list(SCENES) and all(listed.get(k) == v for k, v in TAU2020_SPLIT_SIZES.items()
                                                            if k in listed)
        name = TAU2020_MOBILE if is_tau2020 else f"TAU-layout folder {root.name}"
    return Dataset(name, root, sorted(labels), out)


def load_folder(root: str | os.PathLike, evaluate_fraction: float = 0.3, seed: int = 0) -> Dataset:
    """A folder per class (``root/<label>/*.wav``), split per class deterministically by ``seed``."""
    root = Path(root)
    classes = sorted(p.name for p in root.iterdir() if p.is_dir()) if root.is_dir() else []
    if not classes:
        flat = sorted(p for p in root.iterdir() if p.suffix.lower() in AUDIO_SUFFIXES) if root.is_dir() else []
        if flat:  # unlabelled audio: enough to code and cache it, not to evaluate a classifier
            return Dataset(f"folder:{root.name}", root, [],
                           {"evaluate": [make_clip(root, p.name, None, None) for p in flat]})
        raise DatasetError(f"{root}: expected audio files, or one sub-folder of audio files per class; found none")
    train, evaluate = [], []
    for label in classes:
        files = sorted(p for p in (root / label).iterdir() if p.suffix.lower() in AUDIO_SUFFIXES)
        if not files:
            raise DatasetError(f"{root / label}: no audio files (.wav, .flac, .ogg)")
        random.Random(f"{seed}:{label}").shuffle(files)
        n_eval = max(1, round(len(files) * evaluate_fraction)) if len(files) > 1 else 0
        evaluate += [make_clip(root, p.relative_to(root).as_posix(), label, None) for p in sorted(files[:n_eval])]
        train += [make_clip(root, p.relative_to(root).as_posix(), label, None) for p in sorted(files[n_eval:])]
    return Dataset(f"folder:{root.name}", root, classes, {"train": train, "evaluate": evaluate})


def load_dataset(spec: str | os.PathLike = "synthetic", *, cache_dir=None, allow_partial: bool = False,
                 listing_only: bool = False, splits: tuple[str, ...] | None = None, **synthetic_params) -> Dataset:
    """``"synthetic"`` (the embedded default), a TAU root, or a folder per class.

    Synthetic parameters can ride along in the spec: ``synthetic:train=8,evaluate=4,duration=1,seed=2``.
    """
    text = str(spec)
    if text == "synthetic" or text.startswith("synthetic:"):
        params = {**_parse_synthetic(text), **synthetic_params}
        root = synthesize(cache_dir=cache_dir, **params)
        dataset = load_tau(root, name="synthetic")
        dataset.recipe = json.loads((root / "synthetic.json").read_text())
        return dataset
    root = Path(spec).expanduser()
    if not root.exists():
        raise DatasetError(f"{root}: dataset folder not found (use 'synthetic' for the embedded default)")
    if (root / "evaluation_setup").is_dir():
        # only the splits asked for need their audio: an evaluation-only download benchmarks
        return load_tau(root, splits=splits or ("train", "evaluate"), allow_partial=allow_partial,
                        listing_only=listing_only)
    return load_folder(root)


# --------------------------------------------------------------------------- synthetic scenes

def _parse_synthetic(text: str) -> dict:
    """``synthetic:train=8,evaluate=4,duration=1.0,seed=2`` -> synthesize() keyword arguments."""
    params: dict = {}
    _, _, rest = text.partition(":")
    counts = dict(SYNTHETIC_DEFAULTS["clips_per_class"])
    for part in filter(None, (p.strip() for p in rest.split(","))):
        key, eq, value = part.partition("=")
        known = key in ("train", "evaluate", "duration", "seed")
        try:
            if key in ("train", "evaluate"):
                counts[key] = int(value)
            elif key == "duration":
                params["duration"] = float(value)
            elif key == "seed":
                params["seed"] = int(value)
        except ValueError:
            known = False
        if not known:
            raise DatasetError(f"dataset spec {text!r}: bad parameter {part!r}; expected "
                               "synthetic:train=N,evaluate=N,duration=SECONDS,seed=N") from None
    if rest:
        params["clips_per_class"] = counts
    return params


SYNTHETIC_DEFAULTS = {"seed": 0, "clips_per_class": {"train": 60, "evaluate": 30}, "duration": 2.0,
                      "sample_rate": 44100}
#: Bumped whenever a clip's bytes change. 6: the same bytes on every CPU (see codecbench.bitexact).
SYNTHETIC_VERSION = 6


def synthesize(cache_dir=None, seed: int = 0, clips_per_class: dict | None = None, duration: float = 2.0,
               sample_rate: int = 44100, out_dir: str | os.PathLike | None = None) -> Path:
    """Write synthetic scenes in the TAU layout once per parameters; return the root folder.

    Safe to call from several processes at once (pytest-xdist workers): one generates under a
    lock, the others wait and then find the finished folder.
    """
    clips_per_class = clips_per_class or dict(SYNTHETIC_DEFAULTS["clips_per_class"])
    if any(int(n) < 0 for n in clips_per_class.values()) or not any(int(n) > 0 for n in clips_per_class.values()):
        raise DatasetError(f"synthetic dataset: clips per class {clips_per_class} must be >= 0, some > 0")
    if not duration > 0:
        raise DatasetError(f"synthetic dataset: duration must be positive, got {duration}")
    params = {"seed": seed, "clips_per_class": clips_per_class, "duration": duration,
              "sample_rate": sample_rate, "version": SYNTHETIC_VERSION}
    tag = hashlib.sha256(json.dumps(params, sort_keys=True).encode()).hexdigest()[:12]
    root = Path(out_dir) if out_dir else default_cache_dir(cache_dir) / "datasets" / f"synthetic-{tag}"
    done = root / "synthetic.json"
    if done.is_file():
        return root
    if not out_dir:
        from .cache import Cache
        Cache(default_cache_dir(cache_dir)).mark()
    root.parent.mkdir(parents=True, exist_ok=True)
    with file_lock(root.parent / f"{root.name}.lock"):
        if done.is_file():  # another process finished it while we waited
            return root
        _generate(root, seed, clips_per_class, duration, sample_rate)
        atomic_write(done, json.dumps(params, indent=2))  # written last: a half-generated folder is redone
    return root


def scene_wav_bytes(class_index: int, clip_seed: int, device: str, duration: float, sample_rate: int) -> bytes:
    """One synthetic clip as the bytes of its WAV file: what :func:`synthesize` writes and the manifest hashes."""
    import io

    from .synth import scene

    rng = np.random.default_rng([clip_seed, 1])
    signal = scene(class_index, rng, duration, sample_rate, device)   # float64, quantised once below
    # 24-bit like TAU's files (a 16-bit quantisation floor would fill bands that codecs leave empty), quantised
    # here (round half to even) rather than by libsndfile's float conversion: the integers are what is written
    buffer = io.BytesIO()
    sf.write(buffer, quantize_pcm(signal, bits=24), sample_rate, subtype="PCM_24", format="WAV")
    return buffer.getvalue()


def _write_scene(task) -> None:
    path, class_index, clip_seed, device, duration, sample_rate = task
    data = scene_wav_bytes(class_index, clip_seed, device, duration, sample_rate)
    atomic_write(path, data, fsync=False)


def synthetic_clips(seed: int, clips_per_class: dict) -> list[tuple[str, str, int, int, str]]:
    """Every clip of a synthetic dataset as ``(relative path, split, class index, clip seed, device)``."""
    clips = []
    for split, count in clips_per_class.items():
        for ci, scene in enumerate(SCENES):
            for k in range(int(count)):
                clip_seed = int.from_bytes(hashlib.sha256(f"{seed}:{split}:{scene}:{k}".encode()).digest()[:8],
                                           "little")
                device = DEVICES[int(np.random.default_rng(clip_seed).integers(len(DEVICES)))]
                clips.append((f"audio/{scene}-synth{seed}-{split}{k:04d}-{device}.wav", split, ci, clip_seed, device))
    return clips


def _generate(root: Path, seed: int, clips_per_class: dict, duration: float, sample_rate: int) -> None:
    (root / "audio").mkdir(parents=True, exist_ok=True)
    (root / "evaluation_setup").mkdir(exist_ok=True)
    rows: dict[str, list[tuple[str, str]]] = {split: [] for split in clips_per_class}
    tasks = []
    for fname, split, ci, clip_seed, device in synthetic_clips(seed, clips_per_class):
        tasks.append((str(root / fname), ci, clip_seed, device, duration, sample_rate))
        rows[split].append((fname, SCENES[ci]))
    from .parallel import parallel_map
    for _ in parallel_map(_write_scene, tasks, jobs=min(4, os.cpu_count() or 1)):
        pass
    for split, items in rows.items():
        frame = pd.DataFrame(items, columns=["filename", "scene_label"])
        atomic_write(root / "evaluation_setup" / SPLIT_FILES.get(split, f"fold1_{split}.csv"),
                     frame.to_csv(sep="\t", index=False), fsync=False)
    meta = pd.DataFrame([r for items in rows.values() for r in items], columns=["filename", "scene_label"])
    meta["source_label"] = meta["filename"].map(device_of)
    atomic_write(root / "meta.csv", meta.to_csv(sep="\t", index=False), fsync=False)
    atomic_write(root / "README.txt",
                 "Synthetic acoustic scenes generated by codecbench (NOT real recordings).\n"
                 "They stand in for TAU Urban Acoustic Scenes 2020 Mobile so that the suite runs with nothing\n"
                 "downloaded. For real results use the TAU 2020 Mobile development set (DCASE 2020 Task 1a).\n",
                 fsync=False)


# --------------------------------------------------------------------------- the default's manifest

#: Per-clip SHA-256 of the embedded default, under its recipe: the same on every machine, checked by the tests.
SYNTHETIC_MANIFEST = Path(__file__).resolve().parent / "manifests" / "synthetic-default.sha256"


def synthetic_manifest_text(root: str | os.PathLike) -> str:
    """The manifest of a generated synthetic folder: its recipe, then ``sha256  relative path`` per clip."""
    root = Path(root)
    recipe = json.loads((root / "synthetic.json").read_text())
    lines = [f"# recipe {json.dumps(recipe, sort_keys=True)}"]
    for path in sorted((root / "audio").glob("*.wav")):
        lines.append(f"{file_digest(path)}  audio/{path.name}")
    return "\n".join(lines) + "\n"


def read_synthetic_manifest(path: str | os.PathLike = SYNTHETIC_MANIFEST) -> tuple[dict, dict[str, str]]:
    """``(recipe, {relative path: sha256})`` from a manifest file."""
    path = Path(path)
    recipe, digests = None, {}
    for number, line in enumerate(path.read_text().splitlines(), 1):
        if line.startswith("# recipe "):
            recipe = json.loads(line[len("# recipe "):])
        elif line.strip() and not line.startswith("#"):
            digest, _, name = line.partition("  ")
            if len(digest) != 64 or not name:
                raise DatasetError(f"{path}:{number}: expected 'sha256  relative path', got {line!r}")
            digests[name] = digest
    if recipe is None:
        raise DatasetError(f"{path}: no '# recipe' line")
    return recipe, digests


def regenerate_and_compare(keys, manifest: str | os.PathLike = SYNTHETIC_MANIFEST) -> dict[str, tuple[str, str]]:
    """Generate the clips ``keys`` of a manifest's recipe in memory; return ``{key: (expected, got)}`` for every
    clip whose bytes differ from the manifest."""
    recipe, digests = read_synthetic_manifest(manifest)
    if recipe.get("version") != SYNTHETIC_VERSION:
        raise DatasetError(f"{manifest}: recipe of generator version {recipe.get('version')}, this codecbench "
                           f"generates version {SYNTHETIC_VERSION}")
    known = {c[0]: c for c in synthetic_clips(recipe["seed"], recipe["clips_per_class"])}
    differ = {}
    for key in keys:
        if key not in known or key not in digests:
            raise DatasetError(f"{manifest}: no clip {key!r} in the recipe or the manifest")
        _, _, class_index, clip_seed, device = known[key]
        data = scene_wav_bytes(class_index, clip_seed, device, recipe["duration"], recipe["sample_rate"])
        got = hashlib.sha256(data).hexdigest()
        if got != digests[key]:
            differ[key] = (digests[key], got)
    return differ


def synth_scene(class_index: int, rng: np.random.Generator, duration: float, sr: int, device: str = "a") -> np.ndarray:
    """One synthetic scene of class ``class_index`` recorded on ``device`` (see :mod:`codecbench.synth`), as
    float32 samples like audio read from a file."""
    from .synth import scene
    return scene(class_index, rng, duration, sr, device).astype(np.float32)
