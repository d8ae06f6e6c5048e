"""The stretch attack on a detector's test songs (docs/studies.md §3): where each song's
stretch lies, its clean frame decisions, every song's stretch adversaries and the adversarial
excerpts drawn from them.

:mod:`jaxaudio.audit.stretch` attacks one stretch; this module applies it to a song set with a
:class:`jaxaudio.models.Classifier` (one logit, p(sing) = sigmoid). Several songs' stretches
travel as one flat *stretch set* (:func:`song_stretches`):

- ``segments``, ``masks`` ``(sum S_i,)`` float32 with ``segment_offsets`` ``(n + 1,)``: the
  samples every excerpt of stretch ``i`` reads (:func:`jaxaudio.audit.stretch.stretch_segment`)
  and 1 inside the song;
- ``p``, ``labels`` ``(sum T_i,)`` with ``frame_offsets`` ``(n + 1,)``: clean p(sing) and the
  true label of every frame of stretch ``i``;
- ``song``, ``start``, ``frames`` ``(n,)`` int64: the test song, its first frame and the
  stretch's length in frames (hops of ``clf.frontend.hop_length`` samples);
- ``accuracy``, ``num_frames``, ``frame_step``, ``sing_fraction``: the detector's frame
  accuracy at 0.5 on every ``frame_step``-th frame of every test song.

Stage functions (``compute(stage_dir, **inputs, **context, **settings)`` of
:class:`jaxaudio.runtime.pipeline.Runner`, the classifier as ``clf`` in the context):
:func:`songs_stage`, :func:`stretch_stage`, :func:`excerpts_stage`, :func:`adversaries_stage`.
"""

from __future__ import annotations

from typing import Mapping, Optional

import numpy as np
from tqdm.auto import tqdm

from jaxaudio.audit import excerpts, stretch
from jaxaudio.audit.detector import excerpt_features, two_class_predict, voice_split
from jaxaudio.audit.protocol import DIRECTIONS
from jaxaudio.training import tasks

__all__ = ["stretch_placement", "stretch_probabilities", "one_stretch", "song_stretches",
           "stretch_waves", "stretch_snr_db", "attack_songs", "excerpt_waves",
           "draw_excerpts", "songs_stage", "stretch_stage", "excerpts_stage",
           "adversaries_stage"]

#: Excerpts per forward pass when scoring a stretch's frames.
LOGIT_CHUNK = 64


