"""Train (and evaluate) many independent classifiers at once with ``jax.vmap``.

The label-noise study trains the same network dozens of times on the *same clips* with
different label sets (corruption rates) and losses. :func:`train_many` trains ``K`` such models
in one compiled step: parameters, batch statistics and Adam states are stacked along a leading
model axis, the front-end runs once per batch (the waveforms are shared) and the network is
``jax.vmap``-ed over the stacked state. With ``vmap=False`` the same per-model step is run for
one model after another (the baseline that ``benchmarks/label_noise_vmap.py`` measures).

Protocol: every model follows :func:`jaxaudio.train.train` exactly (band statistics measured on
the source, excerpt choice and batch order of epoch ``e`` from ``default_rng([seed, e])``,
dropout keys ``fold_in(fold_in(key(seed), e), step)``, Adam), so a model trained here equals the
same model trained alone by ``train`` up to floating-point reassociation (tested).
"""

from __future__ import annotations

import dataclasses
import functools
import time
from typing import Callable, Optional, Sequence

import jax
import jax.numpy as jnp
import numpy as np
import optax

from jaxaudio import frontend as fe
from jaxaudio import losses as losses_lib
from jaxaudio import metrics
from jaxaudio.data.windowing import window_dataset
from jaxaudio.models.classifier import Classifier, build_module
from jaxaudio.train import ClipExcerpts, TrainConfig, TrainState

#: Ways to train K models: see :func:`train_many`.
TRAIN_MODES = ("vmap", "shared", "sequential")

__all__ = ["TRAIN_MODES", "ManyResult", "train_many", "evaluate_many", "stack_trees", "unstack_tree"]

#: A loss given by name and keyword arguments, e.g. ``("gce", (("q", 0.7),))``.
LossSpec = tuple


def stack_trees(trees: Sequence) -> object:
    """Stack pytrees of identical structure along a new leading axis."""
    return jax.tree_util.tree_map(lambda *xs: jnp.stack(xs), *trees)


def unstack_tree(tree, k: int) -> object:
    """Element ``k`` of a pytree stacked by :func:`stack_trees`."""
    return jax.tree_util.tree_map(lambda x: x[k], tree)


@dataclasses.dataclass
class ManyResult:
    """Outcome of :func:`train_many`.

    Attributes:
      classifiers: the ``K`` trained classifiers (same front-end, normalisation and module).
      variables: their variables stacked along a leading axis of size ``K``.
      losses: ``(K, epochs)`` mean training loss per model and epoch.
      seconds: wall-clock training time (s), statistics included.
      steps: optimisation steps per model.
    """

    classifiers: list
    variables: object
    losses: np.ndarray
    seconds: float
    steps: int


def _loss_keys(specs: Sequence[LossSpec]) -> tuple[tuple, np.ndarray]:
    """Distinct ``(name, kwargs-pairs)`` losses and, per model, the index of its loss."""
    distinct: list[tuple] = []
    index = []
    for spec in specs:
        if isinstance(spec, str):
            spec = (spec, ())
        name = spec[0]
        kwargs = tuple(sorted(dict(spec[1]).items())) if len(spec) > 1 else ()
        losses_lib.get_loss(name, **dict(kwargs))  # unknown names / bad values raise here
        key = (name, kwargs)
        if key not in distinct:
            distinct.append(key)
        index.append(distinct.index(key))
    return tuple(distinct), np.asarray(index, np.int32)


def _freeze(value):
    """A hashable version of nested dicts/lists (for the compiled-function caches)."""
    if isinstance(value, dict):
        return tuple(sorted((k, _freeze(v)) for k, v in value.items()))
    if isinstance(value, (list, tuple)):
        return tuple(_freeze(v) for v in value)
    return value


def _thaw_kwargs(frozen) -> dict:
    return {k: v for k, v in frozen}


@functools.lru_cache(maxsize=8)
def _adam(learning_rate: float) -> optax.GradientTransformation:
    # One object per step size: the optimiser is a static part of the train state, so a new
    # (unequal) one per call would recompile the jitted steps.
    return optax.adam(learning_rate)


def _padded_batches(x: np.ndarray, batch_size: int):
    """``(chunk, n)`` pairs of ``batch_size`` rows (the last padded by repetition): one shape."""
    for i in range(0, len(x), batch_size):
        chunk = x[i:i + batch_size]
        n = len(chunk)
        if n < batch_size:
            chunk = np.concatenate([chunk, np.repeat(chunk[-1:], batch_size - n, axis=0)])
        yield chunk, n


