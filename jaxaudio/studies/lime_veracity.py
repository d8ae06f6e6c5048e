"""Study 3 (REFERENCE.md §3): auditing LIME explanations of the singing voice detector with
adversarial examples (Praher et al., ISMIR 2021).

Stages (:class:`jaxaudio.pipeline.Runner` under ``out/stages``; a rerun recomputes exactly the
stages whose settings or inputs changed, e.g. ``--num-samples`` redoes the LIME stages and the
audits downstream, not the model, the excerpts or the adversaries):

- ``model``: train the detector (``tasks`` + ``train.train``, resumable in ``out/train``), or
  load ``--model``;
- ``excerpts``: frame accuracy on the test split and confidently classified 115-frame
  excerpts per direction (:func:`jaxaudio.data.windowing.pick_confident`);
- ``adversaries-<domain>-<direction>``: C&W with signed-gradient Adam that flips the detector,
  on the waveform or on the front-end's output;
- ``lime-<set>`` (LIME, ``num_samples``) and ``attribution-<set>`` (occlusion, integrated
  gradients) of every audited adversary, horse and subset adversary, for its new label;
- ``horses``, ``subset``: the controls; ``audit-<domain>``: flip matrices and tables;
  ``stability``: LIME's top-3 against the sample count; ``assemble``: the numbers.

The report (:mod:`jaxaudio.report.lime_veracity`) is drawn from ``results.json`` and
``arrays/*.npz`` alone.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import pathlib
import time
from typing import Optional

import jax
import numpy as np

NAME = "lime_veracity"
TITLE = "Study 3: auditing LIME explanations with adversaries"
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
PAPER = {"per_direction": 50, "num_samples": 8192, "max_iterations": 1000}


@dataclasses.dataclass(frozen=True)
class StudyPreset:
    """Sizes of one preset (the method never changes).

    ``per_direction`` excerpts per direction; ``num_samples`` LIME samples per explanation
    (the study: 8192); ``confidence`` the originals' minimum p(predicted class), also the
    adversaries' target confidence; ``wave_*`` / ``spec_*`` the C&W settings per domain
    (``clip_eps`` in [-1, 1] units / nepers); ``max_iterations`` attack steps (all run, the
    lowest-energy success kept); ``ig_steps`` integrated-gradients intervals;
    ``horse_examples`` / ``subset_examples`` originals per direction for the controls;
    ``subset_*`` the attack confined to ``subset_size`` components; ``stability_*`` LIME sample
    counts and repeats of the top-3 stability check; ``train_*`` override the voice task preset.
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
TOP_K = 3
SEGMENTS = {"n_temporal": N_TEMPORAL, "n_frequency": N_FREQUENCY}
_COMPILED: dict = {}  # id(classifier) -> (classifier, jitted front-end, predict_fn)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--preset", choices=tuple(PRESETS), default="demo",
                        help="sizes (smoke: seconds, demo: minutes, paper: the study's sizes)")
    parser.add_argument("--data", default=None, help="Jamendo-VAD root (audio/, labels/, "
                        "filelists/); default: the embedded synthetic songs")
    parser.add_argument("--model", default=None, help="a saved singing voice detector "
                        "(Classifier.save folder) to audit instead of training one")
    parser.add_argument("--out", required=True, help="output folder")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--num-samples", type=int, default=None, help="LIME perturbation "
                        "samples per explanation (default: the preset's; the study used 8192)")
    parser.add_argument("--per-direction", type=int, default=None,
                        help="excerpts per attack direction (default: the preset's)")
    parser.add_argument("--no-progress", action="store_true", help="hide progress bars")


def run_from_args(args) -> int:
    run(out=args.out, preset=args.preset, seed=args.seed, data=args.data, model=args.model,
        progress=not args.no_progress, num_samples=args.num_samples,
        per_direction=args.per_direction)
    print(f"report: {pathlib.Path(args.out) / 'report.html'}")
    return 0


def _compiled(clf):
    """The jitted front-end and the two-class predict_fn of ``clf`` (compiled once per model)."""
    from jaxaudio import explain as ex

    if id(clf) not in _COMPILED:
        _COMPILED[id(clf)] = (clf, jax.jit(clf.features),
                              ex.binary_to_two_class(clf.feature_logits_fn, from_logits=True))
    return _COMPILED[id(clf)][1:]


