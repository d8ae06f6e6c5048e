"""Study 3 (REFERENCE.md §3): auditing LIME explanations of the singing voice detector with
adversarial examples (Praher et al., ISMIR 2021).

Stages (each cached under ``out/cache``, so a rerun only redoes what is missing):

1. ``model``: train the singing voice detector (``tasks`` + ``train.train``, resumable, in
   ``out/train``) or load ``--model``; measure its frame accuracy on the test split.
2. ``excerpts``: 115-frame excerpts of the test songs in both directions — sing (to be turned
   into no sing) and no sing (to be turned into sing) — confidently and correctly classified.
3. ``adversaries_<domain>``: C&W-style attacks with signed-gradient Adam
   (:func:`jaxaudio.attacks.carlini_wagner`, ``decision="sigmoid"``) that flip the detector,
   on the waveform (``domain="waveform"``) and on the front-end's output
   (``domain="spectrogram"``). The audit works on spectrograms: a waveform adversary's delta
   is ``features(adversary) - features(original)``.
4. ``explanations_<domain>``: LIME (the bridge to the real ``lime`` package), occlusion and
   integrated gradients of every adversary for its new label, over 5 x 4 components.
5. ``horses`` and ``subset``: the controls (obvious edits; adversaries confined to a random
   subset of components), explained the same way.
6. The audit (:mod:`jaxaudio.audit`), figures, ``results.json`` and ``report.html``.
"""

from __future__ import annotations

import argparse
import dataclasses
import html
import json
import pathlib
import shutil
import time
from typing import Callable, Optional

import jax
import jax.numpy as jnp
import numpy as np

NAME = "lime_veracity"
DIRECTIONS = ("nosing_to_sing", "sing_to_nosing")
DOMAINS = ("waveform", "spectrogram")
EXPLAINERS = ("lime", "occlusion", "integrated_gradients")
#: The published figures (REFERENCE.md §3), fractions of adversaries whose label still flips.
PUBLISHED = {
    "table1": {"waveform": {"nosing_to_sing": 0.53, "sing_to_nosing": 0.21},
               "spectrogram": {"nosing_to_sing": 0.41, "sing_to_nosing": 0.32}},
    "table2": {"waveform": {"nosing_to_sing": {"lime": 0.86, "norm": 0.99},
                            "sing_to_nosing": {"lime": 0.49, "norm": 0.74}},
               "spectrogram": {"nosing_to_sing": {"lime": 0.91, "norm": 0.98},
                               "sing_to_nosing": {"lime": 0.44, "norm": 0.55}}},
}


@dataclasses.dataclass(frozen=True)
class StudyPreset:
    """Sizes of one preset (the method never changes).

    Attributes:
      per_direction: excerpts per direction (sing -> no sing, no sing -> sing).
      num_samples: LIME perturbation samples per explanation (the study: 8192).
      confidence: originals must have p(predicted class) >= this; adversaries are pushed to
        the same confidence in the new class (C&W's confidence margin; 0.5 = just flipped).
      wave_*: waveform C&W (``clip_eps`` is the L-inf bound of delta in [-1, 1] units).
      spec_*: spectrogram C&W (log-magnitude units, i.e. nepers).
      max_iterations: attack steps (all are run; the lowest-energy success is kept).
      ig_steps: integrated-gradients intervals.
      horse_examples, subset_examples: originals used for the two controls (per direction).
      subset_size: components carrying a subset perturbation.
      subset_*: the subset attack (spectrogram domain; confined to a few components it needs
        a stronger classification term and more steps; success = the label flips).
      stability_sizes, stability_repeats: LIME sample counts at which the top-3 of one adversary
        is compared with a reference at the largest (:func:`jaxaudio.explain.topk_stability`).
      train_examples_per_epoch, train_epochs: override the voice task's preset when training
        here (``None`` = the task preset's own values).
    """

    per_direction: int
    num_samples: int
    confidence: float = 0.9
    wave_clip_eps: float = 0.02
    wave_alpha: float = 0.1
    wave_learning_rate: float = 1e-4
    spec_clip_eps: float = 3.0
    spec_alpha: float = 30.0
    spec_learning_rate: float = 0.02
    max_iterations: int = 100
    ig_steps: int = 32
    horse_examples: int = 2
    subset_examples: int = 2
    subset_size: int = 3
    subset_confidence: float = 0.5
    subset_clip_eps: float = 6.0
    subset_alpha: float = 300.0
    subset_learning_rate: float = 0.05
    subset_iterations: int = 200
    stability_sizes: tuple = (128, 256, 512, 1024)
    stability_repeats: int = 3
    train_examples_per_epoch: Optional[int] = None
    train_epochs: Optional[int] = None


PRESETS = {
    "smoke": StudyPreset(per_direction=2, num_samples=128, confidence=0.5, max_iterations=10,
                         ig_steps=4, horse_examples=1, subset_examples=1, subset_iterations=10,
                         stability_sizes=(32, 64, 128), stability_repeats=2),
    "demo": StudyPreset(per_direction=16, num_samples=1024, max_iterations=100, ig_steps=16,
                        horse_examples=4, subset_examples=4),
    "paper": StudyPreset(per_direction=50, num_samples=8192, max_iterations=1000,
                         ig_steps=32, horse_examples=25, subset_examples=25,
                         subset_iterations=1000,
                         stability_sizes=(512, 1024, 2048, 4096, 8192), stability_repeats=5),
}

N_TEMPORAL, N_FREQUENCY = 5, 4
_FEATURES: dict = {}  # id(classifier) -> (classifier, jitted front-end): compile once per model
TOP_K = 3


