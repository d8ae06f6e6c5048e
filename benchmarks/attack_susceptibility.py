"""Why is a classifier hard or easy to fool within the paper's budget? Measurements on clean clips.

For a trained instrument classifier and the excerpts study 1 attacks (the same
``evaluation.attack_excerpts`` selection), this prints and stores:

- loudness: RMS level (dBFS) and peak of the excerpts;
- noise floor: the 10th percentile of the short-time (2048-sample frames) RMS, in dB relative to
  the excerpt's RMS; the dynamic range of the dB mel spectrogram (its maximum minus its 5th
  percentile: a background-noise floor fills the quiet bins and shrinks it) and the fraction
  of its bins within 20 dB of the front-end's floor (``top_db`` below the maximum): quiet bins
  are where a small perturbation moves the dB features most;
- feature sensitivity: mean |change| of the standardised dB mel features when a random
  ±eps sign perturbation (eps = the paper's PGD radius 5e-4) is added;
- input-gradient norms of the cross-entropy loss at the clean excerpts (L1, which bounds the
  first-order loss change of one signed step of size eps: eps * ||g||_1, and L2);
- PGD at the paper's settings (eps 5e-4, signed Adam lr 1e-5, up to 500 iterations, random
  start, early stop): success rate, accuracy after, mean SNR and median iterations.

    python benchmarks/attack_susceptibility.py --model runs/demo/foundation/instruments/model \
        [--data FSDKaggle2019_root] [--num-clips 48] [--out runs/susceptibility.json]

Without ``--data`` the embedded synthetic test split of the ``--preset`` is used.
"""

from __future__ import annotations

import argparse
import json
import pathlib

import jax
import jax.numpy as jnp
import numpy as np

from jaxaudio import attacks, metrics
from jaxaudio.attacks import evaluation
from jaxaudio.training import tasks
from jaxaudio.models import Classifier

PAPER_PGD = {"eps": 5e-4, "learning_rate": 1e-5, "max_iterations": 500}


def _stats(values) -> dict:
    v = np.asarray(values, np.float64)
    return {"median": float(np.median(v)), "p10": float(np.percentile(v, 10)),
            "p90": float(np.percentile(v, 90)), "mean": float(v.mean())}


def loudness(waves) -> dict:
    """RMS level (dBFS), peak and short-time noise floor (dB re. the excerpt's RMS) per excerpt."""
    rms = np.sqrt(np.mean(waves.astype(np.float64) ** 2, axis=1)) + 1e-12
    frames = waves[:, : waves.shape[1] // 2048 * 2048].reshape(len(waves), -1, 2048)
    frame_rms = np.sqrt(np.mean(frames.astype(np.float64) ** 2, axis=2)) + 1e-12
    floor = 20 * np.log10(np.percentile(frame_rms, 10, axis=1) / rms)
    return {"rms_dbfs": _stats(20 * np.log10(rms)), "peak": _stats(np.abs(waves).max(1)),
            "floor_db_re_rms": _stats(floor)}


def feature_sensitivity(clf: Classifier, waves, eps: float, seed: int) -> dict:
    """How much the standardised features move under a random ±eps perturbation, and how much
    of the dB spectrogram lies near the front-end's floor."""
    feats = jax.jit(clf.features)
    rng = np.random.default_rng(seed)
    clean = np.asarray(feats(waves))  # dB mel (before the per-band standardisation)
    noisy = np.asarray(feats(waves + eps * rng.choice([-1.0, 1.0], waves.shape).astype(np.float32)))
    std = np.asarray(clf.std)[:, None]
    db = clean
    near_floor = (db <= db.max(axis=(1, 2), keepdims=True) - clf.frontend.top_db + 20.0).mean(
        axis=(1, 2))
    flat = db.reshape(len(db), -1)
    return {"feature_change_mean_abs": _stats((np.abs(noisy - clean) / std).mean(axis=(1, 2))),
            "mel_dynamic_range_db": _stats(flat.max(1) - np.percentile(flat, 5, axis=1)),
            "fraction_bins_within_20db_of_floor": _stats(near_floor)}


def gradient_norms(clf: Classifier, waves, labels) -> dict:
    """L1 and L2 norms of d CE / d waveform at the clean excerpts."""
    def loss(x, y):
        return -jax.nn.log_softmax(clf.logits_fn(x[None]))[0, y]

    grads = np.asarray(jax.jit(jax.vmap(jax.grad(loss)))(jnp.asarray(waves), jnp.asarray(labels)))
    return {"grad_l1": _stats(np.abs(grads).sum(1)), "grad_l2": _stats(np.linalg.norm(grads, axis=1)),
            "first_order_loss_change_at_eps": _stats(PAPER_PGD["eps"] * np.abs(grads).sum(1))}


def paper_pgd(clf: Classifier, waves, labels, seed: int) -> dict:
    run = evaluation.run_on_set(attacks.pgd, clf.logits_fn, waves, labels, keep_adversarial=False,
                                key=jax.random.key(seed), slots=16, **PAPER_PGD)
    s = metrics.attack_summary([run], targeted=False, max_iterations=PAPER_PGD["max_iterations"])
    return {k: s.get(k) for k in ("success_rate", "accuracy_after", "snr_db_mean", "snr_db_std",
                                  "iterations_median")}


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", required=True, help="a saved instrument classifier folder")
    ap.add_argument("--data", help="FSDKaggle2019 root (default: the embedded synthetic data)")
    ap.add_argument("--preset", default="demo", help="sizes of the synthetic test split")
    ap.add_argument("--num-clips", type=int, default=48)
    ap.add_argument("--clip-seconds", type=float, default=3.0)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", help="write the figures as JSON here")
    args = ap.parse_args(argv)
    clf = Classifier.load(args.model)
    dataset = "fsdkaggle2019" if args.data else "synth-instruments"
    test = tasks.load_split(dataset, "test", preset_name=args.preset, seed=args.seed,
                            data=args.data)
    aset = evaluation.attack_excerpts(test, clf, num_clips=args.num_clips,
                                      clip_seconds=args.clip_seconds, seed=args.seed)
    waves, labels = aset["waves"], aset["labels"]
    out = {"model": str(args.model), "dataset": dataset, "num_clips": int(len(waves)),
           "clean_accuracy_excerpts": float(np.mean(aset["clean_prediction"] == labels)),
           **loudness(waves), **feature_sensitivity(clf, waves, PAPER_PGD["eps"], args.seed),
           **gradient_norms(clf, waves, labels), "pgd_paper": paper_pgd(clf, waves, labels,
                                                                        args.seed)}
    print(json.dumps(out, indent=2))
    if args.out:
        pathlib.Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        pathlib.Path(args.out).write_text(json.dumps(out, indent=2))
    return out


if __name__ == "__main__":
    main()
