"""The portable elementary functions, designs and FFT behind the synthetic default: accurate, and the same
whatever order or SIMD width a library would use."""
import numpy as np
import pytest
import scipy.signal as ss

from codecbench.core import bitexact as bx


def _ulps(got, want):
    return np.max(np.abs(got - want) / np.spacing(np.abs(want)))


def test_elementary_functions_are_within_a_few_ulp_of_numpy():
    rng = np.random.default_rng(0)
    x = rng.uniform(-700, 700, 200_000)
    assert _ulps(bx.exp(x), np.exp(x)) <= 2
    assert bx.exp(np.array([-800.0]))[0] == 0.0
    positive = np.abs(rng.standard_normal(200_000)) * 10.0 ** rng.uniform(-200, 200, 200_000)
    assert _ulps(bx.log(positive), np.log(positive)) <= 2
    base = rng.uniform(0.5, 2e4, 200_000)
    assert _ulps(bx.power(base, 0.85), base ** 0.85) <= 32
    angles = rng.uniform(-5000, 5000, 200_000)
    s, c = bx.sincos(angles)
    assert np.max(np.abs(s - np.sin(angles))) < 4e-16 and np.max(np.abs(c - np.cos(angles))) < 4e-16
    with pytest.raises(ValueError, match="positive"):
        bx.log(np.array([1.0, -1.0]))


def test_total_does_not_depend_on_summation_order():
    x = np.random.default_rng(1).standard_normal(100_003) * 1e3
    sums = {bx.total(x), bx.total(x[::-1]), bx.total(np.random.default_rng(2).permutation(x))}
    assert len(sums) == 1
    assert abs(bx.total(x) - np.sum(x)) < 1e-9 * np.sum(np.abs(x))
    assert bx.std(x) == pytest.approx(np.std(x), rel=1e-12)


@pytest.mark.parametrize("order,btype,edges", [(2, "low", 3000.0), (4, "low", 17990.0), (2, "high", 150.0),
                                               (2, "band", [675.0, 1170.0]), (2, "band", [40.0, 20000.0])])
def test_butterworth_designs_have_scipys_response(order, btype, edges):
    ours = bx.butter_sos(order, edges, btype, 44100)
    theirs = ss.butter(order, edges, btype=btype, fs=44100, output="sos")
    _, h_ours = ss.sosfreqz(ours, worN=2048, fs=44100)
    _, h_theirs = ss.sosfreqz(theirs, worN=2048, fs=44100)
    assert np.max(np.abs(h_ours - h_theirs)) < 1e-9 * np.max(np.abs(h_theirs))


def test_fft_and_convolution_match_numpy_and_scipy():
    rng = np.random.default_rng(3)
    for n in (2, 8, 4096):
        z = rng.standard_normal(n) + 1j * rng.standard_normal(n)
        re, im = bx.fft(z.real, z.imag)
        np.testing.assert_allclose(re + 1j * im, np.fft.fft(z), atol=1e-12 * n)
        back = bx.ifft(re, im)
        np.testing.assert_allclose(back[0] + 1j * back[1], z, atol=1e-12)
    a, b = rng.standard_normal(5000), rng.standard_normal(700)
    np.testing.assert_allclose(bx.fftconvolve(a, b), ss.fftconvolve(a, b), atol=1e-10)
    with pytest.raises(ValueError, match="power of two"):
        bx.fft(np.zeros(6))


def test_pcm_quantisation_rounds_half_to_even_and_clips():
    step = 2.0 ** -23
    q = bx.quantize_pcm(np.array([0.5 * step, 1.5 * step, 2.5 * step, -0.5 * step, 1.0, -1.0, 2.0])) >> 8
    assert q.tolist() == [0, 2, 2, 0, 2 ** 23 - 1, -(2 ** 23), 2 ** 23 - 1]
    with pytest.raises(ValueError, match="finite"):
        bx.quantize_pcm(np.array([np.nan]))


def test_random_draws_have_the_right_distributions():
    rng = np.random.default_rng(4)
    z = bx.normal(rng, 100_001)
    assert z.size == 100_001 and abs(z.mean()) < 0.02 and abs(z.std() - 1) < 0.02
    counts = [bx.poisson(rng, 3.5) for _ in range(20_000)]
    assert abs(np.mean(counts) - 3.5) < 0.06 and abs(np.var(counts) - 3.5) < 0.15
