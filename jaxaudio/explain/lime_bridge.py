"""LIME for spectrogram classifiers: perturbations on device, surrogate from the real ``lime``.

The recipe is ``lime.lime_image.LimeImageExplainer``'s, with the time-frequency rectangles of
:mod:`jaxaudio.explain.segmentation` as superpixels (docs/studies.md §3):

1. draw ``num_samples`` binary vectors ``z`` (one bit per component, fair coin), the first row
   all ones — the unperturbed input;
2. build every perturbed spectrogram (``compose``: switched-off components take the baseline)
   and evaluate the classifier, in fixed-size chunks under one compiled function;
3. distances = cosine distance between each ``z`` and the all-ones row, computed with
   ``sklearn.metrics.pairwise_distances(..., metric="cosine")`` exactly as ``lime_image`` does
   (``lime_image`` does *not* multiply by 100; ``lime_text`` does, with kernel width 25);
4. kernel ``sqrt(exp(-d**2 / kernel_width**2))`` with ``kernel_width=0.25`` (``lime_image``'s);
5. weighted ridge surrogate fitted by ``lime.lime_base.LimeBase.explain_instance_with_data``
   (``Ridge(alpha=1, fit_intercept=True)``), once per explained label; fidelity is its R².

All randomness comes from one ``jax.random`` key: the same key gives the same explanation.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import time
from typing import Any, Callable, Optional, Sequence, Union

import jax
import jax.numpy as jnp
import numpy as np
import sklearn.base
import sklearn.metrics

from jaxaudio.explain.segmentation import (
    BaselineLike,
    baseline_value,
    check_spec,
    component_masks,
    compose,
)
from jaxaudio.runtime.extras import require

__all__ = [
    "Explanation",
    "PredictFn",
    "binary_to_two_class",
    "softmax_of",
    "lime_kernel",
    "lime_distances",
    "sample_components",
    "predict_components",
    "explain",
    "explain_waveform",
    "topk_stability",
    "jit_over_predict_fn",
    "default_chunk_size",
]

#: ``predict_fn(specs (batch, n_bins, n_frames)) -> (batch, num_outputs)`` probabilities.
#: It must treat examples independently (models in inference mode) and be traceable by JAX.
#: Compiled programs are cached per callable object, so build it once and reuse it; or pass
#: ``jax.tree_util.Partial(apply, variables)`` to trace the variables instead of baking them in.
PredictFn = Callable[[jax.Array], jax.Array]

LabelsLike = Union[None, int, Sequence[int]]

# lime_image's default ``num_features``: with feature_selection="auto" it resolves to
# "highest_weights" over all components, i.e. every component gets a weight.
_LIME_IMAGE_NUM_FEATURES = 100000


# --------------------------------------------------------------------------- result container


@dataclasses.dataclass(frozen=True, eq=False)
class Explanation:
    """Per-component attribution of one spectrogram, for one or more labels.

    Shared by every explainer (:func:`explain` = LIME, ``occlusion``, ``integrated_gradients``).

    Attributes:
      weights: ``(num_labels, num_components)`` float64, dense, in component order
        (``t * n_frequency + f``). Row ``i`` belongs to ``labels[i]``.
      labels: the explained output indices.
      method: ``"lime"``, ``"occlusion"`` or ``"integrated_gradients"``.
      n_temporal, n_frequency: the segmentation.
      spec: the explained spectrogram ``(n_bins, n_frames)`` float32.
      baseline: the baseline kind (``"mean"``, ...) or ``"custom"`` for a user array/number.
      reference_prediction: ``(num_labels,)`` model output of the unperturbed input.
      intercept, score, local_prediction: ``(num_labels,)`` — LIME surrogate's intercept,
        weighted R² (fidelity) and its prediction for the unperturbed input; ``None`` for other
        methods.
      num_samples: number of model evaluations behind the weights (LIME: perturbation samples).
      samples: ``(num_samples, num_components)`` uint8 binary vectors (first row all ones), or
        ``None``.
      predictions: ``(num_samples, num_outputs)`` model outputs for ``samples``, or ``None``.
      info: method-specific extras (e.g. integrated gradients' completeness check).
    """

    weights: np.ndarray
    labels: tuple[int, ...]
    method: str
    n_temporal: int
    n_frequency: int
    spec: np.ndarray
    baseline: str
    reference_prediction: np.ndarray
    intercept: Optional[np.ndarray] = None
    score: Optional[np.ndarray] = None
    local_prediction: Optional[np.ndarray] = None
    num_samples: Optional[int] = None
    samples: Optional[np.ndarray] = None
    predictions: Optional[np.ndarray] = None
    info: dict = dataclasses.field(default_factory=dict)

    @property
    def num_components(self) -> int:
        return int(self.weights.shape[1])

    @property
    def input_shape(self) -> tuple[int, int]:
        return tuple(int(s) for s in self.spec.shape)

    def _row(self, label: Optional[int]) -> int:
        if label is None:
            return 0
        try:
            return self.labels.index(int(label))
        except ValueError:
            raise ValueError(f"label {label} was not explained; explained labels: {self.labels}") from None

    def weights_for(self, label: Optional[int] = None) -> np.ndarray:
        """``(num_components,)`` weights of ``label`` (default: the first explained label)."""
        return self.weights[self._row(label)]

    def ranking(self, label: Optional[int] = None) -> np.ndarray:
        """All components sorted by weight, most positive first (ties: lower index first)."""
        return np.argsort(-self.weights_for(label), kind="stable")

    def top_k(self, label: Optional[int] = None, k: int = 3) -> np.ndarray:
        """The ``k`` components with the largest (most positive) weights for ``label``."""
        if int(k) != k or not 0 <= k <= self.num_components:
            raise ValueError(f"k must be an integer in [0, {self.num_components}], got {k!r}")
        return self.ranking(label)[: int(k)]

    def positive_components(self, label: Optional[int] = None) -> np.ndarray:
        """Components with weight > 0 for ``label``, most positive first."""
        order = self.ranking(label)
        return order[self.weights_for(label)[order] > 0]

    def local_exp(self, label: Optional[int] = None) -> list[tuple[int, float]]:
        """``lime``-style list ``[(component, weight)]`` sorted by decreasing ``|weight|``."""
        w = self.weights_for(label)
        order = np.argsort(-np.abs(w), kind="stable")
        return [(int(c), float(w[c])) for c in order]

    def masks(self) -> np.ndarray:
        """``(num_components, n_bins, n_frames)`` masks of the explanation's segmentation."""
        return component_masks(self.input_shape, n_temporal=self.n_temporal, n_frequency=self.n_frequency)

    def weight_map(self, label: Optional[int] = None) -> np.ndarray:
        """``(n_bins, n_frames)`` image of the weights (each cell shows its component's weight)."""
        return np.einsum("c,cft->ft", self.weights_for(label), self.masks())

    def to_dict(self) -> dict:
        """JSON-friendly summary (no samples/predictions/spectrogram)."""

        def lst(a):
            return None if a is None else np.asarray(a).tolist()

        return {
            "method": self.method,
            "labels": list(self.labels),
            "weights": lst(self.weights),
            "n_temporal": self.n_temporal,
            "n_frequency": self.n_frequency,
            "input_shape": list(self.input_shape),
            "baseline": self.baseline,
            "reference_prediction": lst(self.reference_prediction),
            "intercept": lst(self.intercept),
            "score": lst(self.score),
            "local_prediction": lst(self.local_prediction),
            "num_samples": self.num_samples,
            "info": {k: (lst(v) if isinstance(v, np.ndarray) else v) for k, v in self.info.items()},
        }


# --------------------------------------------------------------------------- predict wrappers


@functools.partial(jax.tree_util.register_dataclass, data_fields=["fn"],
                   meta_fields=["from_logits", "threshold"])
@dataclasses.dataclass(frozen=True)
class _TwoClass:
    # A frozen dataclass (hash/eq by the wrapped function) rather than a closure, so that two
    # wrappers of the same function hit the same compiled program; a pytree, so that wrapping a
    # jax.tree_util.Partial(apply, variables) keeps the variables traced.
    fn: Callable
    from_logits: bool = False
    threshold: float = 0.5

    def __call__(self, specs):
        out = jnp.asarray(self.fn(specs))
        if out.ndim == 2 and out.shape[-1] == 1:
            out = out[:, 0]
        if out.ndim != 1:
            raise ValueError(
                f"binary_to_two_class expects one output per example, (batch,) or (batch, 1); got {out.shape}"
            )
        if self.threshold != 0.5:  # recentre: q = 0.5 exactly where p = threshold
            logit = out if self.from_logits else jnp.log(out) - jnp.log1p(-out)
            out, from_logits = logit - np.log(self.threshold / (1.0 - self.threshold)), True
        else:
            from_logits = self.from_logits
        p = jax.nn.sigmoid(out) if from_logits else out
        return jnp.stack([1.0 - p, p], axis=-1)


def binary_to_two_class(predict_fn: Callable, *, from_logits: bool = False,
                        threshold: float = 0.5) -> PredictFn:
    """Turn a one-output detector (``(batch,)`` or ``(batch, 1)`` probability of the positive
    class; a logit if ``from_logits``) into ``(batch, 2)`` ``[1 - p, p]``, so labels 0 and 1 can
    both be explained.

    ``threshold``: the detector's decision threshold in (0, 1) (the singing voice detector
    decides "sing" at p > 0.51). Other than 0.5, the two-class output is recentred,
    ``q = sigmoid(logit(p) - logit(threshold))``, so that its argmax is the detector's decision
    (a monotone change of p: q > 0.5 exactly where p > threshold)."""
    if not 0.0 < float(threshold) < 1.0:
        raise ValueError(f"threshold must be in (0, 1), got {threshold}")
    return _TwoClass(predict_fn, bool(from_logits), float(threshold))


@functools.partial(jax.tree_util.register_dataclass, data_fields=["fn"], meta_fields=[])
@dataclasses.dataclass(frozen=True)
class _Softmax:
    fn: Callable

    def __call__(self, specs):
        return jax.nn.softmax(self.fn(specs), axis=-1)


def softmax_of(logits_fn: Callable) -> PredictFn:
    """``(batch, num_classes)`` probabilities from a logits function (LIME explains probabilities)."""
    return _Softmax(logits_fn)


# --------------------------------------------------------------------------- the pieces


def lime_kernel(distances, kernel_width: float = 0.25) -> np.ndarray:
    """``lime_image``'s default kernel: ``sqrt(exp(-d**2 / kernel_width**2))``."""
    d = np.asarray(distances)
    return np.sqrt(np.exp(-(d**2) / kernel_width**2))


def lime_distances(samples) -> np.ndarray:
    """Cosine distance of every binary vector to the first (all-ones) row, as ``lime_image``."""
    data = np.asarray(samples)
    return sklearn.metrics.pairwise_distances(data, data[0].reshape(1, -1), metric="cosine").ravel()


def sample_components(key: jax.Array, num_samples: int, num_components: int) -> jax.Array:
    """``(num_samples, num_components)`` float32 fair-coin 0/1 vectors; the first row all ones."""
    z = jax.random.bernoulli(key, 0.5, (int(num_samples), int(num_components))).astype(jnp.float32)
    return z.at[0].set(1.0)


def _has_array_leaves(predict_fn) -> bool:
    """True if ``predict_fn`` is a pytree of arrays (e.g. ``jax.tree_util.Partial(apply, params)``)."""
    leaves = jax.tree_util.tree_leaves(predict_fn)
    return bool(leaves) and all(isinstance(leaf, (jax.Array, np.ndarray)) for leaf in leaves)


def jit_over_predict_fn(fn: Callable) -> Callable:
    """``jax.jit`` ``fn(predict_fn, *arrays)`` two ways, picked per call.

    A plain callable is a static argument: compiled once per callable object (hash/eq), its
    captured arrays baked in as constants. A pytree of arrays — ``jax.tree_util.Partial(apply,
    variables)``, or the wrappers below around one — is traced: new variables of the same
    shapes reuse the compiled program.
    """
    static = jax.jit(fn, static_argnums=0)
    traced = jax.jit(fn)

    @functools.wraps(fn)
    def call(predict_fn, *args):
        return (traced if _has_array_leaves(predict_fn) else static)(predict_fn, *args)

    call.static, call.traced = static, traced
    return call


@jit_over_predict_fn
def _predict_chunk(predict_fn, spec, masks, baseline, z):
    return predict_fn(compose(spec, masks, baseline, z))


def _batch_sharding(chunk: int):
    """Shard a chunk's batch axis over all local devices when it divides evenly, else None.

    Local: in a multi-process job (:mod:`jaxaudio.runtime.distributed`) each process explains its own
    excerpts on its own devices."""
    devices = jax.local_devices()
    if len(devices) < 2 or chunk % len(devices):
        return None
    mesh = jax.sharding.Mesh(np.asarray(devices), ("batch",))
    return jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec("batch"))


