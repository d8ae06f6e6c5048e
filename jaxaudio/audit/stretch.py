"""Stretch adversaries of a frame-wise detector (docs/studies.md §3).

One perturbation covers a long stretch of a song (the whole song at the paper's sizes) while the
targets are the detector's frame decisions: every frame ``t`` of the stretch (its decision is
the one of the excerpt of ``excerpt_frames`` frames centred on it, the song zero-padded as in
:func:`jaxaudio.data.windowing.song_padded`) gets the target ``1 - clean decision``, and every
targeted frame must flip. C&W with signed-gradient Adam minimises
``||delta||² + alpha · mean_t BCE(logit_t, target_t)`` and stops as soon as all decisions have
flipped; no push to a higher confidence.

Strength ladder. ``levels`` (ascending) are decision confidences; a frame has flipped at level
``c`` when ``p > c`` (to sing, class 1) or ``p <= 1 - c`` (to no-sing, class 0), except that at
a level at or below the decision ``threshold`` (the published 0.51) the rule is the decision
itself: ``p > threshold`` is sing. The optimisation does not depend on the level (same loss,
same steps), so one run records, for every level, the first iterate at which all frames had
flipped at that level; a run stopped at level ``c`` would return exactly that iterate. The run
ends when the highest level is reached or after ``max_iterations`` updates.

Cost: every iteration runs the ``T`` excerpt forward/backward passes of the stretch as one
batch (``chunk`` excerpts at a time through :func:`jax.lax.map`).
"""

from __future__ import annotations

import functools
from typing import Callable, Optional, Sequence

import jax
import jax.numpy as jnp
import numpy as np
import optax

from jaxaudio.audit.adversaries import audited_indices
from jaxaudio.data.windowing import song_padded

__all__ = ["balanced_stretch", "stretch_segment", "windows", "flipped", "stretch_attack",
           "draw_frames", "excerpt_flip_set", "attack_summary"]


def balanced_stretch(decisions, length: Optional[int]) -> tuple[int, int]:
    """``(start, frames)`` of the stretch of ``length`` frames with the most balanced clean
    decisions (max of min(#sing, #no-sing); earliest on ties); ``None`` or a ``length`` >= the
    song's frames: the whole song ``(0, len(decisions))``.

    ``decisions``: ``(num_frames,)`` 0/1 clean decisions of every frame of the song.
    """
    d = np.asarray(decisions, np.int64)
    n = len(d)
    if length is None or length >= n:
        return 0, n
    if int(length) != length or length < 1:
        raise ValueError(f"stretch length must be an integer >= 1 or None, got {length!r}")
    c = np.concatenate([[0], np.cumsum(d)])
    sing = c[length:] - c[:-length]
    return int(np.argmax(np.minimum(sing, length - sing))), int(length)


def stretch_segment(wave, start: int, frames: int, *, excerpt_frames: int, hop_length: int,
                    excerpt_samples: int) -> tuple[np.ndarray, np.ndarray]:
    """The samples every excerpt of frames ``start .. start + frames - 1`` reads, and a 0/1
    mask of those inside the song (the zero padding is not perturbed).

    Returns ``(segment (S,), mask (S,))`` float32, ``S = (frames - 1) * hop + excerpt_samples``;
    excerpt ``t`` of the stretch is ``segment[t * hop : t * hop + excerpt_samples]``.
    """

    padded = song_padded(wave, excerpt_frames, hop_length)
    inside = song_padded(np.ones(len(wave), np.float32), excerpt_frames, hop_length)
    lo, hi = start * hop_length, (start + frames - 1) * hop_length + excerpt_samples
    if hi > len(padded):
        raise ValueError(f"stretch {start}+{frames} frames runs past the song "
                         f"({len(wave)} samples)")
    return padded[lo:hi].astype(np.float32), inside[lo:hi].astype(np.float32)


def windows(x, num: int, step: int, size: int):
    """``(num, ..., size)``: ``x[..., t * step : t * step + size]`` for ``t < num`` (jax)."""
    starts = jnp.arange(num) * step
    return jax.vmap(lambda s: jax.lax.dynamic_slice_in_dim(x, s, size, axis=-1))(starts)


