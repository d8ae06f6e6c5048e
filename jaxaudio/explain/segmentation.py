"""Time-frequency segmentation of a spectrogram into rectangular interpretable components.

A spectrogram ``(n_bins, n_frames)`` (frequency on axis 0, lowest bin first; time on axis 1) is
cut into ``n_temporal`` segments along time and ``n_frequency`` bands along frequency, giving
``n_temporal * n_frequency`` rectangles (docs/studies.md §3: 5 x 4 = 20). Segment sizes are as
equal as possible, exactly as ``np.array_split`` splits an axis (the first ``length % n`` pieces
are one longer).

Component order: ``component = t * n_frequency + f`` with ``t`` the temporal segment (0 = earliest)
and ``f`` the frequency band (0 = lowest bins). :func:`component_position` and
:func:`component_index` convert between the two.

A switched-off component is replaced by a *baseline* (:func:`baseline_value`); :func:`compose`
builds the perturbed spectrograms for many binary vectors at once, on device.
"""

from __future__ import annotations

from typing import Optional, Union

import jax
import jax.numpy as jnp
import numpy as np

__all__ = [
    "BASELINES",
    "num_components",
    "segment_bounds",
    "component_index",
    "component_position",
    "component_slices",
    "component_map",
    "component_masks",
    "component_sums",
    "component_norms",
    "check_spec",
    "baseline_value",
    "compose",
]

#: Baseline kinds understood by :func:`baseline_value`.
BASELINES: tuple[str, ...] = ("zero", "min", "mean", "shuffle")

BaselineLike = Union[str, float, np.ndarray, jax.Array]


def num_components(*, n_temporal: int = 5, n_frequency: int = 4) -> int:
    """Number of components of an ``n_temporal x n_frequency`` segmentation."""
    _check_counts(n_temporal, n_frequency)
    return int(n_temporal) * int(n_frequency)


def _check_counts(n_temporal: int, n_frequency: int) -> None:
    for name, value in (("n_temporal", n_temporal), ("n_frequency", n_frequency)):
        if int(value) != value or value < 1:
            raise ValueError(f"{name} must be an integer >= 1, got {value!r}")


def _check_shape(shape, n_temporal: int, n_frequency: int) -> tuple[int, int]:
    _check_counts(n_temporal, n_frequency)
    shape = tuple(int(s) for s in shape)
    if len(shape) != 2:
        raise ValueError(f"shape must be (n_bins, n_frames), got {shape}")
    n_bins, n_frames = shape
    if n_temporal > n_frames:
        raise ValueError(
            f"n_temporal={n_temporal} is finer than the spectrogram: it has only "
            f"{n_frames} frames (shape (n_bins, n_frames) = {shape})"
        )
    if n_frequency > n_bins:
        raise ValueError(
            f"n_frequency={n_frequency} is finer than the spectrogram: it has only "
            f"{n_bins} bins (shape (n_bins, n_frames) = {shape})"
        )
    return n_bins, n_frames


def segment_bounds(length: int, n: int) -> np.ndarray:
    """Boundaries ``(n + 1,)`` of ``n`` near-equal pieces of ``range(length)``.

    Piece ``i`` is ``[bounds[i], bounds[i + 1])``; the sizes are those of
    ``np.array_split(np.arange(length), n)``.
    """
    if int(n) != n or n < 1:
        raise ValueError(f"n must be an integer >= 1, got {n!r}")
    if n > length:
        raise ValueError(f"cannot split {length} positions into {n} non-empty pieces")
    base, extra = divmod(int(length), int(n))
    sizes = np.full(n, base, dtype=np.int64)
    sizes[:extra] += 1
    return np.concatenate([[0], np.cumsum(sizes)])


