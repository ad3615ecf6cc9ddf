"""The temporary folders of the benchmarks that write paper-size clips (``bench feed``, ``bench fill``, ``bench plan``):
named by a prefix, checked against the free disk before anything is written, removed on exit and on SIGTERM, and
removed by the next run when a run was killed outright."""
from __future__ import annotations

import contextlib
import os
import shutil
import signal
import tempfile
import threading
from pathlib import Path

import numpy as np
import soundfile as sf

from codecbench.core.parallel import parallel_map
from codecbench.datasets import synth_scene
from codecbench.errors import EnvironmentProblem

#: The prefix of the benchmarks' temporary folders (clips, cache), in the system's temporary folder.
FOLDER_PREFIX = "codecbench-feed-"
#: Bytes a clip takes there, as a multiple of its 16-bit WAV: the WAV, its bitstream and its cached features.
BYTES_PER_WAV_BYTE = 2.5


def check_space(clips: int, seconds: float, rate: int, command: str = "bench feed") -> None:
    """Refuse, before anything is written, a run whose clips would not fit the temporary folder (the message names
    ``command``)."""
    where = Path(tempfile.gettempdir())
    need = int(clips * seconds * rate * 2 * BYTES_PER_WAV_BYTE)
    free = shutil.disk_usage(where).free
    if need > free:
        raise EnvironmentProblem(f"{command} --clips {clips}: needs about {need / 1e9:.1f} GB in {where} (clips, "
                                 f"their bitstreams and features), which has {free / 1e9:.1f} GB free; use fewer "
                                 "--clips, or point TMPDIR at a larger disk")


def remove_abandoned() -> None:
    """Remove the temporary folders of earlier runs whose process is gone (killed outright, SIGKILL)."""
    for folder in Path(tempfile.gettempdir()).glob(f"{FOLDER_PREFIX}*"):
        try:
            pid = int((folder / ".pid").read_text())
            os.kill(pid, 0)
        except ProcessLookupError:
            shutil.rmtree(folder, ignore_errors=True)
        except (OSError, ValueError):
            continue  # another user's, or one being set up: not ours to judge


@contextlib.contextmanager
def terminated_as_exit():
    """SIGTERM (a job scheduler's stop, `kill`) ends the run as an exit would, so its temporary folder is removed."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def stop(signum, frame):
        raise SystemExit(128 + signum)

    previous = signal.signal(signal.SIGTERM, stop)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def write_clip(task) -> None:
    """Write one synthetic scene: ``(path, index, seconds, rate)``."""
    path, i, seconds, sr = task
    sf.write(path, synth_scene(i % 10, np.random.default_rng(i), seconds, sr), sr, subtype="PCM_16")


#: Seconds of scenes below which they are synthesised in this process: a scene takes about 0.17 core-s per second
#: of audio, a fresh worker process 3 to 4 s to start, so workers pay only for about a minute of audio or more.
IN_PROCESS_AUDIO_SECONDS = 60.0


def write_clips(paths: list[str], seconds: float, sr: int, cores: int) -> None:
    """Write synthetic scene ``i`` to ``paths[i]``, on ``cores`` worker processes when there is enough to write."""
    jobs = cores if len(paths) * seconds >= IN_PROCESS_AUDIO_SECONDS else 1
    for _ in parallel_map(write_clip, [(p, i, seconds, sr) for i, p in enumerate(paths)], jobs=jobs):
        pass