def flipped(p, targets, level: float, threshold: float = 0.51):
    """Whether each frame's probability ``p`` has reached its target at ``level`` (numpy)."""
    sing_above = level
    nosing_at_most = threshold if level <= threshold else 1.0 - level
    p, targets = np.asarray(p), np.asarray(targets)
    return np.where(targets == 1, p > sing_above, p <= nosing_at_most)


def _excerpt_logits(model_fn, kind, base, delta, num, hop, size, chunk):
    """``(num,)`` logits of the stretch's excerpts with ``delta`` added (see
    :func:`stretch_attack`)."""
    if kind == "waveform":
        x = windows(base + delta, num, hop, size)
    else:
        x = base + windows(delta, num, 1, size)
    return jax.lax.map(lambda b: model_fn(b[None])[0, 0], x, batch_size=chunk)


@functools.partial(jax.jit, static_argnames=("model_fn", "kind", "hop", "size", "chunk"))
def _attack(model_fn, kind, base, mask, targets, levels, nosing_at_most, clip_eps, alpha,
            learning_rate, max_iterations, *, hop, size, chunk):
    num, shape = targets.shape[0], mask.shape
    optimizer = optax.chain(optax.scale_by_sign(), optax.scale_by_adam(),
                            optax.scale(-learning_rate))

    def objective(delta):
        logits = _excerpt_logits(model_fn, kind, base, delta * mask, num, hop, size, chunk)
        bce = optax.sigmoid_binary_cross_entropy(logits, targets).mean()
        return jnp.sum((delta * mask) ** 2) + alpha * bce, logits

    def reached(p):  # (L,) every frame flipped at each level
        ok = jnp.where(targets[None] == 1, p[None] > levels[:, None],
                       p[None] <= nosing_at_most[:, None])
        return ok.all(axis=1)

    def expand(v):
        return v.reshape((-1,) + (1,) * len(shape))

    def body(state):
        delta, opt_state, i, snaps, its, ps, _ = state
        (_, logits), grad = jax.value_and_grad(objective, has_aux=True)(delta)
        p = jax.nn.sigmoid(logits)
        new = reached(p) & (its < 0)
        snaps = jnp.where(expand(new), delta[None], snaps)
        its, ps = jnp.where(new, i, its), jnp.where(new[:, None], p[None], ps)
        done = (its >= 0).all() | (i >= max_iterations)
        updates, opt_state = optimizer.update(grad, opt_state, delta)
        stepped = jnp.clip(optax.apply_updates(delta, updates), -clip_eps, clip_eps) * mask
        delta = jnp.where(done, delta, stepped)
        return delta, opt_state, i + jnp.where(done, 0, 1), snaps, its, ps, done

    n_levels = levels.shape[0]
    delta0 = jnp.zeros(shape, jnp.float32)
    init = (delta0, optimizer.init(delta0), jnp.int32(0),
            jnp.zeros((n_levels,) + shape, jnp.float32), jnp.full(n_levels, -1, jnp.int32),
            jnp.zeros((n_levels, num), jnp.float32), jnp.bool_(False))
    delta, _, steps, snaps, its, ps, _ = jax.lax.while_loop(lambda s: ~s[-1], body, init)
    miss = its < 0  # levels never reached: the last iterate (evaluated in the last body call)
    return jnp.where(expand(miss), delta[None], snaps), its, ps, miss, steps