def _features(clf, waves) -> np.ndarray:
    from jaxaudio.batching import map_chunks

    if len(waves) == 0:
        return np.zeros((0, clf.frontend.n_mels, clf.excerpt_frames), np.float32)
    return map_chunks(_compiled(clf)[0], waves, chunk_size=16)


def _bar(iterable, progress: bool, **kw):
    from tqdm.auto import tqdm

    return tqdm(iterable, disable=not progress, leave=False, **kw)


# ----------------------------------------------------------------------------- stages


def _train_model(stage_dir, *, train_dir, progress, preset, seed, data, examples_per_epoch,
                 epochs):
    from jaxaudio import tasks
    from jaxaudio.train import train

    p = tasks.preset("voice", preset)
    if examples_per_epoch:
        p = dataclasses.replace(p, examples_per_epoch=examples_per_epoch)
    train_set = tasks.load_split("jamendo" if data else "synth-voice", "train",
                                 preset_name=preset, seed=seed, data=data)
    clf = tasks.new_classifier("voice", p, seed=seed)
    source = tasks.example_source("voice", train_set, p, clf.frontend)
    config = tasks.train_config("voice", p, seed=seed, epochs=epochs)
    result = train(clf, source, config, out_dir=train_dir, resume=True, progress=progress)
    result.classifier.save(stage_dir / "classifier")
    return {"fingerprint": result.classifier.fingerprint()}


def _excerpts(stage_dir, *, clf, data, progress, preset, seed, per_direction, confidence):
    """Frame accuracy on the test split and the excerpts to attack, in both directions."""
    from jaxaudio import metrics, tasks
    from jaxaudio.data import windowing

    p = tasks.preset("voice", preset)
    test_set = tasks.load_split("jamendo" if data else "synth-voice", "test",
                                preset_name=preset, seed=seed, data=data)
    hop = clf.frontend.hop_length
    rows = []  # (song, frame, label, prob)
    for i in _bar(range(len(test_set)), progress, desc="test songs"):
        frames, probs = tasks.song_frame_probabilities(clf, test_set.waves[i],
                                                       frame_step=p.eval_frame_step)
        labels = test_set.frame_labels(i, hop_length=hop)[frames]
        rows.append(np.stack([np.full(len(frames), i), frames, labels, probs], 1))
    table = np.concatenate(rows)
    rng = np.random.default_rng([seed, 3])
    chosen, directions = [], []
    for d, name in enumerate(DIRECTIONS):
        source = 0 if name == "nosing_to_sing" else 1
        p_class = table[:, 3] if source == 1 else 1.0 - table[:, 3]
        picked = windowing.pick_confident(p_class, table[:, 2] == source, num=per_direction,
                                          confidence=confidence, rng=rng)
        chosen.append(picked)
        directions += [d] * len(picked)
    chosen = np.concatenate(chosen)
    directions = np.asarray(directions, np.int64)
    songs, frames = table[chosen, 0].astype(np.int64), table[chosen, 1].astype(np.int64)
    waves = windowing.excerpt_at(test_set.waves, songs, frames, excerpt_frames=clf.excerpt_frames,
                                 hop_length=hop, excerpt_samples=clf.excerpt_samples)
    if len(waves) == 0:
        raise ValueError("no test excerpt is predicted as either class; cannot attack "
                         "(check --model / --data)")
    source = np.where(directions == 0, 0, 1)
    return {"accuracy": float(metrics.frame_accuracy(table[:, 3], table[:, 2])),
            "num_frames": len(table), "frame_step": p.eval_frame_step,
            "sing_fraction": float(table[:, 2].mean()), "waves": waves,
            "specs": _features(clf, waves), "direction": directions, "song": songs,
            "frame": frames, "true_label": table[chosen, 2].astype(np.int64),
            "probability": table[chosen, 3], "correct": table[chosen, 2] == source}


def _cw(logits_fn, x, source, direction, *, domain, confidence, **settings):
    """C&W with the sigmoid threshold at ``confidence`` of the new class, every step run (C&W's
    L2 term keeps shrinking delta; the lowest-energy successful iterate is returned)."""
    from jaxaudio import attacks

    threshold = confidence if direction == "nosing_to_sing" else 1.0 - confidence
    res = attacks.carlini_wagner(logits_fn, x, np.full(len(x), source, np.int32),
                                 decision="sigmoid", threshold=threshold, domain=domain,
                                 early_stop=False, **settings)
    return np.asarray(res.adversarial, np.float32), np.asarray(res.success, bool)


