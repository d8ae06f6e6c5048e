"""The per-example attack step and the two loop programs built from it.

One example's iteration (:func:`step`):

1. evaluate objective, gradient and logits at the current iterate ``x_adv = clip(x + delta)``
   (optionally quantised to the 16-bit grid, straight-through);
2. if the iterate is adversarial, record it (first success iteration, best = lowest perturbation
   energy in the SNR region) and — with ``early_stop`` — freeze the example: its ``delta`` and
   optimiser state are kept by a mask (``jnp.where``);
3. otherwise apply the optimiser update and the projection.

An example is *running* (:func:`running`, the one stopping predicate) while ``step <
max_iterations`` and, with ``early_stop``, until its first adversarial iterate. After its loop
:func:`finalize` checks the last iterate once more, chooses the returned adversarial (best
successful iterate, else the last iterate) and re-evaluates ``logits_fn`` on exactly that array.

A batch runs as one of two :class:`Loop` programs, both driven by
:func:`jaxaudio.attacks.driver.drive` (on device or from the host):

* :func:`plain_loop`: every example of the batch in parallel; the batch loop runs while any
  example is running and the others are masked (what ``vmap`` of a ``while_loop`` does), so a
  batch gives exactly the adversarials of each example run alone;
* :func:`queue_loop`: ``slots`` examples in flight, a slot whose example has finished writes it
  out and is refilled with the next waiting one (same per-example trajectories).
"""

from __future__ import annotations

from typing import Any, Callable, NamedTuple, Optional

import jax
import jax.numpy as jnp
import optax

from jaxaudio.attacks.containers import (
    AttackConfig,
    AttackResult,
    AttackSpec,
    Goal,
    LogitsFn,
    LoopState,
    QueueState,
)
from jaxaudio.attacks.pieces import materialize, region_energy, snr_db_example
from jaxaudio.metrics import useful_steps  # noqa: F401  (re-exported: loop names)

__all__ = ["Loop", "running", "init_state", "step", "finalize", "plain_loop", "queue_loop",
           "queue_init", "queue_body", "queue_active", "queue_occupancy", "queue_shrink",
           "queue_finish", "useful_steps"]


class Loop(NamedTuple):
    """A batch loop program: ``finish(body(...body(init())))`` while ``active(carry)``.

    ``occupancy(carry) -> int32`` and ``shrink(carry, size) -> carry`` (static ``size``) are
    given by programs whose batch can be narrowed once fewer examples remain (the refilled
    queue); a host-driven loop then steps fewer slots (see :func:`queue_shrink`).
    """

    init: Callable[[], Any]
    body: Callable[[Any], Any]
    active: Callable[[Any], Any]
    finish: Callable[[Any], Any]
    occupancy: Optional[Callable[[Any], Any]] = None
    shrink: Optional[Callable[[Any, int], Any]] = None


def _one_example_logits(logits_fn: LogitsFn):
    return lambda x: logits_fn(x[None])[0]


def _where(mask, new, old):
    return jax.tree.map(lambda a, b: jnp.where(mask, a, b), new, old)


def running(state: LoopState, max_iterations, config: AttackConfig):
    """Whether an example still iterates: ``step < max_iterations`` and, with ``early_stop``,
    no adversarial iterate seen yet (works on one example or a batch of them)."""
    return (state.step < max_iterations) & ~(state.found & config.early_stop)


def init_state(spec: AttackSpec, x, key, *, max_iterations) -> LoopState:
    """Initial carry: start perturbation (projected), optimiser state, no success yet."""
    delta = spec.project(spec.init_delta(x, key), x)
    return LoopState(
        step=jnp.zeros((), jnp.int32),
        delta=delta,
        opt_state=spec.optimizer.init(delta),
        found=jnp.zeros((), bool),
        iterations=jnp.asarray(max_iterations, jnp.int32),
        best_delta=delta,
        best_energy=jnp.asarray(jnp.inf, jnp.float32),
    )


def _record(state: LoopState, x, x_adv, succeeded, margin: int) -> LoopState:
    """Note a (possibly) successful iterate: first-success step and the best one so far."""
    energy = region_energy(x_adv - x, margin)
    better = succeeded & (energy < state.best_energy)
    return state._replace(
        found=state.found | succeeded,
        iterations=jnp.where(succeeded & ~state.found, state.step, state.iterations),
        best_delta=jnp.where(better, state.delta, state.best_delta),
        best_energy=jnp.where(better, energy, state.best_energy),
    )