def stretch_attack(model_fn: Callable, base, targets, *, domain: str, levels: Sequence[float],
                   threshold: float = 0.51, clip_eps: float, alpha: float,
                   learning_rate: float, max_iterations: int, mask=None, hop_length: int = 1,
                   excerpt_size: Optional[int] = None, chunk: int = 64) -> dict:
    """C&W on one stretch: ``||delta · mask||² + alpha · mean_t BCE(logit_t, target_t)`` by
    signed-gradient Adam from zero, ``delta`` clipped to ``±clip_eps`` (and masked) after every
    step, until every frame has flipped at the highest level (see the module docstring).

    Args:
      model_fn: ``(1, ...) -> (1, 1)`` logits of one excerpt (``clf.logits_fn`` on waveforms,
        ``clf.feature_logits_fn`` on log-mel spectrograms); pass the same object every call
        (the compiled loop is cached per function and shapes).
      base: ``domain="waveform"``: the stretch's samples ``(S,)`` (:func:`stretch_segment`),
        excerpt ``t`` = ``base[t * hop_length:][:excerpt_size]`` plus delta's samples there;
        ``"spectrogram"``: the clean excerpt spectrograms ``(T, M, E)``, excerpt ``t`` = ``base[t]
        + delta[:, t:t + E]`` with one stretch-wide log-mel ``delta (M, T + E - 1)``.
      targets: ``(T,)`` 0/1, ``1 - clean decision`` per frame.
      levels: ascending decision confidences, e.g. ``(0.51, 0.6, 0.75, 0.9)``.
      mask: 0/1 of delta's shape (waveform: 1 inside the song; ``None``: all 1).

    Returns (numpy): ``delta (L, *shape)`` float32, the first iterate at which every frame had
    flipped at level ``l`` (the last iterate where it never did); ``iterations (L,)`` updates
    applied before it (``-1``: never); ``success (L,)`` bool; ``p (L, T)`` the frames'
    probabilities there (for levels never reached: at the last evaluated iterate); ``steps``.
    """
    if domain not in ("waveform", "spectrogram"):
        raise ValueError(f"domain must be 'waveform' or 'spectrogram', got {domain!r}")
    base, targets = jnp.asarray(base, jnp.float32), jnp.asarray(targets, jnp.float32)
    num = targets.shape[0]
    if domain == "waveform":
        shape, size = base.shape, int(excerpt_size)
    else:
        shape, size = (base.shape[1], num + base.shape[2] - 1), base.shape[2]
    mask = jnp.ones(shape, jnp.float32) if mask is None else jnp.asarray(mask, jnp.float32)
    lv = np.asarray(levels, np.float32)
    if lv.ndim != 1 or not len(lv) or np.any(np.diff(lv) <= 0):
        raise ValueError(f"levels must be ascending decision confidences, got {levels!r}")
    nosing = np.where(lv <= threshold, threshold, 1.0 - lv).astype(np.float32)
    snaps, its, ps, miss, steps = _attack(
        model_fn, domain, base, mask, targets, jnp.asarray(lv), jnp.asarray(nosing),
        jnp.float32(clip_eps), jnp.float32(alpha), jnp.float32(learning_rate),
        jnp.int32(max_iterations), hop=int(hop_length), size=size, chunk=int(chunk))
    return {"delta": np.asarray(snaps, np.float32), "iterations": np.asarray(its, np.int64),
            "success": ~np.asarray(miss), "p": np.asarray(ps, np.float32),
            "steps": int(steps)}


def draw_frames(decisions, preferred, *, per_song: int, rng: np.random.Generator,
                song_of=None) -> dict:
    """Up to ``per_song`` frames per song and clean class (0: no-sing, attacked towards sing),
    drawn in random order (``rng``), frames in ``preferred`` (e.g. flipped in every domain)
    first.

    ``decisions``: list of ``(T_i,)`` 0/1 clean decisions per song; ``preferred``: list of
    ``(T_i,)`` bool. Returns ``{"song", "frame", "direction"}`` int64 arrays (``frame`` is the
    position within the song's stretch; ``direction`` the clean class), songs in order, then
    class 0 before class 1.
    """
    song, frame, direction = [], [], []
    for i, (d, pref) in enumerate(zip(decisions, preferred)):
        d, pref = np.asarray(d), np.asarray(pref, bool)
        for c in (0, 1):
            order = rng.permutation(np.flatnonzero(d == c))
            order = np.concatenate([order[pref[order]], order[~pref[order]]])[:per_song]
            song += [i] * len(order)
            frame += list(order)
            direction += [c] * len(order)
    return {k: np.asarray(v, np.int64) for k, v in
            (("song", song), ("frame", frame), ("direction", direction))}


