"""Training: optax, explicit batch-norm state and dropout keys, Orbax checkpoints with resume.

The unit of training data is a *waveform excerpt* with a target vector; the front-end runs
inside the jitted train step, exactly as at attack time (so the per-example ``top_db`` clipping
and the standardisation the model sees in training are the ones attacks differentiate through).

Determinism: the excerpt choice and batch order of epoch ``e`` come from
``np.random.default_rng([seed, e])`` and the dropout keys from ``fold_in(key(seed), e, step)``,
so a run resumed from the checkpoint of epoch ``e`` continues exactly like an uninterrupted run.
The learning rate is a function of the optimiser's step count (saved in the checkpoint), and
``out_dir/train_config.json`` records everything a resumed run must share with the run it
continues; a different one is refused.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import pathlib
import time
from typing import Any, Callable, Optional, Protocol

import jax
import jax.numpy as jnp
import numpy as np
import optax
from tqdm.auto import tqdm
from flax.training import train_state

from jaxaudio.data.windowing import song_padded
from jaxaudio.dsp import frontend as fe
from jaxaudio.dsp.batching import map_chunks
from jaxaudio.models.classifier import CheckpointError, Classifier
from jaxaudio.training import losses as losses_lib


# ----------------------------------------------------------------------------------------------
# Example sources: what one epoch of training excerpts looks like
# ----------------------------------------------------------------------------------------------
class ExampleSource(Protocol):
    """Produces one epoch of ``(waves (n, excerpt_samples), targets (n, num_outputs))``."""

    excerpt_samples: int

    def epoch(self, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]: ...


def _circular_excerpt(wave: np.ndarray, length: int, rng: np.random.Generator) -> np.ndarray:
    """A random ``length``-sample excerpt; short clips are tiled (circular padding)."""
    if len(wave) < length:
        reps = -(-length // len(wave))
        wave = np.tile(wave, reps)
        start = 0 if len(wave) == length else int(rng.integers(0, len(wave) - length + 1))
        return wave[start:start + length]
    start = int(rng.integers(0, len(wave) - length + 1))
    return wave[start:start + length]


@dataclasses.dataclass
class ClipExcerpts:
    """One random excerpt per clip and epoch (instrument tagging).

    Attributes:
      waves: clips (float32, any length).
      targets: ``(num_clips, num_classes)`` float32 (one-hot or multi-hot, possibly noisy).
      excerpt_samples: excerpt length in samples.
    """

    waves: list
    targets: np.ndarray
    excerpt_samples: int

    @property
    def examples_per_epoch(self) -> int:
        return len(self.waves)

    def epoch(self, rng):
        waves = np.stack([_circular_excerpt(w, self.excerpt_samples, rng) for w in self.waves])
        return waves.astype(np.float32), np.asarray(self.targets, np.float32)


@dataclasses.dataclass
class SongExcerpts:
    """Random excerpts centred on song frames, labelled by the centre frame (voice detection).

    Attributes:
      dataset: a :class:`jaxaudio.data.types.SongDataset`.
      excerpt_frames: frames per excerpt (odd; 115 in the study).
      hop_length: front-end hop in samples.
      examples_per_epoch: excerpts drawn per epoch, uniformly over all frames of all songs.
    """

    dataset: Any
    excerpt_frames: int
    hop_length: int
    examples_per_epoch: int = 4096

    def __post_init__(self):
        self.excerpt_samples = (self.excerpt_frames - 1) * self.hop_length
        self._labels = [self.dataset.frame_labels(i, hop_length=self.hop_length)
                        for i in range(len(self.dataset))]
        self._padded = [song_padded(w, self.excerpt_frames, self.hop_length)
                        for w in self.dataset.waves]

    def epoch(self, rng):
        counts = np.array([len(lab) for lab in self._labels])
        flat = rng.integers(0, counts.sum(), size=self.examples_per_epoch)
        song = np.searchsorted(np.cumsum(counts), flat, side="right")
        frame = flat - np.concatenate([[0], np.cumsum(counts)[:-1]])[song]
        targets = np.array([self._labels[s][f] for s, f in zip(song, frame)], np.float32)
        waves = LazyExcerpts(self._padded, song, frame * self.hop_length, self.excerpt_samples)
        return waves, targets[:, None]


class LazyExcerpts:
    """``(n, excerpt_samples)`` float32 excerpts cut from songs only when indexed.

    An epoch of the published detector's training holds 64000 excerpts of ~36000 samples
    (9 GB as one array); this cuts the rows of each batch on demand. ``len`` and indexing
    with an integer array or a slice give what the stacked array would.
    """

    def __init__(self, songs, song: np.ndarray, start: np.ndarray, length: int):
        self._songs, self._song, self._start, self._length = songs, song, start, int(length)

    def __len__(self) -> int:
        return len(self._song)

    @property
    def shape(self) -> tuple:
        return (len(self), self._length)

    def __getitem__(self, idx) -> np.ndarray:
        song, start = self._song[idx], self._start[idx]
        if np.ndim(song) == 0:
            return np.asarray(self._songs[song][start:start + self._length], np.float32)
        return np.stack([self._songs[s][b:b + self._length] for s, b in zip(song, start)]
                        ).astype(np.float32).reshape(len(song), self._length)

    def __array__(self, dtype=None, copy=None) -> np.ndarray:
        out = self[np.arange(len(self))]
        return out if dtype is None else out.astype(dtype)



# ----------------------------------------------------------------------------------------------
# Train state, step and loop
# ----------------------------------------------------------------------------------------------
class TrainState(train_state.TrainState):
    batch_stats: Any


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """Hyperparameters of one training run.

    Attributes:
      epochs: number of passes over the example source.
      batch_size: excerpts per step (16 in the study).
      learning_rate: Adam step size of the first epoch (1e-3 in the studies).
      lr_decay_per_epoch: the step size is multiplied by this after every epoch (a staircase
        exponential decay over the optimiser's steps; 0.85 for the singing voice detector,
        1.0 = constant, the instrument classifiers).
      seed: seeds initialisation, dropout and excerpt/batch order.
      loss: a name from ``jaxaudio.training.losses.LOSSES`` (``cross_entropy`` for multiclass,
        ``binary_cross_entropy`` for the detector; noise-robust ones for the label-noise study).
      loss_kwargs: keyword arguments of that loss (e.g. ``{"q": 0.7}`` for GCE).
      stats_excerpts: excerpts used to measure the per-band mean/std.
    """

    epochs: int = 10
    batch_size: int = 16
    learning_rate: float = 1e-3
    lr_decay_per_epoch: float = 1.0
    seed: int = 0
    loss: str = "cross_entropy"
    loss_kwargs: tuple = ()
    stats_excerpts: int = 512

    def __post_init__(self):
        if self.epochs < 1:
            raise ValueError(f"epochs must be >= 1, got {self.epochs}")
        if self.batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {self.batch_size}")
        if not self.learning_rate > 0:
            raise ValueError(f"learning_rate must be > 0, got {self.learning_rate}")
        if not 0 < self.lr_decay_per_epoch <= 1:
            raise ValueError(f"lr_decay_per_epoch must be in (0, 1], got "
                             f"{self.lr_decay_per_epoch}")
        losses_lib.get_loss(self.loss)  # raises on unknown names


@functools.lru_cache(maxsize=8)
def adam(learning_rate: float) -> optax.GradientTransformation:
    """``optax.adam(learning_rate)``, one object per step size (the optimiser is a static part
    of the train state, so an unequal new one per call would recompile jitted steps)."""
    return optax.adam(learning_rate)


def learning_rate_schedule(learning_rate: float, lr_decay_per_epoch: float,
                           steps_per_epoch: int) -> optax.Schedule:
    """Step size of optimiser step ``t`` (0-based): ``learning_rate * decay ** (t //
    steps_per_epoch)``, i.e. constant within an epoch and multiplied by ``lr_decay_per_epoch``
    after each (``optax.exponential_decay`` with ``staircase=True``)."""
    if steps_per_epoch < 1:
        raise ValueError(f"steps_per_epoch must be >= 1, got {steps_per_epoch}")
    return optax.exponential_decay(init_value=learning_rate, transition_steps=steps_per_epoch,
                                   decay_rate=lr_decay_per_epoch, staircase=True)


@functools.lru_cache(maxsize=8)
def optimizer(learning_rate: float, lr_decay_per_epoch: float = 1.0,
              steps_per_epoch: int = 1) -> optax.GradientTransformation:
    """The training optimiser: :func:`adam` (the very same object) for a constant step size,
    else Adam on :func:`learning_rate_schedule` (its step count lives in the optimiser state,
    so a restored checkpoint continues the schedule where it stopped). Cached like
    :func:`adam`."""
    if lr_decay_per_epoch == 1.0:
        return adam(learning_rate)
    return optax.adam(learning_rate_schedule(learning_rate, lr_decay_per_epoch,
                                             steps_per_epoch))


def steps_per_epoch(source: "ExampleSource", batch_size: int) -> int:
    """Optimiser steps of one epoch (full batches only, as :func:`run_epoch` takes them)."""
    n = getattr(source, "examples_per_epoch", None)
    if n is None:  # any other source: count one epoch's examples
        n = len(source.epoch(np.random.default_rng(0))[0])
    steps = int(n) // int(batch_size)
    if steps == 0:
        raise ValueError(f"batch_size {batch_size} exceeds the {n} examples of an epoch")
    return steps


@functools.lru_cache(maxsize=32)
def feature_fn(frontend: fe.FrontendConfig):
    """Jitted standardised features ``(waves, mean, std) -> (batch, n_mels, frames)``."""
    return jax.jit(lambda w, mean, std: fe.standardize(fe.features(w, frontend), mean, std))


def feature_train_step(module, loss_fn: Callable):
    """One model's (unjitted) ``(state, feats, targets, key) -> (state, loss)`` on features."""

    def step(state, feats, targets, key):
        def objective(params):
            logits, updates = module.apply(
                {"params": params, "batch_stats": state.batch_stats}, feats, train=True,
                mutable=["batch_stats"], rngs={"dropout": key},
            )
            return loss_fn(logits, targets), updates

        (loss, updates), grads = jax.value_and_grad(objective, has_aux=True)(state.params)
        state = state.apply_gradients(grads=grads, batch_stats=updates["batch_stats"])
        return state, loss

    return step


