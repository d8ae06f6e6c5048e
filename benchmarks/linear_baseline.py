"""How hard are the synthetic tasks? A one-layer linear model on the mel front-end.

Instruments: multinomial logistic regression on each clip's time-averaged dB mel bands
(plus their per-band std over time). Voice: logistic regression on the standardised log-mel
frame at the excerpt centre (:func:`jaxaudio.training.baselines.voice_linear_baseline`, scored like the
detector: p(sing) > 0.51, raw and after the 0.8 s median filter). Compare with the CNNs from
``jaxaudio train``.

    python benchmarks/linear_baseline.py [--preset demo] [--out runs/linear_baseline.json]
"""

import argparse
import json

import numpy as np
from sklearn.linear_model import LogisticRegression

from jaxaudio.training import baselines
from jaxaudio.dsp import frontend as fe
from jaxaudio.training import tasks


def clip_features(dataset, config):
    # numpy/librosa oracle of the same front-end: clip lengths differ, so jit would recompile
    rows = []
    for wave in dataset.waves:
        f = baselines.librosa_features(wave, config)
        rows.append(np.concatenate([f.mean(-1), f.std(-1)]))
    return np.stack(rows)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--preset", default="demo")
    parser.add_argument("--out", default="runs/linear_baseline.json")
    args = parser.parse_args()
    out = {}
    cfg = fe.FrontendConfig.instrument()
    tr = tasks.load_split("synth-instruments", "train", preset_name=args.preset)
    te = tasks.load_split("synth-instruments", "test", preset_name=args.preset)
    xtr, xte = clip_features(tr, cfg), clip_features(te, cfg)
    mu, sd = xtr.mean(0), xtr.std(0) + 1e-6
    model = LogisticRegression(max_iter=2000).fit((xtr - mu) / sd, tr.labels)
    out["instruments_linear_accuracy"] = float(model.score((xte - mu) / sd, te.labels))
    vtr = tasks.load_split("synth-voice", "train", preset_name=args.preset)
    vte = tasks.load_split("synth-voice", "test", preset_name=args.preset)
    voice = baselines.voice_linear_baseline(vtr, vte, frame_step=4)
    out["voice_linear_frame_accuracy"] = voice["accuracy"]
    out["voice_linear_frame_error"] = voice["error"]
    out["voice_linear_frame_error_median_filtered"] = voice["error_median_filtered"]
    out["voice_majority_frame_accuracy"] = float(max(voice["sing_fraction"],
                                                     1 - voice["sing_fraction"]))
    print(json.dumps(out, indent=2))
    with open(args.out, "w") as fh:
        json.dump(out, fh, indent=2)


if __name__ == "__main__":
    main()