def component_index(t: int, f: int, *, n_temporal: int = 5, n_frequency: int = 4) -> int:
    """Component number of temporal segment ``t`` and frequency band ``f``."""
    _check_counts(n_temporal, n_frequency)
    if not (0 <= t < n_temporal and 0 <= f < n_frequency):
        raise ValueError(
            f"(t, f) must lie in [0, {n_temporal}) x [0, {n_frequency}), got ({t}, {f})"
        )
    return int(t) * int(n_frequency) + int(f)


def component_position(index: int, *, n_temporal: int = 5, n_frequency: int = 4) -> tuple[int, int]:
    """``(t, f)`` — temporal segment and frequency band — of component ``index``."""
    total = num_components(n_temporal=n_temporal, n_frequency=n_frequency)
    if not 0 <= index < total:
        raise ValueError(f"component index must lie in [0, {total}), got {index}")
    t, f = divmod(int(index), int(n_frequency))
    return t, f


def component_slices(shape, *, n_temporal: int = 5, n_frequency: int = 4) -> list[tuple[slice, slice]]:
    """``(bin_slice, frame_slice)`` of every component, in component order.

    ``spec[component_slices(spec.shape)[c]]`` is the rectangle of component ``c``.
    """
    n_bins, n_frames = _check_shape(shape, n_temporal, n_frequency)
    tb = segment_bounds(n_frames, n_temporal)
    fb = segment_bounds(n_bins, n_frequency)
    return [
        (slice(int(fb[f]), int(fb[f + 1])), slice(int(tb[t]), int(tb[t + 1])))
        for t in range(n_temporal)
        for f in range(n_frequency)
    ]


def component_map(shape, *, n_temporal: int = 5, n_frequency: int = 4) -> np.ndarray:
    """Integer map ``(n_bins, n_frames)`` giving each cell's component (like lime's ``segments``)."""
    n_bins, n_frames = _check_shape(shape, n_temporal, n_frequency)
    t_of_frame = np.repeat(np.arange(n_temporal), np.diff(segment_bounds(n_frames, n_temporal)))
    f_of_bin = np.repeat(np.arange(n_frequency), np.diff(segment_bounds(n_bins, n_frequency)))
    return (t_of_frame[None, :] * n_frequency + f_of_bin[:, None]).astype(np.int32)


def component_masks(shape, *, n_temporal: int = 5, n_frequency: int = 4) -> np.ndarray:
    """0/1 masks ``(num_components, n_bins, n_frames)`` float32, one per component.

    The masks partition the spectrogram: they sum to one everywhere. Component order is
    ``t * n_frequency + f`` (see the module docstring).

    Raises:
      ValueError: if the segmentation is finer than the spectrogram
        (``n_temporal > n_frames`` or ``n_frequency > n_bins``).
    """
    labels = component_map(shape, n_temporal=n_temporal, n_frequency=n_frequency)
    total = n_temporal * n_frequency
    return (labels[None, :, :] == np.arange(total)[:, None, None]).astype(np.float32)


def component_sums(x, masks) -> jax.Array:
    """Sum of ``x (..., n_bins, n_frames)`` inside each component: ``(..., num_components)``."""
    return jnp.einsum("...ft,cft->...c", x, masks)


def component_norms(x, masks, *, ord: int = 2) -> jax.Array:
    """Per-component norm of ``x (..., n_bins, n_frames)``: ``(..., num_components)``.

    ``ord=2`` is the Euclidean norm of the entries inside each rectangle, ``ord=1`` their
    absolute sum; used e.g. for the "norm-based" component selection of an adversarial delta.
    """
    x = jnp.asarray(x)
    if ord == 2:
        return jnp.sqrt(component_sums(jnp.square(x), masks))
    if ord == 1:
        return component_sums(jnp.abs(x), masks)
    raise ValueError(f"ord must be 1 or 2, got {ord!r}")


