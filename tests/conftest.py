"""Shared fixtures: tiny classifiers and clips, built once per test session so that compiled
functions are shared between test files (each xdist worker builds its own)."""

import os

# Tests run on the CPU with deterministic, single-threaded-ish XLA; keep compile cache warm.
os.environ.setdefault("JAX_PLATFORMS", "cpu")

import jax  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from jaxaudio.dsp import frontend as fe  # noqa: E402
from jaxaudio.models import init_classifier  # noqa: E402

# Compiled programs persist between test runs (and are shared with the command line): a second
# `make test` loads them instead of compiling again. JAXAUDIO_COMPILATION_CACHE="" turns it off.
from jaxaudio.runtime.xla_cache import use_compilation_cache  # noqa: E402

use_compilation_cache()

#: The tiny front-end of the shared classifier: 16 kHz, n_fft 256, hop 128, 16 mel bands.
TINY_FRONTEND = fe.FrontendConfig(n_fft=256, hop_length=128, n_mels=16)
TINY_LABELS = ("a", "b", "c")


@pytest.fixture(scope="session")
def tiny_frontend():
    """:data:`TINY_FRONTEND`."""
    return TINY_FRONTEND


@pytest.fixture(scope="session")
def tiny_classifier():
    """An untrained average-pool CNN instrument classifier: 3 classes, width 4, 16 frames per
    excerpt (2,048 samples at 16 kHz), :data:`TINY_FRONTEND`, initialised from key 0."""
    return init_classifier(model_name="avgpool_cnn", model_kwargs={"num_classes": 3, "width": 4},
                           frontend=TINY_FRONTEND, label_names=TINY_LABELS, task="multiclass",
                           excerpt_frames=16, key=jax.random.key(0))


def sine_clips(num_samples: int, count: int = 24, seed: int = 0):
    """``count`` clips of ``num_samples`` samples (16 kHz): clip ``i`` has class ``k = i % 3``,
    a sine at 300 + 900 k Hz (amplitude 0.3) plus noise of std 0.01 from
    ``default_rng(seed)``. Returns ``(waves list of float32 arrays, labels (count,) int)``."""
    rng = np.random.default_rng(seed)
    t = np.arange(num_samples) / 16000
    waves, labels = [], []
    for i in range(count):
        k = i % 3
        waves.append((0.3 * np.sin(2 * np.pi * (300 + 900 * k) * t)
                      + 0.01 * rng.standard_normal(len(t))).astype(np.float32))
        labels.append(k)
    return waves, np.asarray(labels)


@pytest.fixture(scope="session")
def tiny_clips():
    """:func:`sine_clips` of 3,000 samples: 24 clips, 3 classes."""
    return sine_clips(3000)


@pytest.fixture(scope="session")
def tiny_rbg_classifier():
    """The shape of :func:`tiny_classifier` (3 classes, width 4, 16 frames,
    :data:`TINY_FRONTEND`) initialised by one jitted call from an ``rbg`` key 0 with identity
    band statistics: the initialisation the label-noise study trains from."""
    import jax.numpy as jnp

    from jaxaudio.models import Classifier
    from jaxaudio.models.cnn import AveragePoolCNN

    module = AveragePoolCNN(num_classes=3, width=4)
    variables = jax.jit(lambda k: module.init(k, jnp.zeros((1, 16, 16)), train=False))(
        jax.random.key(0, impl="rbg"))
    return Classifier(frontend=TINY_FRONTEND, model_name="avgpool_cnn",
                      model_kwargs={"num_classes": 3, "width": 4}, variables=variables,
                      mean=np.zeros(16, np.float32), std=np.ones(16, np.float32),
                      label_names=TINY_LABELS, task="multiclass", excerpt_frames=16)
