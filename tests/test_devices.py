"""Devices on every Keras backend (codecbench.store.devices): unknown, absent and duplicated devices are named errors,
a GPU the backend cannot use is warned about, feed workers follow the accelerator; and one check that needs a real
GPU."""
from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import textwrap

import pytest

from . import optional

pytest_plugins = ["pytester"]

BACKENDS = ["tensorflow", "jax", "torch"]

SCRIPT = textwrap.dedent("""
    import json
    from codecbench.store.devices import all_devices, report, resolve_devices
    from codecbench.errors import UsageError

    out = {"all": all_devices(), "auto": resolve_devices("auto"), "one": resolve_devices("1")}
    for label, value in (("unknown", "gpu:7"), ("absent", "99"), ("twice", "cpu:0,cpu:0"), ("two", "cpu:0,cpu:1")):
        try:
            out[label] = resolve_devices(value)
        except UsageError as exc:
            out[label] = "error: " + str(exc)
    out["report"] = report().as_dict()
    print("RESULT" + json.dumps(out))
""")


def _installed(backend: str) -> bool:
    return importlib.util.find_spec(backend) is not None


@pytest.mark.parametrize("backend", BACKENDS)
def test_device_choices_are_named_errors_on_every_backend(backend):
    if not _installed(backend):
        optional.missing(backend, f"{backend} is not installed: the {backend} backend's devices cannot be checked")
    env = {**os.environ, "KERAS_BACKEND": backend, "CUDA_VISIBLE_DEVICES": ""}
    if backend == "jax":
        env["XLA_FLAGS"] = "--xla_force_host_platform_device_count=2"
    if backend == "tensorflow":  # two logical CPUs, as test_distribute makes them
        script = ("import tensorflow as tf\ncpu = tf.config.list_physical_devices('CPU')[0]\n"
                  "tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)\n"
                  + SCRIPT)
    else:
        script = SCRIPT
    run = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=300)
    assert run.returncode == 0, run.stderr[-3000:]
    out = json.loads(next(l for l in run.stdout.splitlines() if l.startswith("RESULT"))[len("RESULT"):])
    assert out["all"] and out["auto"] is None and out["one"] is None  # one device: no distribution
    assert out["unknown"].startswith("error: --devices: gpu:7 is not a device") and backend in out["unknown"]
    assert "cpu:0" in out["unknown"]  # it names what the backend sees
    assert out["absent"].startswith("error: --devices 99:") and "sees" in out["absent"]
    assert out["twice"] == "error: --devices cpu:0,cpu:0: a device is named twice"
    if backend == "torch":  # one CPU device only
        assert out["two"].startswith("error: --devices: cpu:1 is not a device")
    else:
        assert len(out["two"]) == 2
    assert out["report"]["backend"] == backend and out["report"]["accelerators"] == []
    assert out["report"]["feed_workers"] == 0 and out["report"]["precision"] in ("float32", "mixed_bfloat16")


def test_torch_refuses_data_parallel_training_by_name(monkeypatch):
    from codecbench.errors import UsageError
    from codecbench.store import devices

    monkeypatch.setattr(devices, "backend", lambda: "torch")
    monkeypatch.setattr(devices, "_devices", lambda: [("cpu:0", "CPU"), ("cuda:0", "GPU"), ("cuda:1", "GPU")])
    assert devices.resolve_devices("auto") is None  # auto: one device, the first
    with pytest.raises(UsageError, match="needs the TensorFlow or JAX backend"):
        devices.resolve_devices("cuda:0,cuda:1")
    assert devices.resolve_devices("cuda:1") is None  # one device: no distribution, no error


def test_a_gpu_the_backend_cannot_use_is_warned_about_with_the_install_line(monkeypatch):
    from codecbench.store import devices

    monkeypatch.setattr(devices, "nvidia_gpu_present", lambda: ["GPU 0: NVIDIA H200"])
    monkeypatch.setattr(devices, "local_accelerators", lambda: [])
    found = devices.report()
    assert any("NVIDIA H200" in w and "cannot use" in w and devices.GPU_INSTALL[found.backend] in w
               for w in found.warnings), found.warnings
    assert "warning:" in found.text()


