"""Every grammar the tool reads prints back to itself: for conditions, chains and losses, parse(print(x)) == x
(Hypothesis draws the values, extremes included), so a cache entry, a results file or a report never holds a label
that does not read back (``+burst1e+06`` did not parse; ``+burst1.0000001`` printed as ``+burst1``, another
condition)."""
import re

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
