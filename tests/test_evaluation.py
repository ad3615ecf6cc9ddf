"""What the evaluator hands to models and what it counts: one read-only array for all, finite features, and
every clip of the split scored (or the run fails naming the ones that are not)."""
import numpy as np
import pytest
import soundfile as sf

from codecbench.codecs import parse_condition as C
from codecbench.core.cache import Cache
from codecbench.datasets import load_dataset
from codecbench.models.kinds import from_object
from codecbench.signal.audio import source_rate
from codecbench.store import fill as encode
from codecbench.store import inputs, split_inputs
from codecbench.store.fill import EncodeError

from .evaluators import split_evaluator


class MeanEnergy:
    """A numpy model on 16 kHz waveforms; ``in_place`` normalises its batch in place, as
    ``torch.from_numpy(batch).sub_(...)`` would."""

    sample_rate = 16000

    def __init__(self, classes, in_place=False):
        self.class_names = list(classes)
        self.in_place = in_place
        self.w = np.random.default_rng(0).standard_normal((2, len(classes)))

    def predict(self, batch):
        if self.in_place:
            batch -= 0.5
            batch *= 1000.0
        feats = np.stack([np.abs(batch).mean(axis=1), batch.std(axis=1)], axis=1)
        return np.exp(feats @ self.w) / np.exp(feats @ self.w).sum(axis=1, keepdims=True)


def _evaluator(tiny, **kwargs):
    return split_evaluator(tiny["dataset"], "evaluate", tiny["matrix"], tiny["zoo"], tiny["cache"], jobs=1,
                     log=lambda m: None, **kwargs)


def test_a_model_that_writes_its_input_cannot_change_another_models(tiny):
    classes = tiny["dataset"].class_names
    alone = _evaluator(tiny).evaluate(from_object(MeanEnergy(classes), name="plain"), C("wav"))
    ev = _evaluator(tiny)
    ev.evaluate(from_object(MeanEnergy(classes, in_place=True), name="writer"), C("wav"))
    after = ev.evaluate(from_object(MeanEnergy(classes), name="plain"), C("wav"))
    assert after.predictions == alone.predictions
    inputs, _ = ev.store.inputs(C("wav"))
    assert inputs.in_memory  # a few clips: kept between models
    x = inputs(range(len(inputs)))
    assert not x.flags.writeable  # what Keras and ONNX models get: read-only
    with pytest.raises(ValueError, match="read-only"):
        x[0] += 1
    # streamed from the cache (nothing kept between models): the writer still changes nothing for the next model
    streaming = _evaluator(tiny, keep_inputs_bytes=0)
    streaming.evaluate(from_object(MeanEnergy(classes, in_place=True), name="writer"), C("wav"))
    assert streaming.evaluate(from_object(MeanEnergy(classes), name="plain"), C("wav")).predictions == alone.predictions
    assert not streaming.store.inputs(C("wav"))[0].in_memory


def test_non_finite_features_are_refused_naming_the_clip_and_front_end(tmp_path):
    root = tmp_path / "data"
    for label in ("quiet", "loud"):
        (root / label).mkdir(parents=True)
        for i in range(2):
            signal = 0.1 * np.sin(np.arange(44100) * 0.05 * (i + 1))
            if label == "quiet":
                signal[:22050] = 0.0  # digital silence for half a second: log(0) beside finite values
            sf.write(root / label / f"{label}{i}.wav", signal, 44100, subtype="PCM_16")
    dataset = load_dataset(root)
    from codecbench.codecs.matrix import parse_matrix

    matrix = parse_matrix({"categories": {"cat1": {"conditions": ["wav"]}}}, "m.toml")

    class Any:
        class_names = ["loud", "quiet"]
        frontend = {"kind": "logmel", "log_offset": 0.0}

        def predict(self, batch):
            return np.full((len(batch), 2), 0.5)

    ev = split_evaluator(dataset, "evaluate", matrix, None, Cache(tmp_path / "c"), jobs=1, log=lambda m: None)
    with pytest.raises(EncodeError, match=r"wav: front-end .*gave non-finite features .* quiet/quiet"):
        ev.evaluate(from_object(Any(), name="any"), C("wav"))