#: Default perturbed spectrograms per device call, per backend (see :func:`default_chunk_size`).
DEFAULT_CHUNK_SIZES = {"cpu": 16}
_ACCELERATOR_CHUNK_SIZE = 1024


def default_chunk_size(backend: Optional[str] = None) -> int:
    """Perturbed spectrograms per device call when ``chunk_size=None``.

    On an accelerator, large chunks (1024) amortise kernel launches and fill the device. On a
    CPU the forward pass is compute-bound and a chunk's activations must stay in cache: with the
    singing voice detector (80 x 115 input) the cost per example is flat for chunks of 4-32
    and doubles from 64 on (the first conv's output alone is ``chunk x 78 x 113 x width``
    floats), so 16 is used (``benchmarks/lime_throughput.py`` measures it).
    """
    backend = jax.default_backend() if backend is None else backend
    return DEFAULT_CHUNK_SIZES.get(backend, _ACCELERATOR_CHUNK_SIZE)


def predict_components(
    predict_fn: PredictFn,
    spec,
    masks,
    baseline,
    z,
    *,
    chunk_size: Optional[int] = None,
    progress: bool = False,
) -> np.ndarray:
    """Model outputs for the perturbed spectrograms of binary vectors ``z``.

    Composes and predicts on device, ``chunk_size`` vectors at a time (``None``:
    :func:`default_chunk_size` for the default backend), all chunks through one
    compiled program (the last chunk is padded, so nothing recompiles; the program is cached
    per ``predict_fn`` object — pass the same object to reuse it). With several devices the
    chunk's batch axis is sharded over them.

    Args:
      predict_fn: ``(batch, n_bins, n_frames) -> (batch, num_outputs)``.
      spec: ``(n_bins, n_frames)``.
      masks: ``(num_components, n_bins, n_frames)``.
      baseline: scalar or array (see ``baseline_value``).
      z: ``(num_vectors, num_components)``.

    Returns:
      ``(num_vectors, num_outputs)`` float64 numpy array.
    """
    if chunk_size is None:
        chunk_size = default_chunk_size()
    if int(chunk_size) != chunk_size or chunk_size < 1:
        raise ValueError(f"chunk_size must be an integer >= 1, got {chunk_size!r}")
    z = np.asarray(z, dtype=np.float32)
    if z.ndim != 2 or z.shape[1] != np.shape(masks)[0]:
        raise ValueError(f"z must have shape (num_vectors, {np.shape(masks)[0]}), got {z.shape}")
    n = z.shape[0]
    if n == 0:
        raise ValueError("z must hold at least one binary vector")
    chunk = min(int(chunk_size), n)
    num_chunks = math.ceil(n / chunk)
    padded = np.concatenate([z, np.ones((num_chunks * chunk - n, z.shape[1]), np.float32)])
    spec = jnp.asarray(spec, jnp.float32)
    masks = jnp.asarray(masks, jnp.float32)
    baseline = jnp.asarray(baseline, jnp.float32)
    sharding = _batch_sharding(chunk)
    chunks = range(num_chunks)
    if progress:
        from tqdm.auto import tqdm

        chunks = tqdm(chunks, desc="lime samples", unit="chunk")
    outputs = []
    for i in chunks:
        zc = padded[i * chunk : (i + 1) * chunk]
        if sharding is not None:
            zc = jax.device_put(zc, sharding)
        out = _predict_chunk(predict_fn, spec, masks, baseline, zc)
        outputs.append(np.asarray(out) if progress else out)  # sync only to show progress
    preds = np.concatenate([np.asarray(o, dtype=np.float64) for o in outputs])[:n]
    if preds.ndim != 2:
        raise ValueError(
            f"predict_fn must return (batch, num_outputs), got shape {preds.shape[1:]} per example; "
            "wrap a one-output detector with binary_to_two_class"
        )
    if not np.all(np.isfinite(preds)):
        raise ValueError("predict_fn returned NaN or Inf for some perturbed spectrograms")
    return preds


