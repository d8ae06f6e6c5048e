"""Figures of merit for the studies: SNR, accuracy, lwlrap, ROC-AUC, confusion matrices.

Evaluation metrics work on numpy arrays (anything ``np.asarray`` accepts, including jax arrays)
and return Python floats or numpy arrays. :func:`snr_db` also accepts jax arrays and then stays
in ``jax.numpy`` (jit/vmap/grad-safe), because attacks may use it inside the graph.
"""

from jaxaudio.metrics.attacks import attack_summary, finite_stats, useful_steps
from jaxaudio.metrics.audio import noise_control_accuracy, snr_db, white_noise_at
from jaxaudio.metrics.classification import (
    accuracy,
    confusion_matrix,
    frame_accuracy,
    lwlrap,
    lwlrap_per_class,
    roc_auc_macro,
)
from jaxaudio.metrics.label_noise import (
    label_noise_summary,
    noise_equivalent_p,
    seed_curves,
    seed_mean_std,
    summarize_noise_equivalent,
)

__all__ = ['snr_db', 'white_noise_at', 'noise_control_accuracy', 'accuracy', 'lwlrap_per_class', 'lwlrap', 'roc_auc_macro', 'confusion_matrix', 'frame_accuracy', 'noise_equivalent_p', 'summarize_noise_equivalent', 'seed_mean_std', 'seed_curves', 'label_noise_summary', 'finite_stats', 'attack_summary', 'useful_steps']
