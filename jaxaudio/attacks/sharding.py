"""Run attacks with the batch axis sharded over ``jax.devices()``.

The compiled attack is the same function on one CPU, one GPU or many devices: its inputs are
placed with ``NamedSharding(mesh, P("batch"))`` on a 1-D :class:`jax.sharding.Mesh` and
``jax.jit`` partitions the vmapped loop along the batch. The batch is padded to a multiple of
the device count (with copies of the first example, so padding is always valid input) and the
padding is stripped from the results. On a single device everything is a no-op.

    attack = sharded(pgd)
    result = attack(logits_fn, waves, labels, key=jax.random.key(0), eps=1e-3)

Per-example keys are derived from ``key`` *before* padding (:func:`example_keys`), so the
sharded result equals the unsharded one example by example.
"""

from __future__ import annotations

import functools
from typing import Any, Callable, Optional, Sequence

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh, NamedSharding
from jax.sharding import PartitionSpec as P

from jaxaudio.attacks.containers import SweepResult
from jaxaudio.attacks.validation import example_keys

__all__ = ["BATCH_AXIS", "batch_mesh", "pad_batch", "shard_batch", "unpad", "sharded"]

BATCH_AXIS = "batch"


def batch_mesh(devices: Optional[Sequence[jax.Device]] = None) -> Mesh:
    """A 1-D mesh with axis ``"batch"`` over ``devices`` (default ``jax.devices()``)."""
    devices = jax.devices() if devices is None else list(devices)
    return Mesh(np.asarray(devices), (BATCH_AXIS,))


def pad_batch(tree, multiple: int):
    """Pad every leaf's leading axis to a multiple of ``multiple`` by repeating example 0.

    Returns ``(padded_tree, batch_size)``; all leaves must share the leading size.
    """
    leaves = jax.tree.leaves(tree)
    if not leaves:
        raise ValueError("nothing to pad")
    sizes = {int(np.shape(leaf)[0]) for leaf in leaves}
    if len(sizes) != 1:
        raise ValueError(f"all batched arguments need the same leading size, got {sorted(sizes)}")
    n = sizes.pop()
    pad = (-n) % multiple

    def one(a):
        if pad == 0:
            return a
        a = jnp.asarray(a) if not isinstance(a, jax.Array) else a
        return jnp.concatenate([a, jnp.repeat(a[:1], pad, axis=0)], axis=0)

    return jax.tree.map(one, tree), n


def shard_batch(tree, mesh: Optional[Mesh] = None):
    """Pad the batch to a multiple of the device count and place it with ``P("batch")``.

    Returns ``(sharded_tree, batch_size)``. On a one-device mesh the tree is returned as is.
    """
    mesh = batch_mesh() if mesh is None else mesh
    count = mesh.devices.size
    if count == 1:
        leaves = jax.tree.leaves(tree)
        return tree, int(np.shape(leaves[0])[0]) if leaves else 0
    padded, n = pad_batch(tree, count)
    spec = NamedSharding(mesh, P(BATCH_AXIS))
    return jax.tree.map(lambda a: jax.device_put(a, spec), padded), n


def unpad(tree, batch_size: int, *, axis: int = 0):
    """Slice every leaf with more than ``axis`` axes back to ``batch_size`` along ``axis``.

    A :class:`~jaxaudio.attacks.SweepResult` is understood field by field (its per-eps
    fields have the batch on axis 1, ``original_prediction`` on axis 0, ``epsilons`` none).
    """
    if isinstance(tree, SweepResult):
        return tree._replace(
            success=unpad(tree.success, batch_size, axis=1),
            snr_db=unpad(tree.snr_db, batch_size, axis=1),
            adversarial_prediction=unpad(tree.adversarial_prediction, batch_size, axis=1),
            original_prediction=unpad(tree.original_prediction, batch_size, axis=0),
        )

    def one(a):
        if np.ndim(a) <= axis or np.shape(a)[axis] == batch_size:
            return a
        return jax.lax.slice_in_dim(a, 0, batch_size, axis=axis)

    return jax.tree.map(one, tree)


def sharded(attack_fn: Callable, *, mesh: Optional[Mesh] = None) -> Callable:
    """Wrap an attack ``attack_fn(logits_fn, x, labels, *, key=..., target=..., **kw)`` so that
    its batch runs sharded over the devices of ``mesh`` (default: all devices).

    Works for :func:`~jaxaudio.attacks.fgsm`, :func:`~jaxaudio.attacks.fgsm_sweep`,
    :func:`~jaxaudio.attacks.pgd`, :func:`~jaxaudio.attacks.pgd_l2`,
    :func:`~jaxaudio.attacks.carlini_wagner` and
    :func:`~jaxaudio.attacks.multiscale_carlini_wagner`. ``x``, ``labels``, an array ``target``
    and the per-example keys are padded and sharded; int/str ``target`` values pass through.
    On one device it calls ``attack_fn`` unchanged.
    """
    @functools.wraps(attack_fn)
    def wrapper(logits_fn, x, labels, **kwargs):
        m = batch_mesh() if mesh is None else mesh
        if m.devices.size == 1:
            return attack_fn(logits_fn, x, labels, **kwargs)
        batch = int(np.shape(x)[0])
        batched: dict[str, Any] = {"x": x, "labels": labels}
        if kwargs.get("key") is not None:
            batched["key"] = example_keys(kwargs["key"], batch)
        target = kwargs.get("target")
        if target is not None and not isinstance(target, str) and np.ndim(target) == 1:
            batched["target"] = jnp.asarray(target)
        placed, _ = shard_batch(batched, m)
        kwargs.update({k: v for k, v in placed.items() if k in ("key", "target")})
        result = attack_fn(logits_fn, placed["x"], placed["labels"], **kwargs)
        return unpad(result, batch)

    return wrapper