def make_train_step(classifier: Classifier, loss_fn: Callable):
    """Jitted ``(state, waves, targets, key) -> (state, loss)``: front-end inside the step."""
    frontend = classifier.frontend
    mean, std = jnp.asarray(classifier.mean), jnp.asarray(classifier.std)
    step = feature_train_step(classifier.module, loss_fn)

    @jax.jit
    def train_step(state, waves, targets, key):
        return step(state, fe.standardize(fe.features(waves, frontend), mean, std), targets, key)

    return train_step


def measure_band_statistics(classifier: Classifier, source: ExampleSource, *, seed: int,
                            max_excerpts: int, batch_size: int = 32):
    """Per-mel-band mean/std of the scaled features of up to ``max_excerpts`` excerpts.

    The features come from :func:`feature_fn` with mean 0 and std 1 (exact), in chunks of
    ``batch_size`` (one compiled shape).
    """
    waves, _ = source.epoch(np.random.default_rng([seed, 10_000_019]))
    waves = waves[:max_excerpts]
    n_mels = classifier.frontend.n_mels
    feats = map_chunks(feature_fn(classifier.frontend), waves, chunk_size=batch_size,
                       broadcast=(jnp.zeros(n_mels, jnp.float32), jnp.ones(n_mels, jnp.float32)))
    return fe.band_statistics(feats)


