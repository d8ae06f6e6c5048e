"""Explain a classifier's decision on an excerpt of the user's own audio file
(``jaxaudio explain --audio FILE``): LIME, occlusion or integrated gradients over the
5 x 4 time-frequency components of the excerpt's spectrogram, as in study 3.
"""

from __future__ import annotations

from typing import Optional

import numpy as np

from jaxaudio import explain as ex
from jaxaudio.data import load_audio
from jaxaudio.models import inference

__all__ = ["METHODS", "file_excerpt", "explain_excerpt", "explanation_record"]

METHODS = ("lime", "occlusion", "integrated-gradients")


def file_excerpt(classifier, path, *, start: float = 0.0) -> tuple[np.ndarray, float]:
    """The classifier's excerpt (``classifier.excerpt_samples`` samples at its rate, float32)
    of the audio file ``path`` starting at ``start`` seconds, zero-padded at the end of a short
    file. Returns ``(excerpt, file_seconds)``; ``ValueError`` naming ``--start`` if it lies
    outside the file."""

    rate = classifier.frontend.sample_rate
    wave, _ = load_audio(path, sample_rate=rate)
    seconds = len(wave) / rate
    if not 0.0 <= start < seconds:
        raise ValueError(f"--start {start}: must be in [0, {seconds:.2f}) s, the length of {path}")
    first = int(round(start * rate))
    excerpt = np.zeros(classifier.excerpt_samples, np.float32)
    piece = wave[first:first + classifier.excerpt_samples]
    excerpt[:len(piece)] = piece
    return excerpt, seconds


def _predict_fn(classifier):

    if classifier.task == "binary":
        return ex.binary_to_two_class(classifier.feature_logits_fn, from_logits=True,
                                      threshold=inference.VOICE_THRESHOLD)
    return ex.softmax_of(classifier.feature_logits_fn)


def explain_excerpt(classifier, excerpt, *, method: str = "lime", label: Optional[str] = None,
                    num_samples: int = 8192, seed: int = 0, progress: bool = False):
    """:class:`~jaxaudio.explain.Explanation` of ``classifier``'s output ``label`` (a class
    name; ``None``: its decision) on ``excerpt`` (``(excerpt_samples,)`` float32 at its rate),
    over the 5 x 4 components of the excerpt's spectrogram with the mean baseline (study 3).
    ``method``: one of :data:`METHODS`; ``num_samples``: LIME's perturbation samples."""
    import jax

    if method not in METHODS:
        raise ValueError(f"--method must be one of {', '.join(METHODS)}, got {method!r}")
    names = list(classifier.label_names)
    if label is not None and label not in names:
        raise ValueError(f"--label {label!r} is not a class of the model; choose one of "
                         f"{', '.join(names)}")
    labels = None if label is None else (names.index(label),)
    spec = np.asarray(jax.jit(classifier.features)(excerpt[None]))[0]
    predict = _predict_fn(classifier)
    if method == "lime":
        return ex.explain(predict, spec, key=jax.random.key(seed), num_samples=num_samples,
                          labels=labels, progress=progress)
    if method == "occlusion":
        return ex.occlusion(predict, spec, labels=labels)
    return ex.integrated_gradients(predict, spec, labels=labels)


def explanation_record(exp, classifier, *, file, start: float, seconds: float) -> dict:
    """The JSON record of an explanation: file, excerpt, method, the explained class, the
    model's probabilities, per-component weights (component ``t * n_frequency + f``: time
    segment ``t``, frequency band ``f`` from the lowest) and LIME's fidelity (R²)."""
    names = list(classifier.label_names)
    rate = classifier.frontend.sample_rate
    return {"file": str(file), "file_seconds": seconds, "start_seconds": start,
            "excerpt_seconds": classifier.excerpt_samples / rate, "method": exp.method,
            "label": names[exp.labels[0]], "probability": float(exp.reference_prediction[0]),
            "n_temporal": exp.n_temporal, "n_frequency": exp.n_frequency,
            "weights": [float(w) for w in exp.weights[0]],
            "ranking": [int(c) for c in np.argsort(-exp.weights[0])],
            "fidelity_r2": None if exp.score is None else float(exp.score[0]),
            "num_samples": int(exp.num_samples)}


