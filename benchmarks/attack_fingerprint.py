"""Fingerprint of every attack: fixed seeds, a tiny untrained classifier, every result array.

Runs each public attack (FGSM, the FGSM sweep, PGD L∞ / L2 / SNR-L2 and the fixed sign step,
``pgd_l2``, C&W targeted and towards a random class, multi-scale C&W, the two-stage
psychoacoustic attack, the four multi-label goals, the refilled-queue ``slots`` mode on the
device and host loops, and the recommender's hub attack) on small shapes with few iterations,
and saves every result array into one ``.npz``. Two fingerprints of the same code, or of a
refactoring that must not change results, are compared bit for bit::

    python benchmarks/attack_fingerprint.py --out before.npz
    python benchmarks/attack_fingerprint.py --out after.npz
    python benchmarks/attack_fingerprint.py --compare before.npz after.npz

The classifier is the toy model of ``tests/test_attacks.py``: magnitude-squared STFT (n_fft
256) -> 16 rectangular bands -> log -> mean over frames -> random linear layer (4 classes), on
four clips of 4096 samples at 16 kHz. The whole run takes well under two minutes on a CPU.
"""

from __future__ import annotations

import argparse
import sys

import jax
import jax.numpy as jnp
import numpy as np

from jaxaudio import attacks
from jaxaudio.dsp import frontend

NUM_SAMPLES, NUM_CLASSES, NUM_BANDS = 4096, 4, 16


def _band_matrix():
    bands = np.zeros((NUM_BANDS, 129), np.float32)
    edges = np.linspace(1, 129, NUM_BANDS + 1).astype(int)
    for i in range(NUM_BANDS):
        bands[i, edges[i]:edges[i + 1]] = 1.0
    return bands


BANDS = _band_matrix()
WEIGHTS = jnp.asarray(np.random.default_rng(0).normal(size=(NUM_BANDS, NUM_CLASSES)),
                      jnp.float32)


def _logits(waves):
    spec = frontend.spectrogram(waves, n_fft=256, hop_length=128, power=2.0,
                                pad_mode="constant")
    feats = jnp.log(jnp.einsum("bf,...ft->...bt", BANDS, spec) + 1e-6).mean(-1)
    return (feats - feats.mean(-1, keepdims=True)) @ WEIGHTS


logits_fn = jax.jit(_logits)


def _waves():
    rng = np.random.default_rng(0)
    t = np.arange(NUM_SAMPLES) / 16000.0
    waves = [0.3 * np.sin(2 * np.pi * f * t) + 0.05 * rng.normal(size=NUM_SAMPLES)
             for f in (300.0, 1200.0, 3000.0, 6000.0)]
    waves[3] = 0.995 * waves[3] / np.abs(waves[3]).max()
    return np.stack(waves).astype(np.float32)


def _store(out: dict, name: str, result) -> None:
    for field, value in result._asdict().items():
        out[f"{name}.{field}"] = np.asarray(value)


def _classifier_attacks(out: dict) -> None:
    x = _waves()
    labels = np.asarray(jnp.argmax(logits_fn(x), -1))
    keys = jax.random.split(jax.random.key(42), len(x))
    tgt = (labels + 1) % NUM_CLASSES  # a class other than the label, per example
    fast = dict(eps=1e-2, learning_rate=1e-3, max_iterations=40)
    fast_cw = dict(clip_eps=5e-2, alpha=1.0, learning_rate=1e-3, max_iterations=40)
    _store(out, "fgsm", attacks.fgsm(logits_fn, x, labels, eps=1e-2))
    _store(out, "fgsm_targeted", attacks.fgsm(logits_fn, x, labels, eps=1e-2, target=tgt))
    _store(out, "fgsm_sweep", attacks.fgsm_sweep(logits_fn, x, labels,
                                                 epsilons=[1e-3, 1e-2, 3e-2]))
    _store(out, "pgd_linf", attacks.pgd(logits_fn, x, labels, key=keys, **fast))
    _store(out, "pgd_linf_quantized", attacks.pgd(logits_fn, x, labels, key=keys,
                                                  quantize_16bit=True, **fast))
    _store(out, "pgd_linf_no_early_stop", attacks.pgd(logits_fn, x, labels, key=keys,
                                                      early_stop=False, **fast))
    _store(out, "pgd_sign", attacks.pgd(logits_fn, x, labels, key=keys, step="sign", **fast))
    _store(out, "pgd_snr_l2", attacks.pgd(logits_fn, x, labels, key=keys, snr_db=30.0, **fast))
    _store(out, "pgd_targeted", attacks.pgd(logits_fn, x, labels, key=keys, target=tgt, **fast))
    _store(out, "pgd_l2", attacks.pgd_l2(logits_fn, x, labels, key=keys, eps=0.5,
                                         learning_rate=1e-3, max_iterations=40))
    _store(out, "pgd_slots_host", attacks.pgd(logits_fn, x, labels, key=keys, slots=2, **fast))
    _store(out, "cw_targeted", attacks.carlini_wagner(logits_fn, x, labels, target=tgt, **fast_cw))
    _store(out, "cw_random", attacks.carlini_wagner(logits_fn, x, labels, key=keys, **fast_cw))
    _store(out, "cw_untargeted", attacks.carlini_wagner(logits_fn, x, labels, target=None,
                                                        **fast_cw))
    _store(out, "mscw", attacks.multiscale_carlini_wagner(
        logits_fn, x, labels, key=keys, fft_sizes=(512, 256, 128, 64), clip_eps=5e-2,
        alpha=10.0, learning_rate=1e-3, max_iterations=30))
    _store(out, "psychoacoustic", attacks.psychoacoustic(
        logits_fn, x, labels, key=keys, eps=1e-2, stage1_learning_rate=1e-3,
        stage1_iterations=30, learning_rate=1e-4, max_iterations=30, alpha=1.0,
        check_every=5, n_fft=512, hop_length=128))
    _store(out, "psychoacoustic_targeted", attacks.psychoacoustic(
        logits_fn, x, labels, key=keys, target=tgt, eps=1e-2, stage1_learning_rate=1e-3,
        stage1_iterations=30, learning_rate=1e-4, max_iterations=20, alpha=1.0,
        check_every=5, n_fft=512, hop_length=128, loop="device"))
    # The refilled queue through the compiled core, on the device and host loops.
    prepared = attacks.validation.prepare_inputs(logits_fn, x, labels, key=keys,
                                                 need_key=True)
    args = (prepared.x, prepared.labels, prepared.targets, prepared.keys,
            attacks.as_hyper(eps=1e-2, learning_rate=1e-3), jnp.asarray(40, jnp.int32))
    for loop in ("device", "host"):
        fn = attacks.make_attack("pgd", logits_fn, slots=3, loop=loop, norm="linf",
                                 random_start=True)
        result, steps = fn(*args)
        _store(out, f"queue_{loop}", result)
        out[f"queue_{loop}.slot_steps"] = np.asarray(steps)
    plain = attacks.make_attack("pgd", logits_fn, loop="device", norm="linf", random_start=True)
    _store(out, "plain_device", plain(*args))


