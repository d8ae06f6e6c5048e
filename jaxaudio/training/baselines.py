"""How hard is a task? Linear models on the mel front-end, next to the trained CNNs.

:func:`voice_linear_baseline`: logistic regression on the single log-mel frame at the excerpt
centre (no temporal context), scored like the singing voice detector
(:func:`jaxaudio.models.inference.frame_errors`: threshold 0.51, raw and after the 0.8 s median filter).
The features are computed with librosa, the numpy oracle of the same front-end (songs differ in
length, so the jitted front-end would recompile per song).
"""

from __future__ import annotations

import numpy as np

from jaxaudio.dsp import frontend as fe
from jaxaudio.models import inference

__all__ = ["librosa_features", "voice_frames", "voice_linear_baseline"]


def librosa_features(wave, config: fe.FrontendConfig) -> np.ndarray:
    """``(n_mels, frames)`` scaled mel spectrogram (dB or log, as ``config``) of one wave."""
    import librosa

    S = librosa.feature.melspectrogram(
        y=np.asarray(wave, np.float32), sr=config.sample_rate, n_fft=config.n_fft,
        hop_length=config.hop_length, n_mels=config.n_mels, fmin=config.fmin, fmax=config.fmax,
        power=config.power, htk=config.mel_scale == "htk", norm=config.norm,
        pad_mode=config.pad_mode)
    if config.scaling == "db":
        return librosa.power_to_db(S, ref=1.0, amin=1e-10, top_db=config.top_db)
    return np.log(np.maximum(S, config.log_floor))


def voice_frames(dataset, config: fe.FrontendConfig, step: int):
    """Per song, ``(features (frames, n_mels), labels (frames,))`` of every ``step``-th frame."""
    out = []
    for i, wave in enumerate(dataset.waves):
        f = librosa_features(wave, config)
        lab = dataset.frame_labels(i, hop_length=config.hop_length)
        n = min(f.shape[1], len(lab))
        out.append((f[:, :n:step].T, lab[:n:step]))
    return out


def voice_linear_baseline(train, test, *, config: fe.FrontendConfig = None, frame_step: int = 4,
                          threshold: float = None, median_seconds: float = None) -> dict:
    """Frame error of a logistic regression on one standardised log-mel frame.

    Args:
      train, test: song datasets (``waves``, ``frame_labels(i, hop_length=)``).
      config: the front-end (default: the voice detector's).
      frame_step: use every n-th frame of every song (train and test).
      threshold, median_seconds: as :func:`jaxaudio.models.inference.frame_errors` (default: the
        detector's 0.51 and 0.8 s).

    Returns:
      :func:`jaxaudio.models.inference.frame_errors`'s dict (``error``, ``error_median_filtered``, ...)
      plus ``model`` (a one-line description).
    """
    from sklearn.linear_model import LogisticRegression

    config = config or fe.FrontendConfig.voice()
    threshold = inference.VOICE_THRESHOLD if threshold is None else threshold
    median_seconds = inference.VOICE_MEDIAN_SECONDS if median_seconds is None else median_seconds
    tr, te = voice_frames(train, config, frame_step), voice_frames(test, config, frame_step)
    xtr, ytr = np.concatenate([x for x, _ in tr]), np.concatenate([y for _, y in tr])
    if len(np.unique(ytr)) < 2:
        raise ValueError("the linear baseline needs training frames of both classes")
    mu, sd = xtr.mean(0), xtr.std(0) + 1e-6
    model = LogisticRegression(max_iter=2000).fit((xtr - mu) / sd, ytr)
    probs = [model.predict_proba((x - mu) / sd)[:, 1] for x, _ in te]
    out = inference.frame_errors(probs, [y for _, y in te],
                             frames_per_second=config.sample_rate / config.hop_length,
                             frame_step=frame_step, median_seconds=median_seconds,
                             threshold=threshold)
    return {"model": "logistic regression on one standardised log-mel frame", **out}
