"""Listening examples of an adversarial attack: original, adversary and (amplified) perturbation.

:func:`write_listening_example` writes the three 16-bit WAVs a report page plays side by side
(:func:`jaxaudio.report.page.listening`), in listening order original -> adversarial ->
perturbation. The perturbation ``adversarial - original`` is usually far below the music, so it
is scaled to a fixed peak; the gain is returned so that a page can say how much.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from jaxaudio.data.audio import save_wav

__all__ = ["write_listening_example"]

#: File name suffix per role (``<name>_<suffix>.wav``), in listening order.
SUFFIXES = {"original": "original", "adversarial": "adversary", "perturbation": "perturbation"}


def write_listening_example(folder, name: str, original, adversarial, sample_rate: int, *,
                            peak: float = 0.5) -> dict:
    """Write ``<name>_original.wav``, ``<name>_adversary.wav`` and ``<name>_perturbation.wav``.

    Parameters
    ----------
    folder : str or os.PathLike
        Created if missing.
    name : str
        File name prefix (e.g. the attack direction).
    original, adversarial : np.ndarray [shape=(num_samples,)]
        Waveforms in [-1, 1] (values outside are clipped on writing, as :func:`save_wav` does).
    sample_rate : int
        Hz.
    peak : float > 0
        The perturbation file holds ``gain * (adversarial - original)`` with
        ``gain = peak / max|adversarial - original|``.

    Returns
    -------
    dict
        ``{"files": {"original", "adversarial", "perturbation"}: file name inside ``folder``,
        "perturbation_gain": gain}``.
    """
    original, adversarial = np.asarray(original), np.asarray(adversarial)
    if original.shape != adversarial.shape or original.ndim != 1:
        raise ValueError(f"original and adversarial must be 1-D waveforms of one length, got "
                         f"shapes {original.shape} and {adversarial.shape}")
    if not peak > 0:
        raise ValueError(f"peak must be > 0, got {peak}")
    delta = adversarial - original
    gain = peak / max(float(np.abs(delta).max()), 1e-12)
    files = {role: f"{name}_{suffix}.wav" for role, suffix in SUFFIXES.items()}
    for role, wave in zip(files, (original, adversarial, delta * gain)):
        save_wav(Path(folder) / files[role], wave, sample_rate)
    return {"files": files, "perturbation_gain": gain}