def run_epoch(train_step: Callable, state, source: ExampleSource, *, seed: int, epoch: int,
              batch_size: int, base_key, on_step: Optional[Callable] = None):
    """One epoch of training: ``(state, mean loss over the steps)``.

    The excerpts and batch order come from ``default_rng([seed, epoch])``, the dropout key of
    step ``s`` is ``fold_in(fold_in(base_key, epoch), s)``; only full batches are used (one
    compiled shape). ``train_step(state, waves, targets, key) -> (state, loss)``; ``loss`` may
    be a vector (several models), then the mean is per entry. ``on_step(step, num_steps,
    loss)`` is called after every step (progress bars).
    """
    rng = np.random.default_rng([seed, epoch])
    waves, targets = source.epoch(rng)
    order = rng.permutation(len(waves))
    num_steps = len(order) // batch_size
    if num_steps == 0:
        raise ValueError(f"batch_size {batch_size} exceeds the {len(order)} examples of an epoch")
    epoch_key = jax.random.fold_in(base_key, epoch)
    losses = []
    for step in range(num_steps):
        idx = order[step * batch_size:(step + 1) * batch_size]
        state, loss = train_step(state, waves[idx], targets[idx],
                                 jax.random.fold_in(epoch_key, step))
        losses.append(loss)
        if on_step is not None:
            on_step(step, num_steps, loss)
    return state, np.mean(np.asarray(jax.device_get(losses)), axis=0)


