"""Train (and evaluate) many independent classifiers at once with ``jax.vmap``.

The label-noise study trains the same network dozens of times on the *same clips* with
different label sets (corruption rates) and losses. :func:`train_many` trains ``K`` such models
from :mod:`jaxaudio.training.train`'s pieces: the band statistics (:func:`~jaxaudio.training.train.measure_band_statistics`),
one model's step on features (:func:`~jaxaudio.training.train.feature_train_step`) and the epoch loop
(:func:`~jaxaudio.training.train.run_epoch`: excerpts, batch order, dropout keys). The front-end runs once
per batch (the waveforms are shared); the models are either ``jax.vmap``-ed over their stacked
states, or stepped one after another on the shared features, or trained one whole training after
another (see :func:`train_many`). :func:`default_train_mode` picks by backend.

Protocol: every model follows :func:`jaxaudio.training.train.train` exactly (band statistics measured on
the source, excerpt choice and batch order of epoch ``e`` from ``default_rng([seed, e])``,
dropout keys ``fold_in(fold_in(key(seed), e), step)``, Adam), so a model trained here equals the
same model trained alone by ``train`` up to floating-point reassociation (tested).
"""

from __future__ import annotations

import dataclasses
import functools
import time
from typing import Optional, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from jaxaudio import metrics
from jaxaudio.data.windowing import window_dataset
from jaxaudio.dsp.batching import map_chunks
from jaxaudio.models.classifier import Classifier, build_module
from jaxaudio.training import losses as losses_lib
from jaxaudio.training.train import (
    ClipExcerpts,
    TrainConfig,
    TrainState,
    adam,
    feature_fn,
    feature_train_step,
    measure_band_statistics,
    run_epoch,
)

#: Ways to train K models: see :func:`train_many`.
TRAIN_MODES = ("vmap", "shared", "sequential")

__all__ = ["TRAIN_MODES", "ManyResult", "default_train_mode", "train_many", "evaluate_many",
           "predict_many", "stack_trees", "unstack_tree"]

#: A loss given by name and keyword arguments, e.g. ``("gce", (("q", 0.7),))``.
LossSpec = tuple


def default_train_mode(backend: Optional[str] = None) -> str:
    """``"shared"`` on the CPU backend, ``"vmap"`` elsewhere.

    Why: XLA:CPU lowers vmapped convolutions to grouped convolutions, which are much slower
    (``benchmarks/label_noise_vmap.py`` on the 2-core development CPU, ms per model-step: demo
    sizes vmap 97, shared 43, sequential 51; paper sizes vmap 11970, shared 2457, sequential
    2277), while on GPU/TPU one compiled step for all models fills the device. All modes train
    the same models up to floating-point reassociation.
    """
    backend = jax.default_backend() if backend is None else backend
    return "shared" if backend == "cpu" else "vmap"


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


@functools.lru_cache(maxsize=32)
def _train_steps(model_name: str, model_kwargs: tuple, loss_keys: tuple):
    """Jitted ``(vmapped step, single-model step)`` on standardised features.

    ``step(state, feats, targets, key, loss_index)`` is :func:`jaxaudio.training.train.feature_train_step`
    with the model's own loss (``lax.switch`` over ``loss_keys`` when there are several: under
    vmap every branch runs and each model's is selected). Cached, so the dozens of trainings of
    a study compile their steps once.
    """
    module = build_module(model_name, _thaw_kwargs(model_kwargs))
    loss_fns = [losses_lib.get_loss(name, **dict(kwargs)) for name, kwargs in loss_keys]

    def per_model(state, feats, targets, key, loss_index):
        if len(loss_fns) == 1:
            loss_fn = loss_fns[0]
        else:
            def loss_fn(logits, t):
                return jax.lax.switch(loss_index, loss_fns, logits, t)
        return feature_train_step(module, loss_fn)(state, feats, targets, key)

    @jax.jit
    def step_all(states, feats, batch_targets, key, loss_idx):
        return jax.vmap(per_model, in_axes=(0, None, 0, None, 0))(
            states, feats, batch_targets, key, loss_idx)

    return step_all, jax.jit(per_model)


@functools.lru_cache(maxsize=32)
def _eval_logits(model_name: str, model_kwargs: tuple):
    """Jitted ``(stacked variables, feats) -> (K, batch, C)`` logits, vmapped over the models."""
    module = build_module(model_name, _thaw_kwargs(model_kwargs))
    return jax.jit(jax.vmap(lambda variables, feats: module.apply(variables, feats, train=False),
                            in_axes=(0, None)))