def resolve_labels(labels: LabelsLike, reference: np.ndarray) -> tuple[int, ...]:
    num_outputs = reference.shape[-1]
    if labels is None:
        return (int(np.argmax(reference)),)
    if isinstance(labels, (int, np.integer)):
        labels = (labels,)
    labels = tuple(int(l) for l in labels)
    if not labels:
        raise ValueError("labels must name at least one output")
    for l in labels:
        if not 0 <= l < num_outputs:
            raise ValueError(f"unknown label {l}: predict_fn has {num_outputs} outputs")
    return labels


def baseline_name(baseline: BaselineLike) -> str:
    return baseline if isinstance(baseline, str) else "custom"


def _seed_from_key(key: jax.Array) -> int:
    return int(jax.random.randint(key, (), 0, np.iinfo(np.int32).max))


def _check_key(key) -> jax.Array:
    if key is None:
        raise ValueError("key must be a jax.random key (e.g. jax.random.key(0))")
    return key


# --------------------------------------------------------------------------- LIME


def explain(
    predict_fn: PredictFn,
    spec,
    *,
    key: jax.Array,
    num_samples: int = 8192,
    n_temporal: int = 5,
    n_frequency: int = 4,
    baseline: BaselineLike = "mean",
    labels: LabelsLike = None,
    chunk_size: Optional[int] = None,
    kernel_width: float = 0.25,
    num_features: Optional[int] = None,
    feature_selection: str = "auto",
    model_regressor: Any = None,
    keep_predictions: bool = True,
    progress: bool = False,
) -> Explanation:
    """LIME explanation of one spectrogram over time-frequency rectangles.

    Args:
      predict_fn: ``(batch, n_bins, n_frames) -> (batch, num_outputs)`` probabilities, JAX-
        traceable, examples independent (inference mode). For a one-output detector use
        :func:`binary_to_two_class`. Compiled once per ``predict_fn`` object and chunk size.
      spec: ``(n_bins, n_frames)`` spectrogram exactly as the classifier sees it.
      key: ``jax.random`` key; the only source of randomness (samples, ``"shuffle"`` baseline,
        the ``random_state`` handed to ``LimeBase``).
      num_samples: perturbation samples (docs/studies.md §3: 8192), >= 2; the first is the input.
      n_temporal, n_frequency: segmentation (5 x 4 = 20 components).
      baseline: ``"mean"`` (study default), ``"zero"``, ``"min"``, ``"shuffle"``, a number or
        an array of ``spec``'s shape.
      labels: output indices to explain; ``None`` = the top label of the unperturbed input.
      chunk_size: perturbed spectrograms per device call; ``None`` = :func:`default_chunk_size`
        (16 on CPU, 1024 on accelerators).
      kernel_width: width of ``lime_image``'s exponential kernel on cosine distance.
      num_features: passed to ``LimeBase``; ``None`` = ``lime_image``'s default (all components).
      feature_selection: ``LimeBase``'s feature selection (``"auto"`` as in ``lime_image``).
      model_regressor: sklearn regressor for the surrogate (cloned per label); ``None`` =
        ``LimeBase``'s ``Ridge(alpha=1, fit_intercept=True)``.
      keep_predictions: store ``samples`` and ``predictions`` in the result.
      progress: show a progress bar over chunks.

    Returns:
      :class:`Explanation` with ``method="lime"``.

    Raises:
      ValueError: ``num_samples < 2``, unknown baseline, non-finite or non-2-D ``spec``,
        segmentation finer than ``spec``, unknown labels, bad ``predict_fn`` output.
    """
    _check_key(key)
    spec_np = check_spec(spec).astype(np.float32)
    if int(num_samples) != num_samples or num_samples < 2:
        raise ValueError(f"num_samples must be an integer >= 2 (the first sample is the input), got {num_samples!r}")
    if not kernel_width > 0:
        raise ValueError(f"kernel_width must be > 0, got {kernel_width!r}")
    masks = component_masks(spec_np.shape, n_temporal=n_temporal, n_frequency=n_frequency)
    key_samples, key_baseline, key_fit = jax.random.split(key, 3)
    base = baseline_value(spec_np, baseline, key=key_baseline)

    z = np.asarray(sample_components(key_samples, num_samples, masks.shape[0]))
    predictions = predict_components(
        predict_fn, spec_np, masks, base, z, chunk_size=chunk_size, progress=progress
    )
    label_tuple = resolve_labels(labels, predictions[0])

    data = z.astype(np.int64)  # lime_image hands LimeBase integer 0/1 data
    distances = lime_distances(data)
    kernel_fn = functools.partial(lime_kernel, kernel_width=float(kernel_width))
    lime_base = require("lime.lime_base", "audit", feature="LIME in jaxaudio.explain")
    base_model = lime_base.LimeBase(kernel_fn, verbose=False, random_state=_seed_from_key(key_fit))
    nf = _LIME_IMAGE_NUM_FEATURES if num_features is None else int(num_features)

    num_components = masks.shape[0]
    weights = np.zeros((len(label_tuple), num_components))
    intercept = np.zeros(len(label_tuple))
    score = np.zeros(len(label_tuple))
    local_pred = np.zeros(len(label_tuple))
    for row, label in enumerate(label_tuple):
        regressor = None if model_regressor is None else sklearn.base.clone(model_regressor)
        b, exp, r2, lp = base_model.explain_instance_with_data(
            data, predictions, distances, label, nf,
            feature_selection=feature_selection, model_regressor=regressor,
        )
        for component, weight in exp:
            weights[row, int(component)] = weight
        intercept[row] = float(b)
        score[row] = float(r2)
        local_pred[row] = float(np.ravel(lp)[0])

    return Explanation(
        weights=weights,
        labels=label_tuple,
        method="lime",
        n_temporal=int(n_temporal),
        n_frequency=int(n_frequency),
        spec=spec_np,
        baseline=baseline_name(baseline),
        reference_prediction=predictions[0, list(label_tuple)].copy(),
        intercept=intercept,
        score=score,
        local_prediction=local_pred,
        num_samples=int(num_samples),
        samples=z.astype(np.uint8) if keep_predictions else None,
        predictions=predictions if keep_predictions else None,
        info={"kernel_width": float(kernel_width)},
    )