def _band_statistics(classifier: Classifier, source: ClipExcerpts, *, seed: int,
                     max_excerpts: int, batch_size: int):
    """:func:`jaxaudio.train.measure_band_statistics` (same excerpts, same numbers) with the
    training step's compiled feature function (standardising with mean 0 and std 1 is exact)."""
    waves, _ = source.epoch(np.random.default_rng([seed, 10_000_019]))
    waves = waves[:max_excerpts]
    feats_fn = _features(classifier.frontend)
    zero = jnp.zeros(classifier.frontend.n_mels, jnp.float32)
    one = jnp.ones(classifier.frontend.n_mels, jnp.float32)
    feats = np.concatenate([np.asarray(feats_fn(chunk, zero, one))[:n]
                            for chunk, n in _padded_batches(waves, batch_size)])
    return fe.band_statistics(feats)


@functools.lru_cache(maxsize=32)
def _features(frontend: fe.FrontendConfig):
    """Jitted standardised features ``(waves, mean, std) -> (batch, n_mels, frames)``."""
    return jax.jit(lambda w, mean, std: fe.standardize(fe.features(w, frontend), mean, std))


@functools.lru_cache(maxsize=32)
def _train_steps(frontend: fe.FrontendConfig, model_name: str, model_kwargs: tuple,
                 loss_keys: tuple):
    """Jitted ``(vmapped step, single-model step)`` on standardised features.

    Cached, so the dozens of trainings of a study compile their steps once. The features
    come from :func:`_features` (one compiled front-end shared by all modes).
    """
    module = build_module(model_name, _thaw_kwargs(model_kwargs))
    loss_fns = [losses_lib.get_loss(name, **dict(kwargs)) for name, kwargs in loss_keys]
    per_model = _model_step(module, loss_fns)

    @jax.jit
    def step_all(states, feats, batch_targets, key, loss_idx):
        return jax.vmap(per_model, in_axes=(0, None, 0, None, 0))(
            states, feats, batch_targets, key, loss_idx)

    return step_all, jax.jit(per_model)


@functools.lru_cache(maxsize=32)
def _eval_logits(model_name: str, model_kwargs: tuple):
    module = build_module(model_name, _thaw_kwargs(model_kwargs))
    return jax.jit(lambda variables, feats: module.apply(variables, feats, train=False))


def _model_step(module, loss_fns: list[Callable]):
    """One model's ``(state, feats, targets, key, loss_index) -> (state, loss)``."""

    def step(state, feats, targets, key, loss_index):
        def objective(params):
            logits, updates = module.apply(
                {"params": params, "batch_stats": state.batch_stats}, feats, train=True,
                mutable=["batch_stats"], rngs={"dropout": key},
            )
            if len(loss_fns) == 1:
                loss = loss_fns[0](logits, targets)
            else:  # under vmap every branch runs and the model's own loss is selected
                loss = jax.lax.switch(loss_index, loss_fns, logits, targets)
            return loss, updates

        (loss, updates), grads = jax.value_and_grad(objective, has_aux=True)(state.params)
        state = state.apply_gradients(grads=grads, batch_stats=updates["batch_stats"])
        return state, loss

    return step


