"""Synthetic acoustic scenes that coding degrades the way it degrades real recordings.

Ten classes with the DCASE scene names, each a recipe of physically motivated sources mixed in
a room: a background with a natural spectral tilt (noise falling roughly as 1/f^alpha, alpha
per class and clip), tonal sources with harmonic structure (engines, motors, hum, music, speech
at varying pitch), events with onsets and decays (footsteps, rail joints, chirps, bells,
beeps, door slams, pass-bys), reverberation with a class-typical decay time (exponentially
decaying noise impulse responses: long in stations and malls, short outdoors), and the
recording device's frequency response (TAU's devices differ: ``a`` is a high-quality binaural
microphone, ``b``/``c`` consumer devices, ``s1``-``s3`` phones with a high-pass below 150-300 Hz
and a roll-off above 7-14 kHz).

Class evidence therefore lives where real scenes carry it: in the temporal pattern and pitch of
events and in the coarse spectral envelope between 50 Hz and 8 kHz, with little energy near the
top of the band. Classes share source types at different rates and levels (bus and tram both
have engines; park and public square both have voices and birds), so they are confusable as
real scenes are. Everything is drawn from the generator passed in, so a clip is a deterministic
function of its seed, and the same on every machine: the elementary functions and filter designs come from
:mod:`codecbench.core.bitexact` (numpy's and glibc's versions depend on the CPU's SIMD level), sums that scale a
signal are exactly rounded, and nothing is computed in float32.
"""
from __future__ import annotations

import functools
import math
from typing import Any

import numpy as np
from scipy.signal import sosfilt

from codecbench.core import bitexact as bx

SCENES = ("airport", "bus", "metro", "metro_station", "park", "public_square",
          "shopping_mall", "street_pedestrian", "street_traffic", "tram")
DEVICES = ("a", "b", "c", "s1", "s2", "s3")

# Per class: background tilt alpha, reverberation time (s), direct-to-reverberant mix, and the rates (events per
# second) or presence probabilities of each source. Rates overlap across classes on purpose.
RECIPES: dict[str, dict] = {
    # each class has signature sources (present in nearly every clip) and shares others with its neighbours
    "airport": dict(alpha=1.1, rt60=1.6, wet=0.55, voices=0.8, steps=0.6, rolling=2.0, chime=0.2, hum=(0.5, 95),
                    jet=1.0, music=0.0, birds=0.0, rail=0.0, passby=0.0, engine=(0.0, 0), bell=0.0, squeal=0.0),
    "bus": dict(alpha=1.7, rt60=0.35, wet=0.2, voices=0.4, steps=0.0, rolling=0.0, chime=0.0, hum=(0.0, 0),
                jet=0.0, music=0.0, birds=0.0, rail=0.0, passby=0.2, engine=(1.0, 38), bell=0.0, squeal=0.1,
                beep=0.8),
    "metro": dict(alpha=1.5, rt60=0.45, wet=0.25, voices=0.3, steps=0.0, rolling=0.0, chime=0.0, hum=(1.0, 140),
                  jet=0.0, music=0.0, birds=0.0, rail=4.0, passby=0.0, engine=(0.9, 55), bell=0.0, squeal=0.8),
    "metro_station": dict(alpha=1.2, rt60=2.2, wet=0.65, voices=0.6, steps=1.2, rolling=0.2, chime=1.0,
                          hum=(0.3, 100), jet=0.0, music=0.0, birds=0.0, rail=0.6, passby=0.9, engine=(0.0, 0),
                          bell=0.0, squeal=0.3),
    "park": dict(alpha=1.0, rt60=0.15, wet=0.1, voices=0.4, steps=0.2, rolling=0.0, chime=0.0, hum=(0.0, 0),
                 jet=0.0, music=0.0, birds=4.0, rail=0.0, passby=0.05, engine=(0.0, 0), bell=0.0, squeal=0.0,
                 wind=0.9),
    "public_square": dict(alpha=1.2, rt60=0.5, wet=0.25, voices=2.0, steps=0.8, rolling=0.1, chime=0.0,
                          hum=(0.0, 0), jet=0.0, music=0.0, birds=1.0, rail=0.0, passby=0.2, engine=(0.0, 0),
                          bell=0.0, squeal=0.0, fountain=1.0),
    "shopping_mall": dict(alpha=1.1, rt60=1.3, wet=0.5, voices=2.2, steps=0.8, rolling=0.3, chime=0.0,
                          hum=(0.4, 120), jet=0.0, music=1.0, birds=0.0, rail=0.0, passby=0.0, engine=(0.0, 0),
                          bell=0.0, squeal=0.0),
    "street_pedestrian": dict(alpha=1.3, rt60=0.3, wet=0.15, voices=1.2, steps=4.0, rolling=0.4, chime=0.0,
                              hum=(0.0, 0), jet=0.0, music=0.0, birds=0.2, rail=0.0, passby=0.4, engine=(0.0, 0),
                              bell=0.0, squeal=0.0),
    "street_traffic": dict(alpha=1.8, rt60=0.25, wet=0.12, voices=0.1, steps=0.2, rolling=0.0, chime=0.0,
                           hum=(0.0, 0), jet=0.0, music=0.0, birds=0.0, rail=0.0, passby=2.2, engine=(0.8, 30),
                           bell=0.0, squeal=0.0, horn=0.6),
    "tram": dict(alpha=1.6, rt60=0.4, wet=0.25, voices=0.4, steps=0.0, rolling=0.0, chime=0.0, hum=(1.0, 170),
                 jet=0.0, music=0.0, birds=0.0, rail=1.2, passby=0.0, engine=(0.0, 0), bell=0.8, squeal=0.9),
}