class _Checkpoints:
    """Orbax CheckpointManager of the train state plus JSON progress, one step per epoch."""

    def __init__(self, directory: pathlib.Path):
        import orbax.checkpoint as ocp

        self._ocp = ocp
        self.manager = ocp.CheckpointManager(
            directory.absolute(),
            options=ocp.CheckpointManagerOptions(max_to_keep=2, create=True),
        )

    def latest_epoch(self) -> Optional[int]:
        return self.manager.latest_step()

    def save(self, epoch: int, state: TrainState, progress: dict) -> None:
        ocp = self._ocp
        pytree = {"params": state.params, "batch_stats": state.batch_stats,
                  "opt_state": state.opt_state, "step": state.step}
        self.manager.save(epoch, args=ocp.args.Composite(
            state=ocp.args.StandardSave(jax.device_get(pytree)),
            progress=ocp.args.JsonSave(progress),
        ))
        self.manager.wait_until_finished()

    def restore(self, epoch: int, template: TrainState) -> tuple[TrainState, dict]:
        ocp = self._ocp
        abstract = {"params": template.params, "batch_stats": template.batch_stats,
                    "opt_state": template.opt_state, "step": template.step}
        abstract = jax.tree_util.tree_map(ocp.utils.to_shape_dtype_struct, abstract)
        try:
            restored = self.manager.restore(epoch, args=ocp.args.Composite(
                state=ocp.args.StandardRestore(abstract), progress=ocp.args.JsonRestore(),
            ))
        except Exception as err:
            raise CheckpointError(
                f"cannot resume: checkpoint of epoch {epoch} in {self.manager.directory} is "
                f"corrupt or incomplete ({type(err).__name__}: {err})"
            ) from err
        tree = restored["state"]
        state = template.replace(params=tree["params"], batch_stats=tree["batch_stats"],
                                 opt_state=tree["opt_state"], step=tree["step"])
        return state, dict(restored["progress"])

    def close(self):
        self.manager.close()


def source_fingerprint(source) -> Optional[str]:
    """A SHA-256 digest (16 hex digits) of the training audio and targets of ``source``
    (:class:`ClipExcerpts` or :class:`SongExcerpts`; ``None`` for other sources): a resumed run
    must continue on the same data, not on clips that were, say, synthesised differently."""
    import hashlib

    dataset = getattr(source, "dataset", None)
    waves = getattr(source, "waves", None) if dataset is None else dataset.waves
    if waves is None:
        return None
    digest = hashlib.sha256()
    for wave in waves:
        digest.update(np.ascontiguousarray(wave, np.float32).tobytes())
    targets = getattr(source, "targets", None)
    if dataset is not None:
        targets = [np.asarray(seg, np.float64) for seg in getattr(dataset, "segments", ())]
    for t in ([] if targets is None else targets):
        digest.update(np.ascontiguousarray(t, np.float64).tobytes())
    return digest.hexdigest()[:16]