_T = np.arange(NUM_SAMPLES) / 16000
_BASIS = jnp.asarray(np.stack([np.sin(2 * np.pi * f * _T) for f in (300, 700, 1500, 3100)]),
                     jnp.float32)
tagger = jax.jit(lambda x: 400.0 * (x @ _BASIS.T) / NUM_SAMPLES - 1.0)


def _multilabel_attacks(out: dict) -> None:
    rng = np.random.default_rng(0)
    amps = np.array([[0.03, 0.03, 0, 0], [0.03, 0, 0.03, 0], [0, 0.03, 0, 0.03]], np.float32)
    x = np.asarray(amps @ np.asarray(_BASIS) + 0.001 * rng.standard_normal((3, NUM_SAMPLES)),
                   np.float32)
    tags = (np.asarray(tagger(x)) > 0).astype(np.int32)
    cases = {"remove": dict(tag=np.argmax(tags, 1)), "add": dict(tag=np.argmin(tags, 1)),
             "replace": dict(target_tags=1 - tags), "change": {}}
    for attack in ("pgd", "cw"):
        for goal, extra in cases.items():
            res = attacks.multilabel(tagger, x, tags, goal=goal, attack=attack,
                                     key=jax.random.key(1), eps=0.05, clip_eps=0.05,
                                     alpha=50.0, learning_rate=2e-3, max_iterations=40, **extra)
            _store(out, f"multilabel_{attack}_{goal}", res)


def _hub_attack(out: dict) -> None:
    from jaxaudio.recommender import attack as hub
    from jaxaudio.recommender import collection, features, hubness

    songs = collection.synth_collection(num_songs=12, seconds=1.0, seed=3)
    gaussians = jax.jit(jax.vmap(features.gaussian_of_wave))(np.stack(songs.waves))
    rec = hub.make_recommender(gaussians, k=3)
    kocc = hubness.k_occurrence(hubness.nearest_neighbours(
        np.asarray(rec.distances, np.float64), 3))
    candidates = np.flatnonzero(kocc < 4)[:2]
    targets = hub.choose_targets(candidates, rec.metric, kocc, hubness.hubs(kocc, 4), "closest")
    x = np.stack([songs.waves[i] for i in candidates])
    for objective in ("kl", "mp"):
        res = hub.hub_attack(x, candidates, targets, rec, k=3, hub_size=4, objective=objective,
                             direction="reverse", max_iterations=12, check_every=4)
        _store(out, f"hub_{objective}", res)


def fingerprint() -> dict:
    out: dict = {}
    _classifier_attacks(out)
    _multilabel_attacks(out)
    _hub_attack(out)
    return out


def compare(a_path: str, b_path: str) -> bool:
    a, b = np.load(a_path), np.load(b_path)
    names = sorted(set(a.files) | set(b.files))
    missing = [n for n in names if n not in a.files or n not in b.files]
    differ, worst = [], 0.0
    for n in names:
        if n in missing:
            continue
        x, y = a[n], b[n]
        if x.shape != y.shape or x.dtype != y.dtype or not np.array_equal(x, y, equal_nan=True):
            differ.append(n)
            if x.shape == y.shape and np.issubdtype(x.dtype, np.number):
                d = np.abs(x.astype(np.float64) - y.astype(np.float64))
                worst = max(worst, float(np.nanmax(np.where(np.isinf(d), 0, d), initial=0)))
    print(f"{len(names)} arrays ({len(a.files)} in {a_path}, {len(b.files)} in {b_path})")
    print(f"missing from one side: {len(missing)} {missing[:10]}")
    print(f"bit-identical: {len(names) - len(missing) - len(differ)}; differ: {len(differ)} "
          f"{differ[:10]}")
    print(f"max abs difference: {worst:g}")
    ok = not missing and not differ
    print("ALL BIT-IDENTICAL" if ok else "NOT IDENTICAL")
    return ok


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    group = parser.add_mutually_exclusive_group(required=True)
    group.add_argument("--out", help="write the fingerprint .npz here")
    group.add_argument("--compare", nargs=2, metavar=("A", "B"), help="compare two .npz")
    args = parser.parse_args(argv)
    if args.compare:
        return 0 if compare(*args.compare) else 1
    out = fingerprint()
    np.savez(args.out, **out)
    print(f"{len(out)} arrays -> {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
