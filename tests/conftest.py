import numpy as np
import pytest
import soundfile as sf

from codecbench.cache import Cache
from codecbench.datasets import synth_scene

SR = 44100


@pytest.fixture
def cache(tmp_path):
    return Cache(tmp_path / "cache")


@pytest.fixture(scope="session")
def scene():
    """A 2-s synthetic scene: tonal events, band noise and a high-frequency texture."""
    return synth_scene(3, np.random.default_rng(7), 2.0, SR)


@pytest.fixture
def wav_folder(tmp_path):
    """A few short clips on disk."""
    folder = tmp_path / "clips"
    folder.mkdir()
    paths = []
    for i in range(4):
        p = folder / f"clip{i}.wav"
        sf.write(p, synth_scene(i, np.random.default_rng(i), 1.0, SR), SR, subtype="PCM_16")
        paths.append(p)
    return paths
