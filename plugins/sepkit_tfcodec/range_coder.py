"""A lossless arithmetic coder for TF-Codec's code indices with static integer frequency tables.

``encode(indices int [G, F], tables int [G, K]) -> bytes`` and ``decode(data, tables, F) -> int64 [G, F]``
round-trip exactly. Symbols go frame by frame, group by group (frame 0's G indices, then frame 1's,
...), index g under table g; table g gives code k the probability ``tables[g, k] / tables[g].sum()``.
Every frequency must be a positive integer (so every code is codable) and a table's total at most
``MAX_TOTAL`` (2**30).

The coder is the integer arithmetic coder of Witten, Neal and Cleary ("Arithmetic coding for data
compression", CACM 1987): 32-bit ``low`` / ``high`` registers, the interval narrowed by each symbol's
cumulative frequencies, renormalised a bit at a time, with pending ("follow") bits for an interval
straddling the middle. The stream ends with two bits that pick a value inside the final interval plus
the pending bits, padded with zeros to a whole byte; the decoder reads zeros past the end. Its length
is within about 2 bits + 1 byte of the ideal ``sum -log2 p`` (``ideal_bits``) plus a rounding loss of
order ``symbols * total / 2**30`` bits. Pure Python (about 1 us per coded bit): correctness, not speed.

``frequency_tables(counts)`` turns code counts [G, K] into tables (each count scaled to a total of
``TABLE_TOTAL``, plus one).
"""

from __future__ import annotations

from bisect import bisect_right

import numpy as np

PRECISION = 32
FULL = (1 << PRECISION) - 1
HALF = 1 << (PRECISION - 1)
QUARTER = 1 << (PRECISION - 2)
THREE_QUARTERS = HALF + QUARTER
MAX_TOTAL = QUARTER  # a larger total could give a symbol an empty interval
TABLE_TOTAL = 1 << 20  # frequency_tables' scale: an unseen code costs about 20 bits


def frequency_tables(counts, total: int = TABLE_TOTAL) -> np.ndarray:
    """counts int [G, K] (>= 0) -> int64 [G, K]: ``1 + counts * (total - K) // counts.sum()`` per group, so every
    code has frequency >= 1 and a group's total is at most ``total`` (a group without counts: all ones)."""
    counts = np.asarray(counts, dtype=np.int64)
    if counts.ndim != 2 or (counts < 0).any():
        raise ValueError(f"counts must be non-negative integers [groups, codes], got shape {counts.shape}")
    k = counts.shape[1]
    if not k <= total <= MAX_TOTAL:
        raise ValueError(f"total {total} must be in [{k}, {MAX_TOTAL}]")
    sums = counts.sum(1, keepdims=True)
    return 1 + counts * (total - k) // np.maximum(sums, 1)


def check_tables(tables) -> np.ndarray:
    """tables -> int64 [G, K], or ValueError naming what is wrong."""
    tables = np.asarray(tables)
    if tables.ndim != 2 or not np.issubdtype(tables.dtype, np.integer):
        raise ValueError(f"tables must be integers [groups, codes], got {tables.dtype} {tables.shape}")
    tables = tables.astype(np.int64)
    if (tables < 1).any():
        raise ValueError("every frequency must be at least 1 (a code of frequency 0 cannot be coded)")
    if (tables.sum(1) > MAX_TOTAL).any():
        raise ValueError(f"a table's total is {int(tables.sum(1).max())}; at most {MAX_TOTAL}")
    return tables


def _cumulative(tables: np.ndarray) -> list[list[int]]:
    """int64 [G, K] -> per group [0, f0, f0 + f1, ..., total] as Python ints."""
    return [[0, *np.cumsum(row).tolist()] for row in tables]


def ideal_bits(indices, tables) -> float:
    """The ideal code length of ``indices`` [G, F] under ``tables`` [G, K]: ``sum -log2(f / total)`` bits."""
    tables = check_tables(tables)
    indices = np.asarray(indices, dtype=np.int64)
    probs = tables / tables.sum(1, keepdims=True)
    return float(-np.log2(np.take_along_axis(probs, indices, axis=1)).sum())


def encode(indices, tables) -> bytes:
    """indices int [G, F] in [0, K) -> the arithmetic-coded bytes (see the module docstring)."""
    tables = check_tables(tables)
    indices = np.asarray(indices)
    groups, codes = tables.shape
    if indices.ndim != 2 or indices.shape[0] != groups or not np.issubdtype(indices.dtype, np.integer):
        raise ValueError(f"indices must be integers [{groups}, frames], got {indices.dtype} {indices.shape}")
    if indices.size and (indices.min() < 0 or indices.max() >= codes):
        raise ValueError(f"indices span [{indices.min()}, {indices.max()}], outside [0, {codes})")
    cums = _cumulative(tables)
    bits: list[int] = []
    low, high, pending = 0, FULL, 0
    for i, symbol in enumerate(indices.T.ravel().tolist()):
        cum = cums[i % groups]
        span, total = high - low + 1, cum[-1]
        high = low + span * cum[symbol + 1] // total - 1
        low = low + span * cum[symbol] // total
        while True:
            if high < HALF:
                bits.append(0)
                bits.extend([1] * pending)
                pending = 0
            elif low >= HALF:
                bits.append(1)
                bits.extend([0] * pending)
                pending = 0
                low, high = low - HALF, high - HALF
            elif low >= QUARTER and high < THREE_QUARTERS:
                pending += 1
                low, high = low - QUARTER, high - QUARTER
            else:
                break
            low, high = low << 1, (high << 1) | 1
    # two more bits (and the pending ones) name a value inside [low, high]: QUARTER or HALF, followed by zeros
    first = 0 if low < QUARTER else 1
    bits.append(first)
    bits.extend([1 - first] * (pending + 1))
    return np.packbits(np.array(bits, dtype=np.uint8)).tobytes()


def decode(data: bytes, tables, frames: int) -> np.ndarray:
    """``encode``'s bytes -> indices int64 [G, frames] (G = the tables' groups); ValueError on a corrupt stream."""
    tables = check_tables(tables)
    groups = tables.shape[0]
    if frames < 0:
        raise ValueError(f"frames must be >= 0, got {frames}")
    cums = _cumulative(tables)
    stream = np.unpackbits(np.frombuffer(data, dtype=np.uint8)).tolist()
    stream.extend([0] * PRECISION)  # zeros past the end
    value = int("".join(map(str, stream[:PRECISION])), 2)
    position = PRECISION
    low, high = 0, FULL
    out = np.empty(groups * frames, dtype=np.int64)
    for i in range(groups * frames):
        cum = cums[i % groups]
        span, total = high - low + 1, cum[-1]
        target = ((value - low + 1) * total - 1) // span
        if not 0 <= target < total:
            raise ValueError(f"corrupt stream: symbol {i} falls outside its table")
        symbol = bisect_right(cum, target) - 1
        out[i] = symbol
        high = low + span * cum[symbol + 1] // total - 1
        low = low + span * cum[symbol] // total
        while True:
            if high < HALF:
                pass
            elif low >= HALF:
                value, low, high = value - HALF, low - HALF, high - HALF
            elif low >= QUARTER and high < THREE_QUARTERS:
                value, low, high = value - QUARTER, low - QUARTER, high - QUARTER
            else:
                break
            bit = stream[position] if position < len(stream) else 0
            position += 1
            low, high, value = low << 1, (high << 1) | 1, (value << 1) | bit
    return out.reshape(frames, groups).T.copy()
