"""Thin Python wrappers on concrete inputs: keys, random targets, checks (``ValueError``s).

Everything the compiled core receives has been through :func:`prepare_inputs` (and the checks of
the public attacks), so the jitted code never validates.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from typing import NamedTuple, Optional

import jax
import jax.numpy as jnp
import numpy as np

from jaxaudio.attacks.containers import Array, AttackOptions, LogitsFn
from jaxaudio.attacks.pieces import DECISIONS

__all__ = ["DOMAINS", "example_keys", "random_targets", "num_classes", "cached_call",
           "clear_cache", "check_positive", "check_finite", "check_max_iterations",
           "check_slots", "default_snr_margin", "OPTION_NAMES", "resolve_options", "PreparedInputs",
           "prepare_inputs"]

DOMAINS = ("waveform", "spectrogram")


def _as_typed_keys(key):
    key = jnp.asarray(key) if not isinstance(key, jax.Array) else key
    if jax.dtypes.issubdtype(key.dtype, jax.dtypes.prng_key):
        return key
    if key.dtype == jnp.uint32 and key.ndim >= 1 and key.shape[-1] == 2:
        return jax.random.wrap_key_data(key)
    raise ValueError(f"key must be a jax.random key (or raw uint32 key data), got dtype "
                     f"{key.dtype} shape {key.shape}")


def example_keys(key, batch_size: int):
    """Per-example keys ``(batch_size,)`` from one key (``jax.random.split``), or ``key`` itself
    if it already is a batch of ``batch_size`` keys.

    Example ``i`` uses ``fold_in(keys[i], 0)`` for its random start and ``fold_in(keys[i], 1)``
    for its random target, so running it alone with ``keys[i]`` reproduces the batch result.
    """
    keys = _as_typed_keys(key)
    if keys.ndim == 0:
        return jax.random.split(keys, batch_size)
    if keys.shape != (batch_size,):
        raise ValueError(f"key must be one key or a batch of {batch_size} keys, got shape "
                         f"{keys.shape}")
    return keys


@functools.partial(jax.jit, static_argnames=("num_classes",))
def _random_targets(keys, labels, num_classes: int):
    def one(key, label):
        r = jax.random.randint(jax.random.fold_in(key, 1), (), 0, num_classes - 1)
        return jnp.where(r >= label, r + 1, r).astype(jnp.int32)

    return jax.vmap(one)(keys, labels)


def random_targets(key, labels, num_classes: int):
    """A uniformly random class other than ``labels[i]`` for every example (int32 ``(batch,)``).

    Reproducible for a given ``key``; never equal to the label.
    """
    labels = jnp.asarray(labels, jnp.int32)
    if num_classes < 2:
        raise ValueError(f"random targets need num_classes >= 2, got {num_classes}")
    return _random_targets(example_keys(key, labels.shape[0]), labels, num_classes)


def _start_keys(keys):
    return jax.vmap(lambda k: jax.random.fold_in(k, 0))(keys)


def cached_call(cached_fn, *args):
    """Call an ``lru_cache``-d function, bypassing the cache for unhashable arguments."""
    try:
        hash(args)
    except TypeError:
        return cached_fn.__wrapped__(*args)
    return cached_fn(*args)


@functools.lru_cache(maxsize=128)
def _output_shape(logits_fn, example_shape: tuple[int, ...]):
    out = jax.eval_shape(logits_fn, jax.ShapeDtypeStruct((1,) + example_shape, jnp.float32))
    return tuple(out.shape)


def clear_cache() -> None:
    """Forget the cached output shapes (and the model references they hold)."""
    _output_shape.cache_clear()


def num_classes(logits_fn: LogitsFn, example_shape: tuple[int, ...]) -> int:
    """Number of outputs of ``logits_fn`` for examples of ``example_shape`` (traced, cached)."""
    shape = cached_call(_output_shape, logits_fn, tuple(int(s) for s in example_shape))
    if len(shape) != 2 or shape[0] != 1:
        raise ValueError(f"logits_fn must map (batch, ...) to (batch, num_outputs); it maps a "
                         f"batch of 1 to shape {shape}")
    return shape[1]


# --------------------------------------------------------------------------------------------
# Scalar checks
# --------------------------------------------------------------------------------------------


def check_positive(name: str, value, *, allow_zero: bool = False) -> float:
    """``value`` as a float, or ``ValueError`` if it is not finite and > 0 (>= 0)."""
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a number, got {value!r}") from None
    if not math.isfinite(v) or v < 0 or (v == 0 and not allow_zero):
        bound = ">= 0" if allow_zero else "> 0"
        raise ValueError(f"{name} must be finite and {bound}, got {value!r}")
    return v


def check_finite(name: str, value, what: str = "a finite number") -> float:
    """``value`` as a float, or ``ValueError`` unless it is a finite number."""
    try:
        ok = np.isfinite(float(value))
    except (TypeError, ValueError):
        ok = False
    if not ok:
        raise ValueError(f"{name} must be {what}, got {value!r}")
    return float(value)


def check_max_iterations(max_iterations) -> int:
    """``max_iterations`` as an int, or ``ValueError`` unless it is an integer >= 1."""
    try:
        ok = int(max_iterations) == max_iterations and max_iterations >= 1
    except (TypeError, ValueError):
        ok = False
    if not ok:
        raise ValueError(f"max_iterations must be an integer >= 1, got {max_iterations!r}")
    return int(max_iterations)


def check_slots(slots) -> Optional[int]:
    """``slots`` as an int (or ``None``), or ``ValueError`` unless it is an integer >= 1."""
    if slots is None:
        return None
    try:
        ok = not isinstance(slots, bool) and int(slots) == slots and slots >= 1
    except (TypeError, ValueError):
        ok = False
    if not ok:
        raise ValueError(f"slots must be None or an integer >= 1, got {slots!r}")
    return int(slots)


#: The shared loop options (fields of :class:`~jaxaudio.attacks.containers.AttackOptions`).
OPTION_NAMES = tuple(f.name for f in dataclasses.fields(AttackOptions))
_DEFAULT_OPTIONS = AttackOptions()


def resolve_options(options: Optional[AttackOptions], overrides: dict, *, attack: str,
                    max_iterations: int, unsupported: tuple = ()) -> AttackOptions:
    """One :class:`AttackOptions` from ``options=`` and the keyword ``overrides``, checked.

    ``ValueError`` for a keyword that is no loop option (naming it and the valid ones), for a
    field in ``unsupported`` that differs from its default, and for a bad ``max_iterations``
    or ``slots``. ``max_iterations=None`` becomes the attack's default ``max_iterations``.
    """
    if options is None:
        options = _DEFAULT_OPTIONS
    elif not isinstance(options, AttackOptions):
        raise ValueError(f"{attack}: options must be an AttackOptions, got "
                         f"{type(options).__name__}")
    unknown = sorted(set(overrides) - set(OPTION_NAMES))
    if unknown:
        raise ValueError(f"{attack}: unknown option{'s' if len(unknown) > 1 else ''} "
                         f"{', '.join(unknown)}; the loop options are {', '.join(OPTION_NAMES)}")
    options = dataclasses.replace(options, **overrides)
    for name in unsupported:
        if getattr(options, name) != getattr(_DEFAULT_OPTIONS, name):
            raise ValueError(f"{attack} does not support {name}={getattr(options, name)!r}")
    iterations = max_iterations if options.max_iterations is None else options.max_iterations
    return dataclasses.replace(options, max_iterations=check_max_iterations(iterations),
                               slots=check_slots(options.slots))


def default_snr_margin(domain: str) -> int:
    """Samples left out at both ends for the SNR: 2048 for waveforms, 0 otherwise."""
    return 2048 if domain == "waveform" else 0


# --------------------------------------------------------------------------------------------
# Batched inputs
# --------------------------------------------------------------------------------------------


class PreparedInputs(NamedTuple):
    """Validated inputs for the compiled core, plus the resolved static options."""

    x: Array
    labels: Array
    targets: Array
    keys: Array
    num_outputs: int
    clip_min: Optional[float]
    clip_max: Optional[float]
    snr_margin: int
    targeted: bool


def _resolve_bounds(domain, clip_min, clip_max):
    if domain == "waveform":
        lo = -1.0 if clip_min is None else float(clip_min)
        hi = 1.0 if clip_max is None else float(clip_max)
    else:
        lo = -math.inf if clip_min is None else float(clip_min)
        hi = math.inf if clip_max is None else float(clip_max)
    if math.isnan(lo) or math.isnan(hi) or lo >= hi:
        raise ValueError(f"need clip_min < clip_max, got clip_min={clip_min}, clip_max={clip_max}")
    return (None if lo == -math.inf else lo), (None if hi == math.inf else hi)


def _check_x(x, domain, min_samples, clip_min, clip_max):
    """``x`` as numpy and its resolved bounds ``(lo, hi)``."""
    x_np = np.asarray(x)
    if x_np.dtype == object or not np.issubdtype(x_np.dtype, np.number):
        raise ValueError(f"x must be a numeric array, got dtype {x_np.dtype}")
    if domain == "waveform":
        if x_np.ndim != 2:
            raise ValueError(f"x must be waveforms of shape (batch, samples), got shape "
                             f"{x_np.shape}")
        min_samples = 2048 if min_samples is None else int(min_samples)
        if x_np.shape[1] < min_samples:
            raise ValueError(f"x is too short: {x_np.shape[1]} samples, need at least "
                             f"min_samples={min_samples} (one analysis frame)")
    elif x_np.ndim < 2:
        raise ValueError(f"x must have a batch axis and at least one more axis, got shape "
                         f"{x_np.shape}")
    if x_np.shape[0] < 1 or x_np.size == 0:
        raise ValueError(f"x is empty, shape {x_np.shape}")
    if not np.all(np.isfinite(x_np)):
        bad = int(x_np.size - np.count_nonzero(np.isfinite(x_np)))
        raise ValueError(f"x contains {bad} NaN/Inf values")
    lo, hi = _resolve_bounds(domain, clip_min, clip_max)
    if (lo is not None and x_np.min() < lo) or (hi is not None and x_np.max() > hi):
        hint = (" (for spectrogram-domain attacks use domain='spectrogram', which is unbounded "
                "by default)" if domain == "waveform" else "")
        raise ValueError(f"x has values in [{x_np.min():.4g}, {x_np.max():.4g}], outside the "
                         f"bounds [clip_min, clip_max] = [{lo}, {hi}]{hint}")
    return x_np, lo, hi


def _check_labels(labels, batch):
    labels_np = np.asarray(labels)
    if labels_np.dtype == bool:
        labels_np = labels_np.astype(np.int32)
    if labels_np.shape != (batch,) or not np.issubdtype(labels_np.dtype, np.integer):
        raise ValueError(f"labels must be integers of shape ({batch},), got dtype "
                         f"{labels_np.dtype} shape {labels_np.shape}")
    return labels_np


def _sigmoid_targets(labels_np, target, k, threshold, output_index):
    if not 0.0 < float(threshold) < 1.0:
        raise ValueError(f"threshold must be in (0, 1), got {threshold}")
    if not 0 <= int(output_index) < k:
        raise ValueError(f"output_index must be in [0, {k}), got {output_index}")
    if np.any((labels_np != 0) & (labels_np != 1)):
        raise ValueError("labels must be 0 or 1 for decision='sigmoid'")
    if not (target is None or (isinstance(target, str) and target == "random")):
        raise ValueError("decision='sigmoid' always flips the output (the only other "
                         f"class); target must be None or 'random', got {target!r}")
    return jnp.asarray(1 - labels_np, jnp.int32), True


def _softmax_targets(labels_np, target, k, keys):
    batch = labels_np.shape[0]
    if k < 2:
        raise ValueError(f"decision='softmax' needs at least 2 classes, logits_fn gives {k}; "
                         f"use decision='sigmoid' for a single logit")
    if labels_np.min() < 0 or labels_np.max() >= k:
        raise ValueError(f"labels must be class indices in [0, {k}), got range "
                         f"[{labels_np.min()}, {labels_np.max()}]")
    if target is None:
        return jnp.full((batch,), -1, jnp.int32), False
    if isinstance(target, str):
        if target != "random":
            raise ValueError(f"target must be None, an int, 'random' or an array, got "
                             f"{target!r}")
        return _random_targets(keys, jnp.asarray(labels_np, jnp.int32), k), True
    t = np.asarray(target)
    if not np.issubdtype(t.dtype, np.integer) or t.ndim > 1:
        raise ValueError(f"target must be an int or an int array of shape ({batch},), "
                         f"got dtype {t.dtype} shape {t.shape}")
    t = np.broadcast_to(t, (batch,)) if t.ndim == 0 else t
    if t.shape != (batch,):
        raise ValueError(f"target must have shape ({batch},), got {t.shape}")
    if t.min() < 0 or t.max() >= k:
        raise ValueError(f"target must be class indices in [0, {k}), got range "
                         f"[{t.min()}, {t.max()}]")
    same = np.flatnonzero(t == labels_np)
    if same.size:
        raise ValueError(f"target equals the true label for examples {same.tolist()}; "
                         f"a targeted attack needs a different class (drop those "
                         f"examples, e.g. x[labels != target])")
    return jnp.asarray(t, jnp.int32), True


def prepare_inputs(logits_fn: LogitsFn, x, labels, *, target=None, key=None,
                   decision: str = "softmax", output_index: int = 0, domain: str = "waveform",
                   min_samples: Optional[int] = None, clip_min=None, clip_max=None,
                   threshold: float = 0.5, need_key: bool = False,
                   snr_margin: Optional[int] = None) -> PreparedInputs:
    """Validate concrete inputs and resolve targets/keys/bounds (raises ``ValueError``).

    ``target``: ``None`` (untargeted), an int class, ``"random"`` (a random other class per
    example, from ``key``) or an int array ``(batch,)``. Sigmoid decisions accept ``None`` or
    ``"random"``, both meaning: flip ``labels`` (the only other class).
    """
    if domain not in DOMAINS:
        raise ValueError(f"domain must be one of {DOMAINS}, got {domain!r}")
    if decision not in DECISIONS:
        raise ValueError(f"decision must be one of {DECISIONS}, got {decision!r}")
    x_np, lo, hi = _check_x(x, domain, min_samples, clip_min, clip_max)
    batch = x_np.shape[0]
    labels_np = _check_labels(labels, batch)
    k = num_classes(logits_fn, x_np.shape[1:])
    random_target = decision == "softmax" and isinstance(target, str) and target == "random"
    if key is None:
        if need_key or random_target:
            raise ValueError("key is required (random start or random target); pass "
                             "key=jax.random.key(seed)")
        keys = jax.random.split(jax.random.key(0), batch)
    else:
        keys = example_keys(key, batch)
    if decision == "sigmoid":
        targets, targeted = _sigmoid_targets(labels_np, target, k, threshold, output_index)
    else:
        targets, targeted = _softmax_targets(labels_np, target, k, keys)
    return PreparedInputs(
        x=jnp.asarray(x, jnp.float32), labels=jnp.asarray(labels_np, jnp.int32),
        targets=targets, keys=_start_keys(keys), num_outputs=k, clip_min=lo, clip_max=hi,
        snr_margin=default_snr_margin(domain) if snr_margin is None else int(snr_margin),
        targeted=targeted,
    )
