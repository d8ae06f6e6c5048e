"""Singing voice detector of Schlüter & Lehner (docs/studies.md §3)."""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp


class ZeroMeanConv(nn.Module):
    """3x3 'valid' convolution whose kernel has zero mean per output filter.

    The stored kernel is unconstrained; the applied kernel subtracts its mean over the
    receptive field, so the filter ignores constant offsets of the (log-magnitude) input,
    i.e. it is invariant to the input's overall gain.
    """

    features: int
    kernel_size: tuple[int, int] = (3, 3)

    @nn.compact
    def __call__(self, x):
        kernel = self.param(
            "kernel", nn.initializers.lecun_normal(), (*self.kernel_size, x.shape[-1], self.features)
        )
        bias = self.param("bias", nn.initializers.zeros, (self.features,))
        kernel = kernel - jnp.mean(kernel, axis=(0, 1, 2), keepdims=True)
        y = jax.lax.conv_general_dilated(
            x, kernel, window_strides=(1, 1), padding="VALID",
            dimension_numbers=("NHWC", "HWIO", "NHWC"),
        )
        return y + bias


class SingingVoiceDetector(nn.Module):
    """Binary sing / no-sing classifier for the centre frame of a 115-frame excerpt.

    conv 3x3/64, conv 3x3/32, max-pool 3x3, conv 3x3/128, conv 3x3/64, max-pool 3x3,
    dense 256, dense 64, dense 1; leaky ReLU (slope 0.01) and batch norm after every hidden
    layer; dropout 0.5 before each dense layer.

    Attributes:
      zero_mean_first_conv: subtract each first-layer filter's mean (the study's variant).
      width: channels of the first conv (64 in the paper); others scale with it.
    """

    zero_mean_first_conv: bool = True
    width: int = 64

    @nn.compact
    def __call__(self, x, *, train: bool = False):
        """``x``: standardised features ``(batch, 80, 115)``; returns logits ``(batch, 1)``."""
        x = x[..., None]
        w = self.width

        def act(x):
            x = nn.leaky_relu(x, negative_slope=0.01)
            return nn.BatchNorm(use_running_average=not train, momentum=0.9)(x)

        if self.zero_mean_first_conv:
            x = act(ZeroMeanConv(w)(x))
        else:
            x = act(nn.Conv(w, (3, 3), padding="VALID")(x))
        x = act(nn.Conv(w // 2, (3, 3), padding="VALID")(x))
        x = nn.max_pool(x, (3, 3), strides=(3, 3))
        x = act(nn.Conv(2 * w, (3, 3), padding="VALID")(x))
        x = act(nn.Conv(w, (3, 3), padding="VALID")(x))
        x = nn.max_pool(x, (3, 3), strides=(3, 3))
        x = x.reshape(x.shape[0], -1)
        for features in (4 * w, w):
            x = nn.Dropout(0.5, deterministic=not train)(x)
            x = act(nn.Dense(features)(x))
        x = nn.Dropout(0.5, deterministic=not train)(x)
        return nn.Dense(1)(x)
