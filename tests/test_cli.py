import subprocess
import sys

import pytest

from codecbench.cli import main


def test_conditions_table_lists_availability(capsys):
    assert main(["conditions"]) == 0
    out = capsys.readouterr().out
    assert "| mp3@32 " in out and "cat2 (seen codecs, unseen bit rates)" in out and "libmp3lame" in out
    assert "he-aac@16" in out


def test_encode_on_tiny_synthetic_then_cache_info_and_clear(tmp_path, capsys):
    args = ["--cache-dir", str(tmp_path / "c"), "--dataset", "synthetic:train=1,evaluate=1,duration=1.0"]
    assert main(["encode", *args, "--conditions", "mp3@32,sbc@64", "-q", "--jobs", "2"]) == 0
    out = capsys.readouterr().out
    assert "10 clips x 2 conditions: 0 cache hits, 20 misses" in out and "mp3@32       achieved" in out
    assert main(["encode", *args, "--conditions", "mp3@32", "-q"]) == 0
    assert "10 cache hits, 0 misses" in capsys.readouterr().out
    # the split coded (evaluate, the default) is the only one generated: the train split's audio is not made
    generated = next(p for p in (tmp_path / "c" / "datasets").glob("synthetic-*") if p.is_dir())
    assert sorted(p.name for p in (generated / "generated").iterdir()) == ["evaluate"]
    assert len(list((generated / "audio").glob("*-train*.wav"))) == 0
    assert main(["cache", "info", "--cache-dir", str(tmp_path / "c")]) == 0
    assert "| coded " in capsys.readouterr().out
    assert main(["cache", "clear", "--cache-dir", str(tmp_path / "c"), "--namespace", "coded"]) == 0
    assert "removed 20 entries" in capsys.readouterr().out


@pytest.mark.parametrize("argv, message", [
    (["encode", "--conditions", "mp3@999"], "32-320 kbps"),
    (["conditions", "--matrix", "/nonexistent.toml"], "matrix file not found"),
    (["finetune", "--segment", "7", "--model-dir", "/nonexistent-zoo"], "unknown model 'base'"),
])
def test_bad_input_is_a_clear_error(argv, message, capsys):
    assert main(argv) == 2
    assert message in capsys.readouterr().err


def test_segments_of_a_legacy_checkpoint_and_import_of_a_model_that_fits(tmp_path, capsys):
    from pathlib import Path
    checkpoint = Path(__file__).resolve().parent / "data" / "models" / "smallfcnn-model-0.9618.hdf5"
    assert main(["segments", str(checkpoint)]) == 0
    out = capsys.readouterr().out
    assert "total parameters: 234,166" in out and "seg08_att_dense1" in out
    # binaural 6-channel input: no front-end of codecbench feeds it, so it is refused, naming both sides
    assert main(["import-model", str(checkpoint), "--name", "small3", "--model-dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "takes input (128, None, 6)" in err and "gives (128, 36, 3)" in err
    assert not list(tmp_path.iterdir())
    assert main(["import-model", str(small_keras_model(tmp_path / "src")), "--name", "mine", "--model-dir",
                 str(tmp_path / "zoo")]) == 0
    assert (tmp_path / "zoo" / "mine.keras").is_file() and (tmp_path / "zoo" / "mine.json").is_file()
    capsys.readouterr()
    assert main(["segments", "mine", "--model-dir", str(tmp_path / "zoo")]) == 0
    assert "seg10_att_dense1" in capsys.readouterr().out


def small_keras_model(folder):
    """A small FCNN for the synthetic classes, saved as .keras."""
    from codecbench.datasets import SCENES
    from codecbench.models import build_fcnn, preset_config, save_model
    model = build_fcnn(preset_config("small", (128, 79, 3), 10))
    return save_model(model, folder / "small.keras", {"class_names": list(SCENES)})


def test_console_script_runs():
    out = subprocess.run([sys.executable, "-m", "codecbench", "--help"], capture_output=True, text=True)
    assert out.returncode == 0 and "finetune" in out.stdout and "report" in out.stdout


def _all_parsers(parser, prefix=("codecbench",)):
    import argparse

    yield prefix, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from _all_parsers(sub, (*prefix, name))


def test_help_is_plain_text_with_a_description_and_examples_that_parse():
    """Every --help is for people: no Sphinx markup, a description line per command, and examples that are real
    command lines (each is parsed here, so an example cannot rot when an option is renamed)."""
    import shlex

    from codecbench.cli.parser import EXAMPLES, build_parser

    parser = build_parser()
    for path, sub in _all_parsers(parser):
        text = sub.format_help()
        for markup in ("``", ":mod:", ":class:", ":func:", ":meth:", ":attr:"):
            assert markup not in text, (" ".join(path), markup)
        if len(path) > 1:
            assert sub.description, " ".join(path)
    parsed = 0
    for name, examples in EXAMPLES.items():
        assert name is None or f"codecbench {name}" in examples
        for line in examples.replace("\\\n", " ").splitlines():
            words = shlex.split(line.split("   ")[0].strip()) if line.strip().startswith("codecbench ") else []
            if words:
                build_parser().parse_args(words[1:])
                parsed += 1
    assert parsed >= len(EXAMPLES)


@pytest.mark.parametrize("argv, message", [
    (["finetune", "--epochs", "0"], "--epochs: expected a positive whole number, got '0'"),
    (["train", "--mixup", "-1"], "--mixup: expected a number >= 0, got '-1'"),
    (["thresholds", "--margin", "1.5"], "--margin: an accuracy drop tolerance lies in [0, 1), got '1.5'"),
    (["compare", "a.json", "b.json", "--min-agreement", "nan"], "--min-agreement: expected a finite number"),
    (["compare", "a.json", "b.json", "--min-agreement", "2"], "--min-agreement: a fraction lies in [0, 1]"),
    (["dataset", "download", "tau2020-mobile", "--timeout", "0"], "--timeout: expected a positive number"),
])
def test_command_options_are_refused_by_name_before_any_work(argv, message, capsys):
    with pytest.raises(SystemExit) as stop:
        main(argv)
    assert stop.value.code == 2 and message in capsys.readouterr().err
