"""Loss terms the attacks are built from: classification losses and perturbation distances.

All functions are pure ``jax.numpy``, safe under ``jit``/``vmap``/``grad``. Classification
losses take the logits of *one* example ``(num_classes,)`` (or any leading axes) and an integer
class; distances take the clean input ``x`` and the adversarial ``x_adv`` of the same shape and
reduce over all axes of one example (leading axes are kept for the multi-scale loss, see there).
"""

from __future__ import annotations

from typing import Sequence

import jax.numpy as jnp
import optax

from jaxaudio.dsp import frontend

__all__ = [
    "DEFAULT_FFT_SIZES",
    "cross_entropy",
    "binary_cross_entropy",
    "squared_l2_distance",
    "multiscale_spectral_distance",
]

#: FFT sizes of the multi-scale spectral loss (docs/studies.md §1, multi-scale C&W).
DEFAULT_FFT_SIZES: tuple[int, ...] = (2048, 1024, 512, 256, 128, 64)


def cross_entropy(logits, label):
    """Softmax cross-entropy ``logsumexp(logits) - logits[label]``.

    Args:
      logits: ``(..., num_classes)``.
      label: integer class index, broadcastable to ``logits.shape[:-1]``.

    Returns:
      ``(...)`` float32, finite for finite logits.
    """
    logits = jnp.asarray(logits, jnp.float32)
    label = jnp.broadcast_to(jnp.asarray(label, jnp.int32), logits.shape[:-1])
    return optax.softmax_cross_entropy_with_integer_labels(logits, label)


def binary_cross_entropy(logit, label):
    """Sigmoid binary cross-entropy of one logit towards ``label`` in {0, 1} (numerically stable).
    """
    logit = jnp.asarray(logit, jnp.float32)
    return optax.sigmoid_binary_cross_entropy(logit, jnp.asarray(label, jnp.float32))


def squared_l2_distance(x, x_adv):
    """``||x_adv - x||²`` summed over all elements (the C&W distance term), a scalar."""
    diff = jnp.asarray(x_adv, jnp.float32) - jnp.asarray(x, jnp.float32)
    return jnp.sum(diff * diff)


def multiscale_spectral_distance(x, x_adv, *, fft_sizes: Sequence[int] = DEFAULT_FFT_SIZES,
                                 log_eps: float = 1e-7, pad_mode: str = "constant"):
    """Multi-resolution spectral loss between two waveforms (multi-scale C&W distance).

    For every FFT size ``n`` (hop ``n // 4``, periodic Hann window, centred frames, magnitude
    spectrogram ``S`` from :func:`jaxaudio.dsp.frontend.spectrogram` with ``power=1``)::

        mean |S(x) - S(x_adv)| + mean |log(S(x) + log_eps) - log(S(x_adv) + log_eps)|

    summed over the sizes. Means run over frequency bins and frames of each example.

    Args:
      x, x_adv: ``(..., num_samples)`` waveforms of equal shape.
      fft_sizes: FFT sizes (ints >= 4).
      log_eps: offset inside the logs (> 0).
      pad_mode: ``"constant"`` (default; works for any length) or ``"reflect"`` (needs more than
        ``max(fft_sizes) // 2`` samples).

    Returns:
      ``(...)`` float32: 0 for identical inputs. The gradient with respect to ``x_adv`` is finite
      everywhere, including at ``x_adv == x`` and on digital silence (the magnitude is
      ``sqrt(re² + im² + 1e-20)``).
    """
    if not fft_sizes:
        raise ValueError("fft_sizes must name at least one FFT size")
    if log_eps <= 0:
        raise ValueError(f"log_eps must be > 0, got {log_eps}")
    x = jnp.asarray(x, jnp.float32)
    x_adv = jnp.asarray(x_adv, jnp.float32)
    total = jnp.zeros(x.shape[:-1], jnp.float32)
    for n_fft in fft_sizes:
        n_fft = int(n_fft)
        if n_fft < 4:
            raise ValueError(f"fft_sizes must be >= 4, got {n_fft}")
        kwargs = dict(n_fft=n_fft, hop_length=n_fft // 4, power=1.0, pad_mode=pad_mode)
        s_clean = frontend.spectrogram(x, **kwargs)
        s_adv = frontend.spectrogram(x_adv, **kwargs)
        linear = jnp.mean(jnp.abs(s_clean - s_adv), axis=(-2, -1))
        logs = jnp.mean(jnp.abs(jnp.log(s_clean + log_eps) - jnp.log(s_adv + log_eps)),
                        axis=(-2, -1))
        total = total + linear + logs
    return total
