import numpy as np
import pytest

# likewise requests: dropped and imported again, its sessions' cookie jars fail their own isinstance check
import requests  # noqa: F401
import soundfile as sf

# imported once for the whole session, before any pytester test snapshots sys.modules: a module first imported
# inside such a test is dropped afterwards, and importing it again re-registers soxr's nanobind extension, which
# aborts the process
import codecbench.codecs  # noqa: F401
from codecbench.core.cache import Cache
from codecbench.datasets import synth_scene

from . import optional

SR = 44100


def pytest_configure(config):
    config.addinivalue_line("markers", "codecbench_optional(component): the test needs an optional component "
                                       "(tests/optional.py)")
    config.addinivalue_line("markers", "codecbench_required_missing(reason): CODECBENCH_REQUIRE names a component "
                                       "this machine lacks; the test fails at set-up")
    optional.required()  # an unknown component name is a usage error before anything runs
    _one_final_collection(config)
    _leave_a_worker_without_finalising(config)


def _one_final_collection(config) -> None:
    """One full garbage collection at the end of the run where pytest does five.

    pytest collects garbage five times when a session ends, to find unraisable exceptions of objects that die in
    reference cycles then. Over a heap that holds TensorFlow, PyTorch and transformers a collection takes about a
    second, so each xdist worker spent 4-6 s exiting, and execnet interrupts a worker still busy 5 s after the end
    (the occasional KeyboardInterrupt at the end of a run). One collection still finds the cycles that are garbage
    at the end; what only the later ones would free dies with the process. Every test's own unraisable exceptions
    are still reported after it. (``gc.freeze`` instead hid trio's random generator from Hypothesis's check.)
    """
    try:
        from _pytest.unraisableexception import gc_collect_iterations_key
    except ImportError:  # pytest's name for it (its own tests set it) moved: keep pytest's default
        return
    config.stash[gc_collect_iterations_key] = 1


def _leave_a_worker_without_finalising(config) -> None:
    """An xdist worker ends right after its exit handlers, skipping the interpreter's finalisation.

    A worker has sent every result before it exits, and the controller waits for it to end: tearing down the
    modules of TensorFlow, PyTorch, JAX and transformers, and the heap the tests left, took 2.5-5 s per worker at the
    end of every run. Registered when the session starts, before anything a test registers, the handler runs after
    those (exit handlers run last-registered first): the tests' own exit work (multiprocessing's children, temporary
    folders, ...) is done first. A plain run, the controller, and a pytest that a test starts (it inherits
    ``PYTEST_XDIST_WORKER`` but is no worker) end as usual, with their exit status.
    """
    import atexit
    import os
    import sys

    if not hasattr(config, "workerinput"):  # set by xdist on its workers' configuration only
        return

    def leave() -> None:
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except (OSError, ValueError):  # closed, or its pipe gone: nothing left to say
                pass
        os._exit(0)

    atexit.register(leave)


def pytest_collection_modifyitems(items):
    """The whole-command runs first (``long_run``, longest first as listed): pytest-xdist deals out the first tests
    one per worker in turn, so each worker starts on one of them instead of one worker ending alone on one."""
    items.sort(key=lambda item: item.get_closest_marker("long_run") is None)  # stable: the rest keep their order


def pytest_runtest_setup(item):
    for mark in item.iter_markers("codecbench_required_missing"):
        pytest.fail(mark.args[0], pytrace=False)


def pytest_report_header(config):
    names = sorted(optional.required())
    return f"optional components required ({optional.REQUIRE_VARIABLE}): {', '.join(names) or 'none'}"


@pytest.fixture(autouse=True)
def _own_trust_list(tmp_path, monkeypatch):
    """Models imported by a test are trusted in that test's own list, never in the user's."""
    monkeypatch.setenv("CODECBENCH_TRUST_FILE", str(tmp_path / "trusted-code.json"))


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


TINY_DATASET = "synthetic:train=3,evaluate=2,duration=1.0,seed=5"


