"""Bad input anywhere is a named error (file, key or value in the message), never a traceback; and the small
inconsistencies found on real audio stay fixed."""
import threading

import numpy as np
import pytest

from codecbench.cli import main
from codecbench.codecs.matrix import expand_sweep
from codecbench.core.cache import Cache
from codecbench.models.kinds import ModelError, from_object
from codecbench.signal.frontends import FrontEndError, parse_frontend
from codecbench.zoo import ZooError, check_name

from .plugin_args import run_plugin

pytest_plugins = ["pytester"]


class Model:
    sample_rate = 16000
    class_names = ["a", "b"]

    def predict(self, batch):
        return "string"


def test_a_predict_returning_a_string_or_a_non_numeric_rate_is_a_model_error():
    with pytest.raises(ModelError, match=r"predict returned str 'string', expected an array"):
        from_object(Model()).predict(np.zeros((2, 16000), np.float32))

    class Rate(Model):
        sample_rate = "fast"

    with pytest.raises(ModelError, match=r"sample_rate 'fast' is not a number"):
        from_object(Rate())


def test_names_front_ends_and_sweeps_say_what_is_wrong():
    with pytest.raises(ZooError, match="has 300 characters; at most 100"):
        check_name("a" * 300)
    with pytest.raises(FrontEndError, match=r"logmel:sample_rate=none': sample_rate='none' is not a number"):
        parse_frontend("logmel:sample_rate=none")
    assert parse_frontend("logmel:fmax=none").fmax is None
    with pytest.raises(ValueError, match=r"bounds are reversed \(320 > 32\); write 'mp3@32..320'"):
        expand_sweep("mp3@320..32")
    with pytest.raises(ValueError, match=r"aptx has one bit rate .*name it 'aptx'"):
        expand_sweep("aptx@32..320")


@pytest.mark.parametrize("content,message", [(None, "file not found"), ("{bad", "not a readable JSON object")])
def test_a_missing_or_malformed_class_map_is_named(tmp_path, capsys, content, message):
    path = tmp_path / "map.json"
    if content is not None:
        path.write_text(content)
    assert main(["import-model", "os:getcwd", "--name", "x", "--model-dir", str(tmp_path / "z"),
                 "--class-map", str(path)]) == 2
    err = capsys.readouterr().err
    assert f"--class-map {path}: {message}" in err


def test_unwritable_outputs_and_path_like_run_ids_are_usage_errors(capsys):
    assert main(["thresholds", "--results", "reports/example", "--out", "/proc/no/such/t.toml"]) == 2
    assert "--out /proc/no/such/t.toml: cannot write there" in capsys.readouterr().err
    assert main(["report", "--run", "../../etc"]) == 2
    assert "--run: a run id is" in capsys.readouterr().err


def test_a_postfilter_name_is_checked_before_training(tiny):
    from codecbench.remedies.postfilter import train_postfilter
    from codecbench.zoo import Zoo

    base = tiny["zoo"].parent("base", "fine-tuning")
    with pytest.raises(ZooError, match=r"model name '\.\./evil'"):
        train_postfilter(Zoo(tiny["zoo"].root / "elsewhere"), base, tiny["dataset"], tiny["matrix"], tiny["cache"],
                         name="../evil")


def test_concurrent_gc_and_clear_do_not_trip_over_each_other(tmp_path):
    cache = Cache(tmp_path / "cache")
    for i in range(400):
        cache.store("features", f"{i:064x}", np.zeros(8, np.float32))
    errors = []

    def work(fn):
        try:
            fn()
        except Exception as exc:  # what the test looks for: none may escape
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(f,)) for f in
               (cache.clear, cache.clear, lambda: cache.gc(older_than_days=0), cache.clear)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors and not list(cache.entries("features"))


def test_small_p_values_keep_their_magnitude_in_significance_csv(tmp_path):
    from codecbench.report import render

    render("reports/example", tmp_path, formats=("csv",))
    text = (tmp_path / "significance.csv").read_text()
    assert "e-" in text and ",0.0000," not in text


def test_an_evaluation_codes_no_fine_tuning_only_condition(tiny, tmp_path, capsys):
    matrix = tmp_path / "m.toml"
    matrix.write_text('[finetune]\nconditions = ["aac@32"]\n[categories.cat1]\nconditions = ["wav", "mp3@64"]\n')
    # the tiny set's own cache, where its clips are generated already (a dry run writes nothing): a fresh one
    # generated them twice, 20 s of the suite
    common = ["encode", "--dataset", tiny["spec"], "--matrix", str(matrix), "--cache-dir", str(tiny["cache"].root),
              "--dry-run"]
    assert main([*common, "--split", "evaluate"]) == 0
    assert "aac@32" not in capsys.readouterr().out
    assert main([*common, "--split", "train"]) == 0
    assert "aac@32" in capsys.readouterr().out


def test_matrix_categories_are_registered_before_their_marks(tiny, pytester, tmp_path):
    matrix = tmp_path / "m.toml"
    matrix.write_text('[categories.broadcast]\nconditions = ["wav"]\n')
    pytester.makepyfile(test_suite="def test_codec_robustness(codecbench_case, codecbench_check):\n"
                                   "    codecbench_check(codecbench_case)\n")
    result = run_plugin(
        pytester, "-W", "error::pytest.PytestUnknownMarkWarning",
        "--model-dir", str(tiny["zoo"].root), "--dataset", tiny["spec"], "--cache-dir", str(tiny["cache"].root),
        "--matrix", str(matrix), "--jobs", "1", "--model", "base", "--results", str(tmp_path / "out"))
    result.assert_outcomes(passed=1)


@pytest.mark.parametrize("command", [["consistency", "--name", "../evil"], ["postfilter", "train", "--name", "../evil"],
                                     ["consistency", "--from", "bands"], ["finetune", "--full", "--from", "bands"]])
def test_remedies_check_names_and_kinds_before_any_work(tiny, tmp_path, capsys, command):
    """`consistency --name ../evil` trained 71 s before the name was refused, and `--from` a model that is not Keras
    coded the training set for 63 s before 'Keras-only': both are refused before the data is touched."""
    import shutil

    zoo = tmp_path / "zoo"
    shutil.copytree(tiny["zoo"].root, zoo)
    (zoo / "bands.json").write_text('{"kind": "python", "entry_point": "math:sqrt", "class_names": ["a"]}')
    cache = tmp_path / "fresh-cache"
    assert main([*command, "--model-dir", str(zoo), "--dataset", tiny["spec"], "--cache-dir", str(cache),
                 "--matrix", str(tiny["matrix_path"])]) == 2
    err = capsys.readouterr().err
    assert ("model name" in err and "use letters" in err) or "needs a Keras model" in err
    assert not cache.exists()  # nothing coded, nothing generated
