"""The hub attack: a small waveform perturbation that makes a song a hub of the recommender.

Per song ``x`` (index ``song`` in the collection) and target hub ``h``, signed-gradient Adam
(:func:`jaxaudio.attacks.pieces.signed_adam`) from ``delta = 0``, ``delta`` clipped to
``±clip_eps``, minimises::

    alpha · KL(G(x + delta) || G(h)) + ||delta||²            (objective "kl")
    alpha · KL(G(x + delta) || G(h)) + multiscale spectral   (objective "multiscale")
    alpha · -log MP_similarity(x + delta, h) + ||delta||²    (objective "mp", Mutual-Proximity
                                                              aware; Gaussian MP)

``direction="forward"`` (the default) is the published order, the one the perturbed song's
distance row uses. With ``direction="reverse"`` the KL term is ``KL(G(h) || G(x + delta))``
instead, an option: measured on the embedded collection (docs/studies.md §4) it converts a
song more and sooner, because minimising the forward order shrinks the song's Gaussian
*inside* the hub's (KL is zero-forcing) while a hub is a song with a *broad* Gaussian that
many songs' Gaussians fit into; the reverse order moves the song's Gaussian to cover the
hub's.

These are the C&W pieces of :mod:`jaxaudio.attacks.specs` (``carlini_wagner`` /
``multiscale_carlini_wagner``: objective, optimiser, projection, zero start) with the
recommender's term in place of the classification loss. Every ``check_every`` iterations the
perturbed song's distances to all songs are recomputed (through Mutual Proximity if the
attacked recommender uses it) and it succeeds when it became a hub: first the published
approximate filter (how many songs' ``k``-th-neighbour distance it beats), then the exact
k-occurrence in the matrix with its row and column replaced. A successful song is frozen
(per-song early stopping by a mask), so a batch gives what each song gives alone.

Why a wrapper and not :func:`jaxaudio.attacks.loop.plain_loop`: that loop takes its
classification term and success test as a :class:`~jaxaudio.attacks.containers.Decision`
value (``AttackConfig.decision``) on one example's logits, ``(logits, Goal) -> ...``, and
checks success after every step. The hub decision needs the whole collection (every song's ``k``-th neighbour
distance, the exact k-occurrence) and the published schedule checks it every 10 steps only, so
this module writes its own :class:`~jaxaudio.attacks.loop.Loop` program (its carry is the
library's :class:`~jaxaudio.attacks.containers.LoopState`, started by
:func:`~jaxaudio.attacks.loop.init_state`) and runs it with the one driver
(:func:`jaxaudio.attacks.driver.drive`, on device or from the host).
"""

from __future__ import annotations

import functools
from typing import NamedTuple, Optional

import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax.scipy.special import log_ndtr

from jaxaudio.attacks import driver, pieces, specs
from jaxaudio.attacks import loop as attack_loop
from jaxaudio.attacks.containers import AttackConfig
from jaxaudio.recommender import features, hubness, scoring

__all__ = ["OBJECTIVES", "Recommender", "HubAttackResult", "make_recommender", "hub_attack",
           "choose_targets", "TARGET_STRATEGIES", "DIRECTIONS"]

OBJECTIVES = ("kl", "multiscale", "mp")
DIRECTIONS = ("forward", "reverse")
TARGET_STRATEGIES = ("closest", "biggest", "random")
# x_adv clipped to [-1, 1]; SNR over the whole song (the decision is unused: see _compiled)
_CONFIG = AttackConfig(decision=pieces.make_decision(), snr_margin=0)


class Recommender(NamedTuple):
    """The attacked system (arrays only; the options are static arguments of the attack).

    Attributes:
      gaussians: :class:`~jaxaudio.recommender.features.Gaussian` with leading axis ``n``.
      distances: ``(n, n)`` KL-based distances (:func:`hubness.distance_matrix`).
      metric: ``(n, n)`` what the recommender ranks by: ``distances``, or their Mutual
        Proximity rescaling.
      kth: ``(n,)`` each song's ``k``-th-neighbour value in ``metric`` (the approximate filter).
    """

    gaussians: features.Gaussian
    distances: jnp.ndarray
    metric: jnp.ndarray
    kth: jnp.ndarray


def make_recommender(gaussians: features.Gaussian, *, mode: str = "published",
                     mp: Optional[str] = None, k: int = 5) -> Recommender:
    """The :class:`Recommender` of a collection's Gaussians (``mp``: None, ``"gaussian"`` or
    ``"empirical"``)."""
    d = hubness.distance_matrix(features.kl_matrix(gaussians), mode=mode)
    metric = d if mp is None else hubness.mutual_proximity(d, method=mp)
    return Recommender(gaussians, jnp.asarray(d, jnp.float32), jnp.asarray(metric, jnp.float32),
                       jnp.asarray(hubness.kth_neighbour_distance(metric, k), jnp.float32))