def _adversaries(stage_dir, excerpts, *, clf, domain, direction, confidence, **settings):
    """One (domain, direction) of adversaries; ``audited``: successes the detector labels with
    the target (their spectrogram deltas are what the explainers must find)."""
    from jaxaudio import audit

    d = DIRECTIONS.index(direction)
    index = np.flatnonzero(excerpts["direction"] == d)
    specs = excerpts["specs"][index]
    source, wave = d, domain == "waveform"  # nosing_to_sing: 0 -> 1, sing_to_nosing: 1 -> 0
    adv, success = (np.zeros((0,) + excerpts["waves"].shape[1:], np.float32), np.zeros(0, bool))
    if len(index):
        adv, success = _cw(clf.logits_fn if wave else clf.feature_logits_fn,
                           excerpts["waves" if wave else "specs"][index], source, direction,
                           domain=domain, confidence=confidence, **settings)
    feats = _features(clf, adv) if wave else adv
    ok = np.flatnonzero(success)
    if len(ok):
        ok = ok[audit.predict_labels(_compiled(clf)[1], feats[ok]) == 1 - source]
    deltas = feats[ok] - specs[ok]
    return {"index": index, "adversarial": adv, "success": success, "features": feats,
            "audited": index[ok], "deltas": deltas, "explain_specs": specs[ok] + deltas,
            "explain_targets": np.full(len(ok), 1 - source, np.int64)}


def _lime(stage_dir, examples, *, clf, progress, num_samples, seed, stream, first_position):
    """LIME of ``examples["explain_specs"]`` for their targets; example ``j``'s key is
    ``fold_in(fold_in(key(seed), stream), first_position + j)``."""
    from jaxaudio import explain as ex

    specs, targets = examples["explain_specs"], examples["explain_targets"]
    key = jax.random.fold_in(jax.random.key(seed), stream)
    out = {"lime_weights": np.zeros((len(specs), N_TEMPORAL * N_FREQUENCY)),
           "lime_score": np.zeros(len(specs)), "lime_seconds": np.zeros(len(specs))}
    for j in _bar(range(len(specs)), progress, desc="LIME"):
        t0 = time.perf_counter()
        e = ex.explain(_compiled(clf)[1], specs[j], key=jax.random.fold_in(key, first_position + j),
                       num_samples=num_samples, labels=(int(targets[j]),),
                       keep_predictions=False, **SEGMENTS)
        out["lime_seconds"][j] = time.perf_counter() - t0
        out["lime_weights"][j], out["lime_score"][j] = e.weights_for(int(targets[j])), e.score[0]
    return out


def _attribution(stage_dir, examples, *, clf, ig_steps):
    from jaxaudio.explain import attribution as at

    specs, targets = examples["explain_specs"], examples["explain_targets"]
    if len(specs) == 0:
        empty = np.zeros((0, N_TEMPORAL * N_FREQUENCY))
        return {"occlusion_weights": empty, "integrated_gradients_weights": empty}
    predict = _compiled(clf)[1]
    return {"occlusion_weights": at.occlusion_batch(predict, specs, targets, **SEGMENTS),
            "integrated_gradients_weights": at.integrated_gradients_batch(
                predict, specs, targets, steps=ig_steps, **SEGMENTS)}


def _audit(stage_dir, excerpts, *, clf, **parts):
    """Flip matrices of one domain (explainers and norm), tables per direction."""
    from jaxaudio import audit

    cat = {k: np.concatenate([parts[f"{s}_{d}"][k] for d in DIRECTIONS])
           for s, k in (("adv", "audited"), ("adv", "deltas"), ("lime", "lime_weights"),
                        ("lime", "lime_score"), ("attr", "occlusion_weights"),
                        ("attr", "integrated_gradients_weights"))}
    idx = cat["audited"]
    groups = excerpts["direction"][idx]
    targets = 1 - np.where(groups == 0, 0, 1)
    flips = audit.flip_matrices(_compiled(clf)[1], excerpts["specs"][idx], cat["deltas"],
                                {e: cat[f"{e}_weights"] for e in EXPLAINERS}, targets, **SEGMENTS)
    out = {"score": cat["lime_score"], "group": groups}
    for d, name in enumerate(DIRECTIONS):
        f = {sel: flips[sel][groups == d] for sel in flips}
        out[name] = audit.direction_tables(
            f, {e: cat[f"{e}_weights"][groups == d] for e in EXPLAINERS}, k=TOP_K)
        out.update({f"flips_{name}_{sel}": f[sel] for sel in f})
    return out