def stretch_placement(rows, num_frames: int, stretch_frames: Optional[int], frame_step: int,
                      threshold: float = 0.51) -> tuple[int, int]:
    """``(start, frames)`` of one song's stretch: the whole song when ``stretch_frames`` is
    ``None`` or covers it, else ``stretch_frames`` frames centred in the most balanced window
    (:func:`jaxaudio.audit.stretch.balanced_stretch`, at least 2 evaluated frames so it can
    hold a change of decision) of the evaluated frames, kept inside the song.

    ``rows``: the song's rows of :func:`jaxaudio.audit.excerpts.frame_table` ``(m, 4)``
    (``frame`` in column 1, p(sing) in column 3), every ``frame_step``-th frame;
    ``num_frames``: the song's frames (``1 + samples // hop``).
    """
    n = num_frames
    if stretch_frames is None or stretch_frames >= n:
        return 0, n
    window = max(2, -(-stretch_frames // frame_step))
    s0, _ = stretch.balanced_stretch(rows[:, 3] > threshold, window)
    start = int(rows[s0, 1]) + (window * frame_step) // 2 - stretch_frames // 2
    return int(np.clip(start, 0, n - stretch_frames)), stretch_frames


def stretch_probabilities(clf, segment, frames: int) -> np.ndarray:
    """``(frames,)`` float32 clean p(sing) of the excerpts of a stretch ``segment``.

    Batches of :data:`LOGIT_CHUNK` excerpts, the last one unpadded, and the sigmoid in numpy:
    :func:`jaxaudio.dsp.batching.map_chunks` (padded last chunk) and :func:`jax.nn.sigmoid`
    differ in the last bit (measured on CPU), and these probabilities decide the attack's
    targets.
    """
    waves = np.asarray(stretch.windows(segment, frames, clf.frontend.hop_length,
                                       clf.excerpt_samples))
    logits = clf.logits(waves) if len(waves) <= LOGIT_CHUNK else np.concatenate(
        [clf.logits(waves[j:j + LOGIT_CHUNK]) for j in range(0, len(waves), LOGIT_CHUNK)])
    return 1.0 / (1.0 + np.exp(-np.asarray(logits)[:, 0]))


def one_stretch(clf, wave, frame_labels, rows, *, stretch_frames: Optional[int],
                frame_step: int, threshold: float = 0.51) -> dict:
    """One song's stretch (:func:`stretch_placement`): ``segment``, ``mask`` ``(S,)``,
    ``p`` ``(T,)`` clean p(sing), ``labels`` ``(T,)`` (``frame_labels``: the song's label per
    frame), ``start`` and ``frames`` (= T)."""
    hop = clf.frontend.hop_length
    start, length = stretch_placement(rows, 1 + len(wave) // hop, stretch_frames, frame_step,
                                      threshold)
    seg, mask = stretch.stretch_segment(wave, start, length, excerpt_frames=clf.excerpt_frames,
                                        hop_length=hop, excerpt_samples=clf.excerpt_samples)
    return {"segment": seg, "mask": mask, "p": stretch_probabilities(clf, seg, length),
            "labels": frame_labels[start:start + length], "start": start, "frames": length}


def song_stretches(clf, songs, *, frame_step: int, num_songs: Optional[int],
                   stretch_frames: Optional[int], threshold: float = 0.51,
                   progress: bool = False) -> dict:
    """The stretch set (module docstring) of the first ``num_songs`` songs (``None``: all).

    ``songs``: a song set with ``waves`` and ``frame_labels(i, hop_length=)``;
    ``frame_step``: frames between evaluated frames (accuracy and stretch placement);
    ``stretch_frames``: frames per stretch (``None``: whole songs); ``threshold``: the clean
    decision p(sing) > threshold.
    """
    hop = clf.frontend.hop_length
    table = excerpts.frame_table(clf, songs.waves, lambda i: songs.frame_labels(i, hop_length=hop),
                                 frame_step=frame_step, progress=progress)
    chosen = list(range(len(songs.waves)))[:num_songs]
    parts = [one_stretch(clf, songs.waves[i], songs.frame_labels(i, hop_length=hop),
                         table[table[:, 0] == i], stretch_frames=stretch_frames,
                         frame_step=frame_step, threshold=threshold) for i in chosen]
    out = {k: [p[s] for p in parts] for k, s in (("segments", "segment"), ("masks", "mask"),
                                                  ("p", "p"), ("labels", "labels"))}
    offsets = {k: np.cumsum([0] + [len(v) for v in out[k]]) for k in ("segments", "p")}
    return {**{k: np.concatenate(v) for k, v in out.items()},
            "segment_offsets": offsets["segments"], "frame_offsets": offsets["p"],
            "song": np.asarray(chosen, np.int64),
            "start": np.asarray([p["start"] for p in parts], np.int64),
            "frames": np.asarray([p["frames"] for p in parts], np.int64),
            "accuracy": float((((table[:, 3] > 0.5) == table[:, 2])).mean()),
            "num_frames": len(table), "frame_step": frame_step,
            "sing_fraction": float(table[:, 2].mean())}


def stretch_waves(clf, stretches: Mapping, i: int) -> np.ndarray:
    """``(T_i, excerpt_samples)`` clean excerpt waveforms of stretch ``i`` of a stretch set."""
    o, f = stretches["segment_offsets"], stretches["frame_offsets"]
    return np.asarray(stretch.windows(stretches["segments"][o[i]:o[i + 1]], int(f[i + 1] - f[i]),
                                      clf.frontend.hop_length, clf.excerpt_samples))


def stretch_snr_db(segment, mask, delta) -> np.ndarray:
    """``(L,)`` SNR in dB of each level's waveform perturbation ``delta (L, S)`` over the
    stretch's song samples: ``10 log10(sum (segment · mask)² / sum delta²)``, the energy floored
    at 1e-30 (no trim; :func:`jaxaudio.metrics.snr_db` trims the ends and is not bit-identical).
    """
    clean = float(np.sum((segment * mask) ** 2))
    return 10 * np.log10(clean / np.maximum((delta ** 2).sum(axis=1), 1e-30))


def _attack_one(clf, stretches, i, *, domain, threshold, **attack) -> dict:
    wave = domain == "waveform"
    o, f = stretches["segment_offsets"], stretches["frame_offsets"]
    targets = 1 - (stretches["p"][f[i]:f[i + 1]] > threshold).astype(np.int64)
    seg, mask = stretches["segments"][o[i]:o[i + 1]], stretches["masks"][o[i]:o[i + 1]]
    base = seg if wave else excerpt_features(clf, stretch_waves(clf, stretches, i))
    r = stretch.stretch_attack(clf.logits_fn if wave else clf.feature_logits_fn, base, targets,
                               domain=domain, threshold=threshold, mask=mask if wave else None,
                               hop_length=clf.frontend.hop_length,
                               excerpt_size=clf.excerpt_samples, **attack)
    if wave:
        r["snr_db"] = stretch_snr_db(seg, mask, r["delta"])
    return r


def attack_songs(clf, stretches: Mapping, *, domain: str, levels, threshold: float = 0.51,
                 max_iterations: int, progress: bool = False, **settings) -> dict:
    """:func:`jaxaudio.audit.stretch.stretch_attack` of every stretch of a stretch set, towards
    ``1 - clean decision`` on every frame; on the waveform (``clf.logits_fn``, the song's
    padding masked) or on the clean excerpt spectrograms (``clf.feature_logits_fn``).

    ``settings``: ``clip_eps``, ``alpha``, ``learning_rate``. Returns ``delta (L, ...,
    sum D_i)`` flat over the stretches with ``delta_offsets (n + 1,)``, ``iterations`` and
    ``success`` ``(n, L)``, ``p (L, sum T_i)``, ``steps (n,)`` and, on the waveform,
    ``snr_db (n, L)`` (:func:`stretch_snr_db`).
    """
    res = [_attack_one(clf, stretches, i, domain=domain, threshold=threshold, levels=levels,
                       max_iterations=max_iterations, **settings)
           for i in tqdm(range(len(stretches["song"])), disable=not progress, leave=False,
                         desc=f"stretch C&W {domain}")]
    out = {"delta": np.concatenate([r["delta"] for r in res], axis=-1),
           "delta_offsets": np.cumsum([0] + [r["delta"].shape[-1] for r in res]),
           "iterations": np.stack([r["iterations"] for r in res]),
           "success": np.stack([r["success"] for r in res]),
           "p": np.concatenate([r["p"] for r in res], axis=1),
           "steps": np.asarray([r["steps"] for r in res], np.int64)}
    if domain == "waveform":
        out["snr_db"] = np.stack([r["snr_db"] for r in res])
    return out


def excerpt_waves(clf, stretches: Mapping, song, frame) -> np.ndarray:
    """``(n, excerpt_samples)`` clean excerpts at positions ``frame`` of stretches ``song``."""
    o, hop = stretches["segment_offsets"], clf.frontend.hop_length
    return np.stack([stretches["segments"][o[s] + t * hop:][:clf.excerpt_samples]
                     for s, t in zip(song, frame)])


def draw_excerpts(clf, stretches: Mapping, attacks: Mapping[str, Mapping], *, seed: int,
                  per_song: int, threshold: float = 0.51) -> dict:
    """The adversarial excerpts: up to ``per_song`` frames per stretch and clean decision
    (:func:`jaxaudio.audit.stretch.draw_frames`, ``rng = default_rng([seed, 2021])``), frames
    whose decision flipped at the first level in every domain of ``attacks`` (outputs of
    :func:`attack_songs`) first.

    Returns ``song`` (stretch index), ``frame`` (in the stretch), ``direction`` (clean
    decision), ``waves`` and ``specs`` of the clean excerpts, ``true_label``, ``probability``,
    ``correct``, ``test_song``, ``song_frame`` and the stretch set's accuracy entries. Raises
    ``ValueError`` when no frame can be drawn.
    """
    f = stretches["frame_offsets"]
    decisions, preferred = [], []
    for i in range(len(stretches["song"])):
        clean = (stretches["p"][f[i]:f[i + 1]] > threshold).astype(np.int64)
        ok = np.ones(len(clean), bool)
        for a in attacks.values():
            ok &= stretch.flipped(a["p"][0][f[i]:f[i + 1]], 1 - clean, threshold, threshold)
        decisions.append(clean)
        preferred.append(ok)
    d = stretch.draw_frames(decisions, preferred, per_song=per_song,
                            rng=np.random.default_rng([seed, 2021]))
    if len(d["song"]) == 0:
        raise ValueError("no frame of the attacked stretches to draw from (check --model / "
                         "--data)")
    pos = f[d["song"]] + d["frame"]
    waves = excerpt_waves(clf, stretches, d["song"], d["frame"])
    true = stretches["labels"][pos].astype(np.int64)
    return {**d, "waves": waves, "specs": excerpt_features(clf, waves), "true_label": true,
            "probability": stretches["p"][pos], "correct": true == d["direction"],
            "test_song": stretches["song"][d["song"]],
            "song_frame": stretches["start"][d["song"]] + d["frame"],
            **{k: stretches[k] for k in ("accuracy", "num_frames", "frame_step",
                                         "sing_fraction")}}


def songs_stage(stage_dir, *, clf, data, progress: bool, preset: str, seed: int,
                songs: Optional[int], stretch_frames: Optional[int], threshold: float) -> dict:
    """Stage: the stretch set (:func:`song_stretches`) of the first ``songs`` test songs of the
    voice task (synthetic, or Jamendo-VAD at ``data``; :func:`jaxaudio.audit.detector.voice_split`),
    evaluated every ``eval_frame_step`` frames of the task preset ``preset``."""
    return song_stretches(clf, voice_split(data, "test", preset, seed, progress=progress),
                          frame_step=tasks.preset("voice", preset).eval_frame_step,
                          num_songs=songs, stretch_frames=stretch_frames, threshold=threshold,
                          progress=progress)


def stretch_stage(stage_dir, songs, *, clf, progress: bool, domain: str, **settings) -> dict:
    """Stage: :func:`attack_songs` of the stretch set ``songs`` in ``domain`` (``settings``:
    ``threshold``, ``levels``, ``max_iterations``, ``clip_eps``, ``alpha``,
    ``learning_rate``)."""
    return attack_songs(clf, songs, domain=domain, progress=progress, **settings)


def excerpts_stage(stage_dir, songs, *, clf, seed: int, per_song: int, threshold: float,
                   **attacks) -> dict:
    """Stage: :func:`draw_excerpts` of the stretch set ``songs``; ``attacks``: the
    :func:`stretch_stage` outputs of every domain (any names)."""
    return draw_excerpts(clf, songs, attacks, seed=seed, per_song=per_song, threshold=threshold)


def adversaries_stage(stage_dir, excerpts, songs, attack, *, clf, domain: str, direction: str,
                      level: int, level_value: float, threshold: float) -> dict:
    """Stage: the drawn excerpts of one ``direction`` (of
    :data:`jaxaudio.audit.protocol.DIRECTIONS`) cut from the stretch adversaries ``attack`` of
    ``domain`` at level index ``level`` (confidence ``level_value``), and the audited ones
    (:func:`jaxaudio.audit.stretch.excerpt_flip_set`, the two-class detector at
    ``threshold``)."""
    return stretch.excerpt_flip_set(
        excerpts, songs, attack, level=level, source=DIRECTIONS.index(direction), domain=domain,
        predict_fn=two_class_predict(clf, threshold=threshold),
        to_features=lambda x: excerpt_features(clf, x), hop_length=clf.frontend.hop_length,
        excerpt_samples=clf.excerpt_samples, threshold=threshold, level_value=level_value)