def train_many(classifier: Classifier, waves: Sequence[np.ndarray], targets, config: TrainConfig,
               *, losses: Optional[Sequence[LossSpec]] = None, mode: str = "vmap",
               loss_set: Optional[Sequence[LossSpec]] = None, prng_impl: Optional[str] = None,
               progress: bool = True, desc: str = "training") -> ManyResult:
    """Train ``K`` copies of ``classifier`` on the same clips with per-model targets and losses.

    Parameters
    ----------
    classifier : Classifier
        Initial bundle (``task="multiclass"``); every model starts from its variables.
    waves : list of np.ndarray [shape=(n_i,)]
        The ``N`` training clips (float32 in [-1, 1], any lengths; short ones are tiled).
    targets : np.ndarray [shape=(K, N, C)]
        Per-model targets (one-hot or multi-hot), e.g. the labels corrupted at ``K`` rates.
    config : TrainConfig
        Shared hyperparameters; ``config.seed`` seeds statistics, excerpts, batch order and
        dropout exactly as in :func:`jaxaudio.train.train`.
    losses : sequence of (name, kwargs) of length K, optional
        Loss of each model (names from :data:`jaxaudio.losses.LOSSES`, kwargs a dict or tuple
        of pairs); default ``config.loss`` with ``config.loss_kwargs`` for all.
    mode : {"vmap", "shared", "sequential"}
        ``"vmap"``: one compiled step for all ``K`` models (``jax.vmap`` over the stacked
        states; front-end computed once per batch). ``"shared"``: front-end once per batch,
        then the single-model step for each model in turn (a Python loop, no vmap).
        ``"sequential"``: the single-model step (front-end included), one whole training
        after another — what training the models separately costs. All three give the same
        models up to floating-point reassociation.
    loss_set : sequence of (name, kwargs), optional
        Compile the step for these losses (a superset of ``losses``), so that calls using
        different subsets share one compiled step.
    prng_impl : str, optional
        PRNG implementation of the dropout keys (``jax.random.key(seed, impl=prng_impl)``);
        default JAX's (threefry, as :func:`jaxaudio.train.train`). ``"rbg"`` (XLA's
        RngBitGenerator) compiles several times faster on CPU; it is deterministic for a seed
        on a given backend, but gives other dropout masks than threefry.
    progress : bool
        Show a tqdm bar over optimisation steps.

    Returns
    -------
    ManyResult
    """
    from tqdm.auto import tqdm

    if classifier.task != "multiclass":
        raise ValueError(f"train_many supports multiclass classifiers, got task={classifier.task!r}")
    targets = np.asarray(targets, np.float32)
    num_clips = len(waves)
    if targets.ndim != 3 or targets.shape[1:] != (num_clips, classifier.num_outputs):
        raise ValueError(f"targets must have shape (K, {num_clips}, {classifier.num_outputs}), "
                         f"got {targets.shape}")
    num_models = targets.shape[0]
    if num_models < 1:
        raise ValueError("targets must hold at least one model's targets (K >= 1)")
    if losses is None:
        losses = [(config.loss, config.loss_kwargs)] * num_models
    if len(losses) != num_models:
        raise ValueError(f"losses must have one entry per model ({num_models}), got {len(losses)}")
    if loss_set is not None:
        loss_keys, _ = _loss_keys(list(loss_set))
        wanted, _ = _loss_keys(losses)
        missing = [k for k in wanted if k not in loss_keys]
        if missing:
            raise ValueError(f"losses {missing} are not in loss_set")
        loss_index = np.asarray([loss_keys.index(_loss_keys([s])[0][0]) for s in losses],
                                np.int32)
    else:
        loss_keys, loss_index = _loss_keys(losses)
    if mode not in TRAIN_MODES:
        raise ValueError(f"mode must be one of {TRAIN_MODES}, got {mode!r}")
    bs = config.batch_size
    num_steps = num_clips // bs  # full batches only, as in train(): one compiled shape
    if num_steps == 0:
        raise ValueError(f"batch_size {bs} exceeds the {num_clips} training clips")

    t_start = time.perf_counter()
    source = ClipExcerpts(waves=list(waves), targets=targets[0],
                          excerpt_samples=classifier.excerpt_samples)
    mean, std = _band_statistics(classifier, source, seed=config.seed,
                                 max_excerpts=config.stats_excerpts, batch_size=bs)
    classifier = dataclasses.replace(classifier, mean=mean, std=std)
    mean_j, std_j = jnp.asarray(mean), jnp.asarray(std)
    step_all_fn, step_model = _train_steps(classifier.frontend, classifier.model_name,
                                           _freeze(classifier.model_kwargs), loss_keys)
    feats_fn = _features(classifier.frontend)

    def step_all(states, batch_waves, batch_targets, key, loss_idx):
        feats = feats_fn(batch_waves, mean_j, std_j)  # once for all models: shared waves
        return step_all_fn(states, feats, batch_targets, key, loss_idx)

    def step_one(state, batch_waves, batch_targets, key, loss_idx):
        return step_model(state, feats_fn(batch_waves, mean_j, std_j), batch_targets, key,
                          loss_idx)

    def step_shared(states, batch_waves, batch_targets, key, loss_idx):
        feats = feats_fn(batch_waves, mean_j, std_j)
        out = [step_model(s, feats, t, key, i)
               for s, t, i in zip(states, batch_targets, loss_idx)]
        return [s for s, _ in out], jnp.stack([loss for _, loss in out])

    tx = _adam(float(config.learning_rate))

    def fresh_state():
        return TrainState.create(apply_fn=None, params=classifier.variables["params"],
                                 batch_stats=classifier.variables.get("batch_stats", {}), tx=tx)

    base_key = (jax.random.key(config.seed) if prng_impl is None
                else jax.random.key(config.seed, impl=prng_impl))
    epoch_losses = np.zeros((num_models, config.epochs))
    bar = tqdm(total=config.epochs * num_steps * (1 if mode == "vmap" else num_models), desc=desc,
               disable=not progress, leave=False, unit="step")

    def run(models: list[int], states, step_fn, stacked: bool):
        for epoch in range(config.epochs):
            rng = np.random.default_rng([config.seed, epoch])
            epoch_waves, _ = source.epoch(rng)
            order = rng.permutation(len(epoch_waves))
            epoch_key = jax.random.fold_in(base_key, epoch)
            step_losses = []
            for step in range(num_steps):
                idx = order[step * bs:(step + 1) * bs]
                key = jax.random.fold_in(epoch_key, step)
                if stacked:
                    states, loss = step_fn(states, epoch_waves[idx], targets[models][:, idx],
                                           key, loss_index[models])
                else:
                    states, loss = step_fn(states, epoch_waves[idx], targets[models[0]][idx],
                                           key, loss_index[models[0]])
                step_losses.append(loss)
                bar.update(1 if mode == "vmap" else len(models))
            mean_loss = np.mean(np.asarray(jax.device_get(step_losses)), axis=0)
            epoch_losses[models, epoch] = mean_loss
        return states

    if mode == "vmap":
        states = stack_trees([fresh_state()] * num_models)
        states = run(list(range(num_models)), states, step_all, stacked=True)
        params, batch_stats = states.params, states.batch_stats
    elif mode == "shared":
        states = run(list(range(num_models)), [fresh_state()] * num_models, step_shared,
                     stacked=True)
        params = stack_trees([s.params for s in states])
        batch_stats = stack_trees([s.batch_stats for s in states])
    else:
        done = []
        for k in range(num_models):
            done.append(run([k], fresh_state(), step_one, stacked=False))
        params = stack_trees([s.params for s in done])
        batch_stats = stack_trees([s.batch_stats for s in done])
    bar.close()
    variables = jax.device_get({"params": params, "batch_stats": batch_stats})
    classifiers = [dataclasses.replace(classifier, variables=unstack_tree(variables, k))
                   for k in range(num_models)]
    return ManyResult(classifiers=classifiers, variables=variables, losses=epoch_losses,
                      seconds=time.perf_counter() - t_start, steps=num_steps * config.epochs)