def _stability(stage_dir, *, clf, sizes, repeats, seed, **adv):
    from jaxaudio import explain as ex

    for domain in ("spectrogram", "waveform"):
        for name in DIRECTIONS:
            a = adv[f"{domain}_{name}"]
            if len(a["audited"]):
                i = int(a["audited"][0])
                r = ex.topk_stability(_compiled(clf)[1], a["features"][a["index"] == i][0],
                                      key=jax.random.fold_in(jax.random.key(seed), 400),
                                      sample_sizes=sizes, k=TOP_K, repeats=repeats,
                                      label=int(a["explain_targets"][0]))
                return {"domain": domain, "example": i,
                        **{k: np.asarray(v).tolist() for k, v in r.items()}}
    return {}


def _horses(stage_dir, excerpts, *, clf, horse_examples, seed):
    from jaxaudio import audit, explain as ex

    specs, directions = excerpts["specs"], excerpts["direction"]
    pick = np.concatenate([np.flatnonzero(directions == d)[:horse_examples]
                           for d in range(len(DIRECTIONS))])
    source = np.where(directions[pick] == 0, 0, 1).astype(np.int32)
    spread = float(specs.std())
    h = audit.find_horses(_compiled(clf)[1], specs[pick], source,
                          ex.component_masks(specs.shape[1:], **SEGMENTS),
                          amplitudes=spread * np.array([0.5, 1, 1.5, 2, 3, 4, 6, 8]),
                          key=jax.random.fold_in(jax.random.key(seed), 200))
    return {"pick": pick, "spread": spread, **h, "explain_specs": h["spec"][h["found"]],
            "explain_targets": (1 - source)[h["found"]].astype(np.int64)}


def _subset(stage_dir, excerpts, *, clf, subset_examples, subset_size, seed, confidence,
            **settings):
    from jaxaudio import audit, explain as ex

    specs, directions = excerpts["specs"], excerpts["direction"]
    masks = ex.component_masks(specs.shape[1:], **SEGMENTS)
    pick = np.concatenate([np.flatnonzero(directions == d)[:subset_examples]
                           for d in range(len(DIRECTIONS))])
    subsets = audit.random_subsets(jax.random.fold_in(jax.random.key(seed), 300), len(pick),
                                   masks.shape[0], subset_size)
    cells = np.einsum("nc,cft->nft", subsets, masks).astype(np.float32)
    x = np.stack([specs[pick], cells], axis=1)
    adv_x, ok = x.copy(), np.zeros(len(pick), bool)
    for d, name in enumerate(DIRECTIONS):
        i = np.flatnonzero(directions[pick] == d)
        if len(i):
            adv_x[i], ok[i] = _cw(audit.subset_logits_fn(clf.feature_logits_fn), x[i], d, name,
                                  domain="spectrogram", confidence=confidence, **settings)
    if not np.array_equal(adv_x[:, 1], cells):
        raise RuntimeError("the subset attack moved its mask channel")
    adv_spec = specs[pick] + (adv_x[:, 0] - specs[pick]) * cells
    targets = np.where(directions[pick] == 0, 1, 0)
    ok &= audit.predict_labels(_compiled(clf)[1], adv_spec) == targets
    return {"pick": pick, "subsets": subsets, "success": ok, "spec": adv_spec,
            "explain_specs": adv_spec[ok], "explain_targets": targets[ok].astype(np.int64)}


