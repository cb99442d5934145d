"""Procedural environmental sounds: physically motivated synthesis with randomised parameters.

Every generator has the signature ``(rng, seconds, sample_rate) -> float32 [samples]`` with
``samples = round(seconds * sample_rate)``; it draws all of its parameters from ``rng`` (a
``numpy.random.Generator``), so the same seed gives the same samples and different seeds give
different sounds. Output is mono, finite and peak-normalised to 1 (the corpus builder sets the final
level). Filters come from ``scipy.signal``; frequencies are kept below 0.45 x ``sample_rate``.
sepkit-mini renders at 16 kHz.

``GENERATORS`` maps each class name ("rain", "wind", ...) to its generator.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from scipy import signal

# ----------------------------------------------------------------------------- helpers


def _n(seconds: float, sr: int) -> int:
    return int(round(seconds * sr))


def _hz(f: float, sr: int) -> float:
    """Clamp a frequency into (10 Hz, 0.45 x sr)."""
    return float(min(max(f, 10.0), 0.45 * sr))


def _pink(rng: np.random.Generator, n: int) -> np.ndarray:
    """Pink (1/f power) noise, unit standard deviation, [n]."""
    spec = np.fft.rfft(rng.standard_normal(n))
    f = np.arange(spec.size, dtype=np.float64)
    f[0] = 1.0
    x = np.fft.irfft(spec / np.sqrt(f), n)
    return x / (x.std() + 1e-12)


def _brown(rng: np.random.Generator, n: int, sr: int) -> np.ndarray:
    """Brown (1/f^2) noise, leaky-integrated white noise with the DC removed, unit std, [n]."""
    x = signal.lfilter([1.0], [1.0, -0.997], rng.standard_normal(n))
    x = signal.sosfilt(signal.butter(1, 15.0, "highpass", fs=sr, output="sos"), x)
    return x / (x.std() + 1e-12)


def _control(rng: np.random.Generator, n: int, sr: int, rate_hz: float) -> np.ndarray:
    """A smooth random control signal in [-1, 1]: random points ``rate_hz`` apart, cosine-interpolated, [n]."""
    points = max(2, int(np.ceil(n / sr * rate_hz)) + 2)
    values = rng.uniform(-1.0, 1.0, points)
    pos = np.arange(n) / sr * rate_hz
    i = np.minimum(pos.astype(int), points - 2)
    frac = pos - i
    w = 0.5 - 0.5 * np.cos(np.pi * frac)
    return values[i] * (1 - w) + values[i + 1] * w


def _band(x: np.ndarray, lo: float, hi: float, sr: int, order: int = 2) -> np.ndarray:
    lo, hi = _hz(lo, sr), _hz(hi, sr)
    if hi <= lo * 1.05:
        hi = min(0.45 * sr, lo * 1.5)
    return signal.sosfilt(signal.butter(order, [lo, hi], "bandpass", fs=sr, output="sos"), x)


def _low(x: np.ndarray, f: float, sr: int, order: int = 2) -> np.ndarray:
    return signal.sosfilt(signal.butter(order, _hz(f, sr), "lowpass", fs=sr, output="sos"), x)


def _high(x: np.ndarray, f: float, sr: int, order: int = 2) -> np.ndarray:
    return signal.sosfilt(signal.butter(order, _hz(f, sr), "highpass", fs=sr, output="sos"), x)


def _resonate(x: np.ndarray, f: float, q: float, sr: int) -> np.ndarray:
    """A two-pole resonant band-pass (``iirpeak``) at ``f`` Hz with quality ``q``."""
    b, a = signal.iirpeak(_hz(f, sr), q, fs=sr)
    return signal.lfilter(b, a, x)


def _modes(x: np.ndarray, freqs, decays, gains, sr: int) -> np.ndarray:
    """Excite damped modes (frequency Hz, 60 dB decay time s, gain) with ``x``: a modal resonator bank."""
    out = np.zeros_like(x)
    for f, t60, g in zip(freqs, decays, gains):
        f = _hz(f, sr)
        r = np.exp(-6.91 / (t60 * sr))
        a = [1.0, -2.0 * r * np.cos(2 * np.pi * f / sr), r * r]
        out += g * signal.lfilter([1.0 - r], a, x)
    return out


def _impulses(n: int, times: np.ndarray, amps: np.ndarray, sr: int) -> np.ndarray:
    """An impulse train [n] with ``amps`` at ``times`` (seconds); impulses outside the clip are dropped."""
    x = np.zeros(n)
    idx = np.round(np.asarray(times) * sr).astype(int)
    keep = (idx >= 0) & (idx < n)
    np.add.at(x, idx[keep], np.broadcast_to(np.asarray(amps, dtype=np.float64), idx.shape)[keep])
    return x


def _overlap_add(n: int, starts: np.ndarray, lengths: np.ndarray, grain_fn) -> np.ndarray:
    """Overlap-add many grains at once: grain i starts at sample ``starts[i]`` and lasts ``lengths[i]``.

    ``grain_fn(ids, t)`` returns the samples of grains ``ids`` at their local times ``t`` (s), flat.
    Returns [n]; samples outside the clip are dropped.
    """
    lengths = np.maximum(np.asarray(lengths, dtype=np.int64), 0)
    if lengths.sum() == 0:
        return np.zeros(n)
    ids = np.repeat(np.arange(lengths.size), lengths)
    within = np.arange(ids.size) - np.repeat(np.cumsum(lengths) - lengths, lengths)
    pos = np.asarray(starts, dtype=np.int64)[ids] + within
    values = grain_fn(ids, within)
    keep = (pos >= 0) & (pos < n)
    return np.bincount(pos[keep], weights=values[keep], minlength=n)[:n]


def _burst(rng: np.random.Generator, sr: int, decay_s: float, attack_s: float = 0.0005) -> np.ndarray:
    """A short noise burst: white noise under an attack/exponential-decay envelope, [~6 x decay]."""
    length = max(4, int((attack_s + 6 * decay_s) * sr))
    t = np.arange(length) / sr
    env = np.minimum(1.0, t / max(attack_s, 1.0 / sr)) * np.exp(-t / decay_s)
    return rng.standard_normal(length) * env


def _room(rng: np.random.Generator, x: np.ndarray, sr: int, rt60: float, wet: float) -> np.ndarray:
    """A small room: convolve with exponentially decaying low-passed noise (RT60 ``rt60``), mix ``wet``."""
    length = max(16, min(x.size, int(rt60 * sr)))
    t = np.arange(length) / sr
    ir = _low(rng.standard_normal(length), 5000.0, sr, 1) * np.exp(-6.91 * t / rt60)
    ir[: int(0.003 * sr)] = 0.0  # pre-delay
    ir /= np.sqrt(np.sum(ir**2)) + 1e-12
    return x + wet * signal.fftconvolve(x, ir)[: x.size]


def _sweep_filter(x: np.ndarray, fc: np.ndarray, q: float, sr: int, block: int = 128) -> np.ndarray:
    """A resonant band-pass whose centre follows ``fc`` [n] (Hz), updated every ``block`` samples."""
    out = np.empty_like(x)
    zi = np.zeros(2)
    for start in range(0, x.size, block):
        b, a = signal.iirpeak(_hz(float(fc[start]), sr), q, fs=sr)
        out[start : start + block], zi = signal.lfilter(b, a, x[start : start + block], zi=zi)
    return out


def _phase(freq: np.ndarray, sr: int, start: float = 0.0) -> np.ndarray:
    """Instantaneous phase (radians) of a tone with frequency ``freq`` [n] Hz."""
    return start + 2 * np.pi * np.cumsum(freq) / sr


def _harmonic(phase: np.ndarray, freq: np.ndarray, sr: int, amps) -> np.ndarray:
    """Sum of harmonics ``amps[h-1] * sin(h * phase)``, each faded out smoothly as it nears 0.45 x sr."""
    out = np.zeros_like(phase)
    for h, a in enumerate(amps, 1):
        if a:
            out += a * np.sin(h * phase) * _below_nyquist(h * freq, sr)
    return out


def _below_nyquist(freq: np.ndarray, sr: int) -> np.ndarray:
    """1 below 0.42 x sr, 0 above 0.45 x sr, linear between (no clicks when a partial crosses the limit)."""
    return np.clip((0.45 * sr - np.asarray(freq)) / (0.03 * sr), 0.0, 1.0)


def _finish(x: np.ndarray, n: int) -> np.ndarray:
    """Exactly [n] samples, DC removed, peak 1, float32."""
    x = np.asarray(x, dtype=np.float64)[:n]
    if x.size < n:
        x = np.pad(x, (0, n - x.size))
    x = x - x.mean()
    peak = np.abs(x).max()
    if peak > 0:
        x = x / peak
    return x.astype(np.float32)


# ----------------------------------------------------------------------------- generators


def rain(rng: np.random.Generator, seconds: float, sample_rate: int) -> np.ndarray:
    """Rain: dense random droplet impulses through resonant filters, a few bubble drops, over a pink-noise bed.

    Intensity (light drizzle to downpour) sets the droplet rate (150-2000 drops/s). Droplets are
    short noise clicks with log-normal amplitudes, split among 5-9 resonant band-passes (1-6 kHz,
    Q 3-15: the surfaces they hit); ~2-12 drops/s are Minnaert bubbles (damped sines rising in
    pitch, 1-4 kHz). The bed is band-passed pink noise with a slow level drift.
    """
    sr, n = sample_rate, _n(seconds, sample_rate)
    intensity = rng.uniform(0.0, 1.0)
    rate = 150 + 1850 * intensity**1.5
    count = rng.poisson(rate * seconds)
    times = rng.uniform(0, seconds, count)
    amps = rng.lognormal(0.0, 0.8, count) * rng.choice([-1.0, 1.0], count)
    which = rng.integers(0, 1 + rng.integers(5, 9), count)
    drops = np.zeros(n)
    click = _burst(rng, sr, rng.uniform(0.0004, 0.0012))
    for k in np.unique(which):
        train = _impulses(n, times[which == k], amps[which == k], sr)
        y = signal.fftconvolve(train, click)[:n]
        drops += _resonate(y, np.exp(rng.uniform(np.log(1000), np.log(6000))), rng.uniform(3, 15), sr)
    drops += 0.3 * _high(_impulses(n, times, amps, sr), 3000, sr)
    # Bubbles: a few louder drops into puddles.
    t = np.arange(int(0.04 * sr)) / sr
    for start in rng.uniform(0, seconds, rng.poisson(rng.uniform(2, 12) * seconds)):
        f0 = rng.uniform(1000, 4000)
        grain = np.sin(_phase(f0 * (1 + rng.uniform(5, 25) * t), sr)) * np.exp(-t / rng.uniform(0.004, 0.012))
        i = int(start * sr)
        seg = grain[: max(0, n - i)] * rng.uniform(1.0, 3.0)
        drops[i : i + seg.size] += seg
    drops /= np.abs(drops).max() + 1e-12
    bed = _band(_pink(rng, n), rng.uniform(300, 800), rng.uniform(4000, 7500), sr)
    bed *= 1 + 0.25 * _control(rng, n, sr, 0.5)
    bed *= rng.uniform(0.15, 0.5) * (0.5 + intensity) / (np.abs(bed).max() + 1e-12)
    return _finish(_high(drops + bed, 80, sr), n)


def wind(rng: np.random.Generator, seconds: float, sample_rate: int) -> np.ndarray:
    """Wind: pink/brown noise through a resonant band-pass whose centre and level follow random gusts.

    A gust envelope (smooth random control at 0.15-0.8 Hz) drives the band-pass centre
    (250-1000 Hz +- up to 60 %, Q 1.5-6; a narrow Q 10-20 "howl" in ~40 % of clips) and the level
    (gusts swell and drop by up to ~15 dB), plus a low-passed rumble below 120-300 Hz.
    """
    sr, n = sample_rate, _n(seconds, sample_rate)
    gust = 0.5 + 0.5 * _control(rng, n, sr, rng.uniform(0.15, 0.8))
    gust = 0.5 * gust + 0.5 * (0.5 + 0.5 * _control(rng, n, sr, rng.uniform(1.0, 3.0))) * gust
    level = np.exp(np.log(10) / 20 * rng.uniform(8, 16) * (gust - 1))
    noise = rng.uniform(0.3, 0.8) * _pink(rng, n) + _brown(rng, n, sr)
    centre = rng.uniform(250, 1000) * (1 + rng.uniform(0.2, 0.6) * (2 * gust - 1))
    howl = rng.random() < 0.4
    body = _sweep_filter(noise, centre, rng.uniform(10, 20) if howl else rng.uniform(1.5, 6), sr)
    body /= np.abs(body).max() + 1e-12
    rumble = _low(_brown(rng, n, sr), rng.uniform(120, 300), sr, 4)
    rumble /= np.abs(rumble).max() + 1e-12
    hiss = _band(_pink(rng, n), 1500, 6000, sr)
    hiss /= np.abs(hiss).max() + 1e-12
    mix = body + rng.uniform(0.3, 0.9) * rumble + rng.uniform(0.05, 0.25) * hiss * gust
    return _finish(mix * level, n)


def engine_idling(rng: np.random.Generator, seconds: float, sample_rate: int) -> np.ndarray:
    """Engine idling: cylinder firing pulses at rpm x cylinders / 120 through an exhaust resonance, plus valve clatter.

    600-1100 rpm with slow +-3 % wander and 3, 4, 6 or 8 cylinders (20-75 firings/s). Each firing
    is an impulse (per-cylinder imbalance, 5 % jitter) shaped into an exhaust pop (decaying noise +
    damped 60-200 Hz sine), low-passed at 300-900 Hz with a 90-250 Hz resonance; a 1-4 kHz
    band of noise amplitude-modulated at half the engine speed adds the mechanical ticking.
    """
    sr, n = sample_rate, _n(seconds, sample_rate)
    rpm = rng.uniform(600, 1100) * (1 + rng.uniform(0.01, 0.03) * _control(rng, n, sr, rng.uniform(0.3, 1.5)))
    cylinders = int(rng.choice([3, 4, 6, 8]))
    fire_hz = rpm / 60 * cylinders / 2
    phase = np.cumsum(fire_hz) / sr + rng.uniform(0, 1)
    idx = np.nonzero(np.diff(np.floor(phase)) > 0)[0] + 1
    imbalance = rng.uniform(0.7, 1.0, cylinders)
    amps = imbalance[np.arange(idx.size) % cylinders] * (1 + 0.05 * rng.standard_normal(idx.size))
    train = np.zeros(n)
    train[idx] = amps
    t = np.arange(int(0.03 * sr)) / sr
    tau = rng.uniform(0.004, 0.012)
    pop = np.exp(-t / tau) * (0.6 * rng.standard_normal(t.size) + np.sin(2 * np.pi * rng.uniform(60, 200) * t))
    exhaust = signal.fftconvolve(train, pop)[:n]
    exhaust = _low(exhaust, rng.uniform(300, 900), sr, 2) + 0.8 * _resonate(exhaust, rng.uniform(90, 250), 4, sr)
    exhaust /= np.abs(exhaust).max() + 1e-12
    clatter = _band(rng.standard_normal(n), 1000, 4000, sr)
    clatter *= (0.5 + 0.5 * np.sin(np.pi * phase * 2 / cylinders)) ** 6
    clatter /= np.abs(clatter).max() + 1e-12
    hum = _low(_brown(rng, n, sr), 80, sr)
    hum /= np.abs(hum).max() + 1e-12
    return _finish(exhaust + rng.uniform(0.05, 0.2) * clatter + 0.2 * hum, n)


def siren(rng: np.random.Generator, seconds: float, sample_rate: int) -> np.ndarray:
    """Siren: a frequency-swept harmonic tone (wail, yelp or hi-lo) through a horn band-pass.

    Wail: a slow LFO (period 2-5 s) sweeps 500-750 Hz up to 1100-1600 Hz; yelp: the same sweep at
    3-7 Hz; hi-lo: two tones (e.g. 450/600 or 725/960 Hz) alternating every 0.4-0.7 s. The tone is
    saw-like (harmonics 1/h^1.2), band-passed like a horn speaker (350-4500 Hz). In ~40 % of clips
    it passes by: a Doppler shift of +-3-6 % and a level swell; otherwise distant (low-passed, with reverb).
    """
    sr, n = sample_rate, _n(seconds, sample_rate)
    t = np.arange(n) / sr
    kind = str(rng.choice(["wail", "yelp", "hilo"]))
    lo, hi = rng.uniform(500, 750), rng.uniform(1100, 1600)
    if kind == "wail":
        lfo = 0.5 - 0.5 * np.cos(2 * np.pi * t / rng.uniform(2, 5) + rng.uniform(0, 2 * np.pi))
        freq = lo + (hi - lo) * lfo**0.8
    elif kind == "yelp":
        saw = (t * rng.uniform(3, 7) + rng.uniform(0, 1)) % 1.0
        freq = lo + (hi - lo) * np.sin(0.5 * np.pi * saw)
    else:
        pair = [(450, 600), (725, 960), (550, 780)][int(rng.integers(3))]
        step = np.floor(t / rng.uniform(0.4, 0.7) + rng.uniform(0, 1)) % 2
        freq = _low(np.where(step > 0, pair[1], pair[0]).astype(float), 30, sr, 1) * rng.uniform(0.95, 1.05)
    passing = rng.random() < 0.4
    amp = np.ones(n)
    if passing:
        t0 = rng.uniform(0.3, 0.7) * seconds
        shift = rng.uniform(0.03, 0.06)
        freq = freq * (1 - shift * np.tanh((t - t0) / rng.uniform(0.2, 0.8)))
        amp = 0.25 + 0.75 / (1 + ((t - t0) / rng.uniform(0.5, 1.5)) ** 2)
    tone = _harmonic(_phase(freq, sr, rng.uniform(0, 2 * np.pi)), freq, sr, [1 / h**1.2 for h in range(1, 11)])
    tone = _band(tone, 350, 4500, sr) * amp
    if not passing:
        tone = _room(rng, _low(tone, rng.uniform(2000, 4000), sr), sr, rng.uniform(0.5, 1.5), rng.uniform(0.2, 0.5))
    return _finish(tone, n)


def alarm_beeping(rng: np.random.Generator, seconds: float, sample_rate: int) -> np.ndarray:
    """Alarm beeping: an on/off-gated tone (sine or band-limited square) in a regular, double or triple pattern.

    Tone 800-1500 Hz (alarm clock) or 2-4 kHz (smoke alarm, capped below Nyquist); beeps of
    0.06-0.35 s every 0.2-1.0 s, in pairs, or in the triple (T3) pattern of smoke alarms, with
    3 ms ramps, starting within the first 0.2 s; a small room reverb (RT60 0.2-0.6 s).
    """
    sr, n = sample_rate, _n(seconds, sample_rate)
    f = rng.uniform(800, 1500) if rng.random() < 0.5 else rng.uniform(2000, 4000)
    f = min(f, 0.4 * sr)
    freq = np.full(n, f)
    square = rng.random() < 0.5
    amps = [1, 0, 1 / 3, 0, 1 / 5, 0, 1 / 7] if square else [1, 0.05]
    tone = _harmonic(_phase(freq, sr), freq, sr, amps)
    pattern = str(rng.choice(["regular", "double", "triple"]))
    on = rng.uniform(0.06, 0.35)
    if pattern == "regular":
        onsets, period = [0.0], on + rng.uniform(0.1, 0.7)
    elif pattern == "double":
        gap = on + rng.uniform(0.05, 0.15)
        onsets, period = [0.0, gap], 2 * gap + rng.uniform(0.3, 0.8)
    else:
        on = rng.uniform(0.3, 0.5)
        onsets, period = [0.0, 2 * on, 4 * on], 6 * on + rng.uniform(0.8, 1.5)
    gate = np.zeros(n)
    start = rng.uniform(0, 0.2)
    while start < seconds:
        for o in onsets:
            a, b = int((start + o) * sr), int((start + o + on) * sr)
            gate[max(0, a) : min(n, b)] = 1.0
        start += period
    ramp = int(0.003 * sr)
    gate = np.convolve(gate, np.ones(ramp) / ramp, mode="same")
    return _finish(_room(rng, tone * gate, sr, rng.uniform(0.2, 0.6), rng.uniform(0.1, 0.35)), n)


def telephone_ringing(rng: np.random.Generator, seconds: float, sample_rate: int) -> np.ndarray:
    """Telephone ringing: an electromechanical bell (or electronic warble) in a ring cadence.

    Bell: a striker hits two bells alternately at 18-25 Hz; each bell is a bank of inharmonic
    modes (fundamental 700-1200 Hz, ratios ~1 : 2.3 : 4.3 : 6.6, 0.2-1.2 s decays), the second
    bell 5-20 % higher. Electronic: two tones (900-1400 Hz, ratio 1.2-1.3) alternating at 10-20 Hz.
    Cadence: UK double ring (0.4 on, 0.2 off, 0.4 on, 1-2 off) or a single 1-2 s ring with
    1-2.5 s pauses; ringing starts within the first 0.15 s.
    """
    sr, n = sample_rate, _n(seconds, sample_rate)
    bursts: list[tuple[float, float]] = []
    start = rng.uniform(0, 0.15)
    double = rng.random() < 0.5
    while start < seconds:
        if double:
            bursts += [(start, 0.4), (start + 0.6, 0.4)]
            start += 1.0 + rng.uniform(1.0, 2.0)
        else:
            length = rng.uniform(1.0, 2.0)
            bursts.append((start, length))
            start += length + rng.uniform(1.0, 2.5)
    if rng.random() < 0.65:
        rate = rng.uniform(18, 25)
        times, which = [], []
        for b0, length in bursts:
            k = np.arange(int(length * rate))
            times.append(b0 + k / rate + rng.normal(0, 0.001, k.size))
            which.append(k % 2)
        times, which = np.concatenate(times), np.concatenate(which)
        amps = rng.uniform(0.8, 1.0, times.size)
        f0 = rng.uniform(700, 1200)
        ratios = np.array([1.0, 2.32, 4.25, 6.63]) * rng.uniform(0.97, 1.03, 4)
        out = np.zeros(n)
        for bell, tune in enumerate([1.0, rng.uniform(1.05, 1.2)]):
            strikes = _impulses(n, times[which == bell], amps[which == bell], sr)
            strikes = signal.fftconvolve(strikes, _burst(rng, sr, 0.0003))[:n]
            decays = rng.uniform(0.3, 1.2) / ratios**0.7
            out += _modes(strikes, f0 * tune * ratios, decays, [1.0, 0.6, 0.35, 0.2], sr)
    else:
        t = np.arange(n) / sr
        fa = rng.uniform(900, 1400)
        fb = fa * rng.uniform(1.2, 1.3)
        freq = np.where((t * rng.uniform(10, 20)) % 1.0 < 0.5, fa, fb)
        tone = _harmonic(_phase(freq, sr), freq, sr, [1, 0.3, 0.2, 0.1])
        gate = np.zeros(n)
        for b0, length in bursts:
            gate[int(b0 * sr) : int((b0 + length) * sr)] = 1.0
        ramp = int(0.005 * sr)
        out = tone * np.convolve(gate, np.ones(ramp) / ramp, mode="same")
    return _finish(_room(rng, out, sr, rng.uniform(0.2, 0.7), rng.uniform(0.1, 0.3)), n)


def clock_ticking(rng: np.random.Generator, seconds: float, sample_rate: int) -> np.ndarray:
    """Clock ticking: escapement clicks exciting metallic and case resonances, alternating tick and tock.

    2-6 ticks/s with 0.3 % timing jitter; each tick is a 0.2-0.6 ms noise click through 3-5
    high modes (2-6.5 kHz, 5-30 ms decays) and 1-2 case modes (300-900 Hz); the tock's modes are
    5-15 % lower and its level 60-100 %. A quiet room (RT60 0.15-0.5 s).
    """
    sr, n = sample_rate, _n(seconds, sample_rate)
    rate = rng.uniform(2, 6)
    k = np.arange(int(seconds * rate) + 2)
    times = rng.uniform(0, 1 / rate) + k / rate + rng.normal(0, 0.003 / rate, k.size)
    tock_level = rng.uniform(0.6, 1.0)
    hi = np.sort(rng.uniform(2000, 6500, rng.integers(3, 6)))
    case = rng.uniform(300, 900, rng.integers(1, 3))
    out = np.zeros(n)
    for parity, shift, level in ((0, 1.0, 1.0), (1, rng.uniform(0.85, 0.95), tock_level)):
        sel = k % 2 == parity
        x = _impulses(n, times[sel], level * rng.uniform(0.9, 1.0, sel.sum()), sr)
        x = signal.fftconvolve(x, _burst(rng, sr, rng.uniform(0.0002, 0.0006)))[:n]
        out += _modes(x, hi * shift, rng.uniform(0.005, 0.03, hi.size), rng.uniform(0.3, 1.0, hi.size), sr)
        out += _modes(x, case * shift, rng.uniform(0.01, 0.04, case.size), rng.uniform(0.5, 1.5, case.size), sr)
        out += 0.3 * x
    return _finish(_room(rng, out, sr, rng.uniform(0.15, 0.5), rng.uniform(0.1, 0.3)), n)


def knocking(rng: np.random.Generator, seconds: float, sample_rate: int) -> np.ndarray:
    """Knocking: groups of 2-5 knuckle raps on a wooden door, in a room.

    Each knock is a 1-3 ms half-sine pulse exciting door modes (fundamental 70-160 Hz, ratios
    ~1 : 1.6 : 2.3 : 3.1 : 4.5, 40-150 ms decays) and a short 1.2-3 kHz click; knocks are
    0.12-0.25 s apart with accent and timing variation, groups 0.5-1.5 s apart, the first within
    0.2 s. Room reverb RT60 0.3-0.9 s.
    """
    sr, n = sample_rate, _n(seconds, sample_rate)
    times, amps = [], []
    t = rng.uniform(0, 0.2)
    while t < seconds:
        count, gap = int(rng.integers(2, 6)), rng.uniform(0.12, 0.25)
        for j in range(count):
            times.append(t + j * gap * rng.uniform(0.9, 1.1))
            amps.append((1.0 if j == 0 else rng.uniform(0.6, 0.95)) * rng.uniform(0.8, 1.0))
        t += count * gap + rng.uniform(0.5, 1.5)
    pulse_len = max(2, int(rng.uniform(0.001, 0.003) * sr))
    pulse = np.sin(np.pi * np.arange(pulse_len) / pulse_len)
    x = signal.fftconvolve(_impulses(n, np.array(times), np.array(amps), sr), pulse)[:n]
    f0 = rng.uniform(70, 160)
    ratios = np.array([1.0, 1.6, 2.3, 3.1, 4.5]) * rng.uniform(0.93, 1.07, 5)
    door = _modes(x, f0 * ratios, rng.uniform(0.04, 0.15, 5), [1.0, 0.8, 0.6, 0.5, 0.3], sr)
    click = _resonate(x, rng.uniform(1200, 3000), rng.uniform(2, 6), sr)
    door = door / (np.abs(door).max() + 1e-12) + rng.uniform(0.2, 0.5) * click / (np.abs(click).max() + 1e-12)
    return _finish(_room(rng, door, sr, rng.uniform(0.3, 0.9), rng.uniform(0.2, 0.5)), n)


def bird_chirping(rng: np.random.Generator, seconds: float, sample_rate: int) -> np.ndarray:
    """Bird chirping: 1-3 birds singing phrases of frequency-swept chirps over a faint outdoor bed.

    Each bird has a base pitch (2-6 kHz) and a chirp type: down-sweep, up-sweep, sinusoidal warble
    or trill (rapid repeated notes); chirps last 30-180 ms with sin^2 envelopes and a weak second
    harmonic, 2-8 per phrase 40-200 ms apart, phrases 0.2-1.2 s apart. Distant birds are quieter
    and low-passed; a faint low-passed pink-noise bed.
    """
    sr, n = sample_rate, _n(seconds, sample_rate)
    out = np.zeros(n)
    for bird in range(int(rng.integers(1, 4))):
        base = rng.uniform(2000, 6000)
        kind = str(rng.choice(["down", "up", "warble", "trill"]))
        dur, depth = rng.uniform(0.03, 0.18), rng.uniform(0.15, 0.6)
        level = 1.0 if bird == 0 else rng.uniform(0.3, 0.8)
        song = np.zeros(n)
        t = rng.uniform(0, 0.3) if bird == 0 else rng.uniform(0, 1.5)
        while t < seconds:
            for _ in range(int(rng.integers(2, 9))):
                d = dur * rng.uniform(0.8, 1.2)
                tt = np.arange(int(d * sr)) / sr
                u = tt / d
                if kind == "down":
                    f = base * (1 + depth * (1 - u))
                elif kind == "up":
                    f = base * (1 + depth * u)
                elif kind == "warble":
                    f = base * (1 + 0.5 * depth * np.sin(2 * np.pi * rng.uniform(20, 60) * tt))
                else:
                    f = base * (1 + 0.3 * depth * ((tt * 40) % 1.0))
                f = np.minimum(f * rng.uniform(0.95, 1.05), 0.45 * sr)
                ph = _phase(f, sr)
                chirp = (np.sin(ph) + 0.15 * np.sin(2 * ph) * _below_nyquist(2 * f, sr)) * np.sin(np.pi * u) ** 2
                i = int(t * sr)
                seg = chirp[: max(0, n - i)] * rng.uniform(0.6, 1.0)
                song[i : i + seg.size] += seg
                t += d + rng.uniform(0.04, 0.2)
                if t >= seconds:
                    break
            t += rng.uniform(0.2, 1.2)
        if bird > 0:
            song = _low(song, rng.uniform(3000, 7000), sr)
        out += level * song
    bed = _low(_pink(rng, n), rng.uniform(500, 2000), sr)
    bed *= rng.uniform(0.01, 0.05) / (np.abs(bed).max() + 1e-12)
    return _finish(out / (np.abs(out).max() + 1e-12) + bed, n)


def running_water(rng: np.random.Generator, seconds: float, sample_rate: int) -> np.ndarray:
    """Running water: many Minnaert bubbles (damped sines rising in pitch) over band-passed noise.

    A brook (300-1000 bubbles/s, 400-3000 Hz, bed 200-5000 Hz) or a tap (800-2000 bubbles/s,
    800-4000 Hz, a stronger bed); each bubble f(t) = f0 (1 + s t) with s 5-40 /s and a decay of
    a few cycles to tens of ms (smaller, higher bubbles die faster), log-normal amplitudes.
    The bed is pink noise band-passed and slowly modulated.
    """
    sr, n = sample_rate, _n(seconds, sample_rate)
    tap = rng.random() < 0.4
    rate = rng.uniform(800, 2000) if tap else rng.uniform(300, 1000)
    f_lo, f_hi = (800, 4000) if tap else (400, 3000)
    count = rng.poisson(rate * seconds)
    starts = rng.uniform(-0.02, seconds, count)
    f0s = np.exp(rng.uniform(np.log(f_lo), np.log(f_hi), count))
    slopes = rng.uniform(5, 40, count)
    decays = np.clip(rng.uniform(3, 10, count) / f0s * rng.uniform(1.0, 2.0, count), 0.002, 0.02)
    amps = rng.lognormal(0, 0.6, count) * (f0s / 1000) ** -0.5

    def bubble(ids, within):
        t = within / sr
        f0, s = f0s[ids], slopes[ids]
        audible = f0 * (1 + s * t) < 0.45 * sr
        return amps[ids] * np.sin(2 * np.pi * f0 * (t + 0.5 * s * t * t)) * np.exp(-t / decays[ids]) * audible

    out = _overlap_add(n, np.round(starts * sr), (4 * decays * sr).astype(int), bubble)
    out /= np.abs(out).max() + 1e-12
    bed = _band(_pink(rng, n), 200 if not tap else 500, 5000 if not tap else 7000, sr)
    bed *= 1 + 0.2 * _control(rng, n, sr, rng.uniform(0.5, 3))
    bed *= (rng.uniform(0.4, 0.8) if tap else rng.uniform(0.1, 0.35)) / (np.abs(bed).max() + 1e-12)
    return _finish(_high(out + bed, 150, sr), n)


def thunder(rng: np.random.Generator, seconds: float, sample_rate: int) -> np.ndarray:
    """Thunder: low-passed brown-noise rumble with a multi-peaked rolling envelope, sometimes a sharp crack.

    Strikes every 2.5-6 s (the first within 0.5 s); each has an optional close crack (high-passed
    noise, 30-150 ms decay), then a rumble: brown noise low-passed at 90-300 Hz plus quieter
    band-passed pink noise (150 Hz up to 0.6-1.5 kHz), under a sum of 2-6 decaying bumps over 1-5 s
    and a 2-8 Hz rolling modulation; a long (RT60 1-2.5 s) reverb.
    """
    sr, n = sample_rate, _n(seconds, sample_rate)
    t = np.arange(n) / sr
    out = np.zeros(n)
    start = rng.uniform(0, min(0.5, 0.3 * seconds))
    while start < seconds:
        env = np.zeros(n)
        length = rng.uniform(1.0, 5.0)
        for _ in range(int(rng.integers(2, 7))):
            c = start + rng.uniform(0, 0.5) * length
            w = rng.uniform(0.1, 0.6)
            env += rng.uniform(0.4, 1.0) * np.exp(-0.5 * ((t - c) / w) ** 2)
        env += np.exp(-np.maximum(t - start, 0.0) / length) * rng.uniform(0.3, 0.7)
        env *= np.clip((t - start) / rng.uniform(0.02, 0.3), 0.0, 1.0)  # the attack
        roll = 1 + 0.4 * _control(rng, n, sr, rng.uniform(2, 8))
        rumble = _low(_brown(rng, n, sr), rng.uniform(90, 300), sr, 4)
        rumble /= np.abs(rumble).max() + 1e-12
        growl = _band(_pink(rng, n), 150, rng.uniform(600, 1500), sr)
        growl /= np.abs(growl).max() + 1e-12
        out += (rumble + rng.uniform(0.15, 0.4) * growl) * env * roll
        if rng.random() < 0.5:
            crack = _high(_burst(rng, sr, rng.uniform(0.03, 0.15), 0.002), 400, sr)
            i = int(start * sr)
            seg = crack[: max(0, n - i)] / (np.abs(crack).max() + 1e-12) * rng.uniform(0.3, 0.7)
            out[i : i + seg.size] += seg
        start += rng.uniform(2.5, 6.0)
    return _finish(_room(rng, out, sr, rng.uniform(1.0, 2.5), 0.3), n)


def crackling_fire(rng: np.random.Generator, seconds: float, sample_rate: int) -> np.ndarray:
    """Crackling fire: bursty random crackles and wood pops over a hissing, roaring flame bed.

    Crackles arrive at 5-40/s with a rate that flickers (smooth random control), each a
    0.1-1 ms click high-passed at 1-3 kHz with log-normal amplitude; pops (0.5-3/s) are louder
    clicks through 400-1500 Hz resonances. The flame is low-passed brown noise (150-500 Hz) plus
    quiet 2-6 kHz hiss, both slowly modulated.
    """
    sr, n = sample_rate, _n(seconds, sample_rate)
    rate = rng.uniform(5, 40)
    flicker = np.clip(1 + 0.8 * _control(rng, n, sr, rng.uniform(0.5, 3)), 0.1, None)
    cum = np.cumsum(flicker) / sr * rate
    count = int(cum[-1])
    targets = np.sort(rng.uniform(0, cum[-1], count))
    times = np.searchsorted(cum, targets) / sr
    amps = rng.lognormal(0, 1.0, count) * rng.choice([-1.0, 1.0], count)
    x = _impulses(n, times, amps, sr)
    x = signal.fftconvolve(x, _burst(rng, sr, rng.uniform(0.0001, 0.001), 0.0001))[:n]
    crackles = _high(x, rng.uniform(1000, 3000), sr)
    crackles /= np.abs(crackles).max() + 1e-12
    pops = _impulses(n, rng.uniform(0, seconds, rng.poisson(rng.uniform(0.5, 3) * seconds)), 1.0, sr)
    pops = _resonate(signal.fftconvolve(pops, _burst(rng, sr, 0.002))[:n], rng.uniform(400, 1500), 3, sr)
    pops /= np.abs(pops).max() + 1e-12
    roar = _low(_brown(rng, n, sr), rng.uniform(150, 500), sr) * (1 + 0.4 * _control(rng, n, sr, 1.0))
    roar /= np.abs(roar).max() + 1e-12
    hiss = _band(rng.standard_normal(n), 2000, 6000, sr)
    hiss /= np.abs(hiss).max() + 1e-12
    mix = crackles + rng.uniform(0.4, 0.9) * pops + rng.uniform(0.15, 0.4) * roar + rng.uniform(0.03, 0.1) * hiss
    return _finish(mix, n)


def applause(rng: np.random.Generator, seconds: float, sample_rate: int) -> np.ndarray:
    """Applause: 8-60 clappers, each clapping at 3-6 Hz with jitter, each with its own hand "colour".

    A clap is a noise burst (0.5 ms attack, 4-15 ms decay) band-passed at the clapper's centre
    (700-2500 Hz, Q 0.7-2) and level (log-normal); clappers start and stop at random (~30 % of
    clips swell in). Hall reverb RT60 0.8-1.6 s.
    """
    sr, n = sample_rate, _n(seconds, sample_rate)
    swell = rng.random() < 0.3
    clappers = int(rng.integers(8, 61))
    groups = int(rng.integers(4, 8))  # clappers in a group share a hand "colour" (band-pass)
    times, amps, decays, group = [], [], [], []
    for c in range(clappers):
        rate = rng.uniform(3, 6)
        begin = rng.uniform(0, 0.5 * seconds) if swell else rng.uniform(-0.5, 0.1)
        k = np.arange(int((seconds - begin) * rate) + 1)
        times.append(begin + k / rate + rng.normal(0, 0.012, k.size))
        amps.append(rng.uniform(0.7, 1.0, k.size) * rng.lognormal(0, 0.5))
        decays.append(np.full(k.size, rng.uniform(0.004, 0.015)))
        group.append(np.full(k.size, c % groups))
    times, amps, decays, group = map(np.concatenate, (times, amps, decays, group))
    lengths = (6 * decays * sr).astype(int)
    noise = rng.standard_normal(int(lengths.sum()))
    attack = 0.0005 * sr

    def clap(ids, within):
        env = np.minimum(1.0, within / attack) * np.exp(-within / (decays[ids] * sr))
        return amps[ids] * env * noise[: ids.size]

    out = np.zeros(n)
    for g in range(groups):
        sel = group == g
        if not sel.any():
            continue
        x = _overlap_add(
            n, np.round(times[sel] * sr), lengths[sel], lambda ids, w, sel=sel: clap(np.nonzero(sel)[0][ids], w)
        )
        centre = rng.uniform(700, 2500)
        width = centre / rng.uniform(0.7, 2.0)
        out += _band(x, centre - width / 2, centre + width / 2, sr)
    return _finish(_room(rng, out, sr, rng.uniform(0.8, 1.6), rng.uniform(0.2, 0.5)), n)


def footsteps(rng: np.random.Generator, seconds: float, sample_rate: int) -> np.ndarray:
    """Footsteps: heel-then-toe impacts at a walking (1.6-2.2 steps/s) or running (2.6-3.2 /s) pace.

    Surfaces: hard floor (click through 1-4 kHz modes + 80-150 Hz thump, room reverb), wooden
    floor (thump through 90-400 Hz modes) or gravel (each impact a 40-120 ms cloud of 20-60 tiny
    high-passed grains). The toe follows the heel by 40-90 ms at 40-70 % level; the first step
    is within 0.25 s.
    """
    sr, n = sample_rate, _n(seconds, sample_rate)
    rate = rng.uniform(1.6, 2.2) if rng.random() < 0.75 else rng.uniform(2.6, 3.2)
    surface = str(rng.choice(["hard", "wood", "gravel"]))
    k = np.arange(int(seconds * rate) + 2)
    heel = rng.uniform(0, 0.25) + k / rate + rng.normal(0, 0.01, k.size)
    toe_gap = rng.uniform(0.04, 0.09)
    levels = rng.uniform(0.75, 1.0, k.size) * np.where(k % 2 == 0, 1.0, rng.uniform(0.8, 1.0))
    times = np.concatenate([heel, heel + toe_gap])
    amps = np.concatenate([levels, levels * rng.uniform(0.4, 0.7)])
    if surface == "gravel":
        grains_t, grains_a = [], []
        for t0, a in zip(times, amps):
            m = int(rng.integers(20, 61))
            grains_t.append(t0 + rng.gamma(2.0, rng.uniform(0.01, 0.03), m))
            grains_a.append(a * rng.lognormal(0, 0.7, m) * rng.choice([-1.0, 1.0], m))
        x = _impulses(n, np.concatenate(grains_t), np.concatenate(grains_a), sr)
        x = signal.fftconvolve(x, _burst(rng, sr, 0.0008))[:n]
        out = _high(x, rng.uniform(800, 2000), sr) + 0.3 * _low(x, 300, sr)
    else:
        x = signal.fftconvolve(_impulses(n, times, amps, sr), _burst(rng, sr, 0.002))[:n]
        if surface == "hard":
            hi = rng.uniform(1000, 4000, 3)
            out = _modes(x, hi, rng.uniform(0.01, 0.04, 3), [1.0, 0.7, 0.5], sr)
            out += _modes(x, [rng.uniform(80, 150)], [0.06], [2.0], sr)
        else:
            f = rng.uniform(90, 160) * np.array([1.0, 1.7, 2.6])
            out = _modes(x, f, rng.uniform(0.05, 0.12, 3), [1.0, 0.7, 0.4], sr) + 0.2 * _high(x, 1500, sr)
        out = _room(rng, out, sr, rng.uniform(0.3, 0.9), rng.uniform(0.15, 0.4))
    return _finish(out, n)


GENERATORS: dict[str, Callable[[np.random.Generator, float, int], np.ndarray]] = {
    "rain": rain,
    "wind": wind,
    "engine idling": engine_idling,
    "siren": siren,
    "alarm beeping": alarm_beeping,
    "telephone ringing": telephone_ringing,
    "clock ticking": clock_ticking,
    "knocking": knocking,
    "bird chirping": bird_chirping,
    "running water": running_water,
    "thunder": thunder,
    "crackling fire": crackling_fire,
    "applause": applause,
    "footsteps": footsteps,
}


def plan(name: str, rng: np.random.Generator) -> dict:
    """A clip's parameters for class ``name``: the generator and the seed it draws its own parameters from."""
    return {"generator": f"sepkit.data.mini.environment.{GENERATORS[name].__name__}", "seed": int(rng.integers(2**62))}


def render(name: str, params: dict, seconds: float, sample_rate: int = 16000) -> np.ndarray:
    """float32 [round(seconds * sample_rate)], peak 1: ``GENERATORS[name]`` seeded with ``params["seed"]``."""
    return GENERATORS[name](np.random.default_rng(params["seed"]), seconds, sample_rate)