def evaluate_many(classifier: Classifier, variables, dataset, *,
                  batch_size: int = 16) -> list[dict]:
    """Clip-level accuracy, lwlrap and macro ROC-AUC of ``K`` models on a clip dataset.

    Same protocol as :func:`jaxaudio.tasks.evaluate_clips` (half-overlapping windows of the
    training excerpt length, clip logits = mean of window logits, softmax), but each batch of
    windows goes through the front-end once for all ``K`` networks.

    Parameters
    ----------
    classifier : Classifier
        Provides front-end, module, normalisation and excerpt length (its variables are unused).
    variables : pytree stacked along a leading model axis (``ManyResult.variables``).
    dataset : ClipDataset
        Evaluation clips (``labels`` -1 for multi-label clips, skipped by accuracy).
    batch_size : int > 0
        Windows per compiled call (the last batch is padded).

    Returns
    -------
    list of dict
        Per model: ``accuracy``, ``lwlrap``, ``roc_auc`` (all in [0, 1]) and ``num_clips``.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    windows, owner = window_dataset(list(dataset.waves), length=classifier.excerpt_samples)
    windows = windows.astype(np.float32)
    logits_fn = _eval_logits(classifier.model_name, _freeze(classifier.model_kwargs))
    feats_fn = _features(classifier.frontend)
    mean, std = jnp.asarray(classifier.mean), jnp.asarray(classifier.std)
    num_models = len(jax.tree_util.tree_leaves(variables)[0])
    per_model = [jax.tree_util.tree_map(jnp.asarray, unstack_tree(variables, k))
                 for k in range(num_models)]
    chunks = []
    for chunk, n in _padded_batches(windows, batch_size):
        feats = feats_fn(chunk, mean, std)  # once per batch for all models
        chunks.append(np.stack([np.asarray(logits_fn(v, feats))[:n] for v in per_model]))
    logits = np.concatenate(chunks, axis=1)  # (K, windows, C)
    num_models = logits.shape[0]
    counts = np.maximum(np.bincount(owner, minlength=len(dataset)), 1)[:, None]
    single = dataset.labels >= 0
    out = []
    for k in range(num_models):
        summed = np.zeros((len(dataset), logits.shape[-1]))
        np.add.at(summed, owner, logits[k])
        scores = np.asarray(jax.nn.softmax(summed / counts, axis=-1))
        out.append({
            "accuracy": float(metrics.accuracy(scores[single], dataset.labels[single])),
            "lwlrap": float(metrics.lwlrap(dataset.targets, scores)),
            "roc_auc": float(metrics.roc_auc_macro(dataset.targets, scores)),
            "num_clips": int(len(dataset)),
        })
    return out
