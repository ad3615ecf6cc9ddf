"""Elementary functions and filter designs that give the same bits on every CPU.

numpy picks its ``exp``, ``log`` and ``power`` loops by the CPU's SIMD level (AVX-512 has its own), and
glibc picks FMA or plain variants of ``sin``/``cos``/``exp`` the same way, so scipy's Butterworth designs differ
in their last bits between machines. A signal built from them (the synthetic default) then differs by machine.

Everything here uses only operations that IEEE 754 rounds correctly, so they give the same result on any CPU
and in any SIMD width: ``+ - * /``, ``sqrt``, ``rint``, comparisons, exact bit manipulation, and integer
sums. Each numpy call is one operation, so nothing can be fused into an FMA. The functions are
within a few ulp of the correctly rounded result (tested against numpy).
"""
from __future__ import annotations

import functools
import math
from fractions import Fraction

import numpy as np

from codecbench.errors import ArgumentError

__all__ = ["exp", "log", "power", "sin", "cos", "sincos", "tan", "total", "std", "rms_norm", "butter_sos",
           "quantize_pcm", "normal", "poisson", "fft", "ifft", "fftconvolve", "next_pow2"]


def _inverse_factorials(degrees) -> list[float]:
    """1/n! for each n, correctly rounded (Fraction -> float rounds to nearest)."""
    return [float(Fraction(1, math.factorial(n))) for n in degrees]


# Cody-Waite splits (fdlibm's constants): the leading parts have trailing zero bits, so k * part is exact.
_LN2_HI, _LN2_LO = 6.93147180369123816490e-01, 1.90821492927058770002e-10
_INV_LN2 = 1.44269504088896338700e+00
_PIO2_1, _PIO2_2, _PIO2_3 = 1.57079632673412561417e+00, 6.07710050630396597660e-11, 2.02226624871116645580e-21
_TWO_OVER_PI = 6.36619772367581382433e-01
_EXP_COEFFS = _inverse_factorials(range(14, -1, -1))        # Taylor series of e^r, |r| <= ln2 / 2
_SIN_COEFFS = _inverse_factorials(range(19, 2, -2))         # r^3/3! ... r^19/19!, |r| <= pi/4
_COS_COEFFS = _inverse_factorials(range(20, 1, -2))         # r^2/2! ... r^20/20!
_ATANH_COEFFS = [float(Fraction(2, n)) for n in range(23, 2, -2)]   # log(m) = 2 atanh(s)
_K_LIMIT = 2 ** 20   # |x| / (pi/2) beyond which the sine's argument reduction is no longer exact


def _horner(z: np.ndarray, coeffs: list[float]) -> np.ndarray:
    acc = np.full_like(z, coeffs[0])
    for c in coeffs[1:]:   # in place: the same two rounded operations, no temporary per step
        acc *= z
        acc += c
    return acc


def _pow2(k: np.ndarray) -> np.ndarray:
    """2.0 ** k for integer k in [-1022, 1023], built from the exponent bits (exact)."""
    return ((k.astype(np.int64) + 1023) << 52).view(np.float64)


def exp(x) -> np.ndarray:
    """e**x elementwise; below -708 (where e**x leaves the normal range) the result is 0."""
    x = np.asarray(x, dtype=np.float64)
    small = x < -708.0
    xc = np.clip(x, -708.0, 709.0)
    k = np.rint(xc * _INV_LN2)
    r = (xc - k * _LN2_HI) - k * _LN2_LO
    y = _horner(r, _EXP_COEFFS) * _pow2(k)
    return np.where(small, 0.0, y)


def log(x) -> np.ndarray:
    """Natural logarithm elementwise, for positive finite x."""
    x = np.asarray(x, dtype=np.float64)
    if np.any(~(x > 0)) or not np.all(np.isfinite(x)):
        raise ArgumentError("bitexact.log: arguments must be positive and finite")
    m, e = np.frexp(x)                       # x = m * 2**e, m in [0.5, 1): exact
    low = m < math.sqrt(0.5)
    m = np.where(low, m * 2.0, m)
    e = (e - low).astype(np.float64)
    f = m - 1.0
    s = f / (f + 2.0)                        # log(m) = 2 atanh(s), |s| <= 0.172
    z = s * s
    log_m = s * _horner(z, _ATANH_COEFFS + [2.0])
    return e * _LN2_HI + (log_m + e * _LN2_LO)