def excerpt_flip_set(excerpts, stretches, attack, *, level: int, source: int, domain: str,
                     predict_fn: Callable, to_features: Callable, hop_length: int,
                     excerpt_samples: int, threshold: float = 0.51,
                     level_value: float = 0.51) -> dict:
    """The drawn excerpts of clean class ``source`` cut from the stretch adversaries at level
    index ``level``, in the layout of :func:`jaxaudio.audit.adversaries.flip_set`.

    ``excerpts``: ``direction``, ``song`` (stretch index), ``frame`` (position in the stretch),
    ``specs`` (clean excerpt spectrograms); ``stretches``: ``segments``/``masks`` (flat) with
    ``segment_offsets``, ``frame_offsets``; ``attack``: ``delta (L, ..., flat)`` with
    ``delta_offsets`` and ``p (L, flat frames)``. Success = the excerpt's frame flipped at
    the level (:func:`flipped`); audited = success and ``predict_fn`` labels the adversarial
    spectrogram with ``1 - source``. Returns ``index``, ``adversarial`` (waveform excerpts or
    spectrograms), ``success``, ``features``, ``audited``, ``deltas``, ``explain_specs``,
    ``explain_targets``.
    """

    index = np.flatnonzero(np.asarray(excerpts["direction"]) == source)
    song, frame = np.asarray(excerpts["song"])[index], np.asarray(excerpts["frame"])[index]
    specs = np.asarray(excerpts["specs"])[index]
    seg_off, fr_off = np.asarray(stretches["segment_offsets"]), np.asarray(
        stretches["frame_offsets"])
    d_off, delta = np.asarray(attack["delta_offsets"]), np.asarray(attack["delta"])[level]
    p = np.asarray(attack["p"])[level][fr_off[song] + frame]
    success = flipped(p, np.full(len(index), 1 - source), level_value, threshold)
    if domain == "waveform":
        seg, mask = np.asarray(stretches["segments"]), np.asarray(stretches["masks"])
        adv = np.stack([(seg + delta * mask)[o + f * hop_length: o + f * hop_length
                                             + excerpt_samples]
                        for o, f in zip(seg_off[song], frame)]) if len(index) else \
            np.zeros((0, excerpt_samples), np.float32)
        feats = to_features(adv.astype(np.float32))
    else:
        size = specs.shape[-1]
        adv = feats = (specs + np.stack([delta[..., o + f: o + f + size]
                                         for o, f in zip(d_off[song], frame)])
                       if len(index) else specs)
    ok = audited_indices(predict_fn, feats, success, source)
    deltas = np.asarray(feats)[ok] - specs[ok]
    return {"index": index, "adversarial": np.asarray(adv, np.float32), "success": success,
            "features": np.asarray(feats, np.float32), "audited": index[ok], "deltas": deltas,
            "explain_specs": specs[ok] + deltas,
            "explain_targets": np.full(len(ok), 1 - source, np.int64)}


def attack_summary(attack, clean_p, frame_offsets, levels: Sequence[float], *,
                   threshold: float = 0.51) -> dict:
    """Per level: share of stretches whose every frame flipped (``success_rate``), median
    iterations of the successful ones, share of frames flipped, median SNR (dB, waveform).

    ``attack``: an ``adversaries-<domain>`` stage output (``success``, ``iterations`` ``(n,
    L)``, ``p`` ``(L, frames)``, optional ``snr_db``); ``clean_p``: the frames' clean
    probabilities (flat, ``frame_offsets``). Lists are JSON-ready (``None`` where empty).
    """
    success, its = np.asarray(attack["success"], bool), np.asarray(attack["iterations"])
    targets = 1 - (np.asarray(clean_p) > threshold).astype(np.int64)
    out = {"levels": [float(v) for v in levels], "num_stretches": int(success.shape[0]),
           "num_frames": int(frame_offsets[-1]), "success_rate": [], "median_iterations": [],
           "frames_flipped": []}
    if "snr_db" in attack:
        out["median_snr_db"] = []
    for li, level in enumerate(levels):
        ok = success[:, li]
        out["success_rate"].append(float(ok.mean()) if len(ok) else None)
        out["median_iterations"].append(float(np.median(its[ok, li])) if ok.any() else None)
        out["frames_flipped"].append(float(flipped(np.asarray(attack["p"])[li], targets, level,
                                                   threshold).mean()))
        if "snr_db" in attack:
            snr = np.asarray(attack["snr_db"])[:, li]
            out["median_snr_db"].append(float(np.median(snr[ok])) if ok.any() else None)
    return out
