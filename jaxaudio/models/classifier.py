"""The ``Classifier`` bundle: front-end config + Flax module + variables + normalisation.

A ``Classifier`` is everything needed to map raw waveforms to logits, as one frozen value:

    clf = Classifier.load("runs/inst/model")
    logits = clf.logits(waves)            # (batch, num_classes), jitted, eval mode
    grads = jax.grad(lambda w: clf.logits_fn(w).sum())(waves)   # front-end is in the graph

It is saved as an Orbax checkpoint of the variables plus a small JSON file describing the rest.
"""

from __future__ import annotations

import dataclasses
import json
import pathlib
from typing import Any, Optional

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from jaxaudio.dsp import frontend as fe
from jaxaudio.models.cnn import AveragePoolCNN
from jaxaudio.models.voice import SingingVoiceDetector

#: Model name -> Flax module class; the JSON metadata stores the name and the module kwargs.
MODELS: dict[str, type[nn.Module]] = {
    "avgpool_cnn": AveragePoolCNN,
    "singing_voice_detector": SingingVoiceDetector,
}

_TASKS = ("multiclass", "binary", "multilabel")
#: Decision threshold of the sigmoid outputs of ``task="multilabel"`` taggers.
TAG_THRESHOLD = 0.5
_METADATA = "classifier.json"
_VARIABLES = "variables"


class CheckpointError(ValueError):
    """A saved classifier or training checkpoint is missing, incomplete or corrupt."""


def register_model(name: str, module_class: type) -> type:
    """Make a user's Flax module usable as a :class:`Classifier` model under ``name``.

    ``module_class`` is a ``flax.linen.Module`` subclass whose ``__call__(x, train: bool)``
    maps standardised mel features ``x`` ``(batch, n_mels, frames)`` to logits
    ``(batch, num_outputs)`` (``num_outputs`` = classes, or 1 for a binary detector). Any
    frame count must work (files of any length are scored whole). For :func:`jaxaudio.training.train.train`
    it must also keep a ``batch_stats`` collection (e.g. ``nn.BatchNorm``) and may use a
    ``"dropout"`` rng. Saved classifiers record where the class lives
    (``module:qualname``), so :meth:`Classifier.load` — and with it every ``jaxaudio`` command —
    imports it again when that module is importable (on ``PYTHONPATH``). Returns the class.
    """
    if not (isinstance(module_class, type) and issubclass(module_class, nn.Module)):
        raise ValueError(f"register_model needs a flax.linen.Module subclass, got "
                         f"{module_class!r}")
    if MODELS.get(name, module_class) is not module_class:
        raise ValueError(f"model name {name!r} is taken by {MODELS[name].__qualname__}")
    MODELS[name] = module_class
    return module_class


def _module_path(cls: type) -> str:
    return f"{cls.__module__}:{cls.__qualname__}"


def _import_model(name: str, path: Optional[str]) -> None:
    """Register the class saved as ``path`` (``module:qualname``) under ``name``, if needed."""
    if name in MODELS or not path:
        return
    import importlib

    module_name, _, qualname = path.partition(":")
    try:
        obj = importlib.import_module(module_name)
        for part in qualname.split("."):
            obj = getattr(obj, part)
    except (ImportError, AttributeError) as err:
        raise ValueError(f"model {name!r} is the user module {path}, which cannot be imported "
                         f"({err}); put its module on PYTHONPATH") from None
    register_model(name, obj)


def build_module(name: str, kwargs: dict) -> nn.Module:
    if name not in MODELS:
        raise ValueError(f"unknown model {name!r}; known models: {sorted(MODELS)} (a user's "
                         f"module: jaxaudio.models.register_model)")
    return MODELS[name](**kwargs)


