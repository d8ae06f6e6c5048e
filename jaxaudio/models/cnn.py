"""The average-pool CNN of the instrument classifier (docs/studies.md §1)."""

from __future__ import annotations

import flax.linen as nn
import jax.numpy as jnp


class AveragePoolCNN(nn.Module):
    """Fully convolutional instrument tagger.

    conv 5x5/w stride 2, conv 3x3/w, avg-pool 2x2, conv 3x3/2w, conv 3x3/2w, avg-pool (2,3),
    conv 3x3/4w, conv 3x3/4w, avg-pool (2,3), conv 1x1/8w, conv 1x1/num_classes; every hidden
    conv is followed by ReLU then batch norm; dropout 0.3 after each pool and 0.5 after the
    1x1/8w conv. Logits are the mean over frequency, then the max over time, so any clip length
    (>= one frame) gives ``(batch, num_classes)``.

    Attributes:
      num_classes: number of output classes.
      width: channels of the first block (64 in the paper; smaller for fast presets).
    """

    num_classes: int = 12
    width: int = 64

    @nn.compact
    def __call__(self, x, *, train: bool = False):
        """``x``: standardised features ``(batch, n_mels, frames)``; returns logits."""
        x = x[..., None]  # NHWC with H = mel bands, W = frames

        def conv(x, features, kernel, strides=1):
            x = nn.Conv(features, (kernel, kernel), strides=strides, padding="SAME")(x)
            x = nn.relu(x)
            return nn.BatchNorm(use_running_average=not train, momentum=0.9)(x)

        def pool(x, window):
            # SAME padding keeps at least one frame for short excerpts.
            x = nn.avg_pool(x, window, strides=window, padding="SAME")
            return nn.Dropout(0.3, deterministic=not train)(x)

        w = self.width
        x = conv(x, w, 5, strides=2)
        x = conv(x, w, 3)
        x = pool(x, (2, 2))
        x = conv(x, 2 * w, 3)
        x = conv(x, 2 * w, 3)
        x = pool(x, (2, 3))
        x = conv(x, 4 * w, 3)
        x = conv(x, 4 * w, 3)
        x = pool(x, (2, 3))
        x = conv(x, 8 * w, 1)
        x = nn.Dropout(0.5, deterministic=not train)(x)
        x = nn.Conv(self.num_classes, (1, 1))(x)
        x = jnp.mean(x, axis=1)  # over frequency -> (batch, frames, classes)
        return jnp.max(x, axis=1)  # over time -> (batch, classes)