# ----------------------------------------------------------------------------- CLI


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--preset", choices=tuple(PRESETS), default="demo",
                        help="sizes (smoke: seconds, demo: minutes, paper: the study's sizes)")
    parser.add_argument("--data", default=None,
                        help="Jamendo-VAD root (audio/, labels/, filelists/); default: the "
                             "embedded synthetic songs")
    parser.add_argument("--model", default=None,
                        help="a saved singing voice detector (Classifier.save folder) to audit "
                             "instead of training one")
    parser.add_argument("--out", required=True, help="output folder")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--num-samples", type=int, default=None,
                        help="LIME perturbation samples per explanation (default: the preset's; "
                             "the study used 8192)")
    parser.add_argument("--per-direction", type=int, default=None,
                        help="excerpts per attack direction (default: the preset's)")
    parser.add_argument("--no-progress", action="store_true", help="hide progress bars")


def run_from_args(args) -> int:
    run(out=args.out, preset=args.preset, seed=args.seed, data=args.data, model=args.model,
        progress=not args.no_progress, num_samples=args.num_samples,
        per_direction=args.per_direction)
    print(f"report: {pathlib.Path(args.out) / 'report.html'}")
    return 0


# ----------------------------------------------------------------------------- cache


class _Cache:
    """``out/cache/<stage>.npz`` arrays; wiped when the run's configuration changes."""

    def __init__(self, out: pathlib.Path, config: dict):
        self.dir = out / "cache"
        stamp = self.dir / "config.json"
        config = json.loads(json.dumps(config))  # tuples -> lists, as read back from disk
        if stamp.is_file() and json.loads(stamp.read_text()) != config:
            shutil.rmtree(self.dir)
        self.dir.mkdir(parents=True, exist_ok=True)
        stamp.write_text(json.dumps(config, indent=2, sort_keys=True))
        self.reused: list[str] = []

    def get(self, stage: str, compute: Callable[[], dict]) -> dict:
        path = self.dir / f"{stage}.npz"
        if path.is_file():
            with np.load(path, allow_pickle=False) as f:
                self.reused.append(stage)
                return {k: f[k] for k in f.files}
        arrays = {k: np.asarray(v) for k, v in compute().items()}
        tmp = self.dir / f"{stage}.tmp.npz"
        np.savez(tmp, **arrays)
        tmp.replace(path)  # atomic: a killed run never leaves a half-written stage
        return arrays


def _bar(iterable, progress: bool, **kw):
    from tqdm.auto import tqdm

    return tqdm(iterable, disable=not progress, leave=False, **kw)


# ----------------------------------------------------------------------------- stages


def _model(out: pathlib.Path, preset: str, sp: StudyPreset, seed: int, data, model,
           progress: bool):
    from jaxaudio import tasks
    from jaxaudio.models import Classifier
    from jaxaudio.train import train

    if model is not None:
        return Classifier.load(model), str(pathlib.Path(model).absolute())
    saved = out / "model"
    if (saved / "classifier.json").is_file():
        return Classifier.load(saved), str(saved.absolute())
    dataset = "jamendo" if data else "synth-voice"
    p = tasks.preset("voice", preset)
    if sp.train_examples_per_epoch:
        p = dataclasses.replace(p, examples_per_epoch=sp.train_examples_per_epoch)
    train_set = tasks.load_split(dataset, "train", preset_name=preset, seed=seed, data=data)
    clf = tasks.new_classifier("voice", p, seed=seed)
    source = tasks.example_source("voice", train_set, p, clf.frontend)
    config = tasks.train_config("voice", p, seed=seed, epochs=sp.train_epochs)
    result = train(clf, source, config, out_dir=out / "train", resume=True, progress=progress)
    result.classifier.save(saved)
    return result.classifier, str(saved.absolute())


def _excerpts(clf, preset: str, sp: StudyPreset, seed: int, data, progress: bool) -> dict:
    """Frame accuracy on the test split and the excerpts to attack, in both directions."""
    from jaxaudio import metrics, tasks
    from jaxaudio.train import song_padded

    dataset = "jamendo" if data else "synth-voice"
    p = tasks.preset("voice", preset)
    test_set = tasks.load_split(dataset, "test", preset_name=preset, seed=seed, data=data)
    hop = clf.frontend.hop_length
    rows = []  # (song, frame, label, prob)
    for i in _bar(range(len(test_set)), progress, desc="test songs"):
        frames, probs = tasks.song_frame_probabilities(clf, test_set.waves[i],
                                                       frame_step=p.eval_frame_step)
        labels = test_set.frame_labels(i, hop_length=hop)[frames]
        rows.append(np.stack([np.full(len(frames), i), frames, labels, probs], 1))
    table = np.concatenate(rows)
    accuracy = metrics.frame_accuracy(table[:, 3], table[:, 2])

    rng = np.random.default_rng([seed, 3])
    chosen, directions, correct = [], [], []
    for d, name in enumerate(DIRECTIONS):
        source_label = 0 if name == "nosing_to_sing" else 1
        p_class = table[:, 3] if source_label == 1 else 1.0 - table[:, 3]
        predicted = p_class > 0.5
        confident = predicted & (p_class >= sp.confidence)
        is_correct = table[:, 2] == source_label
        picked: list[int] = []
        # Prefer confident and correct; fall back (tiny smoke models) to confident, then to
        # whatever the detector predicts as this class. `correct` records which is which.
        for pool in (confident & is_correct, confident, predicted):
            candidates = np.setdiff1d(np.flatnonzero(pool), picked)
            need = sp.per_direction - len(picked)
            if need <= 0:
                break
            picked += list(rng.permutation(candidates)[:need])
        chosen += picked
        directions += [d] * len(picked)
        correct += list(is_correct[picked])
    chosen = np.asarray(chosen, np.int64)
    songs, frames = table[chosen, 0].astype(np.int64), table[chosen, 1].astype(np.int64)
    length = clf.excerpt_samples
    waves = np.stack([
        song_padded(test_set.waves[s], clf.excerpt_frames, hop)[f * hop:f * hop + length]
        for s, f in zip(songs, frames)
    ]).astype(np.float32) if len(chosen) else np.zeros((0, length), np.float32)
    return {
        "accuracy": np.float64(accuracy), "num_frames": np.int64(len(table)),
        "frame_step": np.int64(p.eval_frame_step), "sing_fraction": np.float64(table[:, 2].mean()),
        "waves": waves, "direction": np.asarray(directions, np.int64), "song": songs,
        "frame": frames, "true_label": table[chosen, 2].astype(np.int64),
        "probability": table[chosen, 3], "correct": np.asarray(correct, bool),
    }


