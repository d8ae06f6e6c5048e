"""The veracity audit of docs/studies.md §3: do explanations point at what changed the decision?

- :mod:`~jaxaudio.audit.veracity`: rankings (explainer, norm of delta), the flip matrix
  (delta restricted to the top-k components, all k, composed and evaluated on device), flip
  curves, table 1 (k = 3) and table 2 (all positive components vs as many by norm).
- :mod:`~jaxaudio.audit.controls`: horses (obvious edits that flip the label), subset
  perturbations, fidelity (R²) against correctness.
- :mod:`~jaxaudio.audit.summaries`: the study's tables per group of adversaries and the
  controls' detection rates.
- :mod:`~jaxaudio.audit.excerpts`, :mod:`~jaxaudio.audit.adversaries`,
  :mod:`~jaxaudio.audit.explanations`: what the study attacks, its C&W flips, horse and subset
  sets, and the explanations of a batch; :mod:`~jaxaudio.audit.results`: the numbers for
  ``results.json``, the arrays the report draws from and the listening WAVs.
- :mod:`~jaxaudio.audit.stretch`: the stretch attack of one song stretch;
  :mod:`~jaxaudio.audit.song_attacks`: its application to a detector's test songs (stretch
  placement, clean decisions, the drawn adversarial excerpts) and those stages;
  :mod:`~jaxaudio.audit.detector`: the singing voice detector (training, errors, compiled
  entry points); :mod:`~jaxaudio.audit.protocol`: the published method and figures.

Only controls, summaries and veracity are re-exported here; import the other modules
themselves.
"""

from jaxaudio.audit.controls import (
    HORSE_KINDS,
    detection_rate,
    fidelity_vs_correctness,
    find_horses,
    horse_patterns,
    random_subsets,
    subset_logits_fn,
    subset_recall,
)
from jaxaudio.audit.summaries import (
    audit_groups,
    direction_tables,
    flip_matrices,
    grouped_tables,
    horse_summary,
    subset_summary,
)
from jaxaudio.audit.veracity import (
    check_batch,
    flip_curve,
    flip_matrix,
    norm_rankings,
    positive_counts,
    predict_labels,
    rankings_from_weights,
    restrict_delta,
    selection_from_ranking,
    table_at_k,
    table_positive,
)

__all__ = [
    "HORSE_KINDS",
    "audit_groups",
    "check_batch",
    "detection_rate",
    "direction_tables",
    "fidelity_vs_correctness",
    "find_horses",
    "flip_curve",
    "flip_matrix",
    "flip_matrices",
    "grouped_tables",
    "horse_summary",
    "horse_patterns",
    "norm_rankings",
    "positive_counts",
    "predict_labels",
    "random_subsets",
    "rankings_from_weights",
    "restrict_delta",
    "selection_from_ranking",
    "subset_logits_fn",
    "subset_recall",
    "subset_summary",
    "table_at_k",
    "table_positive",
]
