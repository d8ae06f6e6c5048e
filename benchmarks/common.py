"""Pieces every benchmark script shares (run them as ``python benchmarks/<name>.py``)."""

from __future__ import annotations

import statistics
import time

import jax
import numpy as np

from jaxaudio.training import tasks

SAMPLE_RATE = 16000
CLIP_SAMPLES = 3 * SAMPLE_RATE


def median_seconds(fn, repeats: int) -> float:
    """Median wall-clock seconds of ``fn()`` over ``repeats`` calls after one warm-up (compile)
    call; every call is waited for (``jax.block_until_ready``)."""
    jax.block_until_ready(fn())
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        jax.block_until_ready(fn())
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def instrument_excerpts(n: int, seed: int = 0):
    """``n`` centre excerpts of 3 s (48000 samples at 16 kHz) of the synthetic instrument test
    split (cycled, short clips tiled) and their labels (a multi-label clip's label is -1)."""
    test = tasks.load_split("synth-instruments", "test", preset_name="demo", seed=seed)
    rows = []
    for i in range(n):
        w = np.asarray(test.waves[i % len(test)], np.float32)
        if len(w) < CLIP_SAMPLES:
            w = np.tile(w, int(np.ceil(CLIP_SAMPLES / len(w))))
        s = (len(w) - CLIP_SAMPLES) // 2
        rows.append(w[s:s + CLIP_SAMPLES])
    return np.clip(np.stack(rows), -1, 1), np.asarray(
        [test.labels[i % len(test)] for i in range(n)], np.int32)