def _attack(logits_fn, x, labels, *, domain: str, sp: StudyPreset, directions,
            subset: bool = False):
    """C&W per direction, with the decision threshold set to reach ``sp.confidence``.

    ``subset=True``: the spectrogram attack confined to a few components (``x`` carries the
    mask channel of :func:`jaxaudio.audit.subset_logits_fn`), with the ``subset_*`` settings.
    """
    from jaxaudio import attacks

    wave = domain == "waveform"
    confidence = sp.subset_confidence if subset else sp.confidence
    settings = dict(
        clip_eps=sp.subset_clip_eps if subset else sp.wave_clip_eps if wave else sp.spec_clip_eps,
        alpha=sp.subset_alpha if subset else sp.wave_alpha if wave else sp.spec_alpha,
        learning_rate=(sp.subset_learning_rate if subset else sp.wave_learning_rate if wave
                       else sp.spec_learning_rate),
        max_iterations=sp.subset_iterations if subset else sp.max_iterations)
    adv = np.array(x, np.float32, copy=True)
    success = np.zeros(len(x), bool)
    for d, name in enumerate(DIRECTIONS):
        idx = np.flatnonzero(directions == d)
        if idx.size == 0:
            continue
        # sing -> no sing succeeds once p <= 1 - confidence; no sing -> sing once p > confidence.
        threshold = confidence if name == "nosing_to_sing" else 1.0 - confidence
        res = attacks.carlini_wagner(
            logits_fn, x[idx], labels[idx], decision="sigmoid", threshold=threshold,
            domain="waveform" if wave else "spectrogram", **settings,
            # Run every step: C&W's L2 term keeps shrinking delta where the gradient is weak,
            # and the lowest-energy successful iterate is returned (early stopping would
            # return the first, a nearly uniform signed-gradient step).
            early_stop=False)
        adv[idx] = np.asarray(res.adversarial)
        success[idx] = np.asarray(res.success)
    return adv, success


def _features(clf, waves, batch: int = 16) -> np.ndarray:
    """Front-end features ``(n, n_mels, frames)`` of waves ``(n, samples)``, in fixed batches."""
    if len(waves) == 0:
        return np.zeros((0, clf.frontend.n_mels, clf.excerpt_frames), np.float32)
    fn = _FEATURES.setdefault(id(clf), (clf, jax.jit(clf.features)))[1]
    out = []
    for i in range(0, len(waves), batch):
        chunk = waves[i:i + batch]
        n = len(chunk)
        if n < batch:
            chunk = np.concatenate([chunk, np.repeat(chunk[-1:], batch - n, 0)])
        out.append(np.asarray(fn(jnp.asarray(chunk)))[:n])
    return np.concatenate(out)


def _explain_all(predict, specs, targets, *, sp: StudyPreset, num_samples: int, key,
                 progress: bool, desc: str) -> dict:
    """LIME, occlusion and integrated gradients of every spectrogram for its target label."""
    from jaxaudio import explain as ex

    n, c = len(specs), N_TEMPORAL * N_FREQUENCY
    out = {f"{e}_weights": np.zeros((n, c)) for e in EXPLAINERS}
    out["lime_score"] = np.zeros(n)
    out["lime_seconds"] = np.zeros(n)
    for i in _bar(range(n), progress, desc=desc):
        label = int(targets[i])
        t0 = time.perf_counter()
        lime = ex.explain(predict, specs[i], key=jax.random.fold_in(key, i),
                          num_samples=num_samples, labels=(label,), keep_predictions=False,
                          n_temporal=N_TEMPORAL, n_frequency=N_FREQUENCY)
        out["lime_seconds"][i] = time.perf_counter() - t0
        out["lime_weights"][i] = lime.weights_for(label)
        out["lime_score"][i] = lime.score[0]
        out["occlusion_weights"][i] = ex.occlusion(
            predict, specs[i], labels=label, n_temporal=N_TEMPORAL,
            n_frequency=N_FREQUENCY).weights_for(label)
        out["integrated_gradients_weights"][i] = ex.integrated_gradients(
            predict, specs[i], labels=label, steps=sp.ig_steps, n_temporal=N_TEMPORAL,
            n_frequency=N_FREQUENCY).weights_for(label)
    return out


# ----------------------------------------------------------------------------- audit


