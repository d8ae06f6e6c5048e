"""How hard are the synthetic tasks? A one-layer linear model on the mel front-end.

Instruments: multinomial logistic regression on each clip's time-averaged dB mel bands
(plus their per-band std over time). Voice: logistic regression on the standardised log-mel
frame at the excerpt centre. Compare with the CNNs from ``jaxaudio train``.

    python benchmarks/linear_baseline.py [--preset demo] [--out runs/linear_baseline.json]
"""

import argparse
import json

import librosa
import numpy as np
from sklearn.linear_model import LogisticRegression

from jaxaudio import frontend as fe
from jaxaudio import tasks


def _librosa_features(wave, config):
    S = librosa.feature.melspectrogram(
        y=np.asarray(wave, np.float32), sr=config.sample_rate, n_fft=config.n_fft,
        hop_length=config.hop_length, n_mels=config.n_mels, fmin=config.fmin, fmax=config.fmax,
        power=config.power, htk=config.mel_scale == "htk", norm=config.norm,
        pad_mode=config.pad_mode)
    if config.scaling == "db":
        return librosa.power_to_db(S, ref=1.0, amin=1e-10, top_db=config.top_db)
    return np.log(np.maximum(S, config.log_floor))


def clip_features(dataset, config):
    # numpy/librosa oracle of the same front-end: clip lengths differ, so jit would recompile
    rows = []
    for wave in dataset.waves:
        f = _librosa_features(wave, config)
        rows.append(np.concatenate([f.mean(-1), f.std(-1)]))
    return np.stack(rows)


def voice_features(dataset, config, step):
    xs, ys = [], []
    for i, wave in enumerate(dataset.waves):
        f = _librosa_features(wave, config)
        lab = dataset.frame_labels(i, hop_length=config.hop_length)
        xs.append(f[:, ::step].T)
        ys.append(lab[::step])
    return np.concatenate(xs), np.concatenate(ys)


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
    vcfg = fe.FrontendConfig.voice()
    vtr = tasks.load_split("synth-voice", "train", preset_name=args.preset)
    vte = tasks.load_split("synth-voice", "test", preset_name=args.preset)
    xtr, ytr = voice_features(vtr, vcfg, 4)
    xte, yte = voice_features(vte, vcfg, 4)
    mu, sd = xtr.mean(0), xtr.std(0) + 1e-6
    model = LogisticRegression(max_iter=2000).fit((xtr - mu) / sd, ytr)
    out["voice_linear_frame_accuracy"] = float(model.score((xte - mu) / sd, yte))
    out["voice_majority_frame_accuracy"] = float(max(yte.mean(), 1 - yte.mean()))
    print(json.dumps(out, indent=2))
    with open(args.out, "w") as fh:
        json.dump(out, fh, indent=2)


if __name__ == "__main__":
    main()
