"""Does an explainer point at what really changed the decision? (docs/studies.md §3)

Given an original spectrogram ``x``, its adversary ``x + delta`` and an explanation of the
adversary over the ``n_temporal x n_frequency`` components of :mod:`jaxaudio.explain`, keep
``delta`` only in ``k`` components and ask whether the label still flips:

- *explainer selection*: the ``k`` components the explainer ranks most positive for the
  adversarial label;
- *norm selection*: the ``k`` components where ``delta`` has the largest L2 norm.

:func:`flip_matrix` evaluates all ``k = 0..K`` for all examples in one compiled, vmapped program
(on device, in chunks of examples); :func:`flip_curve`, :func:`table_at_k` and
:func:`table_positive` reduce it to the study's curves and tables.

Conventions: spectrograms ``(n_bins, n_frames)`` as the classifier's front-end outputs them
(for the singing voice detector: log magnitude, natural-log units); batches have a leading
``num_examples`` axis; ``predict_fn`` is a :data:`jaxaudio.explain.PredictFn`
(``(batch, n_bins, n_frames) -> (batch, num_outputs)`` probabilities; wrap a one-logit detector
with :func:`jaxaudio.explain.binary_to_two_class`) and a prediction is its ``argmax``.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from jaxaudio.dsp.batching import map_chunks
from jaxaudio.explain.lime_bridge import PredictFn, jit_over_predict_fn
from jaxaudio.explain.segmentation import component_norms

__all__ = [
    "check_batch",
    "rankings_from_weights",
    "norm_rankings",
    "selection_from_ranking",
    "restrict_delta",
    "predict_labels",
    "flip_matrix",
    "flip_curve",
    "table_at_k",
    "positive_counts",
    "table_positive",
]


# --------------------------------------------------------------------------- validation


def check_batch(specs, name: str = "specs") -> np.ndarray:
    """Validate a batch of spectrograms ``(num_examples, n_bins, n_frames)``: 3-D, finite."""
    arr = np.asarray(specs)
    if arr.ndim != 3 or arr.shape[0] == 0 or arr.size == 0:
        raise ValueError(f"{name} must be a non-empty batch (num_examples, n_bins, n_frames), "
                         f"got shape {arr.shape}")
    if not np.issubdtype(arr.dtype, np.number) or not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} must be finite numbers")
    return arr.astype(np.float32)


def _check_masks(masks, spec_shape) -> np.ndarray:
    masks = np.asarray(masks, np.float32)
    if masks.ndim != 3 or masks.shape[1:] != tuple(spec_shape):
        raise ValueError(f"masks must have shape (num_components, {spec_shape[0]}, "
                         f"{spec_shape[1]}), got {masks.shape}")
    return masks


def _check_rankings(rankings, num_examples: int, num_components: int) -> np.ndarray:
    r = np.asarray(rankings)
    if r.shape != (num_examples, num_components) or not np.issubdtype(r.dtype, np.integer):
        raise ValueError(f"rankings must be integer (num_examples, num_components) = "
                         f"({num_examples}, {num_components}), got {r.shape} {r.dtype}")
    if not np.all(np.sort(r, axis=1) == np.arange(num_components)):
        raise ValueError("every row of rankings must be a permutation of the components")
    return r.astype(np.int32)


# --------------------------------------------------------------------------- rankings


def rankings_from_weights(weights) -> np.ndarray:
    """Components sorted by weight, most positive first (ties: lower index first).

    Parameters
    ----------
    weights : np.ndarray [shape=(num_examples, num_components)]
        One explanation's weights per row, for the label whose evidence is wanted
        (the adversarial label).

    Returns
    -------
    np.ndarray [shape=(num_examples, num_components)], int32
        ``rankings[i, 0]`` is example ``i``'s most positive component.
    """
    w = np.asarray(weights, np.float64)
    if w.ndim != 2 or w.shape[1] == 0:
        raise ValueError(f"weights must be (num_examples, num_components), got {w.shape}")
    if not np.all(np.isfinite(w)):
        raise ValueError("weights contain NaN or Inf")
    return np.argsort(-w, axis=1, kind="stable").astype(np.int32)


def norm_rankings(deltas, masks) -> np.ndarray:
    """"Norm-based" ranking: components by the L2 norm of ``delta`` inside them, largest first.

    Parameters
    ----------
    deltas : np.ndarray [shape=(num_examples, n_bins, n_frames)]
        Adversarial perturbations in the spectrogram domain (adversary minus original).
    masks : np.ndarray [shape=(num_components, n_bins, n_frames)]
        From :func:`jaxaudio.explain.component_masks`.

    Returns
    -------
    np.ndarray [shape=(num_examples, num_components)], int32
    """
    deltas = check_batch(deltas, "deltas")
    masks = _check_masks(masks, deltas.shape[1:])
    norms = np.asarray(component_norms(deltas, masks), np.float64)
    return rankings_from_weights(norms)


def selection_from_ranking(rankings, k) -> np.ndarray:
    """0/1 selection ``(num_examples, num_components)`` of each row's first ``k[i]`` components.

    ``k`` is an int or an int array ``(num_examples,)`` in ``[0, num_components]``.
    """
    r = np.asarray(rankings)
    n, c = r.shape
    k = np.broadcast_to(np.asarray(k), (n,))
    if np.any(k < 0) or np.any(k > c):
        raise ValueError(f"k must lie in [0, {c}], got {k}")
    position = np.empty_like(r)
    np.put_along_axis(position, r, np.arange(c)[None, :].repeat(n, 0), axis=1)
    return (position < k[:, None]).astype(np.float32)


def restrict_delta(deltas, masks, selection) -> jax.Array:
    """``delta`` kept only inside the selected components: ``delta * sum_c sel_c masks[c]``.

    Parameters
    ----------
    deltas : array [shape=(..., n_bins, n_frames)]
    masks : array [shape=(num_components, n_bins, n_frames)]
    selection : array [shape=(..., num_components)]
        0/1 per component (broadcast against ``deltas``' leading axes).
    """
    keep = jnp.einsum("...c,cft->...ft", jnp.asarray(selection, jnp.float32),
                      jnp.asarray(masks, jnp.float32))
    return jnp.asarray(deltas, jnp.float32) * keep


# --------------------------------------------------------------------------- flip matrix


@jit_over_predict_fn
def _labels_of(predict_fn, specs):
    return jnp.argmax(predict_fn(specs), axis=-1).astype(jnp.int32)


def predict_labels(predict_fn: PredictFn, specs, *, chunk_size: int = 16) -> np.ndarray:
    """``argmax`` labels ``(num_examples,)`` of spectrograms ``(num_examples, n_bins, n_frames)``,
    in fixed-size chunks (one compiled program)."""
    specs = check_batch(specs)
    # A fixed chunk (not min(chunk, n)): every call shares one compiled shape.
    return map_chunks(lambda x: _labels_of(predict_fn, jnp.asarray(x)), specs,
                      chunk_size=int(chunk_size))


@jit_over_predict_fn
def _flip_chunk(predict_fn, specs, deltas, masks, positions, targets):
    """specs, deltas (e, F, T); positions (e, C) rank of each component; targets (e,).

    Returns (e, C + 1) bool: label == target with delta kept in the top-k, k = 0..C.
    """
    num_components = masks.shape[0]
    ks = jnp.arange(num_components + 1)

    def one_example(spec, delta, position, target):
        def one_k(k):
            selection = (position < k).astype(jnp.float32)
            return spec + restrict_delta(delta, masks, selection)

        composed = jax.vmap(one_k)(ks)  # (C + 1, F, T)
        return jnp.argmax(predict_fn(composed), axis=-1) == target

    return jax.vmap(one_example)(specs, deltas, positions, targets)


def flip_matrix(predict_fn: PredictFn, specs, deltas, rankings, masks, target_labels, *,
                chunk_examples: int = 4) -> np.ndarray:
    """Whether the label still flips with ``delta`` restricted to the top-k ranked components.

    For every example ``i`` and ``k = 0..num_components``: compose
    ``specs[i] + deltas[i] * M(first k components of rankings[i])`` and check
    ``argmax predict_fn(...) == target_labels[i]``. All ``k`` of ``chunk_examples`` examples
    are composed and evaluated in one call of one compiled program (vmapped over ``k`` and
    examples; the last chunk is padded so nothing recompiles).

    Parameters
    ----------
    predict_fn : PredictFn
        ``(batch, n_bins, n_frames) -> (batch, num_outputs)``.
    specs : np.ndarray [shape=(num_examples, n_bins, n_frames)]
        Original spectrograms.
    deltas : np.ndarray [shape=(num_examples, n_bins, n_frames)]
        Adversary minus original, same units as ``specs``.
    rankings : np.ndarray [shape=(num_examples, num_components)], int
        Component order per example (explainer: :func:`rankings_from_weights`; norm:
        :func:`norm_rankings`).
    masks : np.ndarray [shape=(num_components, n_bins, n_frames)]
    target_labels : np.ndarray [shape=(num_examples,)], int
        The adversarial label (the one the full ``delta`` reaches).
    chunk_examples : int > 0
        Examples per device call (each contributes ``num_components + 1`` forward passes).

    Returns
    -------
    np.ndarray [shape=(num_examples, num_components + 1)], bool
        Column ``k`` = flipped with ``k`` components kept (column 0: none kept, i.e. the
        original; the last column: the full ``delta``).
    """
    specs, deltas, masks, rankings, targets = _flip_inputs(specs, deltas, rankings, masks,
                                                           target_labels, chunk_examples)
    n, c = specs.shape[0], masks.shape[0]
    positions = np.empty_like(rankings)
    np.put_along_axis(positions, rankings, np.arange(c, dtype=np.int32)[None].repeat(n, 0), 1)
    m = jnp.asarray(masks)
    # A fixed (padded) chunk, so every batch size shares one program.
    return map_chunks(
        lambda sc, dc, pc, tc: _flip_chunk(predict_fn, jnp.asarray(sc), jnp.asarray(dc), m,
                                           jnp.asarray(pc), jnp.asarray(tc)),
        specs, deltas, positions, targets.astype(np.int32), chunk_size=int(chunk_examples))


def _flip_inputs(specs, deltas, rankings, masks, target_labels, chunk_examples):
    """Validated ``(specs, deltas, masks, rankings, targets)`` of :func:`flip_matrix`."""
    specs = check_batch(specs, "specs")
    deltas = check_batch(deltas, "deltas")
    if deltas.shape != specs.shape:
        raise ValueError(f"deltas must have the shape of specs {specs.shape}, got {deltas.shape}")
    masks = _check_masks(masks, specs.shape[1:])
    n, c = specs.shape[0], masks.shape[0]
    rankings = _check_rankings(rankings, n, c)
    targets = np.asarray(target_labels)
    if targets.shape != (n,) or not np.issubdtype(targets.dtype, np.integer):
        raise ValueError(f"target_labels must be integer (num_examples,) = ({n},), got "
                         f"{targets.shape} {targets.dtype}")
    if int(chunk_examples) != chunk_examples or chunk_examples < 1:
        raise ValueError(f"chunk_examples must be an integer >= 1, got {chunk_examples!r}")
    return specs, deltas, masks, rankings, targets


# --------------------------------------------------------------------------- reductions


def flip_curve(flips) -> np.ndarray:
    """Fraction of examples that flip per ``k``: ``(num_components + 1,)`` from
    :func:`flip_matrix`'s ``(num_examples, num_components + 1)``; NaN columns if empty."""
    f = np.asarray(flips, bool)
    if f.ndim != 2:
        raise ValueError(f"flips must be (num_examples, num_components + 1), got {f.shape}")
    if f.shape[0] == 0:
        return np.full(f.shape[1], np.nan)
    return f.mean(axis=0)


def table_at_k(flips, k: int = 3) -> float:
    """Table 1: fraction of examples whose label flips with ``delta`` in the top ``k`` only."""
    f = np.asarray(flips, bool)
    if int(k) != k or not 0 <= k < f.shape[1]:
        raise ValueError(f"k must be an integer in [0, {f.shape[1] - 1}], got {k!r}")
    return float(f[:, int(k)].mean()) if f.shape[0] else float("nan")


def positive_counts(weights) -> np.ndarray:
    """Number of components with weight > 0 per explanation: ``(num_examples,)`` int."""
    w = np.asarray(weights)
    if w.ndim != 2:
        raise ValueError(f"weights must be (num_examples, num_components), got {w.shape}")
    return (w > 0).sum(axis=1).astype(np.int64)


def table_positive(explainer_flips, norm_flips, counts) -> dict:
    """Table 2: all components with positive weight vs the same number by norm.

    Parameters
    ----------
    explainer_flips, norm_flips : np.ndarray [shape=(num_examples, num_components + 1)], bool
        :func:`flip_matrix` with the explainer's and the norm ranking.
    counts : np.ndarray [shape=(num_examples,)], int
        :func:`positive_counts` of the explanations.

    Returns
    -------
    dict
        ``explainer`` and ``norm`` (fractions flipped), ``mean_components`` (mean count),
        ``num_examples``.
    """
    e, m = np.asarray(explainer_flips, bool), np.asarray(norm_flips, bool)
    counts = np.asarray(counts, np.int64)
    if e.shape != m.shape or counts.shape != (e.shape[0],):
        raise ValueError(f"shapes do not match: {e.shape}, {m.shape}, counts {counts.shape}")
    if np.any(counts < 0) or np.any(counts >= e.shape[1]):
        raise ValueError(f"counts must lie in [0, {e.shape[1] - 1}]")
    rows = np.arange(e.shape[0])
    if e.shape[0] == 0:
        return {"explainer": float("nan"), "norm": float("nan"), "mean_components": float("nan"),
                "num_examples": 0}
    return {
        "explainer": float(e[rows, counts].mean()),
        "norm": float(m[rows, counts].mean()),
        "mean_components": float(counts.mean()),
        "num_examples": int(e.shape[0]),
    }
