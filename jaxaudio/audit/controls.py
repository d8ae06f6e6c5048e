"""Controls of the veracity audit (docs/studies.md §3): horses, subset perturbations, fidelity.

- *Horses*: obvious, human-visible edits drawn into one known component of a spectrogram
  (a bright band, a harmonic comb or a blob) that flip the label. An explainer that works
  should rank the edited component on top. :func:`horse_patterns` draws the edits,
  :func:`find_horses` searches the weakest edit that flips each example (all candidates of a
  chunk of examples in one compiled call), :func:`detection_rate` scores the explanations.
- *Subset perturbations*: the adversarial change is confined to a random subset ``S`` of
  components (:func:`random_subsets`; :func:`subset_logits_fn` lets any attack of
  :mod:`jaxaudio.attacks` optimise only inside ``S``). :func:`subset_recall` counts how many of
  ``S`` the explainer ranks in its top ``|S|``.
- *Fidelity*: :func:`fidelity_vs_correctness` relates the surrogate's R² to whether the
  explanation was right.
"""

from __future__ import annotations

from typing import Callable, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from jaxaudio.audit.veracity import check_batch
from jaxaudio.dsp.batching import map_chunks
from jaxaudio.explain.lime_bridge import PredictFn, jit_over_predict_fn

__all__ = [
    "HORSE_KINDS",
    "horse_patterns",
    "find_horses",
    "detection_rate",
    "random_subsets",
    "subset_logits_fn",
    "subset_recall",
    "fidelity_vs_correctness",
]

#: Edits :func:`horse_patterns` can draw.
HORSE_KINDS: tuple[str, ...] = ("band", "comb", "blob")


# --------------------------------------------------------------------------- horses


def horse_patterns(masks, kind: str = "band") -> np.ndarray:
    """Unit-amplitude edit of each component: ``(num_components, n_bins, n_frames)`` float32.

    Parameters
    ----------
    masks : np.ndarray [shape=(num_components, n_bins, n_frames)]
        Rectangular component masks (:func:`jaxaudio.explain.component_masks`).
    kind : {"band", "comb", "blob"}
        ``"band"``: the whole rectangle raised by 1 (a bright block); ``"comb"``: every other
        frequency bin of the rectangle raised by 1 (harmonic-looking horizontal stripes);
        ``"blob"``: a Gaussian bump of peak 1 centred in the rectangle (std = a quarter of its
        sides), zero outside it.

    Returns
    -------
    np.ndarray
        Pattern ``c`` is non-zero only inside component ``c``; an edit of amplitude ``a`` is
        ``spec + a * patterns[c]`` (``a`` in the spectrogram's units).
    """
    masks = np.asarray(masks, np.float32)
    if masks.ndim != 3:
        raise ValueError(f"masks must be (num_components, n_bins, n_frames), got {masks.shape}")
    if kind not in HORSE_KINDS:
        raise ValueError(f"kind must be one of {HORSE_KINDS}, got {kind!r}")
    if kind == "band":
        return masks.copy()
    out = np.zeros_like(masks)
    for c, m in enumerate(masks):
        rows, cols = np.nonzero(m)
        if rows.size == 0:
            continue
        if kind == "comb":
            out[c] = m * ((np.arange(m.shape[0]) - rows.min()) % 2 == 0)[:, None]
        else:
            fc, tc = (rows.min() + rows.max()) / 2, (cols.min() + cols.max()) / 2
            sf = max((rows.max() - rows.min() + 1) / 4, 0.5)
            st = max((cols.max() - cols.min() + 1) / 4, 0.5)
            f = np.arange(m.shape[0])[:, None]
            t = np.arange(m.shape[1])[None, :]
            blob = m * np.exp(-0.5 * (((f - fc) / sf) ** 2 + ((t - tc) / st) ** 2))
            out[c] = blob / blob.max()  # peak exactly 1 even when the centre falls between cells
    return out


@jit_over_predict_fn
def _horse_chunk(predict_fn, specs, patterns, amplitudes, labels):
    """specs (e, F, T), patterns (P, F, T), amplitudes (A,), labels (e,) -> (e, A, P) flipped."""

    def one_example(spec, label):
        def one_amplitude(a):
            return jnp.argmax(predict_fn(spec[None] + a * patterns), axis=-1) != label

        return jax.vmap(one_amplitude)(amplitudes)

    return jax.vmap(one_example)(specs, labels)