def resume_settings(config: TrainConfig, num_steps: int, data: Optional[str] = None) -> dict:
    """What a resumed run must share with the run whose checkpoints it continues: every field
    of ``config`` but ``epochs`` (a run may be extended), the steps per epoch and the training
    data (``data``: :func:`source_fingerprint`)."""
    settings = {k: v for k, v in dataclasses.asdict(config).items() if k != "epochs"}
    settings["loss_kwargs"] = [list(kv) for kv in settings["loss_kwargs"]]
    return {**settings, "steps_per_epoch": int(num_steps), "training_data": data}


def _check_resumable(out_dir: pathlib.Path, settings: dict, checkpoints) -> None:
    """``CheckpointError`` unless ``out_dir``'s checkpoints were written with ``settings``.

    Run folders from before ``train_config.json`` existed are refused too: nothing tells
    which data and settings they were trained with."""
    path = out_dir / "train_config.json"
    if path.is_file():
        saved = json.loads(path.read_text())
        differ = sorted(k for k in set(saved) | set(settings) if saved.get(k) != settings.get(k))
    else:
        differ = None
    if differ is None or differ:
        checkpoints.close()
        what = ("without a record of their training settings and data (train_config.json)"
                if differ is None else
                f"with other training settings or data ({', '.join(differ)} differ)")
        raise CheckpointError(
            f"cannot resume: the checkpoints in {out_dir} were written {what}; remove that "
            f"folder or train into a new one (--out) instead of resuming (--resume)")


@dataclasses.dataclass
class TrainResult:
    classifier: Classifier
    history: list  # one dict per epoch: epoch, loss, seconds, and eval metrics if any
    resumed_from: Optional[int]