class HubAttackResult(NamedTuple):
    """Per attacked song (leading axis ``batch``).

    Attributes:
      adversarial, perturbation: ``(batch, num_samples)`` float32.
      success: bool, the returned adversarial is a hub (exact k-occurrence ``>= hub_size``).
      iterations: int32, optimiser steps before the check that found it (``max_iterations``
        when none did).
      snr_db: float32, ``20 log10(||x|| / ||delta||)`` over the whole song.
      k_occurrence: int32, exact k-occurrence of the returned adversarial.
      approx_k_occurrence: int32, the approximate filter's count for it.
    """

    adversarial: jnp.ndarray
    perturbation: jnp.ndarray
    success: jnp.ndarray
    iterations: jnp.ndarray
    snr_db: jnp.ndarray
    k_occurrence: jnp.ndarray
    approx_k_occurrence: jnp.ndarray


def _term(rec: Recommender, x_adv, song, target, *, mode, objective, direction):
    """The recommender term of the objective (what replaces the classification loss)."""
    g = features.gaussian_of_wave(x_adv)
    hub = jax.tree.map(lambda a: a[target], rec.gaussians)
    if objective != "mp":
        if direction == "forward":
            return features.kl_divergence(g, hub)
        return features.kl_divergence(hub, g)
    row = scoring.replaced_row(rec, g, song, mode=mode)
    d = hubness.replace_song(rec.distances, song, row)
    mu, sd = hubness.offdiag_stats(d)
    value = row[target]
    return -(log_ndtr(-(value - mu[song]) / sd[song])
             + log_ndtr(-(value - mu[target]) / sd[target]))


def _spec(objective, hyper):
    if objective == "multiscale":
        return specs.multiscale_carlini_wagner(**hyper)
    return specs.carlini_wagner(**hyper)


@functools.lru_cache(maxsize=32)
def _compiled(mode, mp, k, hub_size, objective, direction, check_every, max_iterations, loop):
    def build(x, songs, targets, keys, rec, hyper):
        spec = _spec(objective, hyper)
        counts = functools.partial(scoring.song_counts, rec, mode=mode, mp=mp, k=k)

        def one_step(state, xi, song, target):
            def total(delta):
                x_adv = pieces.materialize(delta, xi, _CONFIG, straight_through=True)
                term = _term(rec, x_adv, song, target, mode=mode, objective=objective,
                             direction=direction)
                return spec.objective(xi, x_adv, term)

            grad = jax.grad(total)(state.delta)
            updates, opt_state = spec.optimizer.update(grad, state.opt_state, state.delta)
            delta = spec.project(optax.apply_updates(state.delta, updates), xi)
            return state._replace(step=state.step + 1, delta=delta, opt_state=opt_state)

        def check(state, xi, song):
            approx, exact = counts(pieces.materialize(state.delta, xi, _CONFIG), song)
            hit = (approx >= hub_size) & (exact >= hub_size) & ~state.found
            return state._replace(found=state.found | hit,
                                  iterations=jnp.where(hit, state.step, state.iterations),
                                  best_delta=jnp.where(hit, state.delta, state.best_delta))

        def running(state):
            return attack_loop.running(state, max_iterations, _CONFIG)

        def body(carry):
            t, state = carry
            new = jax.vmap(one_step)(state, x, songs, targets)
            state = jax.tree.map(
                lambda a, b: jnp.where(running(state).reshape((-1,) + (1,) * (a.ndim - 1)),
                                       a, b), new, state)
            t = t + 1
            due = (t % check_every == 0) | (t == max_iterations)
            state = jax.lax.cond(due, lambda s: jax.vmap(check)(s, x, songs), lambda s: s,
                                 state)
            return t, state

        def init():
            state = jax.vmap(lambda xi, ki: attack_loop.init_state(
                spec, xi, ki, max_iterations=max_iterations))(x, keys)
            return jnp.zeros((), jnp.int32), state

        def finish(carry):
            _, state = carry
            delta = jnp.where(state.found[:, None], state.best_delta, state.delta)
            adv = jax.vmap(lambda d, xi: pieces.materialize(d, xi, _CONFIG))(delta, x)
            approx, exact = jax.vmap(counts)(adv, songs)
            return HubAttackResult(
                adversarial=adv, perturbation=adv - x,
                success=(approx >= hub_size) & (exact >= hub_size),
                iterations=state.iterations,
                snr_db=jax.vmap(lambda a, b: pieces.snr_db_example(a, b, margin=0))(x, adv),
                k_occurrence=exact, approx_k_occurrence=approx)

        return attack_loop.Loop(init=init, body=body,
                                active=lambda carry: jnp.any(running(carry[1])), finish=finish)

    return driver.drive(build, loop)