def find_horses(predict_fn: PredictFn, specs, labels, masks, *, amplitudes: Sequence[float],
                kinds: Sequence[str] = ("band", "comb", "blob"), key: jax.Array,
                chunk_examples: int = 2) -> dict:
    """Weakest obvious edit of one component that flips each example's label.

    Every ``(kind, component)`` pattern is tried at every amplitude (all candidates of
    ``chunk_examples`` examples in one compiled call); for each example the smallest ``|a|``
    that flips is kept, ties between patterns broken at random by ``key``.

    Parameters
    ----------
    predict_fn : PredictFn
    specs : np.ndarray [shape=(num_examples, n_bins, n_frames)]
        Originals (the classifier's features).
    labels : np.ndarray [shape=(num_examples,)], int
        Their predicted labels (the edit must change them).
    masks : np.ndarray [shape=(num_components, n_bins, n_frames)]
    amplitudes : sequence of float
        Candidate amplitudes in the spectrogram's units, tried in order of ``|a|``; e.g. a few
        multiples of the spectrograms' standard deviation. Non-zero.
    kinds : sequence of str
        Edits to try (:data:`HORSE_KINDS`).
    key : jax.Array
        PRNG key for tie-breaking.
    chunk_examples : int > 0

    Returns
    -------
    dict of np.ndarray, one entry per example
        ``found`` bool; ``spec`` ``(num_examples, n_bins, n_frames)`` the edited spectrogram
        (the original where nothing flipped); ``component`` int (-1 if not found); ``kind``
        (index into ``kinds``, -1 if not found); ``amplitude`` float (0 if not found).
    """
    specs, labels, amps, patterns = _horse_inputs(specs, labels, masks, amplitudes, kinds,
                                                  chunk_examples)
    pat, amp = jnp.asarray(patterns), jnp.asarray(amps)
    # A fixed (padded) chunk, so every batch size shares one program.
    flips = map_chunks(
        lambda sc, lc: _horse_chunk(predict_fn, jnp.asarray(sc), pat, amp,
                                    jnp.asarray(lc, jnp.int32)),
        specs, labels, chunk_size=int(chunk_examples))  # (n, A, K * C)
    tie = np.asarray(jax.random.uniform(key, (specs.shape[0], patterns.shape[0])))
    return _weakest_horses(flips, tie, specs, amps, patterns, len(tuple(kinds)))


def _horse_inputs(specs, labels, masks, amplitudes, kinds, chunk_examples):
    """Validated ``(specs, labels, amplitudes by |a|, patterns (K * C, F, T))`` of
    :func:`find_horses`."""
    specs = check_batch(specs)
    n = specs.shape[0]
    labels = np.asarray(labels)
    if labels.shape != (n,) or not np.issubdtype(labels.dtype, np.integer):
        raise ValueError(f"labels must be integer (num_examples,) = ({n},), got {labels.shape}")
    amps = np.asarray(amplitudes, np.float32).reshape(-1)
    if amps.size == 0 or np.any(amps == 0) or not np.all(np.isfinite(amps)):
        raise ValueError(f"amplitudes must be non-empty, finite and non-zero, got {amplitudes!r}")
    kinds = tuple(kinds)
    if not kinds:
        raise ValueError("kinds must name at least one edit")
    amps = amps[np.argsort(np.abs(amps), kind="stable")]
    patterns = np.concatenate([horse_patterns(masks, k) for k in kinds])  # (K * C, F, T)
    if patterns.shape[1:] != specs.shape[1:]:
        raise ValueError(f"masks must match the spectrograms' shape {specs.shape[1:]}")
    if int(chunk_examples) != chunk_examples or chunk_examples < 1:
        raise ValueError(f"chunk_examples must be an integer >= 1, got {chunk_examples!r}")
    return specs, labels, amps, patterns


def _weakest_horses(flips, tie, specs, amps, patterns, num_kinds) -> dict:
    """:func:`find_horses`' result from ``flips (n, A, K * C)`` and tie-break draws
    ``tie (n, K * C)``: per example the weakest flipping amplitude, then the pattern there
    with the largest draw."""
    n, num_components = specs.shape[0], patterns.shape[0] // num_kinds
    found = flips.any(axis=(1, 2))
    out = {"found": found, "spec": specs.copy(), "component": np.full(n, -1, np.int64),
           "kind": np.full(n, -1, np.int64), "amplitude": np.zeros(n, np.float32)}
    for i in np.flatnonzero(found):
        a = int(np.argmax(flips[i].any(axis=1)))  # weakest amplitude that flips
        p = int(np.argmax(np.where(flips[i, a], tie[i], -1.0)))
        out["component"][i] = p % num_components
        out["kind"][i] = p // num_components
        out["amplitude"][i] = amps[a]
        out["spec"][i] = specs[i] + amps[a] * patterns[p]
    return out


def detection_rate(rankings, components, k: int = 1) -> float:
    """Fraction of examples whose known component is among the ranking's first ``k``.

    ``rankings`` ``(num_examples, num_components)`` int (most positive first), ``components``
    ``(num_examples,)`` int. NaN for no examples.
    """
    r = np.asarray(rankings)
    comp = np.asarray(components)
    if r.ndim != 2 or comp.shape != (r.shape[0],):
        raise ValueError(f"rankings (n, C) and components (n,) expected, got {r.shape}, "
                         f"{comp.shape}")
    if int(k) != k or not 1 <= k <= r.shape[1]:
        raise ValueError(f"k must be an integer in [1, {r.shape[1]}], got {k!r}")
    if r.shape[0] == 0:
        return float("nan")
    return float((r[:, : int(k)] == comp[:, None]).any(axis=1).mean())