def train(classifier: Classifier, source: ExampleSource, config: TrainConfig, *,
          out_dir=None, resume: bool = False, evaluate: Optional[Callable] = None,
          progress: bool = True, on_epoch_end: Optional[Callable] = None) -> TrainResult:
    """Train ``classifier`` (its variables are the initialisation) on ``source``.

    Args:
      classifier: initial bundle; its ``mean``/``std`` are replaced by statistics measured on
        the source unless resuming (then they come from the run directory).
      source: :class:`ClipExcerpts` or :class:`SongExcerpts` (anything with ``epoch(rng)``).
      config: :class:`TrainConfig`.
      out_dir: run directory; with it, an Orbax checkpoint is written after every epoch to
        ``out_dir/checkpoints`` and ``out_dir/normalization.json`` holds the band statistics.
      resume: continue from the latest checkpoint in ``out_dir`` (no-op if there is none).
      evaluate: optional ``classifier -> dict`` called after every epoch (metrics logged).
      progress: show a tqdm progress bar per epoch.
      on_epoch_end: optional ``(epoch, history_row) -> None`` hook (tests use it to simulate a
        kill right after a checkpoint).

    Returns:
      :class:`TrainResult` with the trained classifier and per-epoch history.
    """
    loss_fn = _loss_of(classifier, config)
    out_dir = None if out_dir is None else pathlib.Path(out_dir)
    checkpoints = None
    if out_dir is not None:
        out_dir.mkdir(parents=True, exist_ok=True)
        checkpoints = _Checkpoints(out_dir / "checkpoints")
    num_steps = steps_per_epoch(source, config.batch_size)
    run_settings = resume_settings(config, num_steps, source_fingerprint(source))
    latest = checkpoints.latest_epoch() if (checkpoints and resume) else None
    if latest is not None:
        _check_resumable(out_dir, run_settings, checkpoints)
    mean, std = _band_statistics(classifier, source, config, out_dir, resuming=latest is not None)
    classifier = dataclasses.replace(classifier, mean=mean, std=std)
    if out_dir is not None:
        (out_dir / "train_config.json").write_text(json.dumps(run_settings, indent=2))
    tx = optimizer(float(config.learning_rate), float(config.lr_decay_per_epoch), num_steps)
    state = TrainState.create(apply_fn=classifier.module.apply,
                              params=classifier.variables["params"],
                              batch_stats=classifier.variables.get("batch_stats", {}), tx=tx)
    start_epoch, history = 0, []
    if latest is not None:
        state, saved = checkpoints.restore(latest, state)
        history, start_epoch = saved.get("history", []), latest + 1
    train_step = make_train_step(classifier, loss_fn)
    base_key = jax.random.key(config.seed)

    def to_classifier(state):
        variables = {"params": state.params, "batch_stats": state.batch_stats}
        return dataclasses.replace(classifier, variables=variables)

    try:
        for epoch in range(start_epoch, config.epochs):
            state, row = _epoch_with_bar(train_step, state, source, config, epoch, base_key,
                                         progress=progress)
            if evaluate is not None:
                row.update(evaluate(to_classifier(state)))
            history.append(row)
            if progress:
                shown = ", ".join(f"{k}={v:.4g}" for k, v in row.items()
                                  if isinstance(v, float))
                tqdm.write(f"epoch {epoch + 1}/{config.epochs}: {shown}")
            if checkpoints is not None:
                checkpoints.save(epoch, state, {"history": history})
            if on_epoch_end is not None:
                on_epoch_end(epoch, row)
    finally:
        if checkpoints is not None:
            checkpoints.close()
    return TrainResult(classifier=to_classifier(state), history=history, resumed_from=latest)


def _loss_of(classifier: Classifier, config: TrainConfig) -> Callable:
    """The config's loss; sigmoid outputs (binary, multi-label) train on binary cross-entropy
    when the config names plain cross-entropy."""
    if classifier.task in ("binary", "multilabel") and config.loss == "cross_entropy":
        return losses_lib.get_loss("binary_cross_entropy")
    return losses_lib.get_loss(config.loss, **dict(config.loss_kwargs))


def _band_statistics(classifier, source, config: TrainConfig, out_dir, *, resuming: bool):
    """The per-band normalisation ``(mean, std)``: read back from ``out_dir`` when resuming,
    else measured on the source (and saved to ``out_dir/normalization.json``)."""
    norm_path = None if out_dir is None else out_dir / "normalization.json"
    if resuming and norm_path.is_file():
        stats = json.loads(norm_path.read_text())
        return np.asarray(stats["mean"], np.float32), np.asarray(stats["std"], np.float32)
    mean, std = measure_band_statistics(classifier, source, seed=config.seed,
                                        max_excerpts=config.stats_excerpts)
    if norm_path is not None:
        norm_path.write_text(json.dumps({"mean": mean.tolist(), "std": std.tolist()}))
    return mean, std


def _epoch_with_bar(train_step, state, source, config: TrainConfig, epoch: int, base_key, *,
                    progress: bool):
    """One epoch under a tqdm bar; returns the new state and the epoch's history row."""
    t0 = time.perf_counter()
    bar = tqdm(desc=f"epoch {epoch + 1}/{config.epochs}", disable=not progress, leave=False,
               unit="batch")

    def on_step(step, num_steps, loss):
        bar.total = num_steps
        bar.update(1)
        if step % 10 == 0:
            bar.set_postfix(loss=f"{float(loss):.3f}")

    state, loss = run_epoch(train_step, state, source, seed=config.seed, epoch=epoch,
                            batch_size=config.batch_size, base_key=base_key, on_step=on_step)
    bar.close()
    return state, {"epoch": epoch + 1, "loss": float(loss), "seconds": time.perf_counter() - t0}