def power(x, y) -> np.ndarray:
    """x**y elementwise for positive x, as e**(y log x)."""
    return exp(np.asarray(y, dtype=np.float64) * log(x))


def _reduce(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """x = k pi/2 + r with |r| <= pi/4 (about), k as int64."""
    if np.any(np.abs(x) > _K_LIMIT):
        raise ArgumentError(f"bitexact: trigonometric argument beyond +-{_K_LIMIT} is not supported")
    k = np.rint(x * _TWO_OVER_PI)
    r = ((x - k * _PIO2_1) - k * _PIO2_2) - k * _PIO2_3
    return r, k.astype(np.int64)


def _signed_cos() -> list[float]:
    # cos r = 1 - r^2/2! + r^4/4! - ...: the Horner list runs from r^20/20! down to r^2/2!, divided by r^2
    degrees = range(20, 1, -2)
    return [c if (d // 2) % 2 == 0 else -c for d, c in zip(degrees, _COS_COEFFS)]


def _signed_sin() -> list[float]:
    degrees = range(19, 2, -2)
    return [c if (d // 2) % 2 == 0 else -c for d, c in zip(degrees, _SIN_COEFFS)]


_SIN_SIGNED = _signed_sin()
_COS_SIGNED = _signed_cos()


def sincos(x) -> tuple[np.ndarray, np.ndarray]:
    """Sine and cosine elementwise, for |x| up to about a million."""
    x = np.asarray(x, dtype=np.float64)
    r, k = _reduce(x)
    z = r * r
    s = r + (r * z) * _horner(z, _SIN_SIGNED)
    c = 1.0 + z * _horner(z, _COS_SIGNED)
    odd = (k & 1).astype(bool)                      # quadrants 1 and 3 swap sine and cosine
    sin_sign = 1.0 - 2.0 * ((k >> 1) & 1)           # sine negative in quadrants 2 and 3
    cos_sign = 1.0 - 2.0 * (((k + 1) >> 1) & 1)     # cosine negative in quadrants 1 and 2
    return np.where(odd, c, s) * sin_sign, np.where(odd, s, c) * cos_sign


def sin(x) -> np.ndarray:
    """Sine elementwise, for |x| up to about a million."""
    return sincos(x)[0]


def cos(x) -> np.ndarray:
    """Cosine elementwise, for |x| up to about a million."""
    return sincos(x)[1]


def tan(x) -> np.ndarray:
    """Tangent elementwise (sine over cosine)."""
    s, c = sincos(x)
    return s / c


def total(x) -> float:
    """The sum of ``x`` on a fixed-point grid (int64 addition is associative, so no summation order can
    change it): every element is rounded to a multiple of 2**-q, q chosen from the largest magnitude and the
    count so the sum cannot overflow; relative to that magnitude the result is exact to about 2**-(61 - log2 n).
    """
    x = np.asarray(x, dtype=np.float64).ravel()
    if x.size == 0:
        return 0.0
    if not np.all(np.isfinite(x)):
        raise ArgumentError("bitexact.total: values must be finite")
    largest = float(np.max(np.abs(x)))
    if largest == 0.0:
        return 0.0
    shift = 61 - math.frexp(largest)[1] - max(1, math.ceil(math.log2(x.size)))
    scaled = np.rint(x * math.ldexp(1.0, shift)).astype(np.int64)
    return math.ldexp(float(int(np.sum(scaled, dtype=np.int64))), -shift)


def std(x) -> float:
    """Population standard deviation from :func:`total` sums: independent of how a library orders its partial
    sums."""
    x = np.asarray(x, dtype=np.float64)
    d = x - total(x) / x.size
    return math.sqrt(total(d * d) / x.size)


def rms_norm(x) -> float:
    """sqrt(sum(x**2)) from a :func:`total` sum."""
    x = np.asarray(x, dtype=np.float64)
    return math.sqrt(total(x * x))


# --------------------------------------------------------------------------- Butterworth designs
# Complex numbers as (re, im) pairs of Python floats: every product is a separate rounded operation
# (a C compiler may fuse the products inside Python's own complex type into FMAs on some platforms).

def _cmul(a, b):
    return (a[0] * b[0] - a[1] * b[1], a[0] * b[1] + a[1] * b[0])


def _cdiv(a, b):
    d = b[0] * b[0] + b[1] * b[1]
    return ((a[0] * b[0] + a[1] * b[1]) / d, (a[1] * b[0] - a[0] * b[1]) / d)


def _csqrt(a):
    """Principal square root."""
    modulus = math.sqrt(a[0] * a[0] + a[1] * a[1])
    re = math.sqrt(max(0.0, (modulus + a[0]) / 2))
    im = math.sqrt(max(0.0, (modulus - a[0]) / 2))
    return (re, im if a[1] >= 0 else -im)


def _scalar(fn, value: float) -> float:
    return float(fn(np.array([value]))[0])


def butter_sos(order: int, edges, btype: str, sr: float) -> np.ndarray:
    """A digital Butterworth filter as second-order sections, like ``scipy.signal.butter(order, edges,
    btype, fs=sr, output="sos")`` (pre-warped bilinear transform; the same response to within rounding), for
    an even ``order`` and ``btype`` ``"low"``, ``"high"`` or ``"band"`` (edges in Hz)."""
    if order < 2 or order % 2:
        raise ArgumentError(f"bitexact.butter_sos: order must be even and >= 2, got {order}")
    edges = [float(e) for e in (edges if isinstance(edges, (list, tuple)) else [edges])]
    if btype not in ("low", "high", "band") or len(edges) != (2 if btype == "band" else 1):
        raise ArgumentError(f"bitexact.butter_sos: btype {btype!r} with edges {edges}")
    if not all(0 < e < sr / 2 for e in edges):
        raise ArgumentError(f"bitexact.butter_sos: edges {edges} must lie between 0 and sr/2 = {sr / 2}")
    fs2 = 2.0 * sr
    warped = [fs2 * _scalar(tan, math.pi * e / sr) for e in edges]
    # the analog prototype's poles in the upper left quarter (their conjugates complete them)
    angles = [math.pi * (2 * m + order + 1) / (2 * order) for m in range(order // 2)]
    proto = [(_scalar(cos, a), _scalar(sin, a)) for a in angles]
    if btype == "low":
        analog = [(p[0] * warped[0], p[1] * warped[0]) for p in proto]
        numerator, n_zeros_at_origin, gain = (1.0, 2.0, 1.0), 0, warped[0] ** order
    elif btype == "high":
        analog = [_cdiv((warped[0], 0.0), p) for p in proto]
        numerator, n_zeros_at_origin, gain = (1.0, -2.0, 1.0), order, 1.0
    else:
        w0_sq, bw = warped[0] * warped[1], warped[1] - warped[0]
        analog = []
        for p in proto:
            half = (p[0] * bw / 2, p[1] * bw / 2)
            sq = _cmul(half, half)
            root = _csqrt((sq[0] - w0_sq, sq[1]))
            for s in ((half[0] + root[0], half[1] + root[1]), (half[0] - root[0], half[1] - root[1])):
                # keep one pole of each conjugate pair, the one in the upper half plane
                analog.append(s if s[1] > 0 else (s[0], -s[1]))
        numerator, n_zeros_at_origin, gain = (1.0, 0.0, -1.0), order, bw ** order
    # bilinear transform: z = (fs2 + s) / (fs2 - s); gain * prod(fs2 - zeros) / prod(fs2 - poles)
    digital = [_cdiv((fs2 + s[0], s[1]), (fs2 - s[0], -s[1])) for s in analog]
    denominator = (1.0, 0.0)
    for s in analog:
        d = (fs2 - s[0], -s[1])
        denominator = _cmul(denominator, _cmul(d, (d[0], -d[1])))   # the pole and its conjugate
    k = gain * fs2 ** n_zeros_at_origin / denominator[0]
    digital.sort(key=lambda z: z[0] * z[0] + z[1] * z[1])           # poles nearest the unit circle last
    sos = np.zeros((len(digital), 6))
    for i, z in enumerate(digital):
        sos[i, :3] = numerator
        sos[i, 3:] = (1.0, -2.0 * z[0], z[0] * z[0] + z[1] * z[1])
    sos[0, :3] *= k
    return sos


# --------------------------------------------------------------------------- random draws
# numpy's uniform doubles are exact bit operations on the generator's output, so they are the same everywhere;
# its normal and Poisson samplers call the C library's log1p/exp/log in their tails, whose FMA variants round
# differently in rare cases. These draw from uniforms with the functions above.

def normal(rng: np.random.Generator, size: int) -> np.ndarray:
    """``size`` standard normal samples (Box-Muller on the generator's uniform doubles)."""
    pairs = (size + 1) // 2
    u = rng.random((2, pairs))
    radius = np.sqrt(-2.0 * log(1.0 - u[0]))     # 1 - u in (0, 1]
    s, c = sincos(2.0 * math.pi * u[1])
    return np.concatenate([radius * c, radius * s])[:size]


def poisson(rng: np.random.Generator, lam: float) -> int:
    """A Poisson count with mean ``lam`` (Knuth's product of uniforms; means above 600 are split in parts)."""
    if not lam >= 0 or not math.isfinite(lam):
        raise ArgumentError(f"bitexact.poisson: mean must be finite and >= 0, got {lam}")
    parts = max(1, math.ceil(lam / 600))
    limit = float(exp(np.array([-lam / parts]))[0])
    count = 0
    for _ in range(parts):
        product = rng.random()
        while product > limit:
            count += 1
            product *= rng.random()
    return count


def quantize_pcm(x, bits: int = 24) -> np.ndarray:
    """Float samples in [-1, 1) to signed integers of ``bits`` bits (round half to even, clipped), as int32
    left-aligned the way libsndfile writes them (``PCM_24`` keeps the top 24 bits exactly)."""
    x = np.asarray(x, dtype=np.float64)
    if not np.all(np.isfinite(x)):
        raise ArgumentError("bitexact.quantize_pcm: samples must be finite")
    full = float(2 ** (bits - 1))
    q = np.clip(np.rint(x * full), -full, full - 1).astype(np.int32)
    return q << (32 - bits)


# --------------------------------------------------------------------------- FFT
# pocketfft (scipy.fft, numpy.fft) computes its twiddle factors with the C library's sin and cos, whose FMA
# and plain variants round a few arguments differently; this radix-2 FFT takes its twiddles from sincos above
# and forms every product from real parts.

@functools.lru_cache(maxsize=64)
def _stage_twiddles(half_span: int) -> tuple[np.ndarray, np.ndarray]:
    """exp(-2 pi i j / (2 half_span)) for j < half_span, as (cos, sin) columns."""
    s, c = sincos(-math.pi * np.arange(half_span) / half_span)
    return c[:, None], s[:, None]


#: Elements per block of a butterfly stage: the stage's temporaries stay in a core's cache (a 2**18-point transform
#: ran at about half the speed in whole-array steps, its temporaries streaming through memory).
_BLOCK = 16384


def _butterflies(a_re, a_im, b_re, b_im, w_re, w_im, sum_re, sum_im, rot_re, rot_im) -> None:
    """One radix-2 stage on 2-D views: ``sum = a + b`` and ``rot = w (a - b)``, in blocks of about
    :data:`_BLOCK` elements. ``w`` is one row or one column (or one value), broadcast over the rest."""
    rows, cols = a_re.shape
    if cols >= _BLOCK:
        blocks = [(slice(i, i + 1), slice(j, j + _BLOCK)) for i in range(rows) for j in range(0, cols, _BLOCK)]
    else:
        step = max(1, _BLOCK // cols)
        blocks = [(slice(i, i + step), slice(None)) for i in range(0, rows, step)]
    whole = slice(None)
    for r, c in blocks:
        w = (r if w_re.shape[0] > 1 else whole, c if w_re.shape[1] > 1 else whole)
        wr, wi = w_re[w], w_im[w]
        ar, ai, br, bi = a_re[r, c], a_im[r, c], b_re[r, c], b_im[r, c]
        np.add(ar, br, out=sum_re[r, c])
        np.add(ai, bi, out=sum_im[r, c])
        d_re, d_im = ar - br, ai - bi
        np.subtract(wr * d_re, wi * d_im, out=rot_re[r, c])
        np.add(wr * d_im, wi * d_re, out=rot_im[r, c])


def fft(re, im=None) -> tuple[np.ndarray, np.ndarray]:
    """The discrete Fourier transform of ``re + 1j * im`` (length a power of two), as (real, imaginary).

    Stockham's radix-2 decimation in frequency. A stage of ``groups`` x ``span`` butterflies reads element
    ``(h, g, s)`` of its input and writes ``(g, h, s)``, ``h`` the half. While ``groups >= span`` the data are held
    span-major (``(h, g, s)`` at ``[s, h * groups + g]``), later in natural order, so every numpy operation runs
    along the longer axis; one transpose between. Layout never changes an element's arithmetic: the same
    operations on the same values, the same bits.
    """
    re = np.array(re, dtype=np.float64)
    n = re.size
    if n & (n - 1) or n < 2:
        raise ArgumentError(f"bitexact.fft: length must be a power of two >= 2, got {n}")
    im = np.zeros(n) if im is None else np.array(im, dtype=np.float64)
    z_re, z_im = np.empty(n), np.empty(n)
    groups, span = n // 2, 1
    while groups >= max(1, span):   # span-major: x[h, g, s] at [s, h * groups + g]
        w_re, w_im = _stage_twiddles(groups)
        x_re, x_im = re.reshape(span, 2 * groups), im.reshape(span, 2 * groups)
        o_re, o_im = z_re.reshape(2 * span, groups), z_im.reshape(2 * span, groups)
        _butterflies(x_re[:, :groups], x_im[:, :groups], x_re[:, groups:], x_im[:, groups:], w_re.T, w_im.T,
                     o_re[:span], o_im[:span], o_re[span:], o_im[span:])
        re, im, z_re, z_im = z_re, z_im, re, im
        groups, span = groups // 2, span * 2
    if groups:                      # to natural order: [s, h * groups + g] -> (h * groups + g) * span + s
        re = np.ascontiguousarray(re.reshape(span, 2 * groups).T).ravel()
        im = np.ascontiguousarray(im.reshape(span, 2 * groups).T).ravel()
    while groups >= 1:
        w_re, w_im = _stage_twiddles(groups)
        a_re, b_re = re.reshape(2, groups, span)
        a_im, b_im = im.reshape(2, groups, span)
        out_re, out_im = z_re.reshape(groups, 2, span), z_im.reshape(groups, 2, span)
        _butterflies(a_re, a_im, b_re, b_im, w_re, w_im, out_re[:, 0], out_im[:, 0], out_re[:, 1], out_im[:, 1])
        re, im, z_re, z_im = z_re, z_im, re, im
        groups, span = groups // 2, span * 2
    return re, im


def ifft(re, im) -> tuple[np.ndarray, np.ndarray]:
    """The inverse of :func:`fft`."""
    out_re, out_im = fft(re, -np.asarray(im, dtype=np.float64))
    m = out_re.size
    return out_re / m, -out_im / m


def next_pow2(n: int) -> int:
    """The smallest power of two >= n (and >= 2)."""
    return max(2, 1 << (int(n) - 1).bit_length())


def fftconvolve(a, b) -> np.ndarray:
    """The full linear convolution of two real signals through :func:`fft` (one transform carries both, as
    ``a + 1j * b``)."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    size = a.size + b.size - 1
    m = next_pow2(size)
    re, im = np.zeros(m), np.zeros(m)
    re[:a.size], im[:b.size] = a, b
    z_re, z_im = fft(re, im)
    # Z[k] and conj(Z[m-k]) separate the two spectra: A = (Z[k] + conj Z[-k]) / 2, B = (Z[k] - conj Z[-k]) / 2j
    mirror = (-np.arange(m)) % m
    r_re, r_im = z_re[mirror], -z_im[mirror]
    a_re, a_im = (z_re + r_re) * 0.5, (z_im + r_im) * 0.5
    b_re, b_im = (z_im - r_im) * 0.5, (r_re - z_re) * 0.5
    p_re = a_re * b_re - a_im * b_im
    p_im = a_re * b_im + a_im * b_re
    return ifft(p_re, p_im)[0][:size]
