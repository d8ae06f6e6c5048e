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
  ``stability``: LIME's top-3 against the sample count; ``assemble``: the numbers
  (:mod:`jaxaudio.audit.results`).

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
CW_KEYS = ("clip_eps", "alpha", "learning_rate")
CW_PREFIX = {"waveform": "wave_", "spectrogram": "spec_"}


@dataclasses.dataclass(frozen=True)
class StudyPreset:
    """Sizes of one preset (the method never changes): ``per_direction`` excerpts per
    direction; ``num_samples`` LIME samples per explanation; ``confidence`` the originals'
    minimum p(predicted class) and the adversaries' target confidence; ``wave_*`` / ``spec_*``
    C&W per domain (``clip_eps`` in [-1, 1] units / nepers; all ``max_iterations`` run, the
    lowest-energy success kept); ``horse_examples`` / ``subset_examples`` originals per
    direction for the controls, ``subset_*`` the attack confined to ``subset_size``
    components; ``stability_*`` LIME sample counts and repeats of the top-3 check;
    ``train_*`` override the voice task preset."""

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
    "paper": StudyPreset(per_direction=50, num_samples=8192, max_iterations=1000, ig_steps=32,
                         horse_examples=25, subset_examples=25, subset_iterations=1000,
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


def _split(data, split, preset, seed):
    from jaxaudio import tasks

    return tasks.load_split("jamendo" if data else "synth-voice", split, preset_name=preset,
                            seed=seed, data=data)


def _first(directions, per_group) -> np.ndarray:
    """The first ``per_group`` excerpts of every direction."""
    return np.concatenate([np.flatnonzero(directions == d)[:per_group]
                           for d in range(len(DIRECTIONS))])


# ----------------------------------------------------------------------------- stages


def _train_model(stage_dir, *, train_dir, progress, preset, seed, data, examples_per_epoch,
                 epochs):
    from jaxaudio import tasks
    from jaxaudio.train import train

    p = tasks.preset("voice", preset)
    if examples_per_epoch:
        p = dataclasses.replace(p, examples_per_epoch=examples_per_epoch)
    clf = tasks.new_classifier("voice", p, seed=seed)
    source = tasks.example_source("voice", _split(data, "train", preset, seed), p, clf.frontend)
    config = tasks.train_config("voice", p, seed=seed, epochs=epochs)
    result = train(clf, source, config, out_dir=train_dir, resume=True, progress=progress)
    result.classifier.save(stage_dir / "classifier")
    return {"fingerprint": result.classifier.fingerprint()}


def _excerpts(stage_dir, *, clf, data, progress, preset, seed, per_direction, confidence):
    """Frame accuracy on the test split and the excerpts to attack, in both directions
    (direction ``d`` attacks excerpts predicted as class ``d``: 0 "no sing", 1 "sing")."""
    from jaxaudio import metrics, tasks
    from jaxaudio.audit import excerpts
    from jaxaudio.data import windowing

    p, test_set, hop = tasks.preset("voice", preset), _split(data, "test", preset, seed), \
        clf.frontend.hop_length
    table = excerpts.frame_table(clf, test_set.waves, lambda i: test_set.frame_labels(
        i, hop_length=hop), frame_step=p.eval_frame_step, progress=progress)
    chosen, directions = excerpts.pick_per_class(table, num=per_direction, confidence=confidence,
                                                 rng=np.random.default_rng([seed, 3]))
    songs, frames = table[chosen, 0].astype(np.int64), table[chosen, 1].astype(np.int64)
    waves = windowing.excerpt_at(test_set.waves, songs, frames, excerpt_frames=clf.excerpt_frames,
                                 hop_length=hop, excerpt_samples=clf.excerpt_samples)
    if len(waves) == 0:
        raise ValueError("no test excerpt is predicted as either class; cannot attack "
                         "(check --model / --data)")
    return {"accuracy": float(metrics.frame_accuracy(table[:, 3], table[:, 2])),
            "num_frames": len(table), "frame_step": p.eval_frame_step,
            "sing_fraction": float(table[:, 2].mean()), "waves": waves,
            "specs": _features(clf, waves), "direction": directions, "song": songs,
            "frame": frames, "true_label": table[chosen, 2].astype(np.int64),
            "probability": table[chosen, 3], "correct": table[chosen, 2] == directions}


def _adversaries(stage_dir, excerpts, *, clf, domain, direction, confidence, **settings):
    """One (domain, direction) of adversaries; ``audited``: successes the detector labels with
    the target (their spectrogram deltas are what the explainers must find)."""
    from jaxaudio.audit import adversaries

    source = DIRECTIONS.index(direction)  # nosing_to_sing: 0 -> 1, sing_to_nosing: 1 -> 0
    index, wave = np.flatnonzero(excerpts["direction"] == source), domain == "waveform"
    adv, success = np.zeros((0,) + excerpts["waves"].shape[1:], np.float32), np.zeros(0, bool)
    if len(index):
        adv, success = adversaries.flip_binary(
            clf.logits_fn if wave else clf.feature_logits_fn,
            excerpts["waves" if wave else "specs"][index], source, domain=domain,
            confidence=confidence, **settings)
    feats, specs = _features(clf, adv) if wave else adv, excerpts["specs"][index]
    ok = adversaries.audited_indices(_compiled(clf)[1], feats, success, source)
    deltas = feats[ok] - specs[ok]
    return {"index": index, "adversarial": adv, "success": success, "features": feats,
            "audited": index[ok], "deltas": deltas, "explain_specs": specs[ok] + deltas,
            "explain_targets": np.full(len(ok), 1 - source, np.int64)}


def _lime(stage_dir, examples, *, clf, progress, num_samples, seed, stream, first_position):
    """LIME of ``examples["explain_specs"]`` for their targets; example ``j``'s key is
    ``fold_in(fold_in(key(seed), stream), first_position + j)``."""
    from jaxaudio.audit import explanations

    return explanations.lime_batch(
        _compiled(clf)[1], examples["explain_specs"], examples["explain_targets"],
        key=jax.random.fold_in(jax.random.key(seed), stream), num_samples=num_samples,
        first_position=first_position, progress=progress, **SEGMENTS)


def _attribution(stage_dir, examples, *, clf, ig_steps):
    from jaxaudio.audit import explanations

    return explanations.attribution_batch(_compiled(clf)[1], examples["explain_specs"],
                                          examples["explain_targets"], ig_steps=ig_steps,
                                          **SEGMENTS)


def _audit(stage_dir, excerpts, *, clf, top_k, **parts):
    """Flip matrices of one domain (explainers and norm), tables per direction."""
    from jaxaudio import audit

    def cat(stage, key):
        return np.concatenate([parts[f"{stage}_{d}"][key] for d in DIRECTIONS])

    idx = cat("adv", "audited")
    groups = excerpts["direction"][idx]
    weights = {e: cat("lime" if e == "lime" else "attr", f"{e}_weights") for e in EXPLAINERS}
    flips = audit.flip_matrices(_compiled(clf)[1], excerpts["specs"][idx], cat("adv", "deltas"),
                                weights, 1 - groups, **SEGMENTS)
    return {"score": cat("lime", "lime_score"), "group": groups,
            **audit.grouped_tables(flips, weights, groups, DIRECTIONS, k=top_k)}


def _stability(stage_dir, *, clf, sizes, repeats, seed, **adv):
    """LIME's top-3 against the sample count, on the first audited adversary."""
    from jaxaudio import explain as ex

    for domain, name in ((d, n) for d in ("spectrogram", "waveform") for n in DIRECTIONS):
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

    specs, pick = excerpts["specs"], _first(excerpts["direction"], horse_examples)
    source = excerpts["direction"][pick].astype(np.int32)
    spread = float(specs.std())
    h = audit.find_horses(_compiled(clf)[1], specs[pick], source,
                          ex.component_masks(specs.shape[1:], **SEGMENTS),
                          amplitudes=spread * np.array([0.5, 1, 1.5, 2, 3, 4, 6, 8]),
                          key=jax.random.fold_in(jax.random.key(seed), 200))
    return {"pick": pick, "spread": spread, **h, "explain_specs": h["spec"][h["found"]],
            "explain_targets": (1 - source)[h["found"]].astype(np.int64)}


def _subset(stage_dir, excerpts, *, clf, subset_examples, subset_size, seed, **settings):
    from jaxaudio import audit, explain as ex
    from jaxaudio.audit import adversaries

    specs, pick = excerpts["specs"], _first(excerpts["direction"], subset_examples)
    masks = ex.component_masks(specs.shape[1:], **SEGMENTS)
    subsets = audit.random_subsets(jax.random.fold_in(jax.random.key(seed), 300), len(pick),
                                   masks.shape[0], subset_size)
    r = adversaries.subset_adversaries(clf.feature_logits_fn, _compiled(clf)[1], specs[pick],
                                       excerpts["direction"][pick], subsets, masks, **settings)
    ok = r["success"]
    return {"pick": pick, "subsets": subsets, "success": ok, "spec": r["spec"],
            "explain_specs": r["spec"][ok], "explain_targets": r["targets"][ok].astype(np.int64)}


def _assemble(stage_dir, *, clf, top_k, **inputs):
    """The audit's numbers (tables, curves, controls, fidelity) for results.json."""
    from jaxaudio.audit import results

    tables = {dom: inputs.pop(f"audit_{dom}") for dom in DOMAINS}
    return results.assemble(tables, **inputs, domains=DOMAINS, directions=DIRECTIONS, k=top_k)


# ----------------------------------------------------------------------------- settings


def _attack_settings(sp: StudyPreset, domain: str) -> dict:
    """C&W settings of one domain's adversaries (``"subset"``: of the subset control)."""
    if domain == "subset":
        return {"confidence": sp.subset_confidence,
                **{k: getattr(sp, f"subset_{k}") for k in CW_KEYS},
                "max_iterations": sp.subset_iterations}
    return {"confidence": sp.confidence, "max_iterations": sp.max_iterations,
            **{k: getattr(sp, CW_PREFIX[domain] + k) for k in CW_KEYS}}


def _count(value, flag: str, minimum: int) -> Optional[int]:
    if value is not None and (int(value) != value or value < minimum):
        raise ValueError(f"{flag}: {flag[2:].replace('-', '_')} must be an integer >= "
                         f"{minimum}, got {value!r}")
    return None if value is None else int(value)


def _check(preset, num_samples, per_direction, model, data) -> StudyPreset:
    if preset not in PRESETS:
        raise ValueError(f"--preset: unknown preset {preset!r}; choose one of {tuple(PRESETS)}")
    sp = PRESETS[preset]
    if _count(num_samples, "--num-samples", 2) is not None:
        sp = dataclasses.replace(sp, num_samples=int(num_samples))
    n = _count(per_direction, "--per-direction", 1)
    if n is not None:
        sp = dataclasses.replace(sp, per_direction=n, horse_examples=min(sp.horse_examples, n),
                                 subset_examples=min(sp.subset_examples, n))
    if model is not None and not (pathlib.Path(model) / "classifier.json").is_file():
        raise ValueError(f"--model {model}: no saved classifier there (classifier.json missing)")
    if data is not None and not pathlib.Path(data).is_dir():
        raise ValueError(f"--data {data}: not a folder")
    return sp


# ----------------------------------------------------------------------------- wiring


def _stages(runner, clf, sp, *, preset, seed, data, progress) -> dict:
    """Every stage after the model, in a fixed order; returns the StageResults by name."""
    s: dict = {}
    dep = {"model": clf.fingerprint()}

    def stage(name, fn, settings, inputs=None, **context):
        s[name.replace("-", "_")] = runner.stage(name, fn, settings=settings, inputs=inputs,
                                                 depends=dep, context={"clf": clf, **context})
        return s[name.replace("-", "_")]

    def explain(tag, examples, stream, first_position):  # LIME, then occlusion + IG
        return (stage(f"lime-{tag}", _lime, {"num_samples": sp.num_samples, "seed": seed,
                                             "stream": stream, "first_position": first_position},
                      {"examples": examples}, progress=progress),
                stage(f"attribution-{tag}", _attribution, {"ig_steps": sp.ig_steps},
                      {"examples": examples}))

    exc = stage("excerpts", _excerpts, {"preset": preset, "seed": seed, "confidence":
                                        sp.confidence, "per_direction": sp.per_direction},
                data=data, progress=progress)
    for di, dom in enumerate(DOMAINS):
        parts, first = {}, 0
        for name in DIRECTIONS:
            a = parts[f"adv_{name}"] = stage(f"adversaries-{dom}-{name}", _adversaries, {
                "domain": dom, "direction": name, **_attack_settings(sp, dom)}, {"excerpts": exc})
            parts[f"lime_{name}"], parts[f"attr_{name}"] = explain(f"{dom}-{name}", a, 100 + di,
                                                                   first)
            first += len(a["audited"])  # LIME keys run on over the domain's audited list
        stage(f"audit-{dom}", _audit, {"top_k": TOP_K}, {"excerpts": exc, **parts})
    stage("stability", _stability, {"sizes": sp.stability_sizes, "seed": seed,
                                    "repeats": sp.stability_repeats},
          {f"{d}_{n}": s[f"adversaries_{d}_{n}"] for d in DOMAINS for n in DIRECTIONS})
    stage("horses", _horses, {"horse_examples": sp.horse_examples, "seed": seed},
          {"excerpts": exc})
    stage("subset", _subset, {"subset_examples": sp.subset_examples, "subset_size":
                              sp.subset_size, **_attack_settings(sp, "subset"), "seed": seed},
          {"excerpts": exc})
    explain("horses", s["horses"], 201, 0)
    explain("subset", s["subset"], 301, 0)
    stage("assemble", _assemble, {"top_k": TOP_K}, {k: s[k] for k in (
        "horses", "subset", "stability", "lime_horses", "attribution_horses",
        "lime_subset", "attribution_subset", "audit_waveform", "audit_spectrogram")})
    return s


# ----------------------------------------------------------------------------- outputs


def _results(s, sp, clf, *, preset, seed, data, model_path, runner, seconds) -> dict:
    from jaxaudio.audit import results as res

    exc, n = s["excerpts"], s["assemble"]
    adv = {dom: {k: s[f"adversaries_{dom}_{k}"] for k in DIRECTIONS} for dom in DOMAINS}
    attacks = res.attack_counts(exc["direction"], adv, directions=DIRECTIONS)
    attacks["waveform"].update(res.median_snr(exc["waves"], list(adv["waveform"].values())))
    dev = [f"{k} {getattr(sp, k)} (paper: {v})" for k, v in PAPER.items() if getattr(sp, k) != v]
    lime_seconds = np.concatenate([v["lime_seconds"] for k, v in s.items()
                                   if k.startswith("lime_")])
    return {
        "study": NAME, "title": TITLE, "preset": preset, "seed": seed,
        "data": "jamendo" if data else "synth-voice",
        "headline": res.headline(n["table1_all"], DOMAINS, DIRECTIONS),
        "preset_deviations_from_paper": dev + ([] if data else ["synthetic songs, not Jamendo"]),
        "model": {"path": model_path, **res.model_summary(exc),
                  "width": int(clf.model_kwargs.get("width", 0))},
        "excerpts": res.excerpt_counts(exc["direction"], exc["correct"], DIRECTIONS),
        "segmentation": {**SEGMENTS, "baseline": "mean", "top_k": TOP_K},
        "attacks": attacks,
        "attack_settings": {"method": "carlini_wagner (signed-gradient Adam)",
                            "confidence": sp.confidence, "max_iterations": sp.max_iterations,
                            **{d: {k: getattr(sp, CW_PREFIX[d] + k) for k in CW_KEYS}
                               for d in DOMAINS}, "subset": _attack_settings(sp, "subset")},
        **res.published_tables(n, DOMAINS, DIRECTIONS),
        **{k: n[k] for k in ("table1_all", "table2_all", "flip_curves", "stability", "horses",
                             "subset", "fidelity")},
        "published": PUBLISHED,
        "snr_note": "median_snr_db: jaxaudio.metrics.snr_db (first and last 2048 samples left "
                    "out); median_snr_db_whole_clip: the same over the whole excerpt (the "
                    "pre-redesign inline formula)",
        "timing": {**res.lime_timing(lime_seconds, sp.num_samples),
                   "note": "wall time of one LIME explanation (compose + forward passes + "
                           "surrogate fit) when its stage was computed",
                   "total_seconds": seconds, "device": str(jax.devices()[0].device_kind)},
        "stages": runner.summary(),
    }


def _write_arrays(out: pathlib.Path, s, results) -> None:
    """``arrays/*.npz`` the report's figures are drawn from."""
    from jaxaudio import explain as ex
    from jaxaudio.audit import results as res

    shape = s["excerpts"]["specs"].shape[1:]
    masks, rects = ex.component_masks(shape, **SEGMENTS), res.component_rects(shape, **SEGMENTS)
    arrays = {"flip_curves": res.flip_curve_arrays(results["flip_curves"]),
              "horses": res.horse_arrays(s["horses"], s["lime_horses"]["lime_weights"],
                                         s["lime_horses"]["lime_score"], rects, k=TOP_K),
              "fidelity": res.fidelity_arrays(results["fidelity"], DOMAINS)}
    for dom, name in ((d, n) for d in ("spectrogram", "waveform") for n in DIRECTIONS):
        a = s[f"adversaries_{dom}_{name}"]
        if len(a["audited"]):  # the figure shows the first audited adversary
            arrays["example"] = res.example_arrays(
                s["excerpts"]["specs"][a["audited"][0]], a["deltas"][0],
                s[f"lime_{dom}_{name}"]["lime_weights"][0], masks, rects, domain=dom,
                direction=name, k=TOP_K)
            break
    (out / "arrays").mkdir(exist_ok=True)
    (out / "audio").mkdir(exist_ok=True)
    for key in ("flip_curves", "example", "horses", "fidelity"):
        if key in arrays:
            np.savez(out / "arrays" / f"{key}.npz", **arrays[key])


def _listening(out: pathlib.Path, s, clf) -> list:
    """WAVs (original -> adversarial -> perturbation) of one waveform adversary per direction."""
    from jaxaudio import metrics
    from jaxaudio.data.listening import write_listening_example

    exc, clips = s["excerpts"], []
    for name in DIRECTIONS:
        a = s[f"adversaries_waveform_{name}"]
        for j in np.flatnonzero(a["success"])[:1]:
            i, adv = int(a["index"][j]), np.clip(a["adversarial"][j], -1, 1)
            w = write_listening_example(out / "audio", name, exc["waves"][i], adv,
                                        clf.frontend.sample_rate)
            p_adv = float(jax.nn.sigmoid(clf.logits_fn(adv[None].astype(np.float32)))[0, 0])
            clips.append({"direction": name,
                          "true_label": clf.label_names[int(exc["true_label"][i])],
                          "p_sing_original": float(exc["probability"][i]),
                          "p_sing_adversarial": p_adv,
                          "snr_db": float(metrics.snr_db(exc["waves"][i], adv)),
                          "perturbation_gain": w["perturbation_gain"],
                          "files": {k: f"audio/{f}" for k, f in w["files"].items()}})
    return clips


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
    _write_arrays(out, s, results)
    results["listening"] = _listening(out, s, clf)
    (out / "results.json").write_text(json.dumps(results, indent=2, allow_nan=False))
    report.write_report(out)
    return results
