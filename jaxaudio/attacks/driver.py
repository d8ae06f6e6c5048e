"""Compile an attack and drive its loop: the one driver for plain/refilled × device/host.

An attack is a factory (:mod:`jaxaudio.attacks.specs`) called *inside* the compiled function
with its traced hyperparameters (changing them does not recompile) and its static options;
its :class:`~jaxaudio.attacks.containers.AttackSpec` is run by a
:class:`~jaxaudio.attacks.loop.Loop` program (:func:`~jaxaudio.attacks.loop.plain_loop` or,
with ``slots``, :func:`~jaxaudio.attacks.loop.queue_loop`), and :func:`drive` runs any such
program either as one :func:`jax.lax.while_loop` in one jitted call (``"device"``) or as a
Python loop over one jitted iteration (``"host"``). Both run the same ``body``/``active``.
"""

from __future__ import annotations

import functools
from typing import Callable, NamedTuple, Optional

import jax
import jax.numpy as jnp

from jaxaudio.attacks import validation
from jaxaudio.attacks.compile_options import jit_gradient
from jaxaudio.attacks.containers import AttackConfig, AttackSpec, Goal, LogitsFn, SweepResult
from jaxaudio.attacks.loop import Loop, plain_loop, queue_loop

__all__ = ["LOOP_MODES", "default_loop", "check_loop", "run_on_device", "HostLoop", "drive",
           "run_with_progress", "attack_queue", "compile_attack", "clear_cache"]

#: How the iterations are driven: ``"device"`` = one :func:`jax.lax.while_loop` inside one
#: jitted call; ``"host"`` = a Python loop calling one jitted, vmapped iteration per step.
LOOP_MODES = ("device", "host")


def default_loop() -> str:
    """``"host"`` on the CPU backend, ``"device"`` elsewhere.

    Why: XLA:CPU runs the body of a ``while`` loop about 3x slower than the same computation
    compiled as its own executable (measured on the instrument CNN: value_and_grad 50-70 ms per
    batch of 8 three-second clips alone, 230-270 ms per iteration inside ``fori_loop``, with or
    without unrolling), while a host loop costs one dispatch and one boolean read-back per
    iteration (well under a millisecond). On GPU/TPU the on-device loop avoids those round trips.
    Both modes run the same ``body``/``active``, so they give the same results.
    """
    return "host" if jax.default_backend() == "cpu" else "device"


def check_loop(loop: Optional[str]) -> str:
    """``loop`` resolved (``None`` = :func:`default_loop`), or ``ValueError``."""
    mode = default_loop() if loop is None else loop
    if mode not in LOOP_MODES:
        raise ValueError(f"loop must be one of {LOOP_MODES} or None, got {loop!r}")
    return mode


def run_on_device(loop: Loop):
    """``loop.finish`` of the carry after a :func:`jax.lax.while_loop` over ``loop.body``."""
    return loop.finish(jax.lax.while_loop(loop.active, loop.body, loop.init()))


class HostLoop(NamedTuple):
    """A loop driven from the host: jitted ``init(*args)``, ``body(carry, *args) -> (carry,
    status)`` (the carry is donated; ``status`` int32 ``[any active, occupied slots]``) and
    ``finish(carry, *args)``; calling it runs them all.

    With ``shrink`` (the refilled queue), the batch is halved whenever at most half of its
    slots are still occupied (``shrink(carry, size, *args)``, compiled once per size): on the
    CPU a step costs in proportion to its slots, and the slowest examples left at the end of a
    queue would otherwise be stepped alongside empty slots. Results do not change.

    The pieces can also be stepped by hand (e.g. to look at every iterate). ``on_step``, if
    given, is called after every iteration (a progress bar's ``update``).
    """

    init: Callable
    body: Callable
    finish: Callable
    shrink: Optional[Callable] = None

    def __call__(self, *args, on_step: Optional[Callable[[], object]] = None):
        carry = self.init(*args)
        size = jax.tree.leaves(carry)[0].shape[0] if self.shrink is not None else 0
        active = True  # every example starts running (step 0 < max_iterations >= 1)
        while active:
            carry, status = self.body(carry, *args)
            any_active, occupied = (int(v) for v in status)
            active = bool(any_active)
            if on_step is not None:
                on_step()
            narrower = size
            while self.shrink is not None and active and occupied <= narrower // 2:
                narrower //= 2
            if narrower < size:
                size = narrower
                carry = self.shrink(carry, size, *args)
        return self.finish(carry, *args)


def drive(build: Callable[..., Loop], mode: str, *, shrink: bool = False) -> Callable:
    """Compile ``run(*args) = finish(body^k(init()))`` for ``build(*args) -> Loop``.

    ``"device"``: one jitted call. ``"host"``: a :class:`HostLoop` (one jitted iteration per
    step, its status read back once per iteration); with ``shrink`` (a program with
    ``occupancy``/``shrink``, the refilled queue) the host loop narrows the batch at the end.
    """
    if mode == "device":
        return jit_gradient(lambda *args: run_on_device(build(*args)))

    def body(carry, *args):
        loop = build(*args)
        carry = loop.body(carry)
        occupied = loop.occupancy(carry) if shrink else jnp.zeros((), jnp.int32)
        return carry, jnp.stack([loop.active(carry).astype(jnp.int32), occupied])

    def narrow(carry, size, *args):
        return build(*args).shrink(carry, size)

    # The iteration differentiates through the model: CPU-tuned options (compile_options).
    return HostLoop(init=jax.jit(lambda *args: build(*args).init()),
                    body=jit_gradient(body, donate_argnums=0),
                    finish=jax.jit(lambda carry, *args: build(*args).finish(carry)),
                    shrink=jax.jit(narrow, static_argnums=1) if shrink else None)