def _built_once(tmp_path_factory, name: str, build):
    """A folder made by ``build(folder)`` once per test run and Keras backend (under a lock, so xdist workers wait
    for the first), copied into this worker's own temporary folder."""
    import os
    import shutil

    from codecbench.core.fsutil import file_lock

    base = tmp_path_factory.getbasetemp()
    shared = (base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base) / \
        f"shared-{name}-{os.environ.get('KERAS_BACKEND', 'tensorflow')}"
    with file_lock(shared.parent / f"{shared.name}.lock"):
        if not (shared / ".built").is_file():
            shutil.rmtree(shared, ignore_errors=True)
            shared.mkdir(parents=True)
            build(shared)
            (shared / ".built").touch()
    own = tmp_path_factory.mktemp(name)
    shutil.copytree(shared, own, dirs_exist_ok=True, symlinks=True)
    return own


@pytest.fixture
def tiny_data_cache(tmp_path_factory, tmp_path):
    """``tmp_path / "cache"``: a cache holding :data:`TINY_DATASET`'s clips and nothing else, for commands that start
    from a fresh cache. The clips are generated once per run and copied (each generation took 7-15 s of the suite)."""
    from codecbench.datasets import load_dataset

    own = _built_once(tmp_path_factory, "tiny-data", lambda folder: load_dataset(TINY_DATASET, cache_dir=folder))
    (own / ".built").unlink()  # the shared folder's mark, not the cache's
    return own.rename(tmp_path / "cache")  # this test's own copy, moved where its commands look


@pytest.fixture(scope="session")
def tiny(tmp_path_factory):
    """A tiny synthetic dataset, its cache, and a zoo with base, finetuned_full@e1 and finetuned_seg9/10.

    Built for real (training included) but with few clips, small models and one epoch each.
    """
    from codecbench.codecs.matrix import parse_matrix
    from codecbench.datasets import load_dataset
    from codecbench.remedies.finetune import finetune, train_base
    from codecbench.training.schedule import TrainConfig
    from codecbench.zoo import Zoo

    matrix = parse_matrix({"finetune": {"conditions": ["mp3@64"]},
                           "categories": {"cat1": {"conditions": ["wav", "mp3@64"]},
                                          "cat2": {"conditions": ["mp3@32"]},
                                          "cat3": {"conditions": ["sbc@64"]}}}, "tiny.toml")
    quick = TrainConfig(epochs=2, batch_size=8, learning_rate=0.05, crop_frames=24, time_mask_frames=4, seed=0)

    def build(folder):
        cache = Cache(folder / "cache")
        dataset = load_dataset(TINY_DATASET, cache_dir=cache.root)
        zoo = Zoo(folder / "zoo")
        train_base(zoo, dataset, cache, config=quick, jobs=1, verbose=0)
        base = zoo.parent("base", "fine-tuning")
        finetune(zoo, base, dataset, matrix, cache, epochs=1, config=quick, jobs=1, verbose=0)
        finetune(zoo, base, dataset, matrix, cache, segments=[9, 10], epochs=1, config=quick, jobs=1, verbose=0)

    # built once per run and backend, then copied: xdist workers share the training (a minute or two under JAX)
    # but each works on its own copy, as before
    root = _built_once(tmp_path_factory, "tiny", build)
    cache = Cache(root / "cache")
    dataset = load_dataset(TINY_DATASET, cache_dir=cache.root)
    zoo = Zoo(root / "zoo")
    matrix_path = root / "tiny.toml"
    matrix_path.write_text('[finetune]\nconditions = ["mp3@64"]\n[categories.cat1]\nconditions = ["wav", "mp3@64"]\n'
                           '[categories.cat2]\nconditions = ["mp3@32"]\n[categories.cat3]\nconditions = ["sbc@64"]\n')
    return {"root": root, "cache": cache, "dataset": dataset, "matrix": matrix, "matrix_path": matrix_path,
            "zoo": zoo, "config": quick, "spec": TINY_DATASET}