def explain_waveform(
    predict_spec: PredictFn,
    to_spec: Callable[[jax.Array], jax.Array],
    wave,
    *,
    key: jax.Array,
    **explain_kwargs,
) -> Explanation:
    """LIME explanation of a waveform input, segmented on the spectrogram the classifier sees.

    ``to_spec(wave (num_samples,)) -> (n_bins, n_frames)`` is the classifier's front-end (a
    leading batch axis of size 1 is dropped) and ``predict_spec`` the rest of the classifier,
    ``(batch, n_bins, n_frames) -> (batch, num_outputs)``. Perturbations act on the spectrogram:
    ``predict_spec(to_spec(wave))`` is the prediction being explained. Other keywords go to
    :func:`explain`; the result's ``spec`` is ``to_spec(wave)``.
    """
    wave = np.asarray(wave)
    if wave.ndim != 1 or wave.size == 0:
        raise ValueError(f"wave must be one non-empty waveform (num_samples,), got shape {wave.shape}")
    if not np.all(np.isfinite(wave)):
        raise ValueError("wave contains NaN or Inf samples")
    spec = np.asarray(to_spec(jnp.asarray(wave, jnp.float32)))
    if spec.ndim == 3 and spec.shape[0] == 1:
        spec = spec[0]
    return explain(predict_spec, check_spec(spec, "to_spec(wave)"), key=key, **explain_kwargs)


