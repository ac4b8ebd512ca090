"""Counter-based random numbers for the synthetic world.

Every dynamic random draw of the simulation is a pure function of integer *keys* (seed,
user, day, session, step, slot, purpose), computed with the splitmix64 finaliser on
``uint64`` arrays. A user's history therefore does not depend on which other users are
simulated in the same chunk, so the world is identical whatever ``chunk_users`` is, and every
draw is vectorised (one numpy expression for all users of a day).

Static per-user attributes use ordinary :class:`numpy.random.Generator` streams keyed by
user *block* (``SeedSequence(seed, spawn_key=(stream, block))``), see ``_world_users``.
"""

from __future__ import annotations

import numpy as np

_MASK = (1 << 64) - 1
_GOLDEN_INT = 0x9E3779B97F4A7C15
_GOLDEN = np.uint64(_GOLDEN_INT)
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)
_S11, _S27, _S30, _S31 = (np.uint64(s) for s in (11, 27, 30, 31))
_INV53 = 2.0**-53

# purposes ("streams") of the draws; any distinct integers
(ST_SESSIONS, ST_BEHAVIOUR, ST_PLATFORM, ST_MOOD, ST_STEPS, ST_CTX0, ST_CMP_SIZE, ST_SWITCH,
 ST_SWITCH_TO, ST_EXPLORE_MIX, ST_SLOT_KIND, ST_SLOT_CAT, ST_SLOT_ITEM, ST_SLOT_RANK, ST_DEDUP,
 ST_CLICK, ST_BROWSE, ST_COMPLETION, ST_LIKE, ST_GAP_STEP, ST_TOD_HOUR, ST_TOD_SEC, ST_GAP_SESS,
 ST_BOT_BURST, ST_BOT_SIZE, ST_BOT_RATE, ST_BOT_START, ST_BOT_ITEM, ST_NEGATIVE, ST_DUPLICATE,
 ST_IMPRESSION_NOISE) = range(1, 32)


def _mix_int(z: int) -> int:
    """splitmix64 finaliser on a Python int (scalars: no numpy overflow warnings)."""
    z &= _MASK
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _MASK
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _MASK
    return z ^ (z >> 31)


def root_key(seed: int, domain: int) -> int:
    """The key of a whole domain (users, events, ...) of the world with this seed."""
    return _mix_int(_mix_int(int(seed) * _GOLDEN_INT + 0x632BE59BD9B4E019) + domain * _GOLDEN_INT)


def _mix(z: np.ndarray) -> np.ndarray:
    """In-place splitmix64 finaliser on a ``uint64`` array; returns it."""
    z ^= z >> _S30
    z *= _M1
    z ^= z >> _S27
    z *= _M2
    z ^= z >> _S31
    return z


def derive(key: np.ndarray | int, part: np.ndarray | int) -> np.ndarray:
    """Child keys ``mix(key + (part + 1) * golden)``.

    Parameters
    ----------
    key : ndarray of uint64, shape (n,), or int
        Parent keys.
    part : ndarray of int, shape (n,), or int
        Non-negative integers that name the child (a day, a session index, a purpose).

    Returns
    -------
    ndarray of uint64, shape (n,) (or (1,) when both are scalars)
    """
    if isinstance(key, int | np.integer):
        k = np.array([int(key) & _MASK], dtype=np.uint64)
    else:
        k = np.asarray(key, dtype=np.uint64)
    if np.ndim(part) == 0:
        z = k + np.uint64(((int(part) + 1) * _GOLDEN_INT) & _MASK)
    else:
        z = np.asarray(part).astype(np.uint64)
        z += np.uint64(1)
        z *= _GOLDEN
        z += k
    return _mix(np.atleast_1d(z))


def uniform(key: np.ndarray, stream: int) -> np.ndarray:
    """Uniform draws in the open interval (0, 1), one per key, shape (n,) float64."""
    z = derive(key, stream)
    return (z >> _S11).astype(np.float64) * _INV53 + _INV53 / 2


def normal(key: np.ndarray, stream: int) -> np.ndarray:
    """Standard normal draws (Box-Muller), one per key, shape (n,) float64."""
    u1 = uniform(key, stream)
    u2 = uniform(key, stream + 1_000_003)
    return np.sqrt(-2.0 * np.log(u1)) * np.cos(2.0 * np.pi * u2)


def exponential(key: np.ndarray, stream: int, mean: float | np.ndarray) -> np.ndarray:
    """Exponential draws with the given mean, shape (n,) float64."""
    return -np.log(uniform(key, stream)) * mean


def poisson(lam: np.ndarray, u: np.ndarray, kmax: int) -> np.ndarray:
    """Poisson counts by CDF inversion of uniforms ``u``, capped at ``kmax``.

    Parameters
    ----------
    lam, u : ndarray, shape (n,)
    kmax : int
        Largest count returned (the loop runs over counts, never over rows).

    Returns
    -------
    ndarray of int64, shape (n,)
    """
    p = np.exp(-lam)
    cdf = p.copy()
    k = np.zeros(len(u), dtype=np.int64)
    for j in range(1, kmax + 1):
        more = u > cdf
        if not more.any():
            break
        k += more
        p = p * lam / j
        cdf += p
    return k


def geometric(mean: np.ndarray | float, u: np.ndarray) -> np.ndarray:
    """Geometric counts ``0, 1, 2, ...`` with the given mean, by inversion, shape (n,) int64."""
    q = np.asarray(mean, dtype=np.float64) / (1.0 + np.asarray(mean, dtype=np.float64))
    q = np.clip(q, 1e-12, 1 - 1e-12)
    return np.floor(np.log(u) / np.log(q)).astype(np.int64)


def categorical_rows(weights: np.ndarray, u: np.ndarray) -> np.ndarray:
    """One category per row from unnormalised row weights.

    Parameters
    ----------
    weights : ndarray, shape (n, C)
        Non-negative weights; a row of zeros returns ``C - 1``.
    u : ndarray, shape (n,)

    Returns
    -------
    ndarray of int64, shape (n,)
    """
    cum = np.cumsum(weights, axis=1)
    target = u * cum[:, -1]
    out = (cum <= target[:, None]).sum(axis=1)
    return np.minimum(out, weights.shape[1] - 1).astype(np.int64)


def group_starts(counts: np.ndarray) -> np.ndarray:
    """Start offset of each group of a ``np.repeat`` layout, shape (n,) int64."""
    starts = np.zeros(len(counts), dtype=np.int64)
    if len(counts) > 1:
        np.cumsum(counts[:-1], out=starts[1:])
    return starts


def rank_in_group(counts: np.ndarray) -> np.ndarray:
    """0-based position of each row inside its group for ``np.repeat(groups, counts)``."""
    total = int(counts.sum())
    return np.arange(total, dtype=np.int64) - np.repeat(group_starts(counts), counts)


def exclusive_cumsum_in_group(values: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """Cumulative sum of the previous rows of the same group (0 for the first row)."""
    csum = np.cumsum(values) - values
    first = group_starts(counts)
    return csum - np.repeat(csum[first[counts > 0]] if len(first) else csum[:0], counts[counts > 0])