def _db(x: float) -> float:
    return _pow(10.0, x / 20)


@functools.lru_cache(maxsize=65536)
def _pow(base: float, exponent: float) -> float:
    """base ** exponent for scalars, the same on every CPU (Python's ``**`` calls the C library's pow).

    Memoised: a scene asks for the same partial weights and levels again and again, and each call pays numpy's
    per-call overhead a few dozen times: memoised, a 2-s scene took 215-220 ms instead of 238-258 ms on a 2-core
    AMD EPYC."""
    return float(bx.power(np.array([base]), exponent)[0])


def _tilted_noise(rng, n: int, sr: int, alpha: float, lo: float = 20.0) -> np.ndarray:
    """Gaussian noise whose power falls as 1/f^alpha above ``lo`` Hz (unit RMS).

    White Gaussian noise is drawn directly as its spectrum (independent Gaussian real and imaginary parts,
    conjugate-symmetric so the signal is real), tilted, and transformed back once."""
    m = bx.next_pow2(n)
    half = m // 2
    g = bx.normal(rng, m)
    re, im = np.empty(m), np.zeros(m)
    re[0], re[half] = g[0], g[1]                       # DC and Nyquist are real
    re[1:half], im[1:half] = g[2:half + 1] * math.sqrt(0.5), g[half + 1:] * math.sqrt(0.5)
    re[half + 1:], im[half + 1:] = re[half - 1:0:-1], -im[half - 1:0:-1]
    freqs = np.minimum(np.arange(m), m - np.arange(m)) * (sr / m)     # bins k and m - k share a frequency
    tilt = bx.power(np.maximum(freqs, lo), alpha / 2)
    y = bx.ifft(re / tilt, im / tilt)[0][:n]
    return y / (bx.std(y) + 1e-12)


@functools.lru_cache(maxsize=4096)
def _sos(order: int, edges: tuple, btype: str, sr: int) -> np.ndarray:
    return bx.butter_sos(order, list(edges) if len(edges) > 1 else edges[0], btype, sr)


def _filter(x: np.ndarray, sr: int, btype: str, *edges: float, order: int = 2) -> np.ndarray:
    """Butterworth filtering; edges are rounded to 10 Hz so that designs are shared between clips."""
    return sosfilt(_sos(order, tuple(round(e, -1) for e in edges), btype, sr), x)


def _envelope(n: int, sr: int, attack: float, decay: float) -> np.ndarray:
    t = np.arange(n) / sr
    return np.minimum(1.0, t / max(attack, 1e-4)) * bx.exp(-np.maximum(0.0, t - attack) / max(decay, 1e-4))


