"""XLA compile options for jaxaudio's attack programs (gradients through the CNN, on CPU).

On CPU, XLA hands convolutions to YNNPACK by default. For this project's CNNs that is the
slower choice once a program also runs the convolutions' backward: measured on a 2-core AMD
EPYC (AVX-512), paper-width AveragePoolCNN, batch 32, the 3x3 convolutions with 64 channels run
at about 100 GFLOP/s under YNNPACK and about 150 under XLA's own (Eigen) convolutions, and a
whole attack iteration (front-end + CNN forward + input gradient) takes about 25 % less time
with YNNPACK's fusions turned off (``benchmarks/torch_side_by_side.py`` prints both). A
forward-only program (prediction, LIME) is about as fast either way and keeps XLA's default;
so do the training steps (with weight gradients the difference was within the machine's noise
at the demo width and about 10 % at paper width).

The options are passed per program (``jax.jit(..., compiler_options=...)``), so nothing else
in the process changes, and only where the compiler knows them: a JAX whose XLA lacks the
option gets plain ``jax.jit``. ``JAXAUDIO_XLA_CPU_TUNING=0`` turns the tuning off (XLA's
defaults everywhere); on GPU and TPU nothing is passed.
"""

from __future__ import annotations

import functools
import os
from typing import Callable, Optional

import jax

__all__ = ["GRADIENT_OPTIONS", "gradient_options", "jit_gradient"]

#: What :func:`jit_gradient` adds on CPU: no YNNPACK fusions (XLA's own convolutions).
GRADIENT_OPTIONS = {"xla_cpu_experimental_ynn_fusion_type": ""}


@functools.lru_cache(maxsize=None)
def _accepted(items: tuple) -> bool:
    """Whether this XLA compiles a trivial program with these options."""
    try:
        jax.jit(lambda x: x + 1, compiler_options=dict(items)).lower(1.0).compile()
        return True
    except Exception:  # an unknown option: "No such compile option"
        return False


def gradient_options() -> Optional[dict]:
    """The options for a gradient program on the default backend (``None`` = XLA's defaults)."""
    if os.environ.get("JAXAUDIO_XLA_CPU_TUNING", "1").strip().lower() in ("0", "false", "no",
                                                                          "off"):
        return None
    if jax.default_backend() != "cpu":
        return None
    items = tuple(sorted(GRADIENT_OPTIONS.items()))
    return dict(items) if _accepted(items) else None


def jit_gradient(fn: Callable, **jit_kwargs) -> Callable:
    """``jax.jit(fn, **jit_kwargs)`` with :func:`gradient_options`, for programs that
    differentiate the model's output with respect to its input (attack iterations)."""
    options = gradient_options()
    if options:
        jit_kwargs = {**jit_kwargs, "compiler_options": options}
    return jax.jit(fn, **jit_kwargs)
