"""Training losses ``(logits (batch, C), targets (batch, C)) -> scalar``, noise-robust ones too.

Targets are one-hot or multi-hot float arrays; for the softmax losses a multi-hot row is
normalised to a distribution. Each factory returns a pure function usable as the objective of
an optax training step.
"""

from __future__ import annotations

from typing import Callable

import jax
import jax.numpy as jnp
import optax


def _as_distribution(targets):
    total = jnp.sum(targets, axis=-1, keepdims=True)
    return targets / jnp.maximum(total, 1e-12)


def cross_entropy() -> Callable:
    """Softmax cross-entropy against (normalised) targets."""
    def loss(logits, targets):
        return jnp.mean(optax.softmax_cross_entropy(logits, _as_distribution(targets)))
    return loss


def binary_cross_entropy() -> Callable:
    """Sigmoid cross-entropy, averaged over outputs and batch (binary / multi-label)."""
    def loss(logits, targets):
        return jnp.mean(optax.sigmoid_binary_cross_entropy(logits, targets))
    return loss


def label_smoothing(*, smoothing: float = 0.1) -> Callable:
    """Cross-entropy against targets mixed with the uniform distribution (``smoothing`` in [0,1))."""
    if not 0.0 <= smoothing < 1.0:
        raise ValueError(f"smoothing must be in [0, 1), got {smoothing}")

    def loss(logits, targets):
        smoothed = optax.smooth_labels(_as_distribution(targets), smoothing)
        return jnp.mean(optax.softmax_cross_entropy(logits, smoothed))
    return loss


def generalized_cross_entropy(*, q: float = 0.7) -> Callable:
    """Generalized cross-entropy (Zhang & Sabuncu 2018): ``(1 - p_y^q) / q``.

    ``q -> 0`` recovers cross-entropy, ``q = 1`` is the (noise-tolerant) mean absolute error.
    """
    if not 0.0 < q <= 1.0:
        raise ValueError(f"q must be in (0, 1], got {q}")

    def loss(logits, targets):
        p_target = jnp.sum(jax.nn.softmax(logits, -1) * _as_distribution(targets), axis=-1)
        return jnp.mean((1.0 - jnp.maximum(p_target, 1e-12) ** q) / q)
    return loss


def bootstrap(*, beta: float = 0.8) -> Callable:
    """Soft bootstrapping (Reed et al. 2015): targets ``beta * y + (1 - beta) * softmax``.

    The model's own prediction enters as a constant (``stop_gradient``).
    """
    if not 0.0 <= beta <= 1.0:
        raise ValueError(f"beta must be in [0, 1], got {beta}")

    def loss(logits, targets):
        predicted = jax.lax.stop_gradient(jax.nn.softmax(logits, -1))
        mixed = beta * _as_distribution(targets) + (1.0 - beta) * predicted
        return jnp.mean(optax.softmax_cross_entropy(logits, mixed))
    return loss


LOSSES: dict[str, Callable[..., Callable]] = {
    "cross_entropy": cross_entropy,
    "binary_cross_entropy": binary_cross_entropy,
    "label_smoothing": label_smoothing,
    "gce": generalized_cross_entropy,
    "bootstrap": bootstrap,
}


def get_loss(name: str, **kwargs) -> Callable:
    """The loss called ``name`` (a key of ``LOSSES``) with its keyword arguments."""
    if name not in LOSSES:
        raise ValueError(f"unknown loss {name!r}; choose one of {sorted(LOSSES)}")
    return LOSSES[name](**kwargs)