@dataclasses.dataclass(frozen=True, eq=False)
class Classifier:
    """Waveform classifier bundle.

    Attributes:
      frontend: the front-end turning ``(batch, samples)`` waves into ``(batch, n_mels, frames)``.
      model_name: key of ``MODELS``; ``model_kwargs`` its constructor arguments.
      variables: Flax variables (``params`` and ``batch_stats``).
      mean, std: per-mel-band standardisation statistics ``(n_mels,)`` from the training set.
      label_names: output names; for ``task="binary"`` the single output is the positive class
        ``label_names[-1]`` (e.g. ``("nosing", "sing")``).
      task: ``"multiclass"`` (softmax over ``len(label_names)`` logits), ``"binary"`` (one
        sigmoid logit) or ``"multilabel"`` (a tagger: one independent sigmoid per label, trained
        with binary cross-entropy on multi-hot targets; a tag is present where its probability
        exceeds :data:`TAG_THRESHOLD`).
      excerpt_frames: frames per training excerpt (116 instruments, 115 voice).
    """

    frontend: fe.FrontendConfig
    model_name: str
    model_kwargs: dict
    variables: Any
    mean: np.ndarray
    std: np.ndarray
    label_names: tuple[str, ...]
    task: str = "multiclass"
    excerpt_frames: int = 116

    def __post_init__(self):
        if self.task not in _TASKS:
            raise ValueError(f"task must be one of {_TASKS}, got {self.task!r}")
        if np.shape(self.mean) != (self.frontend.n_mels,) or np.shape(self.std) != (
            self.frontend.n_mels,
        ):
            raise ValueError(
                f"mean/std must have shape ({self.frontend.n_mels},), got "
                f"{np.shape(self.mean)} and {np.shape(self.std)}"
            )
        object.__setattr__(self, "module", build_module(self.model_name, self.model_kwargs))
        object.__setattr__(self, "_jit_logits", jax.jit(self.logits_fn))
        object.__setattr__(self, "_jit_feature_logits", jax.jit(self.feature_logits_fn))

    # -- pure functions (differentiable, usable inside user jit/vmap/grad) -------------------
    @property
    def num_outputs(self) -> int:
        return 1 if self.task == "binary" else len(self.label_names)

    @property
    def excerpt_samples(self) -> int:
        """Waveform length (samples) of one training excerpt."""
        return self.frontend.num_samples_for_frames(self.excerpt_frames)

    def features(self, waves):
        """Scaled mel features ``(..., n_mels, frames)``, before standardisation."""
        return fe.features(waves, self.frontend)

    def feature_logits_fn(self, feats):
        """Logits from *unstandardised* scaled features ``(batch, n_mels, frames)``.

        This is the spectrogram-domain entry point (attacks and explainers on spectrograms).
        """
        x = fe.standardize(feats, self.mean, self.std)
        return self.module.apply(self.variables, x, train=False)

    def logits_fn(self, waves):
        """Logits ``(batch, num_outputs)`` of waveforms ``(batch, samples)`` in [-1, 1]."""
        return self.feature_logits_fn(self.features(waves))

    def probabilities_fn(self, waves):
        logits = self.logits_fn(waves)
        if self.task in ("binary", "multilabel"):
            return jax.nn.sigmoid(logits)
        return jax.nn.softmax(logits, -1)

    # -- jitted conveniences on concrete arrays ----------------------------------------------
    def logits(self, waves) -> jax.Array:
        """Jitted ``logits_fn`` on a concrete batch, with input validation."""
        waves = jnp.asarray(waves, dtype=jnp.float32)
        if waves.ndim != 2:
            raise ValueError(f"waves must have shape (batch, samples), got {waves.shape}")
        fe.check_waves(waves, min_samples=self.frontend.n_fft // 2 + 1)
        return self._jit_logits(waves)

    def feature_logits(self, feats) -> jax.Array:
        return self._jit_feature_logits(jnp.asarray(feats, dtype=jnp.float32))

    def predict(self, waves) -> np.ndarray:
        """Predicted class index per waveform (binary: 1 where sigmoid > 0.5; multilabel: the
        most probable tag, see :meth:`predict_tags` for the tag set)."""
        logits = np.asarray(self.logits(waves))
        if self.task == "binary":
            return (logits[:, 0] > 0).astype(np.int32)
        return logits.argmax(-1).astype(np.int32)

    def predict_tags(self, waves, *, threshold: float = TAG_THRESHOLD) -> np.ndarray:
        """``(batch, num_outputs)`` bool tag sets: sigmoid probability above ``threshold``
        (the decision of a ``task="multilabel"`` tagger)."""
        return np.asarray(jax.nn.sigmoid(self.logits(waves))) > threshold

    def fingerprint(self) -> str:
        """Hex SHA-256 of everything that decides the outputs: front-end, architecture,
        label names, task, standardisation statistics and every weight. Two bundles with the
        same fingerprint compute the same function; studies key their caches on it."""
        import hashlib

        h = hashlib.sha256()
        h.update(json.dumps({"frontend": self.frontend.to_dict(), "model": self.model_name,
                             "kwargs": self.model_kwargs, "labels": list(self.label_names),
                             "task": self.task, "excerpt_frames": self.excerpt_frames},
                            sort_keys=True, default=str).encode())
        for arr in (self.mean, self.std, *jax.tree.leaves(self.variables)):
            a = np.ascontiguousarray(np.asarray(arr))
            h.update(f"{a.dtype}{a.shape}".encode())
            h.update(a.tobytes())
        return h.hexdigest()

    # -- persistence -------------------------------------------------------------------------
    def save(self, directory) -> pathlib.Path:
        """Write ``directory/classifier.json`` and an Orbax checkpoint ``directory/variables``."""
        import orbax.checkpoint as ocp

        directory = pathlib.Path(directory).absolute()
        directory.mkdir(parents=True, exist_ok=True)
        target = directory / _VARIABLES
        if target.exists():
            import shutil

            shutil.rmtree(target)
        with ocp.StandardCheckpointer() as ckpt:
            ckpt.save(target, jax.device_get(self.variables))
            ckpt.wait_until_finished()
        meta = {
            "format": "jaxaudio.Classifier/1",
            "frontend": self.frontend.to_dict(),
            "model_name": self.model_name,
            "model_class": _module_path(type(self.module)),
            "model_kwargs": self.model_kwargs,
            "mean": np.asarray(self.mean).tolist(),
            "std": np.asarray(self.std).tolist(),
            "label_names": list(self.label_names),
            "task": self.task,
            "excerpt_frames": self.excerpt_frames,
            "fingerprint": self.fingerprint(),
        }
        (directory / _METADATA).write_text(json.dumps(meta, indent=2))
        return directory

    @classmethod
    def load(cls, directory) -> "Classifier":
        """Load a classifier written by :meth:`save`; ``CheckpointError`` if missing/corrupt."""
        import orbax.checkpoint as ocp

        directory = pathlib.Path(directory).absolute()
        meta_path = directory / _METADATA
        if not meta_path.is_file():
            raise CheckpointError(f"no classifier at {directory}: {_METADATA} is missing")
        try:
            meta = json.loads(meta_path.read_text())
            frontend = fe.FrontendConfig.from_dict(meta["frontend"])
            _import_model(meta["model_name"], meta.get("model_class"))
            module = build_module(meta["model_name"], meta["model_kwargs"])
        except (ValueError, KeyError, TypeError) as err:
            raise CheckpointError(f"corrupt classifier metadata {meta_path}: {err}") from err
        # Abstract target from a fresh init so the restore checks every array's shape/dtype.
        dummy = jnp.zeros((1, frontend.n_mels, meta["excerpt_frames"]), jnp.float32)
        abstract = jax.eval_shape(lambda: module.init(jax.random.key(0), dummy, train=False))
        try:
            with ocp.StandardCheckpointer() as ckpt:
                variables = ckpt.restore(directory / _VARIABLES, abstract)
        except Exception as err:  # Orbax raises many types for truncated / garbled files
            raise CheckpointError(
                f"corrupt or incomplete checkpoint {directory / _VARIABLES}: "
                f"{type(err).__name__}: {err}"
            ) from err
        clf = cls(
            frontend=frontend, model_name=meta["model_name"], model_kwargs=meta["model_kwargs"],
            variables=variables, mean=np.asarray(meta["mean"], np.float32),
            std=np.asarray(meta["std"], np.float32), label_names=tuple(meta["label_names"]),
            task=meta["task"], excerpt_frames=int(meta["excerpt_frames"]),
        )
        saved = meta.get("fingerprint")  # absent in classifiers saved before it was recorded
        if saved is not None and clf.fingerprint() != saved:
            raise CheckpointError(
                f"corrupt classifier {directory}: its weights or metadata do not match the "
                f"fingerprint saved with them (changed after saving?)")
        return clf


def load_classifier(directory, *, flag: str = "--model") -> Classifier:
    """:meth:`Classifier.load` for a command-line value: a failure names ``flag``."""
    try:
        return Classifier.load(directory)
    except ValueError as err:
        raise CheckpointError(f"{flag}: {err}") from None


def init_classifier(*, model_name: str, model_kwargs: dict, frontend: fe.FrontendConfig,
                    label_names, task: str, excerpt_frames: int, key,
                    mean=None, std=None) -> Classifier:
    """A freshly initialised classifier (identity normalisation unless mean/std given)."""
    module = build_module(model_name, model_kwargs)
    dummy = jnp.zeros((1, frontend.n_mels, excerpt_frames), jnp.float32)
    variables = module.init(key, dummy, train=False)
    mean = np.zeros(frontend.n_mels, np.float32) if mean is None else mean
    std = np.ones(frontend.n_mels, np.float32) if std is None else std
    return Classifier(frontend=frontend, model_name=model_name, model_kwargs=dict(model_kwargs),
                      variables=variables, mean=np.asarray(mean, np.float32),
                      std=np.asarray(std, np.float32), label_names=tuple(label_names),
                      task=task, excerpt_frames=excerpt_frames)
