"""Other explainers over the same time-frequency components as LIME.

Both return :class:`jaxaudio.explain.lime_bridge.Explanation` (weights
``(num_labels, num_components)`` in component order), so audits can swap explainers.

- :func:`occlusion`: switch off one component at a time (replace it by the baseline);
  weight = ``p(full) - p(component off)``. ``num_components + 1`` model evaluations.
- :func:`integrated_gradients`: integrate the gradient along the straight path from the
  baseline spectrogram to the input (Sundararajan et al. 2017) and sum the attribution
  inside each component. By completeness the weights add up to ``p(input) - p(baseline)``
  (up to the quadrature error, reported in ``info``).

:func:`occlusion_batch` and :func:`integrated_gradients_batch` give the same weights for a
batch of spectrograms (one label each) in fixed-size device calls, instead of one example at a
time.
"""

from __future__ import annotations

from typing import Optional

import jax
import jax.numpy as jnp
import numpy as np

from jaxaudio.dsp.batching import map_chunks
from jaxaudio.explain.lime_bridge import (
    Explanation,
    LabelsLike,
    PredictFn,
    baseline_name,
    resolve_labels,
    default_chunk_size,
    jit_over_predict_fn,
    predict_components,
)
from jaxaudio.explain.segmentation import BaselineLike, baseline_value, check_spec, component_masks

__all__ = ["occlusion", "integrated_gradients", "occlusion_batch", "integrated_gradients_batch",
           "IG_RULES"]

#: Quadrature rules of :func:`integrated_gradients`.
IG_RULES: tuple[str, ...] = ("trapezoid", "left", "right", "midpoint")


def _baseline_key(baseline: BaselineLike, key) -> Optional[jax.Array]:
    if isinstance(baseline, str) and baseline == "shuffle" and key is None:
        raise ValueError('baseline "shuffle" needs a PRNG key (key=...)')
    return key


def occlusion(
    predict_fn: PredictFn,
    spec,
    *,
    n_temporal: int = 5,
    n_frequency: int = 4,
    baseline: BaselineLike = "mean",
    labels: LabelsLike = None,
    key: Optional[jax.Array] = None,
) -> Explanation:
    """Occlusion: weight of component ``c`` for label ``l`` = ``p_l(spec) - p_l(spec with c off)``.

    Args:
      predict_fn: ``(batch, n_bins, n_frames) -> (batch, num_outputs)``.
      spec: ``(n_bins, n_frames)``.
      n_temporal, n_frequency: segmentation (see ``segmentation``).
      baseline: what a switched-off component becomes (see ``baseline_value``).
      labels: outputs to explain; ``None`` = top label of ``spec``.
      key: needed only for the ``"shuffle"`` baseline.

    Returns:
      :class:`Explanation` with ``method="occlusion"``; ``samples`` are the ``num_components + 1``
      binary vectors (all ones, then each component off) and ``predictions`` their outputs.
    """
    spec_np = check_spec(spec).astype(np.float32)
    masks = component_masks(spec_np.shape, n_temporal=n_temporal, n_frequency=n_frequency)
    base = baseline_value(spec_np, baseline, key=_baseline_key(baseline, key))
    num_components = masks.shape[0]
    z = np.concatenate([np.ones((1, num_components)), 1.0 - np.eye(num_components)]).astype(np.float32)
    # The default chunk size, so occlusion shares LIME's compiled program for this predict_fn.
    predictions = predict_components(predict_fn, spec_np, masks, base, z)
    label_tuple = resolve_labels(labels, predictions[0])
    cols = list(label_tuple)
    weights = (predictions[0, cols][:, None] - predictions[1:, cols].T).astype(np.float64)
    return Explanation(
        weights=weights,
        labels=label_tuple,
        method="occlusion",
        n_temporal=int(n_temporal),
        n_frequency=int(n_frequency),
        spec=spec_np,
        baseline=baseline_name(baseline),
        reference_prediction=predictions[0, cols].copy(),
        num_samples=int(z.shape[0]),
        samples=z.astype(np.uint8),
        predictions=predictions,
    )


def _quadrature(steps: int, rule: str) -> tuple[np.ndarray, np.ndarray]:
    """Points ``alpha`` in [0, 1] and weights summing to 1 for the path integral."""
    if rule == "midpoint":
        return (np.arange(steps) + 0.5) / steps, np.full(steps, 1.0 / steps)
    alphas = np.linspace(0.0, 1.0, steps + 1)
    w = np.full(steps + 1, 1.0 / steps)
    if rule == "trapezoid":
        w[0] = w[-1] = 0.5 / steps
    elif rule == "left":
        w[-1] = 0.0
    elif rule == "right":
        w[0] = 0.0
    return alphas, w