# --------------------------------------------------------------------------- subsets


def random_subsets(key: jax.Array, num_examples: int, num_components: int, size: int) -> np.ndarray:
    """``(num_examples, num_components)`` float32 0/1 rows with exactly ``size`` ones each,
    drawn uniformly (independently per row) from ``key``."""
    if int(size) != size or not 1 <= size <= num_components:
        raise ValueError(f"size must be an integer in [1, {num_components}], got {size!r}")
    keys = jax.random.split(key, int(num_examples))
    perms = jax.vmap(lambda k: jax.random.permutation(k, int(num_components)))(keys)
    out = np.zeros((int(num_examples), int(num_components)), np.float32)
    np.put_along_axis(out, np.asarray(perms)[:, : int(size)], 1.0, axis=1)
    return out


def subset_logits_fn(logits_fn: Callable) -> Callable:
    """Let an unmodified attack perturb only inside a per-example region.

    Returns ``f(x)`` with ``x`` of shape ``(batch, 2, n_bins, n_frames)``: channel 0 the
    spectrogram, channel 1 a fixed 0/1 mask (cell level). ``f`` evaluates ``logits_fn`` on
    ``mask * x0 + (1 - mask) * stop_gradient(x0)`` with ``stop_gradient`` on the mask too: the
    classifier's gradient is zero outside the mask and for the mask channel, so an attack
    starting from ``delta = 0`` whose update is zero for a zero gradient (signed gradient,
    Adam, an L2 penalty) never leaves the region. Callers should still check that the mask
    channel came back unchanged.
    """

    def f(x):
        spec, mask = x[:, 0], jax.lax.stop_gradient(x[:, 1])
        return logits_fn(mask * spec + (1.0 - mask) * jax.lax.stop_gradient(spec))

    return f


def subset_recall(rankings, subsets) -> np.ndarray:
    """Per example: fraction of the subset ``S`` found in the ranking's first ``|S|``.

    ``rankings`` ``(num_examples, num_components)`` int; ``subsets`` ``(num_examples,
    num_components)`` 0/1. Returns ``(num_examples,)`` float in [0, 1].
    """
    r = np.asarray(rankings)
    s = np.asarray(subsets) > 0
    if r.shape != s.shape or r.ndim != 2:
        raise ValueError(f"rankings and subsets must both be (n, C), got {r.shape}, {s.shape}")
    sizes = s.sum(axis=1)
    if np.any(sizes == 0):
        raise ValueError("every subset must hold at least one component")
    hits = np.array([s[i, r[i, : sizes[i]]].sum() for i in range(r.shape[0])], np.float64)
    return hits / sizes


# --------------------------------------------------------------------------- fidelity


def _auc(scores: np.ndarray, positive: np.ndarray) -> float:
    """ROC-AUC (Mann-Whitney) of ``scores`` separating positive from negative; ties count 1/2."""
    pos, neg = scores[positive], scores[~positive]
    if pos.size == 0 or neg.size == 0:
        return float("nan")
    greater = (pos[:, None] > neg[None, :]).sum() + 0.5 * (pos[:, None] == neg[None, :]).sum()
    return float(greater / (pos.size * neg.size))


def fidelity_vs_correctness(scores, correct) -> dict:
    """Is a higher surrogate R² a sign of a right explanation?

    Parameters
    ----------
    scores : np.ndarray [shape=(num_explanations,)]
        Fidelity (LIME surrogate R², dimensionless, <= 1).
    correct : np.ndarray [shape=(num_explanations,)], bool
        Whether the explanation was right (e.g. its top-3 components alone flip the label).

    Returns
    -------
    dict
        ``num``, ``fraction_correct``; ``mean_score_correct`` / ``mean_score_incorrect``;
        ``correlation`` (point-biserial = Pearson between R² and 0/1 correctness; NaN if
        either is constant); ``auc`` (probability that a correct explanation has the higher
        R²; 0.5 = R² says nothing).
    """
    s = np.asarray(scores, np.float64).reshape(-1)
    c = np.asarray(correct).astype(bool).reshape(-1)
    if s.shape != c.shape:
        raise ValueError(f"scores and correct must have the same length, got {s.shape}, {c.shape}")
    if not np.all(np.isfinite(s)):
        raise ValueError("scores contain NaN or Inf")

    def mean(a):
        return float(a.mean()) if a.size else float("nan")

    corr = float("nan")
    if s.size > 1 and s.std() > 0 and 0 < c.sum() < c.size:
        corr = float(np.corrcoef(s, c.astype(np.float64))[0, 1])
    return {
        "num": int(s.size),
        "fraction_correct": mean(c.astype(np.float64)),
        "mean_score_correct": mean(s[c]),
        "mean_score_incorrect": mean(s[~c]),
        "correlation": corr,
        "auc": _auc(s, c),
    }