def topk_stability(
    predict_fn: PredictFn,
    spec,
    *,
    key: jax.Array,
    sample_sizes: Sequence[int] = (512, 1024, 2048, 4096, 8192),
    k: int = 3,
    repeats: int = 5,
    label: Optional[int] = None,
    **explain_kwargs,
) -> dict:
    """How stable LIME's top-k components are as ``num_samples`` shrinks.

    A reference explanation is computed at ``max(sample_sizes)`` with its own key; then, for each
    size, ``repeats`` explanations with fresh keys are compared with the reference on the top-k
    components of ``label`` (default: the reference's top label).

    Returns:
      JSON-friendly dict: ``label``, ``k``, ``reference_size``, ``reference_top_k``,
      ``sample_sizes`` and, per size (lists in the same order), ``mean_overlap`` and
      ``std_overlap`` (``|top_k ∩ reference| / k``), ``mean_jaccard``, ``mean_score`` (R²),
      ``seconds`` (mean wall time per explanation, first-call compilation included).
    """
    _check_key(key)
    sizes = [int(s) for s in sample_sizes]
    if not sizes:
        raise ValueError("sample_sizes must not be empty")
    if int(repeats) != repeats or repeats < 1:
        raise ValueError(f"repeats must be an integer >= 1, got {repeats!r}")
    for name in ("num_samples", "labels", "key"):
        if name in explain_kwargs:
            raise ValueError(f"{name} is set by topk_stability; do not pass it")
    key_ref, key_rep = jax.random.split(key)
    ref = explain(predict_fn, spec, key=key_ref, num_samples=max(sizes), labels=label,
                  keep_predictions=False, **explain_kwargs)
    label = ref.labels[0]
    if int(k) != k or not 1 <= k <= ref.num_components:
        raise ValueError(f"k must be an integer in [1, {ref.num_components}], got {k!r}")
    ref_top = set(ref.top_k(label, k).tolist())
    result = {
        "label": int(label), "k": int(k), "reference_size": max(sizes),
        "reference_top_k": sorted(ref_top), "sample_sizes": sizes,
        "mean_overlap": [], "std_overlap": [], "mean_jaccard": [], "mean_score": [], "seconds": [],
    }
    for i, size in enumerate(sizes):
        overlaps, jaccards, scores, seconds = [], [], [], []
        for r in range(int(repeats)):
            start = time.perf_counter()
            exp = explain(predict_fn, spec, key=jax.random.fold_in(key_rep, i * int(repeats) + r),
                          num_samples=size, labels=(label,), keep_predictions=False, **explain_kwargs)
            seconds.append(time.perf_counter() - start)
            top = set(exp.top_k(label, k).tolist())
            overlaps.append(len(top & ref_top) / k)
            jaccards.append(len(top & ref_top) / len(top | ref_top))
            scores.append(float(exp.score[0]))
        result["mean_overlap"].append(float(np.mean(overlaps)))
        result["std_overlap"].append(float(np.std(overlaps)))
        result["mean_jaccard"].append(float(np.mean(jaccards)))
        result["mean_score"].append(float(np.mean(scores)))
        result["seconds"].append(float(np.mean(seconds)))
    return result
