import numpy as np
import pytest
from scipy.stats import binomtest

from codecbench.results.stats import mcnemar_exact, wilson_interval


def test_wilson_interval_known_values():
    low, high = wilson_interval(81, 100)
    assert low == pytest.approx(0.7222, abs=1e-4) and high == pytest.approx(0.8749, abs=1e-4)
    assert wilson_interval(0, 10)[0] == 0.0 and wilson_interval(10, 10)[1] == pytest.approx(1.0)
    assert wilson_interval(0, 0) == (0.0, 1.0)


def test_mcnemar_exact_matches_a_binomial_test_on_discordant_pairs():
    rng = np.random.default_rng(0)
    a = rng.random(500) < 0.8
    b = a.copy()
    b[rng.choice(500, 40, replace=False)] ^= True
    p, a_only, b_only = mcnemar_exact(a, b)
    assert a_only + b_only == 40
    assert p == pytest.approx(binomtest(min(a_only, b_only), 40, 0.5).pvalue)
    assert mcnemar_exact(a, a) == (1.0, 0, 0)
    with pytest.raises(ValueError, match="equal lengths"):
        mcnemar_exact(a, a[:10])