def step(spec: AttackSpec, logits_fn: LogitsFn, x, goal: Goal, state: LoopState,
         config: AttackConfig) -> LoopState:
    """One iteration for one example: evaluate, record success, update (unless frozen)."""
    f = _one_example_logits(logits_fn)
    decision = config.decision

    def objective(delta):
        x_adv = materialize(delta, x, config, straight_through=True)
        logits = f(x_adv)
        return spec.objective(x, x_adv, decision.loss(logits, goal)), (logits, x_adv)

    (_, (logits, x_adv)), grad = jax.value_and_grad(objective, has_aux=True)(state.delta)
    state = _record(state, x, x_adv, decision.success(logits, goal), config.snr_margin)
    updates, opt_state = spec.optimizer.update(grad, state.opt_state, state.delta)
    delta = spec.project(optax.apply_updates(state.delta, updates), x)
    # The early-stopping mask: an example that has succeeded keeps its delta and optimiser state.
    frozen = state.found & config.early_stop
    delta, opt_state = _where(frozen, (state.delta, state.opt_state), (delta, opt_state))
    return state._replace(step=state.step + 1, delta=delta, opt_state=opt_state)


def finalize(spec: AttackSpec, logits_fn: LogitsFn, x, goal: Goal, state: LoopState,
             config: AttackConfig) -> AttackResult:
    """Check the last iterate, choose the returned adversarial and re-evaluate the model on it.

    Returned: the successful iterate with the lowest perturbation energy (highest SNR) if any —
    with ``early_stop`` that is the first success, where the example was frozen — else the
    last iterate. Fields are per example (no batch axis).
    """
    del spec  # the result depends on the state only
    f = _one_example_logits(logits_fn)
    decision = config.decision
    last = materialize(state.delta, x, config)
    state = _record(state, x, last, decision.success(f(last), goal), config.snr_margin)
    delta = jnp.where(state.found, state.best_delta, state.delta)
    adversarial = materialize(delta, x, config)
    logits = f(adversarial)
    return AttackResult(
        adversarial=adversarial,
        perturbation=adversarial - x,
        success=decision.success(logits, goal),
        iterations=state.iterations,
        snr_db=snr_db_example(x, adversarial, margin=config.snr_margin),
        logits=logits,
        probabilities=decision.probabilities(logits),
        original_prediction=decision.predict(f(x)),
        adversarial_prediction=decision.predict(logits),
        target=jnp.asarray(goal.target, jnp.int32),
    )


def _init_batch(spec, x, keys, max_iterations):
    return jax.vmap(lambda xi, ki: init_state(spec, xi, ki, max_iterations=max_iterations))(
        x, keys)


def _step_batch(spec, logits_fn, x, goal, state, config):
    return jax.vmap(lambda xi, gi, si: step(spec, logits_fn, xi, gi, si, config))(x, goal, state)


def _finalize_batch(spec, logits_fn, x, goal, state, config):
    return jax.vmap(lambda xi, gi, si: finalize(spec, logits_fn, xi, gi, si, config))(
        x, goal, state)


def plain_loop(spec: AttackSpec, logits_fn: LogitsFn, x, goal: Goal, keys, *, max_iterations,
               config: AttackConfig) -> Loop:
    """All examples in parallel; finished ones are masked until the slowest is done.

    ``finish`` returns the batched :class:`AttackResult`.
    """
    def body(state):
        # What vmap of a while_loop does with a batched predicate: step, then select.
        new = _step_batch(spec, logits_fn, x, goal, state, config)
        keep = running(state, max_iterations, config)
        return jax.vmap(_where)(keep, new, state)

    return Loop(
        init=lambda: _init_batch(spec, x, keys, max_iterations),
        body=body,
        active=lambda state: jnp.any(running(state, max_iterations, config)),
        finish=lambda state: _finalize_batch(spec, logits_fn, x, goal, state, config),
    )


# --------------------------------------------------------------------------------------------
# The refilled queue
# --------------------------------------------------------------------------------------------


def _batch_where(mask, new, old):
    """``where(mask[i], new[i], old[i])`` leaf by leaf, ``mask`` of shape ``(batch,)``."""
    def one(a, b):
        return jnp.where(mask.reshape(mask.shape + (1,) * (a.ndim - 1)), a, b)

    return jax.tree.map(one, new, old)


def _gather(tree, index):
    return jax.tree.map(lambda a: a[index], tree)


def queue_init(spec: AttackSpec, x, goal: Goal, keys, *, slots: int,
               max_iterations) -> QueueState:
    """The first ``slots`` examples in the slots, the others waiting."""
    n = x.shape[0]
    slots = max(1, min(int(slots), n))
    first = jnp.arange(slots, dtype=jnp.int32)
    state0 = _init_batch(spec, x[:slots], keys[:slots], max_iterations)
    no_opt = state0._replace(opt_state=None)
    done0 = jax.tree.map(lambda a: jnp.zeros((n,) + a.shape[1:], a.dtype), no_opt)
    return QueueState(slot_index=first, next_index=jnp.asarray(slots, jnp.int32),
                      slot_steps=jnp.zeros((), jnp.int32), x=x[:slots],
                      goal=_gather(goal, first), state=state0, done=done0)