def _ig_one(predict_fn, spec, base, masks, onehots, alphas, quad_weights):
    path = base + alphas[:, None, None] * (spec - base)  # (num_points, n_bins, n_frames)

    def grads_for(onehot):
        # Examples are independent (inference mode), so the gradient of the batch sum w.r.t.
        # the batch is each point's own gradient: one backward pass for the whole path.
        return jax.grad(lambda xs: jnp.sum(predict_fn(xs) @ onehot))(path)

    grads = jax.vmap(grads_for)(onehots)  # (num_labels, num_points, n_bins, n_frames)
    mean_grad = jnp.einsum("p,lpft->lft", quad_weights, grads)
    attribution = (spec - base)[None] * mean_grad
    per_component = jnp.einsum("lft,cft->lc", attribution, masks)
    ends = predict_fn(jnp.stack([spec, base]))  # (2, num_outputs)
    return per_component, ends


_integrated_gradients = jit_over_predict_fn(_ig_one)


def integrated_gradients(
    predict_fn: PredictFn,
    spec,
    *,
    baseline: BaselineLike = "mean",
    steps: int = 32,
    labels: LabelsLike = None,
    n_temporal: int = 5,
    n_frequency: int = 4,
    rule: str = "trapezoid",
    key: Optional[jax.Array] = None,
) -> Explanation:
    """Integrated gradients from the baseline spectrogram, summed per component.

    ``IG(x) = (x - b) * integral_0^1 grad p_l(b + a (x - b)) da`` with ``b`` the baseline
    broadcast to ``spec``'s shape, approximated with ``steps`` intervals (``rule``: trapezoid,
    left/right Riemann or midpoint); the gradients of all path points are computed in one
    batched backward pass per label. ``predict_fn`` must be differentiable.

    Returns:
      :class:`Explanation` with ``method="integrated_gradients"``; ``info`` holds
      ``baseline_prediction`` (``p(b)`` per label) and ``completeness_gap``
      (``sum(weights) - (p(x) - p(b))`` per label; small when ``steps`` suffices).
    """
    spec_np = check_spec(spec).astype(np.float32)
    if int(steps) != steps or steps < 1:
        raise ValueError(f"steps must be an integer >= 1, got {steps!r}")
    if rule not in IG_RULES:
        raise ValueError(f"rule must be one of {IG_RULES}, got {rule!r}")
    masks = component_masks(spec_np.shape, n_temporal=n_temporal, n_frequency=n_frequency)
    base = baseline_value(spec_np, baseline, key=_baseline_key(baseline, key))
    base_full = jnp.broadcast_to(base, spec_np.shape)

    reference = predict_components(predict_fn, spec_np, masks, base, np.ones((1, masks.shape[0])))
    label_tuple = resolve_labels(labels, reference[0])
    onehots = np.eye(reference.shape[1], dtype=np.float32)[list(label_tuple)]
    alphas, quad_weights = _quadrature(int(steps), rule)
    per_component, ends = _integrated_gradients(
        predict_fn, jnp.asarray(spec_np), base_full, jnp.asarray(masks), jnp.asarray(onehots),
        jnp.asarray(alphas, jnp.float32), jnp.asarray(quad_weights, jnp.float32),
    )
    weights = np.asarray(per_component, dtype=np.float64)
    if not np.all(np.isfinite(weights)):
        raise ValueError("integrated gradients are not finite: predict_fn's gradient gave NaN/Inf")
    ends = np.asarray(ends, dtype=np.float64)
    cols = list(label_tuple)
    return Explanation(
        weights=weights,
        labels=label_tuple,
        method="integrated_gradients",
        n_temporal=int(n_temporal),
        n_frequency=int(n_frequency),
        spec=spec_np,
        baseline=baseline_name(baseline),
        reference_prediction=ends[0, cols].copy(),
        num_samples=int(len(alphas)),
        info={
            "steps": int(steps),
            "rule": rule,
            "baseline_prediction": ends[1, cols].copy(),
            "completeness_gap": weights.sum(axis=1) - (ends[0, cols] - ends[1, cols]),
        },
    )


# ----------------------------------------------------------------------------- batches


def _batch_inputs(specs, labels, baseline, key, n_temporal, n_frequency):
    """Checked specs (n, F, T), per-example baselines (n, F, T), masks and labels (or None)."""
    specs = np.asarray(specs)
    if specs.ndim != 3 or specs.shape[0] == 0:
        raise ValueError(f"specs must be a non-empty batch (num_examples, n_bins, n_frames), "
                         f"got shape {specs.shape}")
    specs = np.stack([check_spec(s).astype(np.float32) for s in specs])
    masks = component_masks(specs.shape[1:], n_temporal=n_temporal, n_frequency=n_frequency)
    keys = (jax.random.split(key, len(specs)) if key is not None
            else [_baseline_key(baseline, None)] * len(specs))
    # Per example, as the one-example functions do (same reductions, same numbers).
    bases = np.stack([np.broadcast_to(np.asarray(baseline_value(s, baseline, key=k)), s.shape)
                      for s, k in zip(specs, keys)]).astype(np.float32)
    if labels is not None:
        labels = np.asarray(labels)
        if labels.shape != (len(specs),) or not np.issubdtype(labels.dtype, np.integer):
            raise ValueError(f"labels must be integer (num_examples,) = ({len(specs)},), got "
                             f"{labels.shape} {labels.dtype}")
    return specs, bases, masks, labels


@jit_over_predict_fn
def _occlusion_rows(predict_fn, specs, bases, masks, z):
    keep = jnp.einsum("nc,cft->nft", z, masks)
    return predict_fn(specs * keep + bases * (1.0 - keep))