def _place(x: np.ndarray, event: np.ndarray, start: int) -> None:
    if start >= len(x):
        return
    end = min(len(x), start + len(event))
    x[start:end] += event[:end - start]


def _harmonic(rng, n: int, sr: int, f0: np.ndarray | float, partials: int, rolloff: float,
              inharmonic: float = 0.0) -> np.ndarray:
    """A harmonic (or slightly inharmonic) tone; ``f0`` may vary over time; partials above 0.45 sr are left out."""
    f0 = np.broadcast_to(np.asarray(f0, dtype=np.float64), (n,))
    phase0 = np.cumsum(2 * np.pi * f0 / sr) % (2 * np.pi)
    y = np.zeros(n)
    top = float(f0.max())
    kept = []  # (k, ratio, weight) of the partials inside the band and above -40 dB
    for k in range(1, partials + 1):
        ratio = k * (1 + inharmonic * k * k)
        weight = _pow(k, rolloff)
        if top * ratio >= 0.45 * sr or weight > 100:  # beyond the band, or below -40 dB
            break
        kept.append((k, ratio, weight))
    # one phase per partial, drawn as the partials were drawn one at a time (the same doubles in the same order),
    # and their sines and cosines in one call instead of one per partial
    phases = rng.uniform(0, 2 * np.pi, size=len(kept))
    if inharmonic:
        for (_, ratio, weight), phase in zip(kept, phases):
            y += bx.sin(ratio * phase0 + phase) / weight
        return y
    sin_ps, cos_ps = bx.sincos(phases)
    sin_k: Any = 0.0  # the running partials, set at k == 1 before any use
    cos_k: Any = 0.0
    sin_1: Any = 0.0
    cos_1: Any = 0.0
    for (k, _, weight), sin_p, cos_p in zip(kept, sin_ps.tolist(), cos_ps.tolist()):
        # integer partials: sin(k p0) and cos(k p0) by rotation from the first (products and sums only)
        if k == 1:
            sin_1, cos_1 = bx.sincos(phase0)
            sin_k, cos_k = sin_1, cos_1
        else:
            sin_k, cos_k = sin_k * cos_1 + cos_k * sin_1, cos_k * cos_1 - sin_k * sin_1
        y += (sin_k * cos_p + cos_k * sin_p) / weight
    return y


def _bandpass(x: np.ndarray, sr: int, lo: float, hi: float, order: int = 2) -> np.ndarray:
    hi = min(hi, 0.45 * sr)
    if lo >= hi:
        return np.zeros_like(x)
    return _filter(x, sr, "band", lo, hi, order=order)


def _lowpass(x: np.ndarray, sr: int, hi: float, order: int = 2) -> np.ndarray:
    return _filter(x, sr, "low", min(hi, 0.45 * sr), order=order)


def _events(rng, rate: float, duration: float) -> np.ndarray:
    """Onset times of a Poisson process (at least one event if the rate is high enough to expect one)."""
    count = bx.poisson(rng, rate * duration)
    return np.sort(rng.uniform(0, duration, size=count))


def _voice(rng, sr: int) -> np.ndarray:
    """A syllable: a glottal-like harmonic tone with a falling-rising pitch, shaped by two formants."""
    length = rng.uniform(0.12, 0.32)
    n = int(length * sr)
    f0 = rng.uniform(95, 240) * (1 + 0.12 * bx.sin(np.linspace(0, np.pi * rng.uniform(0.5, 1.5), n)))
    y = _harmonic(rng, n, sr, f0, 40, 1.0)
    formants = [rng.uniform(300, 900), rng.uniform(900, 2600)]
    y = sum(_bandpass(y, sr, f * 0.75, f * 1.3) for f in formants) + 0.05 * y
    return y * _envelope(n, sr, 0.02, length / 3)


def _step(rng, sr: int) -> np.ndarray:
    n = int(0.08 * sr)
    y = _lowpass(bx.normal(rng, n), sr, rng.uniform(1500, 4000))
    return y * _envelope(n, sr, 0.002, 0.015)