def _assemble(stage_dir, *, excerpts, horses, subset, stability, lime_horses,
              attribution_horses, lime_subset, attribution_subset, **audits):
    """The audit's numbers (tables, curves, controls, fidelity) for results.json."""
    from jaxaudio import audit

    t = {dom: {n: audits[f"audit_{dom}"][n] for n in DIRECTIONS} for dom in DOMAINS}
    horse_res = audit.horse_summary(horses["found"], horses["component"], horses["amplitude"],
                                    {"lime": lime_horses["lime_weights"], **attribution_horses.outputs},
                                    lime_horses["lime_score"], k=TOP_K)
    subset_res = audit.subset_summary(subset["success"], subset["subsets"],
                                      {"lime": lime_subset["lime_weights"], **attribution_subset.outputs},
                                      lime_subset["lime_score"])
    rows = [(dom, n, float(s), bool(c)) for dom in DOMAINS for d, n in enumerate(DIRECTIONS)
            for s, c in zip(audits[f"audit_{dom}"]["score"][audits[f"audit_{dom}"]["group"] == d],
                            audits[f"audit_{dom}"][f"flips_{n}_lime"][:, TOP_K])]
    fidelity = {"adversaries": audit.fidelity_vs_correctness(
        np.array([r[2] for r in rows]), np.array([r[3] for r in rows], bool)) if rows else None,
                "correct_means": f"the top-{TOP_K} LIME components alone flip the label",
                "points": [{"domain": r[0], "direction": r[1], "score": r[2], "correct": r[3]}
                           for r in rows]}
    hit = horse_res.pop("_hit")
    if len(hit):
        fidelity["horses"] = audit.fidelity_vs_correctness(lime_horses["lime_score"], hit)
        fidelity["horse_points"] = [{"score": float(s), "correct": bool(c)}
                                    for s, c in zip(lime_horses["lime_score"], hit)]
    horse_res["spectrogram_std"] = float(horses["spread"])
    return {"table1_all": {d: {n: t[d][n]["table1"] for n in DIRECTIONS} for d in DOMAINS},
            "table2_all": {d: {n: t[d][n]["table2"] for n in DIRECTIONS} for d in DOMAINS},
            "flip_curves": {d: {n: t[d][n]["curves"] for n in DIRECTIONS} for d in DOMAINS},
            "stability": dict(stability.outputs), "horses": horse_res, "subset": subset_res,
            "fidelity": fidelity}


def _attack_settings(sp: StudyPreset, domain: str) -> dict:
    w = domain == "waveform"
    return {"confidence": sp.confidence, "max_iterations": sp.max_iterations,
            "clip_eps": sp.wave_clip_eps if w else sp.spec_clip_eps,
            "alpha": sp.wave_alpha if w else sp.spec_alpha,
            "learning_rate": sp.wave_learning_rate if w else sp.spec_learning_rate}


def _subset_settings(sp: StudyPreset) -> dict:
    return {"subset_examples": sp.subset_examples, "subset_size": sp.subset_size,
            "confidence": sp.subset_confidence, "clip_eps": sp.subset_clip_eps,
            "alpha": sp.subset_alpha, "learning_rate": sp.subset_learning_rate,
            "max_iterations": sp.subset_iterations}


def _check(preset, num_samples, per_direction, model, data) -> StudyPreset:
    if preset not in PRESETS:
        raise ValueError(f"--preset: unknown preset {preset!r}; choose one of {tuple(PRESETS)}")
    sp = PRESETS[preset]
    if num_samples is not None:
        if int(num_samples) != num_samples or num_samples < 2:
            raise ValueError(f"--num-samples: num_samples must be an integer >= 2, got "
                             f"{num_samples!r}")
        sp = dataclasses.replace(sp, num_samples=int(num_samples))
    if per_direction is not None:
        if int(per_direction) != per_direction or per_direction < 1:
            raise ValueError(f"--per-direction: per_direction must be an integer >= 1, got "
                             f"{per_direction!r}")
        n = int(per_direction)
        sp = dataclasses.replace(sp, per_direction=n, horse_examples=min(sp.horse_examples, n),
                                 subset_examples=min(sp.subset_examples, n))
    if model is not None and not (pathlib.Path(model) / "classifier.json").is_file():
        raise ValueError(f"--model {model}: no saved classifier there (classifier.json missing)")
    if data is not None and not pathlib.Path(data).is_dir():
        raise ValueError(f"--data {data}: not a folder")
    return sp