def _losing_fill(monkeypatch, cache, times):
    """After each of the first ``times`` fills, a concurrent `cache gc` removes the features of the first clip
    it filled (a real entry of the real cache, removed from disk)."""
    from codecbench.codecs import parse_condition
    from codecbench.core.fsutil import file_digest

    real_fill = encode.fill
    state = {"left": times}

    def fill(clips, conditions, *args, **kwargs):
        summary = real_fill(clips, conditions, *args, **kwargs)
        if state["left"] > 0 and not kwargs.get("count_missing"):  # the presence check writes nothing to lose
            state["left"] -= 1
            path = str(getattr(clips[0], "path", clips[0]))
            key = encode.feature_key(file_digest(path), parse_condition(conditions[0]), source_rate(path))
            cache.path(encode.FEATURES_NS, key).unlink()
        return summary

    monkeypatch.setattr(encode, "fill", fill)
    monkeypatch.setattr(inputs, "fill", fill)
    monkeypatch.setattr(split_inputs, "fill", fill)


def test_entries_lost_mid_run_are_recomputed_or_the_run_fails_naming_them(tiny, tmp_path, monkeypatch):
    dataset = tiny["dataset"]
    cache = Cache(tmp_path / "cache")
    # lost once: computed again, every clip scored
    _losing_fill(monkeypatch, cache, times=1)
    ev = split_evaluator(dataset, "evaluate", tiny["matrix"], tiny["zoo"], cache, jobs=1, log=lambda m: None)
    result = ev.evaluate(tiny["zoo"].entry("base"), C("mp3@64"))
    assert result.n == len(dataset.clips("evaluate")) and not result.skipped
    # lost every time: a named failure, never a silent subset
    _losing_fill(monkeypatch, cache, times=99)
    ev = split_evaluator(dataset, "evaluate", tiny["matrix"], tiny["zoo"], cache, jobs=1, log=lambda m: None)
    with pytest.raises(EncodeError, match=r"1 of \d+ clips have no cached features under mp3@32 .*cache gc"):
        ev.evaluate(tiny["zoo"].entry("base"), C("mp3@32"))


def test_skip_mode_scores_the_rest_and_records_what_it_left_out(tiny, tmp_path, monkeypatch):
    from codecbench.report import render
    from codecbench.results.files import write_item, write_run

    cache = Cache(tmp_path / "cache")
    _losing_fill(monkeypatch, cache, times=99)
    ev = split_evaluator(tiny["dataset"], "evaluate", tiny["matrix"], tiny["zoo"], cache, jobs=1, log=lambda m: None,
                   on_error="skip")
    result = ev.evaluate(tiny["zoo"].entry("base"), C("mp3@32"))
    total = len(tiny["dataset"].clips("evaluate"))
    assert result.n == total - 1 and len(result.skipped) == 1 and result.skipped[0] not in result.clips
    run = tmp_path / "runs" / "r"
    write_item(run, {**result.as_record(), "threshold": None, "outcome": "passed"})
    write_run(tmp_path, run, {"run_id": "r", "matrix": {"name": "tiny"}})
    markdown, _ = render(tmp_path, tmp_path / "report", formats=("md",))
    assert "## Clips left out (--on-error skip)" in markdown and "| base    | mp3@32      |" in markdown


def test_a_22k_dataset_is_coded_at_22k_and_the_run_says_so(tiny, tmp_path):
    """Sources are coded at the rate they were recorded at; a codec that cannot take it runs at its nearest rate,
    and the evaluator says so and records both rates (they go into the run's metadata as codec facts)."""
    from codecbench.datasets import synth_scene

    for label in ("a", "b"):
        for k in range(3):
            (tmp_path / "d" / label).mkdir(parents=True, exist_ok=True)
            sf.write(tmp_path / "d" / label / f"{k}.wav", synth_scene(k, np.random.default_rng(k), 1.0, 22050),
                     22050, subtype="PCM_16")
    dataset = load_dataset(tmp_path / "d")
    lines = []
    ev = split_evaluator(dataset, "evaluate", tiny["matrix"], tiny["zoo"], Cache(tmp_path / "c"), jobs=1,
                         log=lines.append)
    ev.store.prepare([C("wav"), C("aac@32"), C("opus@64")])
    assert dataset.sample_rates("evaluate") == [22050]
    assert ev.store.rates["aac@32"] == {"source": [22050], "codec": [22050]}
    assert ev.store.codec_facts["aac@32"]["codec_sample_rate"] == 22050
    assert ev.store.rates["opus@64"] == {"source": [22050], "codec": [48000]}
    assert any("opus@64: coded at 48 kHz for sources at 22.05 kHz" in line for line in lines), lines
    assert not any(line.startswith("codecbench: aac@32: coded at") for line in lines)
    # nothing of the source above 11 kHz: the bandwidth measured says so
    assert ev.store.codec_facts["aac@32"]["source_bandwidth_hz"] <= 12_902