def run_with_progress(fn: Callable, args: tuple, progress: Optional[str],
                      total: Optional[int] = None):
    """``fn(*args)``; with a ``progress`` description, under a tqdm bar of loop steps (advanced
    per step by a :class:`HostLoop`; a device loop completes it when its one call returns)."""
    if progress is None:
        return fn(*args)
    from tqdm.auto import tqdm

    with tqdm(desc=str(progress), total=total, unit="step", leave=False) as bar:
        return fn(*args, on_step=bar.update) if isinstance(fn, HostLoop) else fn(*args)


def attack_queue(spec: AttackSpec, logits_fn: LogitsFn, x, goal: Goal, keys, *, slots: int,
                 max_iterations, config: AttackConfig):
    """Run :func:`~jaxaudio.attacks.loop.queue_loop` on device (traceable; not jitted here).

    Returns ``(AttackResult, slot_steps)``: per-example results ``(N, ...)`` equal to those of
    every example run alone, and the example-steps computed (``slots`` × loop iterations).
    """
    return run_on_device(queue_loop(spec, logits_fn, x, goal, keys, slots=slots,
                                    max_iterations=max_iterations, config=config))


def compile_attack(logits_fn: LogitsFn, config: AttackConfig, factory: Callable[..., AttackSpec],
                   options: tuple = (), sweep: bool = False, slots: Optional[int] = None,
                   loop: Optional[str] = None) -> Callable:
    """The compiled batched core ``fn(x, labels, targets, keys, hyper, max_iterations)``.

    ``factory(**dict(options), **hyper)`` builds the attack inside the compiled function:
    ``options`` are its static keyword arguments as sorted ``(name, value)`` pairs, ``hyper``
    a dict of its traced ones (float32 arrays). Built once per ``(logits_fn, config, factory,
    options, sweep, slots, loop)`` and cached (up to 128 entries, holding references to
    ``logits_fn``; see :func:`clear_cache`), so pass the *same* ``logits_fn`` object on repeated
    calls. An unhashable ``logits_fn`` works but is never cached.

    Args of the returned function: ``x (batch, ...)`` float32, ``labels``/``targets`` int32
    ``(batch,)`` (target ``-1`` = untargeted), ``keys`` ``(batch,)`` typed PRNG keys, ``hyper``
    and int32 ``max_iterations`` (traced). It returns an ``AttackResult``; with ``slots=B``
    the batch runs as a queue through ``B`` refilled slots and it returns ``(AttackResult,
    slot_steps)`` (example-steps computed; the host loop halves the batch at the end whenever
    half of its slots are empty); with ``sweep=True`` every ``hyper`` leaf carries a leading
    axis that is vmapped over and a :class:`SweepResult` is returned (always on device;
    ``eps`` required).

    ``loop``: ``"device"``, ``"host"`` or ``None`` = :func:`default_loop`.
    """
    if slots is not None and sweep:
        raise ValueError("slots (queue with refill) cannot be combined with an eps sweep")
    loop = check_loop(loop)
    if sweep:
        loop = "device"
    return validation.cached_call(_compile_attack, logits_fn, config, factory, tuple(options),
                                  bool(sweep), None if slots is None else int(slots), loop)


@functools.lru_cache(maxsize=128)
def _compile_attack(logits_fn, config, factory, options, sweep, slots, loop):
    def build(x, labels, targets, keys, hyper, max_iterations):
        spec = factory(**dict(options), **hyper)
        goal = Goal(labels, targets)
        if slots is None:
            return plain_loop(spec, logits_fn, x, goal, keys, max_iterations=max_iterations,
                              config=config)
        return queue_loop(spec, logits_fn, x, goal, keys, slots=slots,
                          max_iterations=max_iterations, config=config)

    if not sweep:
        return drive(build, loop, shrink=slots is not None)

    def run_sweep(x, labels, targets, keys, hyper, max_iterations):
        def one(h):
            return run_on_device(build(x, labels, targets, keys, h, max_iterations))

        res = jax.vmap(one)(hyper)
        return SweepResult(hyper["eps"], res.success, res.snr_db, res.adversarial_prediction,
                           res.original_prediction[0])

    return jit_gradient(run_sweep)


def clear_cache() -> None:
    """Forget compiled attacks (and the model references they hold)."""
    _compile_attack.cache_clear()
    validation.clear_cache()


def as_hyper(**values) -> dict:
    """Traced hyperparameters: every value as a float32 array."""
    return {k: jnp.asarray(v, jnp.float32) for k, v in values.items()}