def _stages(runner, clf, sp, *, preset, seed, data, progress) -> dict:
    """Every stage after the model; returns the StageResults by name."""
    dep, ctx = {"model": clf.fingerprint()}, {"clf": clf}

    def stage(name, fn, settings, inputs=None, **context):
        s[name.replace("-", "_")] = runner.stage(name, fn, settings=settings, inputs=inputs,
                                                 depends=dep, context={**ctx, **context})
        return s[name.replace("-", "_")]

    s: dict = {}
    exc = stage("excerpts", _excerpts, {"preset": preset, "seed": seed, "confidence":
                                        sp.confidence, "per_direction": sp.per_direction},
                data=data, progress=progress)
    lime_set = {"num_samples": sp.num_samples, "seed": seed}
    for di, dom in enumerate(DOMAINS):
        parts, first = {}, 0
        for name in DIRECTIONS:
            a = parts[f"adv_{name}"] = stage(f"adversaries-{dom}-{name}", _adversaries, {
                "domain": dom, "direction": name, **_attack_settings(sp, dom)}, {"excerpts": exc})
            parts[f"lime_{name}"] = stage(f"lime-{dom}-{name}", _lime, {
                **lime_set, "stream": 100 + di, "first_position": first}, {"examples": a},
                progress=progress)
            parts[f"attr_{name}"] = stage(f"attribution-{dom}-{name}", _attribution,
                                          {"ig_steps": sp.ig_steps}, {"examples": a})
            first += len(a["audited"])  # LIME keys run on over the domain's audited list
        stage(f"audit-{dom}", _audit, {"top_k": TOP_K}, {"excerpts": exc, **parts})
    adv = {f"{d}_{n}": s[f"adversaries_{d}_{n}"] for d in DOMAINS for n in DIRECTIONS}
    stage("stability", _stability, {"sizes": sp.stability_sizes, "seed": seed,
                                    "repeats": sp.stability_repeats}, adv)
    stage("horses", _horses, {"horse_examples": sp.horse_examples, "seed": seed},
          {"excerpts": exc})
    stage("subset", _subset, {**_subset_settings(sp), "seed": seed}, {"excerpts": exc})
    for name, stream in (("horses", 201), ("subset", 301)):
        stage(f"lime-{name}", _lime, {**lime_set, "stream": stream, "first_position": 0},
              {"examples": s[name]}, progress=progress)
        stage(f"attribution-{name}", _attribution, {"ig_steps": sp.ig_steps},
              {"examples": s[name]})
    stage("assemble", _assemble, {"top_k": TOP_K}, {
        k: s[k] for k in ("excerpts", "horses", "subset", "stability", "lime_horses",
                          "attribution_horses", "lime_subset", "attribution_subset")}
        | {"audit_waveform": s["audit_waveform"], "audit_spectrogram": s["audit_spectrogram"]})
    return s