def train_many(classifier: Classifier, waves: Sequence[np.ndarray], targets, config: TrainConfig,
               *, losses: Optional[Sequence[LossSpec]] = None, mode: Optional[str] = None,
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
        dropout exactly as in :func:`jaxaudio.training.train.train`.
    losses : sequence of (name, kwargs) of length K, optional
        Loss of each model (names from :data:`jaxaudio.training.losses.LOSSES`, kwargs a dict or tuple
        of pairs); default ``config.loss`` with ``config.loss_kwargs`` for all.
    mode : {"vmap", "shared", "sequential"}, optional
        Default :func:`default_train_mode` (by backend). ``"vmap"``: one compiled step for all ``K`` models (``jax.vmap`` over the stacked
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
        default JAX's (threefry, as :func:`jaxaudio.training.train.train`). ``"rbg"`` (XLA's
        RngBitGenerator) compiles several times faster on CPU; it is deterministic for a seed
        on a given backend, but gives other dropout masks than threefry.
    progress : bool
        Show a tqdm bar over optimisation steps.

    Returns
    -------
    ManyResult
    """
    from tqdm.auto import tqdm

    targets, losses, loss_index, loss_keys = _check_inputs(classifier, waves, targets, config,
                                                           losses, loss_set)
    mode = default_train_mode() if mode is None else mode
    if mode not in TRAIN_MODES:
        raise ValueError(f"mode must be one of {TRAIN_MODES}, got {mode!r}")
    num_models, bs = targets.shape[0], config.batch_size
    num_steps = len(waves) // bs  # full batches only, as in train(): one compiled shape

    t_start = time.perf_counter()
    # Targets per clip, (N, K, C): one batch of excerpts carries every model's targets.
    source = ClipExcerpts(waves=list(waves), targets=targets.transpose(1, 0, 2),
                          excerpt_samples=classifier.excerpt_samples)
    mean, std = measure_band_statistics(classifier, source, seed=config.seed,
                                        max_excerpts=config.stats_excerpts, batch_size=bs)
    classifier = dataclasses.replace(classifier, mean=mean, std=std)
    mean_j, std_j = jnp.asarray(mean), jnp.asarray(std)
    step_all, step_model = _train_steps(classifier.model_name, _freeze(classifier.model_kwargs),
                                        loss_keys)
    feats_fn = feature_fn(classifier.frontend)

    def step_vmap(states, batch_waves, batch_targets, key):
        feats = feats_fn(batch_waves, mean_j, std_j)  # once for all models: shared waves
        return step_all(states, feats, np.swapaxes(batch_targets, 0, 1), key, loss_index)

    def step_shared(states, batch_waves, batch_targets, key):
        feats = feats_fn(batch_waves, mean_j, std_j)
        out = [step_model(s, feats, batch_targets[:, k], key, loss_index[k])
               for k, s in enumerate(states)]
        return [s for s, _ in out], jnp.stack([loss for _, loss in out])

    def step_alone(k):
        def step(state, batch_waves, batch_targets, key):
            return step_model(state, feats_fn(batch_waves, mean_j, std_j), batch_targets, key,
                              loss_index[k])
        return step

    if config.lr_decay_per_epoch != 1.0:
        raise ValueError("train_many trains at a constant step size; lr_decay_per_epoch must "
                         f"be 1.0, got {config.lr_decay_per_epoch} (use jaxaudio.training.train.train)")
    tx = adam(float(config.learning_rate))
    fresh = TrainState.create(apply_fn=None, params=classifier.variables["params"],
                              batch_stats=classifier.variables.get("batch_stats", {}), tx=tx)
    base_key = (jax.random.key(config.seed) if prng_impl is None
                else jax.random.key(config.seed, impl=prng_impl))
    epoch_losses = np.zeros((num_models, config.epochs))
    per_step = 1 if mode == "vmap" else num_models
    bar = tqdm(total=config.epochs * num_steps * per_step, desc=desc, disable=not progress,
               leave=False, unit="step")

    def fit(state, step_fn, src, rows, per_step):
        for epoch in range(config.epochs):
            state, loss = run_epoch(step_fn, state, src, seed=config.seed, epoch=epoch,
                                    batch_size=bs, base_key=base_key,
                                    on_step=lambda *_: bar.update(per_step))
            epoch_losses[rows, epoch] = loss
        return state

    everyone = list(range(num_models))
    if mode == "vmap":
        states = fit(stack_trees([fresh] * num_models), step_vmap, source, everyone, 1)
        params, batch_stats = states.params, states.batch_stats
    else:
        if mode == "shared":
            states = fit([fresh] * num_models, step_shared, source, everyone, num_models)
        else:
            states = [fit(fresh, step_alone(k), dataclasses.replace(source, targets=targets[k]),
                          [k], 1) for k in everyone]
        params = stack_trees([s.params for s in states])
        batch_stats = stack_trees([s.batch_stats for s in states])
    bar.close()
    variables = jax.device_get({"params": params, "batch_stats": batch_stats})
    classifiers = [dataclasses.replace(classifier, variables=unstack_tree(variables, k))
                   for k in everyone]
    return ManyResult(classifiers=classifiers, variables=variables, losses=epoch_losses,
                      seconds=time.perf_counter() - t_start, steps=num_steps * config.epochs)


def _check_inputs(classifier, waves, targets, config, losses, loss_set):
    """Validated ``(targets (K, N, C), losses, loss index per model, compiled loss keys)``."""
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
    if num_clips // config.batch_size == 0:
        raise ValueError(f"batch_size {config.batch_size} exceeds the {num_clips} training clips")
    return targets, losses, loss_index, loss_keys


def predict_many(classifier: Classifier, variables, waves: Sequence[np.ndarray], *,
                 activation: str = "softmax", batch_size: int = 16) -> np.ndarray:
    """Clip-level scores of ``K`` stacked models (the protocol of :func:`evaluate_many`).

    Parameters
    ----------
    classifier : Classifier
        Provides front-end, module, normalisation and excerpt length (its variables are unused).
    variables : pytree stacked along a leading model axis (``ManyResult.variables``).
    waves : list of np.ndarray [shape=(n_i,)]
        ``N`` clips, float32 in [-1, 1].
    activation : {"softmax", "sigmoid"}
        Applied to the mean window logits: class probabilities (single-label models) or
        independent tag probabilities (multi-label models trained with binary cross-entropy).
    batch_size : int > 0
        Windows per compiled call (the last batch is padded).

    Returns
    -------
    np.ndarray [shape=(K, N, C)], float64 in [0, 1]
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    if activation not in ("softmax", "sigmoid"):
        raise ValueError(f"activation must be 'softmax' or 'sigmoid', got {activation!r}")
    windows, owner = window_dataset(list(waves), length=classifier.excerpt_samples)
    logits_fn = _eval_logits(classifier.model_name, _freeze(classifier.model_kwargs))
    feats_fn = feature_fn(classifier.frontend)
    mean, std = jnp.asarray(classifier.mean), jnp.asarray(classifier.std)
    stacked = jax.tree_util.tree_map(jnp.asarray, variables)

    def chunk_logits(chunk):  # (n, K, C): map_chunks wants the example axis first
        return jnp.swapaxes(logits_fn(stacked, feats_fn(chunk, mean, std)), 0, 1)

    logits = np.asarray(map_chunks(chunk_logits, windows.astype(np.float32),
                                   chunk_size=batch_size), np.float64)
    counts = np.maximum(np.bincount(owner, minlength=len(waves)), 1)[:, None, None]
    summed = np.zeros((len(waves),) + logits.shape[1:])
    np.add.at(summed, owner, logits)
    mean_logits = np.swapaxes(summed / counts, 0, 1)
    if activation == "sigmoid":
        return 1.0 / (1.0 + np.exp(-mean_logits))
    shifted = np.exp(mean_logits - mean_logits.max(-1, keepdims=True))
    return shifted / shifted.sum(-1, keepdims=True)


def evaluate_many(classifier: Classifier, variables, dataset, *,
                  batch_size: int = 16) -> list[dict]:
    """Clip-level accuracy, lwlrap and macro ROC-AUC of ``K`` models on a clip dataset.

    Same protocol as :func:`jaxaudio.models.inference.evaluate_clips` (half-overlapping windows of the
    training excerpt length, clip logits = mean of window logits, softmax), but each batch of
    windows goes through the front-end once and through all ``K`` networks in one call
    (``jax.vmap`` over the stacked variables; :func:`predict_many`).

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
    all_scores = predict_many(classifier, variables, dataset.waves, batch_size=batch_size)
    single = dataset.labels >= 0
    out = []
    for scores in all_scores:
        out.append({
            "accuracy": float(metrics.accuracy(scores[single], dataset.labels[single])),
            "lwlrap": float(metrics.lwlrap(dataset.targets, scores)),
            "roc_auc": float(metrics.roc_auc_macro(dataset.targets, scores)),
            "num_clips": int(len(dataset)),
        })
    return out