def check_spec(spec, name: str = "spec") -> np.ndarray:
    """Validate a single spectrogram ``(n_bins, n_frames)``: 2-D, non-empty, finite."""
    arr = np.asarray(spec)
    if arr.ndim != 2:
        raise ValueError(f"{name} must be one spectrogram of shape (n_bins, n_frames), got shape {arr.shape}")
    if arr.size == 0:
        raise ValueError(f"{name} must not be empty, got shape {arr.shape}")
    if not np.issubdtype(arr.dtype, np.number):
        raise ValueError(f"{name} must be numeric, got dtype {arr.dtype}")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} contains NaN or Inf values")
    return arr


def baseline_value(spec, kind: BaselineLike = "mean", *, key: Optional[jax.Array] = None) -> jax.Array:
    """What a switched-off component is replaced with.

    Args:
      spec: spectrogram ``(n_bins, n_frames)``.
      kind: ``"zero"`` (0), ``"min"`` (the spectrogram's minimum), ``"mean"`` (the spectrogram's
        mean — the study's choice, docs/studies.md §3), ``"shuffle"`` (a random permutation of the
        spectrogram's values, drawn from ``key``); or a number, or an array broadcastable to
        ``spec``'s shape, used as given.
      key: PRNG key, required for ``"shuffle"``.

    Returns:
      A float32 scalar (``zero``/``min``/``mean``/number) or an array of ``spec``'s shape.

    Raises:
      ValueError: for an unknown kind, a missing key for ``"shuffle"``, or an array of the wrong
        shape.
    """
    spec = jnp.asarray(spec, dtype=jnp.float32)
    if isinstance(kind, str):
        if kind == "zero":
            return jnp.zeros((), jnp.float32)
        if kind == "min":
            return jnp.min(spec)
        if kind == "mean":
            return jnp.mean(spec)
        if kind == "shuffle":
            if key is None:
                raise ValueError('baseline "shuffle" needs a PRNG key (key=...)')
            flat = jax.random.permutation(key, spec.reshape(-1))
            return flat.reshape(spec.shape)
        raise ValueError(f"baseline must be one of {BASELINES}, a number or an array; got {kind!r}")
    if isinstance(kind, (bool, np.bool_)) or not np.issubdtype(np.asarray(kind).dtype, np.number):
        raise ValueError(f"baseline must be one of {BASELINES}, a number or an array; got {kind!r}")
    value = jnp.asarray(kind, dtype=jnp.float32)
    try:
        fits = jnp.broadcast_shapes(value.shape, spec.shape) == spec.shape
    except ValueError:
        fits = False
    if not fits:
        raise ValueError(
            f"baseline array of shape {value.shape} does not broadcast to the spectrogram's "
            f"shape {spec.shape}"
        )
    if not bool(jnp.all(jnp.isfinite(value))):
        raise ValueError("baseline contains NaN or Inf values")
    return value


def compose(spec, masks, baseline, z) -> jax.Array:
    """Perturbed spectrograms for binary vectors ``z``.

    ``out[i] = spec * M(z[i]) + baseline * (1 - M(z[i]))`` with ``M(z) = sum_c z_c masks[c]``:
    component ``c`` is kept where ``z[i, c] == 1`` and replaced by the baseline where it is 0.
    Pure ``jnp``; jit/vmap/grad-safe.

    Args:
      spec: ``(n_bins, n_frames)``.
      masks: ``(num_components, n_bins, n_frames)`` from :func:`component_masks`.
      baseline: scalar or array broadcastable to ``spec`` (see :func:`baseline_value`).
      z: ``(num_vectors, num_components)`` 0/1 (any real dtype; fractional values interpolate).

    Returns:
      ``(num_vectors, n_bins, n_frames)`` float32.
    """
    spec = jnp.asarray(spec, jnp.float32)
    masks = jnp.asarray(masks, jnp.float32)
    keep = jnp.einsum("nc,cft->nft", jnp.asarray(z, jnp.float32), masks)
    baseline = jnp.asarray(baseline, jnp.float32)
    # This form (not baseline + keep * (spec - baseline)) returns spec bit-exactly where keep == 1.
    return spec * keep + baseline * (1.0 - keep)