def hub_attack(waves, songs, targets, rec: Recommender, *, mode: str = "published",
               mp: Optional[str] = None, k: int = 5, hub_size: int = 25,
               objective: str = "kl", direction: str = "forward", alpha: float = 25.0,
               learning_rate: float = 1e-3,
               clip_eps: float = 0.1, max_iterations: int = 500, check_every: int = 10,
               loop: Optional[str] = None, progress=None) -> HubAttackResult:
    """Turn songs into hubs of ``rec`` (see the module docstring).

    Parameters
    ----------
    waves : array [shape=(batch, num_samples)]
        The attacked songs (exactly the waveforms ``rec`` was built from), in [-1, 1].
    songs, targets : int arrays [shape=(batch,)]
        Each song's index in the collection and its target hub's index.
    rec : Recommender
        Built with the same ``mode``, ``mp`` and ``k`` (:func:`make_recommender`).
    mode, mp, k, hub_size
        The recommender: distance mode, Mutual Proximity (None / "gaussian" / "empirical"),
        neighbours, hub threshold.
    objective : {"kl", "multiscale", "mp"}
    direction : {"forward", "reverse"}
        Order of the KL term (objectives "kl" and "multiscale"): ``"forward"`` (default, as
        published) ``KL(G(x + delta) || G(h))``, ``"reverse"`` ``KL(G(h) || G(x + delta))``.
    alpha, learning_rate, clip_eps : float > 0
    max_iterations, check_every : int >= 1
    loop : {"device", "host", None}
        See :func:`jaxaudio.attacks.driver.default_loop`.
    progress : str, optional
        Description of a progress bar over iterations (host loop only).

    Returns
    -------
    HubAttackResult (numpy arrays)
    """
    if objective not in OBJECTIVES:
        raise ValueError(f"objective must be one of {OBJECTIVES}, got {objective!r}")
    if direction not in DIRECTIONS:
        raise ValueError(f"direction must be one of {DIRECTIONS}, got {direction!r}")
    for name, v in (("alpha", alpha), ("learning_rate", learning_rate), ("clip_eps", clip_eps)):
        if not v > 0:
            raise ValueError(f"{name} must be > 0, got {v!r}")
    for name, v in (("max_iterations", max_iterations), ("check_every", check_every)):
        if int(v) != v or v < 1:
            raise ValueError(f"{name} must be an integer >= 1, got {v!r}")
    x = jnp.asarray(waves, jnp.float32)
    if x.ndim != 2 or not bool(jnp.all(jnp.isfinite(x))):
        raise ValueError(f"waves must be finite with shape (batch, num_samples), got {x.shape}")
    songs = jnp.asarray(songs, jnp.int32)
    targets = jnp.asarray(targets, jnp.int32)
    mode_loop = driver.default_loop() if loop is None else loop
    fn = _compiled(mode, mp, int(k), int(hub_size), objective, direction, int(check_every),
                   int(max_iterations), mode_loop)
    hyper = driver.as_hyper(alpha=alpha, learning_rate=learning_rate, clip_eps=clip_eps)
    keys = jax.random.split(jax.random.key(0), x.shape[0])
    args = (x, songs, targets, keys, rec, hyper)
    if mode_loop == "host" and progress:
        from tqdm.auto import tqdm

        with tqdm(total=int(max_iterations), desc=progress, leave=False) as bar:
            out = fn(*args, on_step=bar.update)
    else:
        out = fn(*args)
    return HubAttackResult(*(np.asarray(a) for a in out))


def choose_targets(songs, metric, k_occ, hub_list, strategy: str, seed: int = 0) -> np.ndarray:
    """A target hub per attacked song: ``"closest"`` (smallest ``metric`` value), ``"biggest"``
    (largest k-occurrence) or ``"random"`` (uniform over the hubs, seeded). With no hub in the
    collection, the song with the largest k-occurrence is the only candidate."""
    if strategy not in TARGET_STRATEGIES:
        raise ValueError(f"target strategy must be one of {TARGET_STRATEGIES}, got {strategy!r}")
    hub_list = np.asarray(hub_list)
    if hub_list.size == 0:
        hub_list = np.array([int(np.argmax(k_occ))])
    songs = np.asarray(songs)
    if strategy == "closest":
        return hub_list[np.argmin(np.asarray(metric)[songs][:, hub_list], axis=1)]
    if strategy == "biggest":
        return np.full(songs.shape, hub_list[np.argmax(np.asarray(k_occ)[hub_list])])
    return np.random.default_rng([int(seed), 77]).choice(hub_list, size=songs.shape)