def _results(s, sp, clf, *, preset, seed, data, model_path, runner, seconds) -> dict:
    from jaxaudio import metrics

    exc, directions = s["excerpts"], s["excerpts"]["direction"]
    attacks_res = {dom: {n: {"num_excerpts": int((directions == d).sum()),
                             "num_success": int(s[f"adversaries_{dom}_{n}"]["success"].sum()),
                             "num_audited": len(s[f"adversaries_{dom}_{n}"]["audited"])}
                         for d, n in enumerate(DIRECTIONS)} for dom in DOMAINS}
    adv = [s[f"adversaries_waveform_{n}"] for n in DIRECTIONS]
    ok = [a["success"] for a in adv]
    if np.concatenate(ok).any():
        clean = np.concatenate([exc["waves"][a["index"]][o] for a, o in zip(adv, ok)])
        dirty = np.concatenate([a["adversarial"][o] for a, o in zip(adv, ok)])
        attacks_res["waveform"]["median_snr_db"] = float(np.median(metrics.snr_db(clean, dirty)))
        attacks_res["waveform"]["median_snr_db_whole_clip"] = float(np.median(
            metrics.snr_db(clean, dirty, trim=0)))
    n = s["assemble"]
    lime_seconds = np.concatenate([v["lime_seconds"] for k, v in s.items() if k.startswith("lime_")])
    dev = [f"{k} {getattr(sp, k)} (paper: {v})" for k, v in PAPER.items() if getattr(sp, k) != v]
    results = {
        "study": NAME, "title": TITLE, "preset": preset, "seed": seed,
        "data": "jamendo" if data else "synth-voice",
        "headline": "LIME top-3 still flips: " + ", ".join(
            f"{d} {k.replace('_', ' ')} {n['table1_all'][d][k]['lime'] if n['table1_all'][d][k]['lime'] is None else format(n['table1_all'][d][k]['lime'], '.0%')}"
            for d in DOMAINS for k in DIRECTIONS),
        "preset_deviations_from_paper": dev + ([] if data else ["synthetic songs, not Jamendo"]),
        "model": {"path": model_path, "accuracy": float(exc["accuracy"]),
                  "num_frames": int(exc["num_frames"]), "frame_step": int(exc["frame_step"]),
                  "sing_fraction": float(exc["sing_fraction"]),
                  "width": int(clf.model_kwargs.get("width", 0))},
        "excerpts": {n_: {"num": int((directions == d).sum()),
                          "num_correct": int(exc["correct"][directions == d].sum())}
                     for d, n_ in enumerate(DIRECTIONS)},
        "segmentation": {**SEGMENTS, "baseline": "mean", "top_k": TOP_K},
        "attacks": attacks_res,
        "attack_settings": {"method": "carlini_wagner (signed-gradient Adam)",
                            "confidence": sp.confidence, "max_iterations": sp.max_iterations,
                            **{d: {k: v for k, v in _attack_settings(sp, d).items()
                                   if k in ("clip_eps", "alpha", "learning_rate")}
                               for d in DOMAINS},
                            "subset": {k.replace("subset_", ""): v for k, v in
                                       _subset_settings(sp).items()
                                       if k not in ("subset_examples", "subset_size")}},
        "table1": {d: {k: n["table1_all"][d][k]["lime"] for k in DIRECTIONS} for d in DOMAINS},
        "table2": {d: {k: {c: n["table2_all"][d][k][c] for c in
                           ("lime", "norm", "lime_mean_components")} for k in DIRECTIONS}
                   for d in DOMAINS},
        **{k: n[k] for k in ("table1_all", "table2_all", "flip_curves", "stability", "horses",
                             "subset", "fidelity")},
        "published": PUBLISHED,
        "snr_note": "median_snr_db: jaxaudio.metrics.snr_db (first and last 2048 samples left "
                    "out); median_snr_db_whole_clip: the same over the whole excerpt (the "
                    "pre-redesign inline formula)",
        "timing": {"seconds_per_explanation": float(np.median(lime_seconds)) if len(lime_seconds) else None,
                   "mean_seconds_per_explanation": float(np.mean(lime_seconds)) if len(lime_seconds) else None,
                   "num_samples": sp.num_samples, "num_explanations": int(len(lime_seconds)),
                   "note": "wall time of one LIME explanation (compose + forward passes + "
                           "surrogate fit) when its stage was computed",
                   "total_seconds": seconds, "device": str(jax.devices()[0].device_kind)},
        "stages": runner.summary(),
    }
    return results