def occlusion_batch(
    predict_fn: PredictFn,
    specs,
    labels=None,
    *,
    n_temporal: int = 5,
    n_frequency: int = 4,
    baseline: BaselineLike = "mean",
    key: Optional[jax.Array] = None,
    chunk_size: Optional[int] = None,
) -> np.ndarray:
    """:func:`occlusion` of every spectrogram of a batch, for one label each.

    All ``num_examples x (num_components + 1)`` perturbed spectrograms go through one compiled
    program in chunks of ``chunk_size`` (default :func:`default_chunk_size`), composed on
    device from the example each row belongs to.

    Parameters
    ----------
    predict_fn : PredictFn
    specs : np.ndarray [shape=(num_examples, n_bins, n_frames)]
    labels : np.ndarray [shape=(num_examples,)], int, optional
        Output explained per example; ``None`` = each example's top label.
    n_temporal, n_frequency, baseline :
        As in :func:`occlusion`.
    key : jax.Array, optional
        Only for the ``"shuffle"`` baseline (split over examples).
    chunk_size : int >= 1, optional

    Returns
    -------
    np.ndarray [shape=(num_examples, num_components)], float64
        ``weights[i]`` = ``occlusion(predict_fn, specs[i], labels=labels[i]).weights_for(...)``.
    """
    specs, bases, masks, labels = _batch_inputs(specs, labels, baseline, key, n_temporal,
                                                n_frequency)
    n, c = len(specs), masks.shape[0]
    z = np.concatenate([np.ones((1, c)), 1.0 - np.eye(c)]).astype(np.float32)
    rows = np.repeat(np.arange(n), c + 1)
    m = jnp.asarray(masks)
    preds = map_chunks(
        lambda r, zz: _occlusion_rows(predict_fn, jnp.asarray(specs[r]), jnp.asarray(bases[r]),
                                      m, jnp.asarray(zz)),
        rows, np.tile(z, (n, 1)), chunk_size=chunk_size or default_chunk_size())
    preds = np.asarray(preds, np.float64).reshape(n, c + 1, -1)
    if not np.all(np.isfinite(preds)):
        raise ValueError("predict_fn returned NaN or Inf for some occluded spectrograms")
    if labels is None:
        labels = preds[:, 0].argmax(axis=1)
    picked = preds[np.arange(n), :, labels]  # (n, C + 1)
    return picked[:, :1] - picked[:, 1:]


@jit_over_predict_fn
def _ig_examples(predict_fn, specs, bases, masks, onehots, alphas, quad_weights):
    def one(spec, base, onehot):
        return _ig_one(predict_fn, spec, base, masks, onehot[None], alphas, quad_weights)[0][0]

    return jax.vmap(one)(specs, bases, onehots)


def integrated_gradients_batch(
    predict_fn: PredictFn,
    specs,
    labels=None,
    *,
    baseline: BaselineLike = "mean",
    steps: int = 32,
    n_temporal: int = 5,
    n_frequency: int = 4,
    rule: str = "trapezoid",
    key: Optional[jax.Array] = None,
    chunk_examples: int = 4,
) -> np.ndarray:
    """:func:`integrated_gradients` of every spectrogram of a batch, for one label each.

    The paths of ``chunk_examples`` examples are differentiated in one call of one compiled
    program (vmapped over examples; the last chunk padded).

    Returns
    -------
    np.ndarray [shape=(num_examples, num_components)], float64
        ``weights[i]`` = ``integrated_gradients(predict_fn, specs[i], labels=labels[i], ...)``
        weights, up to float32 rounding of the batched reductions.
    """
    if int(steps) != steps or steps < 1:
        raise ValueError(f"steps must be an integer >= 1, got {steps!r}")
    if rule not in IG_RULES:
        raise ValueError(f"rule must be one of {IG_RULES}, got {rule!r}")
    specs, bases, masks, labels = _batch_inputs(specs, labels, baseline, key, n_temporal,
                                                n_frequency)
    if labels is None:
        labels = np.asarray(map_chunks(lambda s: jnp.argmax(predict_fn(jnp.asarray(s)), -1),
                                       specs, chunk_size=default_chunk_size()))
    num_outputs = int(np.shape(jax.eval_shape(predict_fn, jnp.asarray(specs[:1])))[-1])
    onehots = np.eye(num_outputs, dtype=np.float32)[labels]
    alphas, quad_weights = _quadrature(int(steps), rule)
    m, a, q = (jnp.asarray(masks), jnp.asarray(alphas, jnp.float32),
               jnp.asarray(quad_weights, jnp.float32))
    weights = map_chunks(
        lambda s, b, o: _ig_examples(predict_fn, jnp.asarray(s), jnp.asarray(b), m,
                                     jnp.asarray(o), a, q),
        specs, bases, onehots, chunk_size=chunk_examples)
    weights = np.asarray(weights, np.float64)
    if not np.all(np.isfinite(weights)):
        raise ValueError("integrated gradients are not finite: predict_fn's gradient gave NaN/Inf")
    return weights