def _chirp(rng, sr: int) -> np.ndarray:
    """A bird call: a fast frequency sweep between 2 and 7 kHz with a second harmonic."""
    length = rng.uniform(0.04, 0.18)
    n = int(length * sr)
    f_start, f_end = rng.uniform(2200, 6500), rng.uniform(2200, 6500)
    f = np.linspace(f_start, f_end, n) * (1 + 0.05 * bx.sin(np.linspace(0, 20, n)))
    y = _harmonic(rng, n, sr, f, 2, 1.5)
    return y * bx.sin(np.linspace(0, np.pi, n)) ** 2


def _bell(rng, sr: int, f0: float) -> np.ndarray:
    n = int(1.2 * sr)
    return _harmonic(rng, n, sr, f0, 8, 0.7, inharmonic=0.02) * _envelope(n, sr, 0.003, 0.35)


def _tone(rng, sr: int, f: float, length: float) -> np.ndarray:
    n = int(length * sr)
    return _harmonic(rng, n, sr, f, 3, 2.0) * _envelope(n, sr, 0.01, length)


def _rail(rng, sr: int) -> np.ndarray:
    """A wheel pair over a rail joint: two low, ringing thumps 0.1-0.2 s apart."""
    gap = rng.uniform(0.08, 0.2)
    n = int((gap + 0.15) * sr)
    y = np.zeros(n)
    for start in (0, int(gap * sr)):
        m = int(0.12 * sr)
        thump = _lowpass(bx.normal(rng, m), sr, rng.uniform(300, 900)) * _envelope(m, sr, 0.001, 0.03)
        _place(y, thump, start)
    return y


def _passby(rng, sr: int, duration: float) -> np.ndarray:
    """A vehicle passing: broadband tyre noise swelling and fading, its brightness following the distance."""
    length = rng.uniform(1.5, 3.5)
    n = int(length * sr)
    t = np.linspace(-1, 1, n)
    gain = 1 / (0.15 + t ** 2)
    gain /= gain.max()
    noise = _tilted_noise(rng, n, sr, 1.2)
    bright = _lowpass(noise, sr, rng.uniform(2500, 5000))
    dull = _lowpass(noise, sr, 700)
    return (gain * bright + (1 - gain) * dull) * gain


