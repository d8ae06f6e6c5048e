"""Explanations over time-frequency components of a spectrogram (docs/studies.md §3).

- :mod:`~jaxaudio.explain.segmentation`: ``n_temporal x n_frequency`` rectangles, baselines,
  on-device composition of perturbed spectrograms.
- :mod:`~jaxaudio.explain.lime_bridge`: LIME (surrogate fitted by the real ``lime`` package),
  waveform inputs, top-k stability.
- :mod:`~jaxaudio.explain.attribution`: occlusion and integrated gradients over the same
  components, returning the same :class:`Explanation`.
"""

from jaxaudio.explain.attribution import IG_RULES, integrated_gradients, occlusion
from jaxaudio.explain.lime_bridge import (
    Explanation,
    PredictFn,
    binary_to_two_class,
    default_chunk_size,
    explain,
    explain_waveform,
    lime_distances,
    lime_kernel,
    predict_components,
    sample_components,
    softmax_of,
    topk_stability,
)
from jaxaudio.explain.segmentation import (
    BASELINES,
    baseline_value,
    check_spec,
    component_index,
    component_map,
    component_masks,
    component_norms,
    component_position,
    component_slices,
    component_sums,
    compose,
    num_components,
    segment_bounds,
)

__all__ = [
    "BASELINES",
    "IG_RULES",
    "Explanation",
    "PredictFn",
    "baseline_value",
    "binary_to_two_class",
    "check_spec",
    "component_index",
    "component_map",
    "component_masks",
    "component_norms",
    "component_position",
    "component_slices",
    "component_sums",
    "compose",
    "default_chunk_size",
    "explain",
    "explain_waveform",
    "integrated_gradients",
    "lime_distances",
    "lime_kernel",
    "num_components",
    "occlusion",
    "predict_components",
    "sample_components",
    "segment_bounds",
    "softmax_of",
    "topk_stability",
]