def queue_active(carry: QueueState):
    """Whether any slot still holds an unfinished example."""
    return jnp.any(carry.slot_index < carry.done.step.shape[0])


def queue_occupancy(carry: QueueState):
    """int32: slots holding an unfinished example. While examples wait, every slot is full
    (finished slots are refilled at once), so fewer means the queue is empty."""
    return jnp.sum((carry.slot_index < carry.done.step.shape[0]).astype(jnp.int32))


def queue_shrink(carry: QueueState, size: int) -> QueueState:
    """The same queue through ``size`` slots: the occupied slots first, in order.

    Only valid once no example waits and at most ``size`` slots are occupied
    (:func:`queue_occupancy`). Why: the examples left at the end of a queue are the slowest
    ones, and stepping the emptied slots alongside them is wasted work; on the CPU a step's
    cost is proportional to the number of slots, so the host driver halves the batch whenever
    half of it is empty. Each example keeps its own state, so results do not change.
    """
    empty = carry.slot_index >= carry.done.step.shape[0]
    keep = jnp.argsort(empty, stable=True)[:size]
    return carry._replace(slot_index=carry.slot_index[keep], x=carry.x[keep],
                          goal=_gather(carry.goal, keep), state=_gather(carry.state, keep))


def _refill(spec, x, goal, keys, max_iterations, c: QueueState, just_done) -> QueueState:
    # Slot j that just finished takes waiting example next_index + (rank of j among them).
    n = x.shape[0]
    rank = jnp.cumsum(just_done.astype(jnp.int32)) - 1
    wanted = c.next_index + rank
    load = just_done & (wanted < n)
    index = jnp.minimum(wanted, n - 1)
    new_x = x[index]
    new_state = _init_batch(spec, new_x, keys[index], max_iterations)
    return c._replace(
        slot_index=jnp.where(load, wanted, jnp.where(just_done, n, c.slot_index)),
        next_index=c.next_index + jnp.sum(load.astype(jnp.int32)),
        x=_batch_where(load, new_x, c.x),
        goal=_batch_where(load, _gather(goal, index), c.goal),
        state=_batch_where(load, new_state, c.state),
    )


def queue_body(spec: AttackSpec, logits_fn: LogitsFn, x, goal: Goal, keys, carry: QueueState,
               *, max_iterations, config: AttackConfig) -> QueueState:
    """One iteration of the queue: step every slot, write finished examples out, refill."""
    n = x.shape[0]
    state = _step_batch(spec, logits_fn, carry.x, carry.goal, carry.state, config)
    just_done = (carry.slot_index < n) & ~running(state, max_iterations, config)
    # Finished examples are written out (index n = out of range = dropped).
    out_index = jnp.where(just_done, carry.slot_index, n)
    done = jax.tree.map(lambda buf, v: buf.at[out_index].set(v, mode="drop"), carry.done,
                        state._replace(opt_state=None))
    carry = carry._replace(state=state, done=done,
                           slot_steps=carry.slot_steps + carry.x.shape[0])

    def refill(c, just_done):
        return _refill(spec, x, goal, keys, max_iterations, c, just_done)

    # Loading new examples costs a random start per slot: only when some slot is free.
    return jax.lax.cond(jnp.any(just_done), refill, lambda c, _: c, carry, just_done)


def queue_finish(spec: AttackSpec, logits_fn: LogitsFn, x, goal: Goal, carry: QueueState,
                 config: AttackConfig):
    """:func:`finalize` every example from its written-out state -> ``(result, slot_steps)``."""
    return _finalize_batch(spec, logits_fn, x, goal, carry.done, config), carry.slot_steps


def queue_loop(spec: AttackSpec, logits_fn: LogitsFn, x, goal: Goal, keys, *, slots: int,
               max_iterations, config: AttackConfig) -> Loop:
    """A batch of ``N`` examples through ``slots`` parallel slots, refilled as examples finish.

    With early stopping a plain batch keeps iterating until its slowest example finishes. Here
    the batch is a queue: each iteration steps all slots at once (the same vmapped
    :func:`step`); every slot whose example has finished writes that example's final
    :class:`LoopState` out and is loaded with the next waiting example (:func:`init_state`).
    Each example still runs its own trajectory from its own start, so the results equal those
    of every example run alone. ``finish`` returns ``(AttackResult, slot_steps)``: the work
    done in example-steps (``slots`` times the loop iterations, less where a host-driven loop
    narrowed the batch at the end with :func:`queue_shrink`).
    """
    return Loop(
        init=lambda: queue_init(spec, x, goal, keys, slots=slots, max_iterations=max_iterations),
        body=lambda c: queue_body(spec, logits_fn, x, goal, keys, c,
                                  max_iterations=max_iterations, config=config),
        active=queue_active,
        finish=lambda c: queue_finish(spec, logits_fn, x, goal, c, config),
        occupancy=queue_occupancy,
        shrink=queue_shrink,
    )
