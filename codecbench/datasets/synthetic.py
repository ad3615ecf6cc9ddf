"""The embedded default: synthetic scenes written in the TAU layout, checked against the packaged manifest."""
from __future__ import annotations

import hashlib
import io
import json
import os
import sys
import time
from pathlib import Path
from typing import Any, Callable, Iterable

import numpy as np
import pandas as pd
import soundfile as sf

from codecbench.core.bitexact import quantize_pcm
from codecbench.core.cache import Cache, default_cache_dir
from codecbench.core.fsutil import atomic_write, file_digest, file_lock
from codecbench.core.parallel import parallel_map, usable_cores
from codecbench.core.progress import duration_text, progress
from codecbench.datasets.base import DatasetError, device_of
from codecbench.datasets.synth import DEVICES, SCENES
from codecbench.datasets.tau import SPLIT_FILES


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


SYNTHETIC_DEFAULTS: dict[str, Any] = {"seed": 0, "clips_per_class": {"train": 60, "evaluate": 30}, "duration": 2.0,
                      "sample_rate": 44100}


#: Bumped whenever a clip's bytes change. 6: the same bytes on every CPU (see codecbench.core.bitexact).
SYNTHETIC_VERSION = 6


def synthesize(cache_dir=None, seed: int = 0, clips_per_class: dict | None = None, duration: float = 2.0,
               sample_rate: int = 44100, out_dir: str | os.PathLike | None = None,
               splits: Iterable[str] | None = None, log: Callable[[str], None] | None = None) -> Path:
    """Write synthetic scenes in the TAU layout once per parameters; return the root folder.

    The listing (split files, ``meta.csv``, the recipe) is written for every split at once, the audio only for
    ``splits`` (default: all; ``()``: the listing only), so a benchmark that reads the evaluation split never waits
    for the training clips. A split's audio is generated once, with progress (``log`` gets the first line, with an
    estimate of the time it takes), and marked complete in ``generated/<split>``.

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
    wanted = [s for s in (clips_per_class if splits is None else splits) if int(clips_per_class.get(s, 0)) > 0]
    if (root / RECIPE_FILE).is_file() and not pending_splits(root, wanted):
        return root
    if not out_dir:
        Cache(default_cache_dir(cache_dir)).mark()
    root.parent.mkdir(parents=True, exist_ok=True)
    with file_lock(root.parent / f"{root.name}.lock"):
        clips = synthetic_clips(seed, clips_per_class)
        if not (root / RECIPE_FILE).is_file():
            _write_listing(root, clips)
            atomic_write(root / RECIPE_FILE, json.dumps(params, indent=2))  # written after the listing
        for split in pending_splits(root, wanted):  # another process may have finished some while we waited
            _generate_split(root, split, [c for c in clips if c[1] == split], duration, sample_rate, log)
    return root


#: Seconds a pool of generating workers takes to start (a fresh interpreter importing numpy, SciPy and the
#: generator; about 1 s on a 2-core machine): a split whose generation the pool would shorten by less is generated
#: in the calling process.
POOL_STARTUP_S = 1.0

#: The recipe of a generated folder (its parameters and generator version).
RECIPE_FILE = "synthetic.json"


def pending_splits(root: Path, splits: Iterable[str]) -> list[str]:
    """The ``splits`` of a synthetic folder whose audio is not (yet) complete."""
    if not (root / RECIPE_FILE).is_file():
        return list(splits)
    marks = root / "generated"
    if not marks.is_dir():  # a folder of codecbench < 0.9 generated every split before writing its recipe
        return []
    return [s for s in splits if not (marks / s).is_file()]


def _write_listing(root: Path, clips: list[tuple[str, str, int, int, str]]) -> None:
    (root / "audio").mkdir(parents=True, exist_ok=True)
    (root / "evaluation_setup").mkdir(exist_ok=True)
    (root / "generated").mkdir(exist_ok=True)  # before the recipe: marks this folder as generated split by split
    rows: dict[str, list[tuple[str, str]]] = {}
    for fname, split, ci, _, _ in clips:
        rows.setdefault(split, []).append((fname, SCENES[ci]))
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
                 "downloaded. For real results use the TAU 2020 Mobile development set (DCASE 2020 Task 1a).\n"
                 "Each split's audio is generated when it is first used (generated/<split> marks it complete).\n",
                 fsync=False)


def _generate_split(root: Path, split: str, clips: list, duration: float, sample_rate: int,
                    log: Callable[[str], None] | None) -> None:


    say = log or (lambda message: print(message, file=sys.stderr, flush=True))
    tasks = [(str(root / fname), ci, clip_seed, device, duration, sample_rate)
             for fname, _, ci, clip_seed, device in clips]
    workers = min(16, usable_cores(), len(tasks))
    say(f"codecbench: generating the embedded default's {split} split: {len(tasks)} synthetic clips of "
        f"{duration:g} s into {root} (first use only; then cached)")
    start = time.perf_counter()
    _write_scene(tasks[0])  # timed: the estimate below is this machine's
    first = time.perf_counter() - start
    if first * (len(tasks) - 1) * (1 - 1 / workers) <= POOL_STARTUP_S:
        workers = 1  # what the pool would save is less than starting it: generated in this process
    if len(tasks) > 1:
        say(f"codecbench: about {duration_text(first * (len(tasks) - 1) / workers)} on {workers} "
            f"core{'s' if workers > 1 else ''} ({first:.2f} s per clip)")
    bar = progress(len(tasks), f"generating {split} clips")
    bar.update(1)
    try:
        for _ in parallel_map(_write_scene, tasks[1:], jobs=workers):
            bar.update(1)
    finally:
        bar.close()
    atomic_write(root / "generated" / split, f"{len(tasks)} clips\n", fsync=False)


def scene_wav_bytes(class_index: int, clip_seed: int, device: str, duration: float, sample_rate: int) -> bytes:
    """One synthetic clip as the bytes of its WAV file: what :func:`synthesize` writes and the manifest hashes."""

    from codecbench.datasets.synth import scene

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


# --------------------------------------------------------------------------- the default's manifest


#: Per-clip SHA-256 of the embedded default, under its recipe: the same on every machine, checked by the tests.
SYNTHETIC_MANIFEST = Path(__file__).resolve().parents[1] / "manifests" / "synthetic-default.sha256"


def synthetic_manifest_text(root: str | os.PathLike) -> str:
    """The manifest of a generated synthetic folder: its recipe, then ``sha256  relative path`` per clip."""
    root = Path(root)
    recipe = json.loads((root / RECIPE_FILE).read_text())
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
    """One synthetic scene of class ``class_index`` recorded on ``device`` (see :mod:`codecbench.datasets.synth`), as
    float32 samples like audio read from a file."""
    from codecbench.datasets.synth import scene
    return scene(class_index, rng, duration, sr, device).astype(np.float32)
