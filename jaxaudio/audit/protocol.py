"""The published protocol of the LIME audit (docs/studies.md §3; Praher et al., ISMIR 2021):
its attack directions and domains, segmentation, adversary settings, sizes and figures.

These are the method, the same in every preset of :mod:`jaxaudio.studies.lime_veracity`
(presets change sizes only). Probabilities are p(sing) of the one-logit detector; waveform
settings are in [-1, 1] sample units, spectrogram settings in log-mel units (nepers).
"""

from __future__ import annotations

__all__ = ["DIRECTIONS", "DOMAINS", "SEGMENTS", "TOP_K", "PUBLISHED", "PAPER", "PAPER_NAMES",
           "ADVERSARY", "CW", "METHOD"]

#: The attack directions, named by the clean decision's class index (0: no-sing).
DIRECTIONS = ("nosing_to_sing", "sing_to_nosing")
#: Where the adversaries are made: on the waveform or on the front-end's output.
DOMAINS = ("waveform", "spectrogram")
#: LIME's components (``n_temporal x n_frequency`` rectangles) and the top-k audited.
SEGMENTS = {"n_temporal": 5, "n_frequency": 4}
TOP_K = 3
#: The published figures, fractions of adversaries whose label still flips.
PUBLISHED = {
    "table1": {"waveform": {"nosing_to_sing": 0.53, "sing_to_nosing": 0.21},
               "spectrogram": {"nosing_to_sing": 0.41, "sing_to_nosing": 0.32}},
    "table2": {"waveform": {"nosing_to_sing": {"lime": 0.86, "norm": 0.99},
                            "sing_to_nosing": {"lime": 0.49, "norm": 0.74}},
               "spectrogram": {"nosing_to_sing": {"lime": 0.91, "norm": 0.98},
                               "sing_to_nosing": {"lime": 0.44, "norm": 0.55}}},
}
#: The paper's sizes (``None``: every test song / the whole song, worded by
#: :data:`PAPER_NAMES`).
PAPER = {"songs": None, "stretch_frames": None, "per_song": 10, "num_samples": 8192,
         "max_iterations": 1000}
PAPER_NAMES = {"songs": "all test songs", "stretch_frames": "the whole song"}
#: The adversaries: C&W with signed-gradient Adam on a stretch of each song
#: (:mod:`jaxaudio.audit.stretch`), every frame's decision flipped, stopped at the decision
#: threshold 0.51; ``levels``: the strength sweep, the first the main study. Waveform
#: settings as published (``clip_eps`` in [-1, 1] units); spectrogram settings in log-mel
#: units (nepers; measured, docs/studies.md §3).
ADVERSARY = {"threshold": 0.51, "levels": (0.51, 0.6, 0.75, 0.9),
             "waveform": {"clip_eps": 0.01, "alpha": 2.0, "learning_rate": 3e-4},
             "spectrogram": {"clip_eps": 1.0, "alpha": 2000.0, "learning_rate": 1e-2}}
#: The subset control's C&W (per excerpt, signed-gradient Adam, lowest-energy success kept).
CW = {"subset": {"confidence": 0.5, "clip_eps": 6.0, "alpha": 300.0, "learning_rate": 0.05}}
#: The stretch attack as ``results.json`` words it.
METHOD = ("stretch C&W (signed-gradient Adam, binary cross-entropy over every frame of the "
          "stretch; stops when every decision has flipped)")
