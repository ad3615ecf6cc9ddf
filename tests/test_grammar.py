"""Every grammar the tool reads prints back to itself: for conditions, chains, losses, matrices, folds and
front-end specs, parse(print(x)) == x (Hypothesis draws the values, extremes included), so a cache entry, a
results file or a report never holds a label that does not read back (``+burst1e+06`` did not parse;
``+burst1.0000001`` printed as ``+burst1``, another condition)."""
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from codecbench.codecs import Condition, parse_condition
from codecbench.codecs.loss import Loss, canonical_number
from codecbench.codecs.table import CODECS, MAX_CHAIN

RATED = sorted(name for name, spec in CODECS.items() if spec.fixed_kbps is None)


@st.composite
def plain(draw, codec=None):
    codec = codec or draw(st.sampled_from(sorted(CODECS)))
    spec = CODECS[codec]
    if spec.fixed_kbps is not None:
        return Condition(codec, spec.fixed_kbps)
    if spec.rates:
        kbps = draw(st.sampled_from(spec.rates))
    else:
        kbps = draw(st.floats(spec.min_kbps, spec.max_kbps, allow_nan=False))
    kbps = int(kbps) if float(kbps).is_integer() else kbps
    return Condition(codec, kbps)


@st.composite
def conditions(draw):
    stages = draw(st.lists(plain(), min_size=1, max_size=MAX_CHAIN))
    last = stages[-1]
    loss = None
    if last.spec.family != "neural" and draw(st.booleans()):  # neural codes are not packetised: no loss
        own = last.spec.concealment
        conceal = draw(st.sampled_from((["codec"] if own else []) + ["zerofill", "repeat"]))
        loss = Loss(rate=draw(st.floats(0, 100, exclude_min=True, exclude_max=True)),
                    burst=draw(st.one_of(st.just(1.0), st.floats(1, 1e9, exclude_min=True))),
                    seed=draw(st.integers(0, 2**31)), fec=own == "libopus" and draw(st.booleans()), conceal=conceal)
    return Condition(last.codec, last.kbps, tuple(stages[:-1]), loss)


@settings(max_examples=400, deadline=None)
@given(conditions())
def test_a_condition_reads_back_as_itself(condition):
    name = condition.name
    assert not re.search(r"\d[eE][+-]?\d", name), name  # no exponent form
    back = parse_condition(name)
    assert back == condition, (name, back)
    assert back.name == name


@settings(max_examples=400, deadline=None)
@given(st.floats(0, 1e12, allow_nan=False, allow_infinity=False))
def test_numbers_print_as_the_shortest_positional_decimal_that_reads_back(value):
    text = canonical_number(value)
    assert float(text) == value and "e" not in text and not text.endswith(".0")


def test_the_labels_that_did_not_read_back():
    for name in ("opus@24+loss5+burst1000000", "opus@24+loss5+burst1.0000001", "opus@24.5+loss0.5+seed3+fec"):
        assert parse_condition(name).name == name
    assert parse_condition("opus@24+loss5+burst1.0000001") != parse_condition("opus@24+loss5+burst1")


# -- matrices, folds and front-end specs ---------------------------------------------------------------------------

_NAMES = st.text(st.characters(whitelist_categories=("Ll", "Nd"), whitelist_characters="_-"), min_size=1,
                 max_size=12)


@settings(max_examples=150, deadline=None)
@given(st.data())
def test_a_matrix_reads_back_as_itself(data):
    from codecbench.codecs.matrix import parse_matrix

    pool = data.draw(st.lists(conditions(), min_size=2, max_size=12, unique=True))
    cut = data.draw(st.integers(1, len(pool) - 1))
    names = data.draw(st.lists(_NAMES, min_size=1, max_size=cut, unique=True))
    table: dict = {"matrix": {"name": data.draw(_NAMES)},
                   "finetune": {"include_original": data.draw(st.booleans())},
                   "categories": {name: {"description": data.draw(st.text(max_size=30)),
                                         "conditions": [c.name for c in pool[:cut][i::len(names)]]}
                                  for i, name in enumerate(names)}}
    finetune = [c.name for c in pool[cut:] if not c.is_original]
    if finetune:
        table["finetune"]["conditions"] = finetune
    matrix = parse_matrix(table, "drawn.toml")
    assert parse_matrix(matrix.to_dict(), matrix.source) == matrix


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(_NAMES.filter(lambda s: s.strip() == s), st.lists(st.integers(1, 40), min_size=1, unique=True)
                       .map(lambda folds: tuple(sorted(folds))), min_size=1, max_size=4))
def test_folds_read_back_as_themselves(folds):
    from codecbench.datasets.folds import folds_text, parse_folds
    from codecbench.run.spec import to_folds

    text = folds_text(folds)
    assert parse_folds(text) == folds
    assert dict(to_folds({k: list(v) for k, v in folds.items()}, "folds")) == folds  # a TOML table of lists


@settings(max_examples=300, deadline=None)
@given(st.one_of(
    st.builds(lambda rate: ("waveform", rate), st.integers(8000, 192000)),
    st.builds(lambda rate, n_fft, hop, mels, fmin, fmax, offset, normalise, deltas, on_device, htk:
              ("logmel", dict(sample_rate=rate, n_fft=n_fft, hop_length=min(hop, n_fft),
                              n_mels=min(mels, n_fft // 2 + 1), fmin=fmin, fmax=fmax, log_offset=offset,
                              normalise=normalise, deltas=deltas, on_device=on_device, htk=htk)),
              st.integers(8000, 192000), st.integers(16, 8192), st.integers(1, 8192), st.integers(1, 256),
              st.floats(0, 4000, allow_nan=False), st.one_of(st.none(), st.floats(100, 96000, allow_nan=False)),
              st.floats(1e-12, 1, allow_nan=False), st.sampled_from(["minmax", "none"]), st.booleans(), st.booleans(),
              st.booleans())))
def test_a_front_end_spec_reads_back_as_itself(drawn):
    from codecbench.signal.frontends import FrontEnd, parse_frontend

    kind, fields = drawn
    frontend = FrontEnd("waveform", fields) if kind == "waveform" else FrontEnd("logmel", **fields)
    assert parse_frontend(frontend.spec()) == frontend, frontend.spec()
    assert parse_frontend(frontend.to_dict()) == frontend


@pytest.mark.parametrize("option, value, words", [
    ("on_error", "ignore", "raise, skip"), ("backend", "dask", "loky, threading, sequential"),
    ("precision", "float16", "auto, float32, mixed_bfloat16")])
def test_a_vocabulary_word_is_checked_once_at_the_edge_naming_the_words(option, value, words):
    """The run specification converts each word once; a wrong one names the option, the words and the value, and a
    right one travels as the typed word (codecbench.core.vocabulary)."""
    from codecbench.core import vocabulary
    from codecbench.errors import UsageError
    from codecbench.run.spec import RunSpec

    with pytest.raises(UsageError, match=f"--{option.replace('_', '-')}: expected one of {words}; got '{value}'"):
        RunSpec.build({option: value}, use_pyproject=False)
    right = words.split(", ")[-1]
    assert getattr(RunSpec.build({option: f" {right} "}, use_pyproject=False), option) == right
    assert vocabulary.PARALLEL_BACKENDS == ("loky", "threading", "sequential")