def scene(class_index: int, rng: np.random.Generator, duration: float, sr: int, device: str = "a") -> np.ndarray:
    """One synthetic scene of class ``class_index`` recorded on ``device``: float64 mono, peak between -12 and
    -3 dBFS."""
    recipe = RECIPES[SCENES[class_index]]
    n = int(round(duration * sr))
    t = np.arange(n) / sr
    alpha = recipe["alpha"] * rng.uniform(0.85, 1.15)
    direct = np.zeros(n)

    # tonal sources: engines and motors (a low f0 wandering with load), mains/ventilation hum
    presence, f_engine = recipe["engine"]
    if presence and rng.random() < presence:
        f0 = f_engine * rng.uniform(0.8, 1.25) * (1 + 0.08 * bx.sin(2 * np.pi * rng.uniform(0.05, 0.3) * t
                                                                      + rng.uniform(0, 6.3)))
        direct += _db(rng.uniform(-20, -12)) * _lowpass(_harmonic(rng, n, sr, f0, 30, 0.8), sr, 2500)
    presence, f_hum = recipe["hum"]
    if presence and rng.random() < presence:
        direct += _db(rng.uniform(-30, -20)) * _harmonic(rng, n, sr, f_hum * rng.uniform(0.95, 1.05), 12, 1.2)
    if recipe.get("music") and rng.random() < recipe["music"]:
        root = 110 * _pow(2.0, rng.integers(0, 12) / 12)
        chord = sum(_harmonic(rng, n, sr, root * r, 10, 1.3) for r in (1, 1.26, 1.5, 2))
        beat = 0.6 + 0.4 * (bx.sin(2 * np.pi * rng.uniform(1.5, 2.5) * t) > 0)
        direct += _db(rng.uniform(-30, -20)) * chord * beat
    if recipe.get("jet") and rng.random() < recipe["jet"]:
        direct += _db(rng.uniform(-26, -16)) * _lowpass(_tilted_noise(rng, n, sr, 1.0), sr, rng.uniform(1200, 3000))

    # events
    def add(maker, rate, level_db, **kwargs):
        for onset in _events(rng, rate, duration):
            event = maker(rng, sr, **kwargs) if kwargs else maker(rng, sr)
            _place(direct, _db(level_db + rng.uniform(-6, 3)) * event, int(onset * sr))

    add(_voice, recipe["voices"] * 2.5, -20)
    if recipe["steps"]:
        period, start = rng.uniform(0.45, 0.6), rng.uniform(0, 0.5)
        for onset in np.arange(start, duration, period):
            if rng.random() < min(1.0, recipe["steps"] / 2):
                _place(direct, _db(rng.uniform(-26, -18)) * _step(rng, sr), int(onset * sr))
    add(_chirp, recipe["birds"] * 2.0, -24)
    add(_rail, recipe["rail"], -14)
    if recipe.get("rolling"):
        add(_rail, recipe["rolling"], -24)
    if recipe["chime"]:
        for onset in _events(rng, recipe["chime"], duration):
            notes = 659.3 * bx.power(2.0, np.array([0, -4, -7]) / 12)
            for i, f in enumerate(notes):
                _place(direct, _db(-22) * _tone(rng, sr, f, 0.4), int((onset + 0.35 * i) * sr))
    if recipe.get("beep"):
        add(_tone, recipe["beep"], -24, f=rng.uniform(1800, 2600), length=0.15)
    if recipe["bell"]:
        add(_bell, recipe["bell"], -18, f0=rng.uniform(600, 900))
    if recipe["squeal"]:
        add(_tone, recipe["squeal"], -30, f=rng.uniform(3000, 7000), length=rng.uniform(0.3, 0.9))
    if recipe.get("horn"):
        add(_tone, recipe["horn"], -16, f=rng.uniform(350, 500), length=rng.uniform(0.3, 0.8))
    for onset in _events(rng, recipe["passby"], duration + 2.0):
        event = _passby(rng, sr, duration)
        start = int((onset - 1.0) * sr)
        if start < 0:
            event, start = event[-start:], 0
        _place(direct, _db(rng.uniform(-18, -10)) * event, start)

    # room: exponentially decaying noise as the impulse response, decay from the class's reverberation time
    rt60 = recipe["rt60"] * rng.uniform(0.8, 1.25)
    ir_len = int(min(rt60, 2.5) * sr)
    ir = bx.normal(rng, ir_len) * bx.exp(-6.9 * np.arange(ir_len) / (rt60 * sr))
    ir = _lowpass(ir, sr, rng.uniform(4000, 9000))
    wet = bx.fftconvolve(direct, ir / (bx.rms_norm(ir) + 1e-12))[:n]
    mix = (1 - recipe["wet"]) * direct + recipe["wet"] * wet

    # diffuse background: tilted noise, wind gusts, fountain
    background = _tilted_noise(rng, n, sr, alpha) * _db(rng.uniform(-38, -30))
    if recipe.get("wind") and rng.random() < recipe["wind"]:
        gust = 0.5 + 0.5 * bx.sin(2 * np.pi * rng.uniform(0.2, 0.6) * t + rng.uniform(0, 6.3))
        background += _db(rng.uniform(-26, -18)) * gust * _lowpass(_tilted_noise(rng, n, sr, 1.0), sr, 500)
    if recipe.get("fountain") and rng.random() < recipe["fountain"]:
        background += _db(rng.uniform(-30, -24)) * _bandpass(bx.normal(rng, n), sr, 800, 6000)
    x = mix + background
    x = device_response(x, sr, device, rng)
    peak = np.max(np.abs(x)) + 1e-12
    return x / peak * _db(rng.uniform(-12, -3))


def device_response(x: np.ndarray, sr: int, device: str, rng: np.random.Generator) -> np.ndarray:
    """The recording device's frequency response: ``a`` near flat, ``b``/``c`` consumer, ``s*`` phones."""
    if device == "a":
        return _lowpass(x, sr, 18000, order=4)
    if device in ("b", "c"):
        y = _filter(x, sr, "high", rng.uniform(60, 120))
        return _lowpass(y, sr, rng.uniform(14000, 16000), order=4)
    y = _filter(x, sr, "high", rng.uniform(150, 300))
    return _lowpass(y, sr, rng.uniform(7000, 14000), order=4)