@pytest.mark.backend_matrix
def test_streamed_evaluation_equals_the_in_memory_one_and_keeps_one_condition(tiny):
    """Above ``keep_inputs_bytes`` a condition's inputs are read from the cache batch by batch (the paper's scale);
    the predictions are those of the in-memory path, shared layers included; what is kept fits the budget."""
    models = [tiny["zoo"].entry(m) for m in ("base", "finetuned_full@e1", "finetuned_seg9", "finetuned_seg10")]
    kept, streamed = _evaluator(tiny), _evaluator(tiny, keep_inputs_bytes=0)
    for cond in (C("wav"), C("mp3@32")):
        assert ([r.predictions for r in kept.evaluate_many(models, cond)]
                == [r.predictions for r in streamed.evaluate_many(models, cond)])
    assert [key[1] for key, (x, _) in kept.store._inputs.items() if x.in_memory] == ["wav", "mp3@32"]
    assert not any(x.in_memory for x, _ in streamed.store._inputs.values())
    # room for one condition only: the least recently used is dropped, the latest stays
    one = _evaluator(tiny, keep_inputs_bytes=kept.store.inputs(C("wav"))[0].nbytes)
    for cond in (C("wav"), C("mp3@32")):
        one.evaluate_many(models, cond)
    assert [key[1] for key, (x, _) in one.store._inputs.items() if x.in_memory] == ["mp3@32"]


def test_streamed_batches_pad_to_the_longest_clip_of_the_split(tmp_path, monkeypatch):
    """Clips of several lengths: a batch of one clip is padded as in the whole split, so a clip's prediction does
    not depend on which clips share its batch (a model that averages over its whole input would see it)."""
    from tests.test_folds import urbansound8k

    cache = Cache(tmp_path / "cache")
    dataset = load_dataset(str(urbansound8k(tmp_path / "us8k")), cache_dir=cache.root,
                           folds={"train": (1, 2), "evaluate": (10,)})
    from codecbench.codecs.matrix import load_matrix

    def run(**kwargs):
        ev = split_evaluator(dataset, "evaluate", load_matrix(), None, cache, jobs=1, log=lambda m: None, **kwargs)
        return ev.evaluate(from_object(MeanEnergy(dataset.class_names), name="m"), C("mp3@64")), ev

    whole, _ = run()
    monkeypatch.setattr(inputs, "INPUT_BUDGET_BYTES", 1)  # one clip per batch
    alone, ev = run(keep_inputs_bytes=0)
    x, _ = ev.store.inputs(C("mp3@64"), from_object(MeanEnergy(dataset.class_names), name="m").frontend)
    assert x.batch_size == 1 and len({len(x(range(i, i + 1))[0]) for i in range(len(x))}) == 1
    assert alone.predictions == whole.predictions
    # log-mel inputs: the longest shape comes from the cache entries' headers, without reading them
    reader, _ = inputs.input_reader(dataset.clips("evaluate"), C("mp3@64"), cache, jobs=1, progress=False)
    whole_x = reader(range(len(reader)))
    assert reader.pad_to == whole_x.shape[1:] and {reader(range(i, i + 1)).shape[1:] for i in range(len(reader))} \
        == {whole_x.shape[1:]}
    assert len({reader.get(i).shape for i in range(len(reader))}) > 1  # the clips do differ in length