def _nan_to_none(x):
    if isinstance(x, dict):
        return {k: _nan_to_none(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_nan_to_none(v) for v in x]
    if isinstance(x, (float, np.floating)):
        return None if not np.isfinite(x) else float(x)
    if isinstance(x, np.integer):
        return int(x)
    return x


def _audit_domain(predict, masks, specs, deltas, targets, directions, expl) -> dict:
    """Flip matrices per direction and selection: explainers and norm."""
    from jaxaudio import audit

    out = {}
    norm_rank = audit.norm_rankings(deltas, masks) if len(specs) else None
    flips_all = {}
    for sel in EXPLAINERS + ("norm",):
        if not len(specs):
            flips_all[sel] = np.zeros((0, masks.shape[0] + 1), bool)
            continue
        rank = norm_rank if sel == "norm" else audit.rankings_from_weights(expl[f"{sel}_weights"])
        flips_all[sel] = audit.flip_matrix(predict, specs, deltas, rank, masks, targets)
    for d, name in enumerate(DIRECTIONS):
        idx = directions == d
        out[name] = {sel: flips_all[sel][idx] for sel in flips_all}
    return out


def _render_flip_results(flips: dict, expl: dict, directions) -> tuple[dict, dict, dict]:
    from jaxaudio import audit

    t1, t2, curves = {}, {}, {}
    for d, name in enumerate(DIRECTIONS):
        idx = directions == d
        f = flips[name]
        t1[name] = {sel: audit.table_at_k(f[sel], TOP_K) if len(f[sel]) else float("nan")
                    for sel in f}
        t1[name]["num_examples"] = int(idx.sum())
        t2[name] = {}
        for e in EXPLAINERS:
            counts = audit.positive_counts(expl[f"{e}_weights"][idx]) if idx.any() else np.zeros(0, int)
            row = audit.table_positive(f[e], f["norm"], counts)
            t2[name][e] = row["explainer"]
            t2[name][f"norm_for_{e}"] = row["norm"]
            t2[name][f"{e}_mean_components"] = row["mean_components"]
        t2[name]["norm"] = t2[name]["norm_for_lime"]
        t2[name]["num_examples"] = int(idx.sum())
        curves[name] = {sel: audit.flip_curve(f[sel]).tolist() for sel in f}
    return t1, t2, curves


# ----------------------------------------------------------------------------- the study


def run(*, out, preset: str = "demo", seed: int = 0, data=None, model=None,
        progress: bool = True, num_samples: Optional[int] = None,
        per_direction: Optional[int] = None) -> dict:
    """Run the whole study; write ``results.json``, figures, audio and ``report.html`` in ``out``.

    Parameters
    ----------
    out : path
        Output folder (created). Finished stages are cached in ``out/cache`` and reused.
    preset : {"smoke", "demo", "paper"}
    seed : int
        Seeds data, training, excerpt choice and every explainer's key.
    data : path or None
        Jamendo-VAD root; ``None`` = the embedded synthetic songs.
    model : path or None
        A saved singing voice detector; ``None`` = train one in ``out/train`` (resumable).
    progress : bool
        Show progress bars.
    num_samples : int >= 2 or None
        LIME samples per explanation (default: the preset's; the study's is 8192).
    per_direction : int >= 1 or None
        Excerpts per direction (default: the preset's).

    Returns
    -------
    dict
        The contents of ``results.json``.
    """
    from jaxaudio import audit, report
    from jaxaudio import explain as ex

    if preset not in PRESETS:
        raise ValueError(f"unknown preset {preset!r}; choose one of {tuple(PRESETS)}")
    sp = PRESETS[preset]
    if num_samples is not None:
        if int(num_samples) != num_samples or num_samples < 2:
            raise ValueError(f"num_samples must be an integer >= 2, got {num_samples!r}")
        sp = dataclasses.replace(sp, num_samples=int(num_samples))
    if per_direction is not None:
        if int(per_direction) != per_direction or per_direction < 1:
            raise ValueError(f"per_direction must be an integer >= 1, got {per_direction!r}")
        sp = dataclasses.replace(sp, per_direction=int(per_direction),
                                 horse_examples=min(sp.horse_examples, int(per_direction)),
                                 subset_examples=min(sp.subset_examples, int(per_direction)))
    if model is not None and not (pathlib.Path(model) / "classifier.json").is_file():
        raise ValueError(f"--model {model}: no saved classifier there (classifier.json missing)")
    if data is not None and not pathlib.Path(data).is_dir():
        raise ValueError(f"--data {data}: not a folder")
    out = pathlib.Path(out)
    out.mkdir(parents=True, exist_ok=True)
    t_start = time.perf_counter()

    clf, model_path = _model(out, preset, sp, seed, data, model, progress)
    if clf.task != "binary":
        raise ValueError(f"the audit needs a binary singing voice detector, got task {clf.task!r}")
    cache = _Cache(out, {"preset": preset, "seed": seed, "data": str(data),
                         "model": model_path, "model_fingerprint": clf.fingerprint(),
                         "study_preset": dataclasses.asdict(sp)})
    key = jax.random.key(seed)
    stages: dict[str, float] = {}

    def timed(name, fn):
        t0 = time.perf_counter()
        r = fn()
        stages[name] = time.perf_counter() - t0
        return r

    exc = timed("excerpts", lambda: cache.get(
        "excerpts", lambda: _excerpts(clf, preset, sp, seed, data, progress)))
    waves, directions = exc["waves"], exc["direction"]
    if len(waves) == 0:
        raise ValueError("no test excerpt is predicted as either class; cannot attack")
    source_labels = np.where(directions == 0, 0, 1).astype(np.int32)  # nosing_to_sing: 0 -> 1
    targets = 1 - source_labels
    orig_specs = _features(clf, waves)

    predict = ex.binary_to_two_class(clf.feature_logits_fn, from_logits=True)
    masks = ex.component_masks(orig_specs.shape[1:], n_temporal=N_TEMPORAL,
                               n_frequency=N_FREQUENCY)

    # -- adversaries ----------------------------------------------------------------------
    def wave_adversaries():
        adv, ok = _attack(clf.logits_fn, waves, source_labels, domain="waveform", sp=sp,
                          directions=directions)
        return {"adversarial": adv, "success": ok}

    def spec_adversaries():
        adv, ok = _attack(clf.feature_logits_fn, orig_specs, source_labels,
                          domain="spectrogram", sp=sp, directions=directions)
        return {"adversarial": adv, "success": ok}

    adv = {"waveform": timed("adversaries_waveform",
                             lambda: cache.get("adversaries_waveform", wave_adversaries)),
           "spectrogram": timed("adversaries_spectrogram",
                                lambda: cache.get("adversaries_spectrogram", spec_adversaries))}
    adv_specs = {"waveform": _features(clf, adv["waveform"]["adversarial"]),
                 "spectrogram": adv["spectrogram"]["adversarial"]}

    # -- explanations and audit per domain ------------------------------------------------
    table1, table2, curves, explained, audits = {}, {}, {}, {}, {}
    lime_seconds, fidelity_rows = [], []
    for di, domain in enumerate(DOMAINS):
        ok = adv[domain]["success"].astype(bool)
        idx = np.flatnonzero(ok)
        specs, deltas = orig_specs[idx], (adv_specs[domain] - orig_specs)[idx]
        # The audit needs adversaries the detector really labels with the target.
        if len(idx):
            really = audit.predict_labels(predict, adv_specs[domain][idx]) == targets[idx]
            idx, specs, deltas = idx[really], specs[really], deltas[really]
        expl = timed(f"explanations_{domain}", lambda: cache.get(
            f"explanations_{domain}",
            lambda: _explain_all(predict, orig_specs[idx] + deltas, targets[idx], sp=sp,
                                 num_samples=sp.num_samples,
                                 key=jax.random.fold_in(key, 100 + di), progress=progress,
                                 desc=f"explain {domain} adversaries")))
        lime_seconds += list(expl["lime_seconds"])
        flips = timed(f"audit_{domain}", lambda: _audit_domain(
            predict, masks, specs, deltas, targets[idx], directions[idx], expl))
        t1, t2, cv = _render_flip_results(flips, expl, directions[idx])
        table1[domain], table2[domain], curves[domain] = t1, t2, cv
        explained[domain] = {"index": idx, **expl}
        audits[domain] = flips
        for d, name in enumerate(DIRECTIONS):
            sel = directions[idx] == d
            correct = flips[name]["lime"][:, TOP_K]
            for s, c in zip(expl["lime_score"][sel], correct):
                fidelity_rows.append((domain, name, float(s), bool(c)))

    # -- how stable is LIME's top-3 as num_samples shrinks? -------------------------------
    def stability_stage():
        for domain in ("spectrogram", "waveform"):
            idx = explained[domain]["index"]
            if len(idx):
                i = int(idx[0])
                r = ex.topk_stability(predict, adv_specs[domain][i], key=jax.random.fold_in(key, 400),
                                      sample_sizes=sp.stability_sizes, k=TOP_K,
                                      repeats=sp.stability_repeats, label=int(targets[i]))
                return {"domain": np.asarray(domain), "example": np.int64(i),
                        **{k: np.asarray(v) for k, v in r.items()}}
        return {}

    stability = timed("stability", lambda: cache.get("stability", stability_stage))
    stability = {k: v.tolist() for k, v in stability.items()}

    # -- horses ---------------------------------------------------------------------------
    def horse_stage():
        pick = np.concatenate([np.flatnonzero(directions == d)[:sp.horse_examples]
                               for d in range(len(DIRECTIONS))])
        spread = float(orig_specs.std())
        h = audit.find_horses(predict, orig_specs[pick], source_labels[pick], masks,
                              amplitudes=spread * np.array([0.5, 1, 1.5, 2, 3, 4, 6, 8]),
                              key=jax.random.fold_in(key, 200))
        found = np.flatnonzero(h["found"])
        e = _explain_all(predict, h["spec"][found], targets[pick][found], sp=sp,
                         num_samples=sp.num_samples, key=jax.random.fold_in(key, 201),
                         progress=progress, desc="explain horses")
        return {"pick": pick, "found": h["found"], "spec": h["spec"], "component": h["component"],
                "kind": h["kind"], "amplitude": h["amplitude"], "spread": np.float64(spread), **e}

    horses = timed("horses", lambda: cache.get("horses", horse_stage))

    # -- subset perturbations -------------------------------------------------------------
    def subset_stage():
        pick = np.concatenate([np.flatnonzero(directions == d)[:sp.subset_examples]
                               for d in range(len(DIRECTIONS))])
        subsets = audit.random_subsets(jax.random.fold_in(key, 300), len(pick), masks.shape[0],
                                       sp.subset_size)
        cells = np.einsum("nc,cft->nft", subsets, masks).astype(np.float32)
        x = np.stack([orig_specs[pick], cells], axis=1)
        adv_x, ok = _attack(audit.subset_logits_fn(clf.feature_logits_fn), x,
                            source_labels[pick], domain="spectrogram", sp=sp,
                            directions=directions[pick], subset=True)
        if not np.array_equal(adv_x[:, 1], cells):
            raise RuntimeError("the subset attack moved its mask channel")
        adv_spec = orig_specs[pick] + (adv_x[:, 0] - orig_specs[pick]) * cells
        ok &= audit.predict_labels(predict, adv_spec) == targets[pick]
        good = np.flatnonzero(ok)
        e = _explain_all(predict, adv_spec[good], targets[pick][good], sp=sp,
                         num_samples=sp.num_samples, key=jax.random.fold_in(key, 301),
                         progress=progress, desc="explain subset adversaries")
        return {"pick": pick, "subsets": subsets, "success": ok, "spec": adv_spec, **e}

    subset = timed("subset", lambda: cache.get("subset", subset_stage))

    # -- results --------------------------------------------------------------------------
    hfound = np.flatnonzero(horses["found"])
    horse_res = {"num_examples": int(len(horses["pick"])), "num_found": int(len(hfound)),
                 "kinds": list(audit.HORSE_KINDS),
                 "amplitudes": horses["amplitude"][hfound].tolist(),
                 "spectrogram_std": float(horses["spread"]),
                 "lime_mean_score": float(np.mean(horses["lime_score"])) if len(hfound) else None}
    for e in EXPLAINERS:
        rank = audit.rankings_from_weights(horses[f"{e}_weights"]) if len(hfound) else np.zeros((0, 20), int)
        for k in (1, TOP_K):
            horse_res[f"{e}_top{k}"] = audit.detection_rate(rank, horses["component"][hfound], k) \
                if len(hfound) else None
    sgood = np.flatnonzero(subset["success"])
    subset_res = {"num_examples": int(len(subset["pick"])), "num_adversaries": int(len(sgood)),
                  "subset_size": sp.subset_size,
                  "chance": sp.subset_size / masks.shape[0],
                  "lime_mean_score": float(np.mean(subset["lime_score"])) if len(sgood) else None}
    for e in EXPLAINERS:
        if len(sgood):
            rank = audit.rankings_from_weights(subset[f"{e}_weights"])
            subset_res[f"{e}_recall"] = float(audit.subset_recall(rank, subset["subsets"][sgood]).mean())
        else:
            subset_res[f"{e}_recall"] = None

    fid_scores = np.array([r[2] for r in fidelity_rows])
    fid_correct = np.array([r[3] for r in fidelity_rows], bool)
    fidelity = {"adversaries": audit.fidelity_vs_correctness(fid_scores, fid_correct)
                if len(fidelity_rows) else None,
                "correct_means": f"the top-{TOP_K} LIME components alone flip the label",
                "points": [{"domain": r[0], "direction": r[1], "score": r[2], "correct": r[3]}
                           for r in fidelity_rows]}
    if len(hfound):
        hrank = audit.rankings_from_weights(horses["lime_weights"])
        hit = (hrank[:, :1] == horses["component"][hfound][:, None]).any(1)
        fidelity["horses"] = audit.fidelity_vs_correctness(horses["lime_score"], hit)
        fidelity["horse_points"] = [{"score": float(s), "correct": bool(c)}
                                    for s, c in zip(horses["lime_score"], hit)]

    lime_seconds += list(horses["lime_seconds"]) + list(subset["lime_seconds"])
    attacks_res = {}
    for domain in DOMAINS:
        ok = adv[domain]["success"].astype(bool)
        attacks_res[domain] = {
            name: {"num_excerpts": int((directions == d).sum()),
                   "num_success": int(ok[directions == d].sum()),
                   "num_audited": int((directions[explained[domain]["index"]] == d).sum())}
            for d, name in enumerate(DIRECTIONS)}
    wave_delta = adv["waveform"]["adversarial"] - waves
    ok_w = adv["waveform"]["success"].astype(bool)
    if ok_w.any():
        snr = 10 * np.log10(np.sum(waves[ok_w] ** 2, 1) / np.maximum(np.sum(wave_delta[ok_w] ** 2, 1), 1e-20))
        attacks_res["waveform"]["median_snr_db"] = float(np.median(snr))

    results = {
        "study": NAME,
        "preset": preset,
        "seed": seed,
        "data": "jamendo" if data else "synth-voice",
        "model": {"path": model_path, "accuracy": float(exc["accuracy"]),
                  "num_frames": int(exc["num_frames"]), "frame_step": int(exc["frame_step"]),
                  "sing_fraction": float(exc["sing_fraction"]),
                  "width": int(clf.model_kwargs.get("width", 0))},
        "excerpts": {name: {"num": int((directions == d).sum()),
                            "num_correct": int(exc["correct"][directions == d].sum())}
                     for d, name in enumerate(DIRECTIONS)},
        "segmentation": {"n_temporal": N_TEMPORAL, "n_frequency": N_FREQUENCY,
                         "baseline": "mean", "top_k": TOP_K},
        "attacks": attacks_res,
        "attack_settings": {"method": "carlini_wagner (signed-gradient Adam)",
                            "confidence": sp.confidence, "max_iterations": sp.max_iterations,
                            "waveform": {"clip_eps": sp.wave_clip_eps, "alpha": sp.wave_alpha,
                                         "learning_rate": sp.wave_learning_rate},
                            "spectrogram": {"clip_eps": sp.spec_clip_eps, "alpha": sp.spec_alpha,
                                            "learning_rate": sp.spec_learning_rate},
                            "subset": {"confidence": sp.subset_confidence,
                                       "clip_eps": sp.subset_clip_eps, "alpha": sp.subset_alpha,
                                       "learning_rate": sp.subset_learning_rate,
                                       "max_iterations": sp.subset_iterations}},
        "table1": {dom: {name: table1[dom][name]["lime"] for name in DIRECTIONS} for dom in DOMAINS},
        "table2": {dom: {name: {"lime": table2[dom][name]["lime"], "norm": table2[dom][name]["norm"],
                                "lime_mean_components": table2[dom][name]["lime_mean_components"]}
                         for name in DIRECTIONS} for dom in DOMAINS},
        "table1_all": table1,
        "table2_all": table2,
        "published": PUBLISHED,
        "flip_curves": curves,
        "stability": stability,
        "horses": horse_res,
        "subset": subset_res,
        "fidelity": fidelity,
        "timing": {"seconds_per_explanation": float(np.median(lime_seconds)) if lime_seconds else None,
                   "num_samples": sp.num_samples,
                   "note": "median wall time of one LIME explanation (compose + forward passes + "
                           "surrogate fit), first-call compilation included in the mean only",
                   "mean_seconds_per_explanation": float(np.mean(lime_seconds)) if lime_seconds else None,
                   "num_explanations": len(lime_seconds),
                   "stage_seconds": stages,
                   "total_seconds": time.perf_counter() - t_start,
                   "device": str(jax.devices()[0].device_kind)},
        "cache": {"reused_stages": list(cache.reused)},
    }
    results = _nan_to_none(results)
    _figures(out, results, orig_specs, adv_specs, explained, horses, masks, directions)
    _audio(out, clf, waves, adv["waveform"], directions)
    (out / "results.json").write_text(json.dumps(results, indent=2))
    report.register_section(NAME, _render_section)
    report.write_report(out, title="Study 3: auditing LIME explanations with adversaries")
    return results


# ----------------------------------------------------------------------------- outputs


def _outline(ax, comps, n_bins, n_frames, color, lw=2.0, ls="-"):
    from matplotlib.patches import Rectangle

    from jaxaudio import explain as ex

    slices = ex.component_slices((n_bins, n_frames), n_temporal=N_TEMPORAL, n_frequency=N_FREQUENCY)
    for c in comps:
        fs, ts = slices[int(c)]
        ax.add_patch(Rectangle((ts.start - 0.5, fs.start - 0.5), ts.stop - ts.start,
                               fs.stop - fs.start, fill=False, edgecolor=color, lw=lw, ls=ls))


def _figures(out, results, orig_specs, adv_specs, explained, horses, masks, directions):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from jaxaudio import audit

    fig_dir = out / "figures"
    fig_dir.mkdir(parents=True, exist_ok=True)
    colors = {"lime": "C0", "norm": "C3", "occlusion": "C2", "integrated_gradients": "C1"}

    # Figure 1: flip curves.
    fig, axes = plt.subplots(2, 2, figsize=(10, 7), sharex=True, sharey=True)
    for i, dom in enumerate(DOMAINS):
        for j, name in enumerate(DIRECTIONS):
            ax = axes[i, j]
            cv = results["flip_curves"][dom][name]
            for sel, vals in cv.items():
                v = np.array([np.nan if x is None else x for x in vals], float)
                ax.plot(np.arange(len(v)), 100 * v, marker=".", color=colors[sel],
                        label=sel.replace("_", " "), lw=2.2 if sel in ("lime", "norm") else 1.2)
            ax.axvline(TOP_K, color="0.7", ls=":")
            n = results["table1_all"][dom][name]["num_examples"]
            ax.set_title(f"{dom}: {name.replace('_', ' ')} (n={n})")
            ax.set_ylim(-3, 103)
            ax.grid(alpha=0.3)
    for ax in axes[1]:
        ax.set_xlabel("k (components of delta kept)")
    for ax in axes[:, 0]:
        ax.set_ylabel("% still flipped")
    axes[0, 0].legend(fontsize=8)
    fig.suptitle("Figure 1: delta restricted to the top-k components (explainer vs norm of delta)")
    fig.tight_layout()
    fig.savefig(fig_dir / "fig1_flip_curves.png", dpi=100)
    plt.close(fig)

    # Figure 2: one example, spectrogram / delta / LIME weights with top-3 outlined.
    dom = "spectrogram" if len(explained["spectrogram"]["index"]) else "waveform"
    e = explained[dom]
    if len(e["index"]):
        i0 = int(e["index"][0])
        spec, delta = orig_specs[i0], adv_specs[dom][i0] - orig_specs[i0]
        w = e["lime_weights"][0]
        top = audit.rankings_from_weights(w[None])[0, :TOP_K]
        by_norm = audit.norm_rankings(delta[None], masks)[0, :TOP_K]
        wmap = np.einsum("c,cft->ft", w, masks)
        fig, axes = plt.subplots(1, 3, figsize=(14, 3.8))
        for ax, img, title, cmap in ((axes[0], spec, "original (log magnitude)", "magma"),
                                     (axes[1], delta, "delta (adversary - original)", "RdBu_r"),
                                     (axes[2], wmap, "LIME weights (new label)", "RdBu_r")):
            lim = np.abs(img).max() or 1.0
            kw = {"vmin": -lim, "vmax": lim} if cmap == "RdBu_r" else {}
            im = ax.imshow(img, origin="lower", aspect="auto", cmap=cmap, **kw)
            fig.colorbar(im, ax=ax, fraction=0.04)
            ax.set_title(title)
            ax.set_xlabel("frame")
        axes[0].set_ylabel("mel band")
        for ax in axes[1:]:
            _outline(ax, top, *spec.shape, "lime", lw=2.5)
            _outline(ax, by_norm, *spec.shape, "black", lw=1.5, ls="--")
        direction = DIRECTIONS[int(directions[i0])].replace("_", " ")
        fig.suptitle(f"Figure 2: {dom} adversary ({direction}); solid: LIME top-{TOP_K}, "
                     f"dashed: top-{TOP_K} by norm of delta")
        fig.tight_layout()
        fig.savefig(fig_dir / "fig2_example.png", dpi=100)
        plt.close(fig)

    # Figure 3: horses.
    found = np.flatnonzero(horses["found"])
    if len(found):
        m = min(4, len(found))
        fig, axes = plt.subplots(1, m, figsize=(3.6 * m, 3.4), squeeze=False)
        for j in range(m):
            ax = axes[0, j]
            h = found[j]
            img = horses["spec"][h]
            ax.imshow(img, origin="lower", aspect="auto", cmap="magma")
            top = audit.rankings_from_weights(horses["lime_weights"][j][None])[0, :TOP_K]
            _outline(ax, [horses["component"][h]], *img.shape, "cyan", lw=3)
            _outline(ax, top, *img.shape, "lime", lw=1.5, ls="--")
            kind = audit.HORSE_KINDS[int(horses["kind"][h])] if horses["kind"][h] >= 0 else "?"
            ax.set_title(f"{kind} in component {int(horses['component'][h])}\n"
                         f"LIME top-1 {int(top[0])}, R² {horses['lime_score'][j]:.2f}", fontsize=9)
        fig.suptitle("Figure 3: horses (cyan: the edit; green dashed: LIME top-3)")
        fig.tight_layout()
        fig.savefig(fig_dir / "fig3_horses.png", dpi=100)
        plt.close(fig)

    # Figure 4: fidelity vs correctness.
    pts = results["fidelity"]["points"]
    fig, ax = plt.subplots(figsize=(6, 4))
    markers = {"waveform": "o", "spectrogram": "s"}
    rng = np.random.default_rng(0)
    for p in pts:
        y = (1.0 if p["correct"] else 0.0) + rng.uniform(-0.08, 0.08)
        ax.scatter(p["score"], y, marker=markers[p["domain"]],
                   color="C2" if p["correct"] else "C3", alpha=0.7)
    for hp in results["fidelity"].get("horse_points", []):
        ax.scatter(hp["score"], (1.0 if hp["correct"] else 0.0) + 0.25, marker="*", color="C4")
    ax.set_yticks([0, 1, 1.25])
    ax.set_yticklabels([f"top-{TOP_K} does not flip", f"top-{TOP_K} flips", "horse found"])
    ax.set_xlabel("LIME fidelity (surrogate R²)")
    auc = (results["fidelity"].get("adversaries") or {}).get("auc")
    ax.set_title("Figure 4: LIME fidelity vs correctness"
                 + ("" if auc is None else f" (AUC of R² {auc:.2f})")
                 + "\n(o waveform, □ spectrogram, * horses)")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(fig_dir / "fig4_fidelity.png", dpi=100)
    plt.close(fig)


def _audio(out, clf, waves, wave_adv, directions) -> None:
    import soundfile as sf

    audio_dir = out / "audio"
    audio_dir.mkdir(parents=True, exist_ok=True)
    sr = clf.frontend.sample_rate
    for d, name in enumerate(DIRECTIONS):
        idx = np.flatnonzero((directions == d) & wave_adv["success"].astype(bool))[:1]
        for i in idx:
            sf.write(audio_dir / f"{name}_original.wav", waves[i], sr, subtype="PCM_16")
            sf.write(audio_dir / f"{name}_adversary.wav",
                     np.clip(wave_adv["adversarial"][i], -1, 1), sr, subtype="PCM_16")


def _pct(v) -> str:
    return "–" if v is None else f"{100 * v:.0f} %"


def _render_section(results: dict, out_dir: pathlib.Path) -> str:
    """Tables 1 and 2 next to the published figures, and the controls."""
    esc = html.escape
    pub = results["published"]
    parts = [f"<p>Singing voice detector: frame accuracy <b>{results['model']['accuracy']:.3f}</b> "
             f"on the test split ({esc(results['data'])}; published error about 11.5 % on "
             f"Jamendo). LIME: {results['timing']['num_samples']} samples per explanation "
             f"(the study: 8192), {N_TEMPORAL}×{N_FREQUENCY} components, mean baseline.</p>"]
    rows = []
    for dom in DOMAINS:
        for name in DIRECTIONS:
            t1 = results["table1_all"][dom][name]
            rows.append(
                f"<tr><td>{dom}</td><td>{name.replace('_', ' ')}</td><td class=num>{t1['num_examples']}</td>"
                f"<td class=num><b>{_pct(t1.get('lime'))}</b></td>"
                f"<td class=num>{_pct(pub['table1'][dom][name])}</td>"
                f"<td class=num>{_pct(t1.get('norm'))}</td>"
                f"<td class=num>{_pct(t1.get('occlusion'))}</td>"
                f"<td class=num>{_pct(t1.get('integrated_gradients'))}</td></tr>")
    parts.append(f"<h3>Table 1: % of adversaries still flipped with delta in the top-{TOP_K} "
                 "components only</h3><table><tr><th>domain</th><th>direction</th><th>n</th>"
                 "<th>LIME (ours)</th><th>LIME (published)</th><th>norm</th><th>occlusion</th>"
                 "<th>integrated gradients</th></tr>" + "".join(rows) + "</table>")
    rows = []
    for dom in DOMAINS:
        for name in DIRECTIONS:
            t2 = results["table2_all"][dom][name]
            p = pub["table2"][dom][name]
            rows.append(
                f"<tr><td>{dom}</td><td>{name.replace('_', ' ')}</td>"
                f"<td class=num><b>{_pct(t2.get('lime'))}</b></td><td class=num>{_pct(p['lime'])}</td>"
                f"<td class=num><b>{_pct(t2.get('norm'))}</b></td><td class=num>{_pct(p['norm'])}</td>"
                f"<td class=num>{'–' if t2.get('lime_mean_components') is None else format(t2['lime_mean_components'], '.1f')}</td>"
                f"<td class=num>{_pct(t2.get('occlusion'))} / {_pct(t2.get('norm_for_occlusion'))}</td>"
                f"<td class=num>{_pct(t2.get('integrated_gradients'))} / {_pct(t2.get('norm_for_integrated_gradients'))}</td></tr>")
    parts.append("<h3>Table 2: all components with positive weight vs the same number by norm"
                 "</h3><table><tr><th>domain</th><th>direction</th><th>LIME (ours)</th>"
                 "<th>LIME (published)</th><th>norm (ours)</th><th>norm (published)</th>"
                 "<th>mean # positive</th><th>occlusion / norm</th><th>IG / norm</th></tr>"
                 + "".join(rows) + "</table>")
    h, s = results["horses"], results["subset"]
    parts.append(
        f"<h3>Controls</h3><p>Horses: {h['num_found']} of {h['num_examples']} originals flipped by "
        f"an obvious edit of one component. Edited component ranked first by LIME "
        f"{_pct(h.get('lime_top1'))} (top-{TOP_K}: {_pct(h.get(f'lime_top{TOP_K}'))}), occlusion "
        f"{_pct(h.get('occlusion_top1'))}, integrated gradients "
        f"{_pct(h.get('integrated_gradients_top1'))}; mean LIME R² "
        f"{'–' if h.get('lime_mean_score') is None else format(h['lime_mean_score'], '.2f')}.</p>"
        f"<p>Subset perturbations: {s['num_adversaries']} adversaries confined to "
        f"{s['subset_size']} random components; share of them in the explainer's top "
        f"{s['subset_size']}: LIME {_pct(s.get('lime_recall'))}, occlusion "
        f"{_pct(s.get('occlusion_recall'))}, integrated gradients "
        f"{_pct(s.get('integrated_gradients_recall'))} (chance {_pct(s['chance'])}).</p>")
    st = results.get("stability") or {}
    if st.get("sample_sizes"):
        cells = ", ".join(f"{n}: {100 * o:.0f} %" for n, o in zip(st["sample_sizes"], st["mean_overlap"]))
        parts.append(f"<p>Stability of LIME's top-{TOP_K} (one {esc(str(st['domain']))} adversary, "
                     f"overlap with a reference at {st['reference_size']} samples, mean of "
                     f"repeats): {esc(cells)}.</p>")
    f = results["fidelity"].get("adversaries")
    if f:
        auc = "–" if f["auc"] is None else f"{f['auc']:.2f}"
        parts.append(f"<p>Fidelity: mean R² {f['mean_score_correct'] or float('nan'):.2f} for "
                     f"explanations whose top-{TOP_K} flips vs "
                     f"{f['mean_score_incorrect'] or float('nan'):.2f} for those that do not; AUC of "
                     f"R² as a predictor of correctness {auc} (0.5 = no information).</p>")
    return "\n".join(parts)