def test_two_tensorflow_distributions_are_warned_about(monkeypatch):
    from codecbench.store import devices

    monkeypatch.setattr(devices, "tensorflow_distributions", lambda: ["tensorflow 2.21.0", "tensorflow-cpu 2.21.0"])
    assert any("2 TensorFlow distributions" in w for w in devices.report().warnings)


def test_feed_workers_follow_the_accelerator_and_the_override(monkeypatch):
    from codecbench.errors import UsageError
    from codecbench.store import devices

    monkeypatch.delenv("CODECBENCH_FEED_WORKERS", raising=False)
    monkeypatch.setattr(devices, "usable_cores", lambda: 16)
    assert devices.feed_workers(["cuda:0"]) == 15 and devices.feed_workers([]) == 0
    monkeypatch.setenv("CODECBENCH_FEED_WORKERS", "3")
    assert devices.feed_workers([]) == 3
    monkeypatch.setenv("CODECBENCH_FEED_WORKERS", "many")
    with pytest.raises(UsageError, match="CODECBENCH_FEED_WORKERS='many'"):
        devices.feed_workers([])


def test_the_feed_asks_the_backend_only_where_the_machine_has_an_accelerator(monkeypatch):
    """Scoring a PyTorch or ONNX model imported TensorFlow (10 s) only to hear that no accelerator waits for a feed:
    without accelerator hardware the feed is decided from the machine; with it, from the backend."""
    from codecbench.store import devices

    monkeypatch.delenv("CODECBENCH_FEED_WORKERS", raising=False)
    monkeypatch.setattr(devices, "usable_cores", lambda: 16)
    monkeypatch.setattr(devices, "local_accelerators", lambda: ["cuda:0"])
    monkeypatch.setattr(devices, "accelerator_hardware", lambda: True)
    assert devices.feed_workers() == 15 and devices.reader_threads() == 8
    monkeypatch.setattr(devices, "accelerator_hardware", lambda: False)
    assert devices.feed_workers() == 0 and devices.reader_threads() == 1
    monkeypatch.undo()
    if devices.accelerator_hardware():
        optional.not_applicable("this machine shows an accelerator, so its backend is asked")
    env = {k: v for k, v in os.environ.items() if k != "CODECBENCH_FEED_WORKERS"}
    code = ("import sys; from codecbench.store.devices import feed_workers, reader_threads; "
            "print(feed_workers(), reader_threads(), 'keras' in sys.modules, 'tensorflow' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 0 and done.stdout.split() == ["0", "1", "False", "False"], done.stdout + done.stderr


def test_the_devices_command_prints_backend_devices_precision_and_feed(capsys):
    from codecbench.cli import main

    assert main(["devices", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert {"backend", "devices", "precision", "precision_reason", "feed_workers", "warnings"} <= set(out)
    assert main(["devices"]) == 0
    text = capsys.readouterr().out
    assert "Keras backend:" in text and "--precision auto:" in text and "feed:" in text


@pytest.mark.gpu
def test_on_a_gpu_the_device_front_end_runs_there_and_matches_librosa():
    """Needs an accelerator the Keras backend can use; skipped, naming what is missing, elsewhere."""
    import numpy as np

    from codecbench.core.backend import keras
    from codecbench.datasets import synth_scene
    from codecbench.errors import EnvironmentProblem
    from codecbench.models.frontend_layer import LogMelLayer
    from codecbench.signal import features
    from codecbench.signal.frontends import BASELINE
    from codecbench.store.devices import require_accelerator

    try:
        require_accelerator()
    except EnvironmentProblem as exc:
        optional.missing("gpu", str(exc))
    clips = np.stack([synth_scene(i, np.random.default_rng(i), 10.0, 44100).astype(np.float32) for i in range(4)])
    out = keras.ops.convert_to_numpy(LogMelLayer.from_frontend(BASELINE)(clips))
    reference = np.stack([features.extract(c) for c in clips])
    assert np.max(np.abs(out - reference)) <= 1e-4


@pytest.mark.parametrize("choice", ["jaxx", "tensorflow-gpu"])
def test_a_backend_that_is_not_one_is_named_by_every_entry_point(choice, tmp_path):
    """KERAS_BACKEND misspelt: the CLI exits 2 and pytest with a usage error (4), both naming the backends and what is
    installed; no traceback, no INTERNALERROR."""
    env = {**os.environ, "KERAS_BACKEND": choice}
    cli = subprocess.run([sys.executable, "-m", "codecbench", "devices"], env=env, capture_output=True, text=True,
                         timeout=120)
    assert cli.returncode == 2 and f"KERAS_BACKEND={choice!r}" in cli.stderr and "installed here:" in cli.stderr
    assert "Traceback" not in cli.stderr
    bench = subprocess.run([sys.executable, "-m", "pytest", "benchmarks/", "-p", "no:cacheprovider", "-q",
                            "--codecbench-model", "base", "--codecbench-condition", "wav",
                            "--codecbench-results", str(tmp_path / "out")], env=env, capture_output=True, text=True,
                           timeout=300, cwd=os.path.dirname(os.path.dirname(__file__)))
    assert bench.returncode == 4 and f"KERAS_BACKEND={choice!r}" in bench.stderr
    assert "INTERNALERROR" not in bench.stdout + bench.stderr


def test_a_backend_that_is_not_installed_gets_its_install_line(monkeypatch):
    from codecbench.core import backend_choice

    real = importlib.util.find_spec
    monkeypatch.setattr(backend_choice.importlib.util, "find_spec",
                        lambda name, *a: None if name == "jax" else real(name, *a))
    monkeypatch.setenv("KERAS_BACKEND", "jax")
    expected = r"KERAS_BACKEND=jax asks for jax, which is not installed here \(installed backends: tensorflow.*\[jax\]"
    with pytest.raises(backend_choice.BackendMissing, match=expected):
        backend_choice.check()


def test_devices_the_benchmark_cannot_use_are_refused_before_any_work(pytester, tmp_path):
    """--devices only matters to training, but a benchmark run names a device this machine lacks instead of
    ignoring it (docs/suite.md: checked before any work: no results folder, no cache, no generated data)."""
    from codecbench.store.devices import local_accelerators

    from .plugin_args import run_plugin

    if local_accelerators():
        optional.not_applicable("this machine has an accelerator, so gpu:0 may exist")
    pytester.makepyfile(test_suite="def test_codec_robustness(codecbench_case, codecbench_check):\n"
                                   "    codecbench_check(codecbench_case)\n")
    bench = run_plugin(pytester, "--model", "base", "--condition", "wav", "--devices", "gpu:0", "--results",
                       str(tmp_path / "out"), "--cache-dir", str(tmp_path / "cache"))
    assert bench.ret == pytest.ExitCode.USAGE_ERROR and "--devices: gpu:0 is not a device" in bench.stderr.str()
    # nothing was generated first: the default's 300 evaluation clips were, before the check moved ahead of them
    assert not (tmp_path / "out").exists() and not (tmp_path / "cache" / "datasets").exists()
    # so is a results folder that cannot be written (the same check, before the run is resolved)
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    bench = run_plugin(pytester, "--model", "base", "--condition", "wav", "--results", str(blocker / "out"),
                       "--cache-dir", str(tmp_path / "cache"))
    assert bench.ret == pytest.ExitCode.USAGE_ERROR and "cannot write there" in bench.stderr.str()
    assert not (tmp_path / "cache" / "datasets").exists()