def _write_files(out: pathlib.Path, s, clf, results) -> None:
    """``arrays/*.npz`` the report draws from and the listening WAVs (original ->
    adversarial -> perturbation) of one waveform adversary per direction."""
    import soundfile as sf

    from jaxaudio import audit, explain as ex, metrics

    (out / "arrays").mkdir(exist_ok=True)
    (out / "audio").mkdir(exist_ok=True)
    exc = s["excerpts"]
    masks = ex.component_masks(exc["specs"].shape[1:], **SEGMENTS)
    rects = np.array([[f.start, f.stop, t.start, t.stop] for f, t in ex.component_slices(
        exc["specs"].shape[1:], **SEGMENTS)], np.int64)
    np.savez(out / "arrays" / "flip_curves.npz", **{
        f"{d}.{n}.{sel}": np.array([np.nan if v is None else v for v in c], float)
        for d in DOMAINS for n in DIRECTIONS
        for sel, c in results["flip_curves"][d][n].items()})
    for dom in ("spectrogram", "waveform"):
        name = next((n for n in DIRECTIONS if len(s[f"adversaries_{dom}_{n}"]["audited"])), None)
        if name is not None:
            a, w = s[f"adversaries_{dom}_{name}"], s[f"lime_{dom}_{name}"]["lime_weights"][0]
            np.savez(out / "arrays" / "example.npz", domain=dom, direction=name, rects=rects,
                     spec=exc["specs"][a["audited"][0]], delta=a["deltas"][0],
                     weight_map=np.einsum("c,cft->ft", w, masks),
                     lime_top=audit.rankings_from_weights(w[None])[0, :TOP_K],
                     norm_top=audit.norm_rankings(a["deltas"][:1], masks)[0, :TOP_K])
            break
    h, found = s["horses"], np.flatnonzero(s["horses"]["found"])[:4]
    np.savez(out / "arrays" / "horses.npz", rects=rects, spec=h["spec"][found],
             component=h["component"][found], kind=h["kind"][found],
             lime_top=audit.rankings_from_weights(s["lime_horses"]["lime_weights"][:len(found)])[
                 :, :TOP_K] if len(found) else np.zeros((0, TOP_K), np.int64),
             lime_score=s["lime_horses"]["lime_score"][:len(found)])
    fid = results["fidelity"]
    np.savez(out / "arrays" / "fidelity.npz",
             score=np.array([p["score"] for p in fid["points"]], float),
             correct=np.array([p["correct"] for p in fid["points"]], bool),
             domain=np.array([DOMAINS.index(p["domain"]) for p in fid["points"]], np.int64),
             horse_score=np.array([p["score"] for p in fid.get("horse_points", [])], float),
             horse_correct=np.array([p["correct"] for p in fid.get("horse_points", [])], bool))
    sr, clips = clf.frontend.sample_rate, []
    for name in DIRECTIONS:
        a = s[f"adversaries_waveform_{name}"]
        for j in np.flatnonzero(a["success"])[:1]:
            i, adv = int(a["index"][j]), np.clip(a["adversarial"][j], -1, 1)
            x = exc["waves"][i]
            delta = adv - x
            gain = 0.5 / max(float(np.abs(delta).max()), 1e-12)
            files = {"original": f"audio/{name}_original.wav",
                     "adversarial": f"audio/{name}_adversary.wav",
                     "perturbation": f"audio/{name}_perturbation.wav"}
            for key, wav in zip(files, (x, adv, delta * gain)):
                sf.write(out / files[key], wav, sr, subtype="PCM_16")
            p_adv = float(jax.nn.sigmoid(clf.logits_fn(adv[None].astype(np.float32)))[0, 0])
            clips.append({"direction": name, "true_label": clf.label_names[int(exc["true_label"][i])],
                          "p_sing_original": float(exc["probability"][i]), "p_sing_adversarial":
                          p_adv, "snr_db": float(metrics.snr_db(x, adv)),
                          "perturbation_gain": gain, "files": files})
    results["listening"] = clips


def run(*, out, preset: str = "demo", seed: int = 0, data=None, model=None,
        progress: bool = True, num_samples: Optional[int] = None,
        per_direction: Optional[int] = None) -> dict:
    """Run the study; write ``results.json``, ``arrays/``, ``audio/`` and ``report.html``.

    ``out``: output folder (stages under ``out/stages``, reused by key); ``preset``: one of
    :data:`PRESETS`; ``seed`` seeds data, training, excerpts and every explainer's key;
    ``data``: a Jamendo-VAD root (``None``: the embedded synthetic songs); ``model``: a saved
    detector (``None``: train one); ``num_samples``, ``per_direction``: override the preset.
    Returns the contents of ``results.json``.
    """
    from jaxaudio import report
    from jaxaudio.models import Classifier
    from jaxaudio.pipeline import Runner

    sp = _check(preset, num_samples, per_direction, model, data)
    out = pathlib.Path(out)
    out.mkdir(parents=True, exist_ok=True)
    t_start = time.perf_counter()
    runner = Runner(out / "stages", progress=progress,
                    depends={"data": None if data is None else str(pathlib.Path(data).absolute())})
    if model is None:
        model = runner.stage("model", _train_model, settings={
            "preset": preset, "seed": seed, "examples_per_epoch": sp.train_examples_per_epoch,
            "epochs": sp.train_epochs}, context={"train_dir": out / "train", "progress": progress,
                                                 "data": data}).path / "classifier"
    clf = Classifier.load(model)
    if clf.task != "binary":
        raise ValueError(f"--model: the audit needs a binary singing voice detector, got task "
                         f"{clf.task!r}")
    s = _stages(runner, clf, sp, preset=preset, seed=seed, data=data, progress=progress)
    results = _results(s, sp, clf, preset=preset, seed=seed, data=data, runner=runner,
                       model_path=str(pathlib.Path(model).absolute()),
                       seconds=time.perf_counter() - t_start)
    _write_files(out, s, clf, results)
    (out / "results.json").write_text(json.dumps(results, indent=2, allow_nan=False))
    report.write_report(out)
    return results
