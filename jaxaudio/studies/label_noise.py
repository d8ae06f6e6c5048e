"""Study 2 (docs/studies.md §2): label noise in the instrument tagger.

One average-pool CNN (:mod:`jaxaudio.tasks`) is trained on **curated** clips, **noisy** clips
(shifted recording conditions *and* wrong labels, like FSDKaggle2019's), **curated + noisy**,
and **curated clips with labels corrupted** at rates ``p``, with cross-entropy and noise-robust
losses, for several seeds, and evaluated on the curated test split (accuracy, lwlrap, ROC-AUC;
mean ± sample std over seeds). "Curated only" *is* the ``p = 0`` cross-entropy run. The
noise-equivalent ``p`` (:func:`jaxaudio.metrics.label_noise_summary`) prices the noisy labels.

Stages (``out/stages``): ``data``, ``corruption`` per seed, ``train`` per (training set, loss,
seed: trained together, then evaluated), ``aggregate``; adding a seed or a robust loss trains
only the new models. Writes ``results.json``, ``arrays/curves.npz``, ``report.html``.
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import json
import os
import pathlib
import platform
import time
from typing import Optional, Sequence

import numpy as np

from jaxaudio import tasks

NAME = "label_noise"
TITLE = "Study 2: label noise in the instrument tagger"

#: Noise-robust losses by short name: (loss name in jaxaudio.losses, kwargs, label).
ROBUST_LOSSES: dict[str, tuple[str, tuple, str]] = {
    "gce": ("gce", (("q", 0.7),), "GCE (q = 0.7)"),
    "bootstrap": ("bootstrap", (("beta", 0.8),), "soft bootstrap (β = 0.8)"),
    "smoothing": ("label_smoothing", (("smoothing", 0.1),), "label smoothing (0.1)"),
}
_CE = ("cross_entropy", ())
METRICS = ("accuracy", "lwlrap", "roc_auc")
CONDITIONS = ("curated", "noisy", "curated+noisy")

#: Context figures (docs/studies.md §2), on the full 80-label FSDKaggle2019 test set: the DCASE
#: 2019 task 2 baseline (MobileNet, noisy pre-training then curated) and the best system.
PUBLISHED = {"dcase2019_task2_baseline_lwlrap": 0.546, "dcase2019_task2_best_lwlrap": 0.758,
             "source": "DCASE 2019 task 2, 80 labels of FSDKaggle2019 (context, not the "
                       "12-label protocol of this study)"}


@dataclasses.dataclass(frozen=True)
class NoisePreset:
    """Sizes of one preset (only sizes change between presets, never the method): clips per
    split (``None`` = all; with ``--data`` caps in CSV order), synthetic durations (s), Adam
    training, network width, excerpt frames, corruption rates (starting at 0), seeds, robust
    losses (keys of ``ROBUST_LOSSES``), excerpts for the band statistics."""

    num_curated: Optional[int]
    num_noisy: Optional[int]
    num_test: Optional[int]
    min_seconds: float
    max_seconds: float
    epochs: int
    width: int
    excerpt_frames: int
    rates: tuple
    seeds: int
    robust: tuple = ("gce",)
    batch_size: int = 16
    learning_rate: float = 1e-3
    stats_excerpts: int = 256


PRESETS: dict[str, NoisePreset] = {
    "smoke": NoisePreset(num_curated=48, num_noisy=48, num_test=24, min_seconds=0.5,
                         max_seconds=1.5, epochs=1, width=4, excerpt_frames=24,
                         rates=(0.0, 0.5, 0.9), seeds=2, robust=("gce",), stats_excerpts=48),
    "demo": NoisePreset(num_curated=240, num_noisy=240, num_test=180, min_seconds=0.5,
                        max_seconds=4.0, epochs=14, width=8, excerpt_frames=58,
                        rates=tuple(round(0.1 * i, 1) for i in range(10)), seeds=3,
                        robust=("gce",)),
    "paper": NoisePreset(num_curated=None, num_noisy=None, num_test=None, min_seconds=0.5,
                         max_seconds=6.0, epochs=200, width=64, excerpt_frames=116,
                         rates=tuple(round(0.1 * i, 1) for i in range(10)), seeds=5,
                         robust=("gce", "bootstrap", "smoothing"), stats_excerpts=512),
}
#: Every training step is compiled for all losses (a ``lax.switch``), so a training's numbers
#: do not depend on which robust losses were selected alongside it.
LOSS_SET = (_CE,) + tuple(spec[:2] for spec in ROBUST_LOSSES.values())

#: Kept under their old names here (benchmarks/label_noise_vmap.py reads them).
PAPER_SYNTH_SIZES = tasks.SYNTH_INSTRUMENT_SIZES
new_classifier = tasks.new_instrument_classifier_rbg


# ---------------------------------------------------------------------------------- stages
def _data(stage_dir, *, load, **sizes) -> dict:
    """Labels and targets of the three splits (the clips themselves are loaded on demand)."""
    splits = load()
    arrays = {f"{split}_{what}": np.asarray(getattr(d, what))
              for split, d in splits.items() for what in ("labels", "targets")}
    return dict({"label_names": list(splits["curated"].label_names),
                 "num_clips": {k: len(v) for k, v in splits.items()}}, **arrays)


def _corruption(stage_dir, *, data, seed: int, rates: list) -> dict:
    """The curated labels corrupted at every rate for one seed (shared by all losses, so the
    robust curve prices the loss, not another draw of wrong labels)."""
    labels, changed = tasks.corrupt_at_rates(data["curated_labels"], rates=rates, seed=seed,
                                             num_classes=len(data["label_names"]))
    return {"labels": labels, "changed": changed}


def _train(stage_dir, *, data, load, progress, condition: str, seed: int, loss: list,
           loss_set: list, train_mode: str, width: int, excerpt_frames: int, epochs: int,
           batch_size: int, learning_rate: float, stats_excerpts: int, rates=None,
           corruption=None) -> dict:
    """Train the models of one (training set, loss, seed) together, then evaluate them."""
    from jaxaudio.train import TrainConfig
    from jaxaudio.train_many import evaluate_many, train_many

    splits = load()
    waves, targets = tasks.noise_training_set(
        splits, condition, corrupted=None if corruption is None else corruption["labels"])
    clf = tasks.new_instrument_classifier_rbg(width=width, excerpt_frames=excerpt_frames,
                                              seed=seed, label_names=data["label_names"])
    config = TrainConfig(epochs=epochs, batch_size=batch_size, learning_rate=learning_rate,
                         seed=seed, stats_excerpts=stats_excerpts)
    spec = lambda s: (s[0], tuple(sorted(s[1].items())))  # noqa: E731 (JSON -> loss spec)
    result = train_many(clf, waves, targets, config, losses=[spec(loss)] * len(targets),
                        mode=train_mode, loss_set=[spec(s) for s in loss_set],
                        prng_impl=tasks.RBG_PRNG_IMPL, progress=progress,
                        desc=f"{condition} seed {seed} ({len(targets)} models)")
    t0 = time.perf_counter()
    scores = evaluate_many(result.classifiers[0], result.variables, splits["test"])
    out = {m: np.array([s[m] for s in scores]) for m in METRICS}
    return dict(out, train_loss=result.losses, steps=result.steps, num_train=len(waves),
                train_seconds=result.seconds, eval_seconds=time.perf_counter() - t0)


def _per_seed(stages: dict, seeds: list, robust: list) -> tuple[dict, dict]:
    """Test metrics per seed: curves ``{loss: {m: (S, R)}}``, other sets ``{set: {m: (S,)}}``."""
    curves = {short: {m: np.array([stages[f"curated_{short}_{s}"][m] for s in seeds])
                      for m in METRICS} for short in ["ce"] + list(robust)}
    sets = {c: {m: np.array([stages[f"{c}_ce_{s}"][m] for s in seeds])[:, 0] for m in METRICS}
            for c in CONDITIONS[1:]}
    return curves, sets


def _aggregate(stage_dir, *, rates: list, seeds: list, robust: list, **stages) -> dict:
    """Curves (mean ± std over seeds), the three training sets, noise-equivalent p."""
    from jaxaudio.metrics import label_noise_summary

    curves, sets = _per_seed(stages, seeds, robust)
    info = {r: {"loss_label": ROBUST_LOSSES[r][2], "loss_function": ROBUST_LOSSES[r][0],
                "loss_kwargs": dict(ROBUST_LOSSES[r][1])} for r in robust}
    out = label_noise_summary(
        rates, curves, sets, num_train={c: stages[f"{c}_ce_{seeds[0]}"]["num_train"]
                                        for c in CONDITIONS},
        labels_changed=stages[f"corruption_{seeds[0]}"]["changed"].sum(1),
        curve_info=dict(info, ce={"loss_label": "cross-entropy"}))
    out["curated"]["note"] = "the p = 0 cross-entropy runs of the corruption curve"
    return out


# ---------------------------------------------------------------------------------- the study
def _preset(name: str, *, seeds=None, robust=None, epochs=None) -> NoisePreset:
    """The preset with the command line's overrides, validated (errors name the flag)."""
    if name not in PRESETS:
        raise ValueError(f"unknown --preset {name!r}; choose one of {sorted(PRESETS)}")
    p = PRESETS[name]
    for flag, value in (("seeds", seeds), ("epochs", epochs)):
        if value is not None and (int(value) != value or value < 1):
            raise ValueError(f"--{flag} must be an integer >= 1, got {value}")
    unknown = [r for r in robust or () if r not in ROBUST_LOSSES]
    if unknown:
        raise ValueError(f"unknown --robust loss(es) {unknown}; choose from "
                         f"{sorted(ROBUST_LOSSES)}")
    p = dataclasses.replace(p, seeds=int(seeds or p.seeds), epochs=int(epochs or p.epochs),
                            robust=p.robust if robust is None else tuple(robust))
    if not p.rates or p.rates[0] != 0.0:
        raise ValueError("the corruption rates must start at 0 (the curated-only run)")
    return p


def _deviations(p: NoisePreset, data: Optional[str]) -> list:
    paper = PRESETS["paper"]
    out = [] if data else ["synthetic instrument clips instead of FSDKaggle2019"]
    for field in ("num_curated", "num_noisy", "num_test", "epochs", "width", "excerpt_frames",
                  "rates", "seeds", "robust"):
        if getattr(p, field) != getattr(paper, field):
            out.append(f"{field} {getattr(p, field)} (paper preset: {getattr(paper, field)})")
    return out


def _train_all(runner, p: NoisePreset, seeds: list, data_stage, context: dict, mode: str):
    """One training stage per (training set, loss, seed); returns {name: StageResult}."""
    import jax

    common = {"width": p.width, "excerpt_frames": p.excerpt_frames, "epochs": p.epochs,
              "batch_size": p.batch_size, "learning_rate": p.learning_rate,
              "stats_excerpts": p.stats_excerpts, "train_mode": mode,
              "loss_set": [[n, dict(kw)] for n, kw in LOSS_SET]}
    backend = {"backend": jax.default_backend()}  # rbg keys: deterministic per backend
    stages = {}
    for seed in seeds:
        corr = runner.stage("corruption", _corruption, inputs={"data": data_stage},
                            settings={"seed": seed, "rates": list(p.rates)},
                            label=f"corruption seed {seed}")
        stages[f"corruption_{seed}"] = corr
        groups = [("curated", short) for short in ["ce"] + list(p.robust)]
        for cond, short in groups + [("noisy", "ce"), ("curated+noisy", "ce")]:
            spec = _CE if short == "ce" else ROBUST_LOSSES[short][:2]
            settings = dict(common, condition=cond, seed=seed, loss=[spec[0], dict(spec[1])])
            inputs = {"data": data_stage}
            if cond == "curated":
                settings["rates"] = list(p.rates)
                inputs["corruption"] = corr
            stages[f"{cond}_{short}_{seed}"] = runner.stage(
                "train", _train, settings=settings, inputs=inputs, context=context,
                depends=backend, label=f"train {cond} {short} seed {seed}")
    return stages


def run(*, out, preset: str = "demo", seed: int = 0, data: Optional[str] = None, model=None,
        progress: bool = True, seeds: Optional[int] = None, robust: Optional[Sequence[str]] = None,
        train_mode: Optional[str] = None, epochs: Optional[int] = None) -> dict:
    """Run the label-noise study; write ``results.json``, ``arrays/`` and ``report.html``.

    ``seed`` is the first training seed (``seed, seed + 1, …``) and the synthetic data seed;
    ``seeds``, ``robust`` (keys of ``ROBUST_LOSSES``) and ``epochs`` override the preset;
    ``train_mode`` (``jaxaudio.train_many.TRAIN_MODES``) defaults by backend; ``model`` is
    ignored (this study trains its own classifiers). Finished stages under ``out/stages`` are
    reused. Returns the content of ``results.json``.
    """
    del model
    from jaxaudio import report
    from jaxaudio.pipeline import Runner, atomic_write_text
    from jaxaudio.train_many import TRAIN_MODES, default_train_mode

    p = _preset(preset, seeds=seeds, robust=robust, epochs=epochs)
    mode = default_train_mode() if train_mode is None else train_mode
    if mode not in TRAIN_MODES:
        raise ValueError(f"--train-mode must be one of {TRAIN_MODES}, got {mode!r}")
    if data is not None and not pathlib.Path(data).is_dir():
        raise ValueError(f"--data must be the FSDKaggle2019 root folder, got {data!r}")
    t_start, out = time.perf_counter(), pathlib.Path(out)
    from jaxaudio.data import SYNTHETIC_DATA

    data_name = str(data) if data else "synthetic"
    runner = Runner(out / "stages", progress=progress,
                    depends={"data": data_name if data else SYNTHETIC_DATA})
    sizes = {k: getattr(p, k) for k in ("num_curated", "num_noisy", "num_test",
                                        "min_seconds", "max_seconds")}
    load = functools.cache(lambda: tasks.instrument_splits(**sizes, data=data, seed=seed,
                                                           progress=progress))
    data_stage = runner.stage("data", _data, settings=dict(sizes, data_seed=seed),
                              context={"load": load})
    seed_list = [seed + i for i in range(p.seeds)]
    stages = _train_all(runner, p, seed_list, data_stage, {"load": load, "progress": progress},
                        mode)
    agg = runner.stage("aggregate", _aggregate, inputs=stages, settings={
        "rates": list(p.rates), "seeds": seed_list, "robust": list(p.robust)})
    results = {"study": NAME, "title": TITLE, "preset": preset, "seed": seed, "data": data_name,
               "seeds": seed_list, "rates": list(p.rates), "robust_losses": list(p.robust),
               "epochs": p.epochs, "width": p.width, "excerpt_frames": p.excerpt_frames,
               "num_clips": data_stage["num_clips"], "label_names": data_stage["label_names"],
               **agg.outputs,
               "published": PUBLISHED, "preset_deviations_from_paper": _deviations(p, data),
               "timing": _timing(stages, data_stage, mode, t_start)}
    results["summary"], results["headline"] = _summary(results), _headline(results)
    results["stages"] = runner.summary()
    _save_arrays(out / "arrays", results, stages, seed_list)
    atomic_write_text(out / "results.json", json.dumps(results, indent=2))
    report.write_report(out)
    return results


def _timing(stages: dict, data_stage, mode: str, t_start: float) -> dict:
    trains = [s for k, s in stages.items() if not k.startswith("corruption")]
    return {"runs": sum(len(s["accuracy"]) for s in trains),
            "runs_reused": sum(len(s["accuracy"]) for s in trains if not s.computed),
            "train_mode": mode, "data_seconds": data_stage.seconds,
            "train_and_eval_seconds_of_all_runs": float(sum(s.seconds for s in trains)),
            "wall_seconds_this_call": time.perf_counter() - t_start,
            "machine": f"{platform.processor() or platform.machine()}, "
                       f"{os.cpu_count()} logical CPUs"}


def _save_arrays(folder: pathlib.Path, results: dict, stages: dict, seeds: list) -> None:
    """``curves.npz``: per-seed metrics of every curve and training set (the figure's data)."""
    arrays = {"p": np.asarray(results["rates"], np.float64), "seeds": np.asarray(seeds)}
    curves, sets = _per_seed(stages, seeds, results["robust_losses"])
    for m in METRICS:
        arrays.update({f"curated_{short}_{m}": curve[m] for short, curve in curves.items()})
        for cond in CONDITIONS[1:]:
            arrays[f"{cond}_{m}"] = sets[cond][m]
            ne = results["noise_equivalent_p_detail"][m][cond]["mean"]
            arrays[f"noise_equivalent_{cond}_{m}"] = np.float64(np.nan if ne is None else ne)
    folder.mkdir(parents=True, exist_ok=True)
    np.savez(folder / ".curves.tmp.npz", **arrays)
    os.replace(folder / ".curves.tmp.npz", folder / "curves.npz")


def _summary(results: dict) -> str:
    acc, ne = results["corruption"]["accuracy_mean"], results["noise_equivalent_p_detail"]
    cond = {c: f"{results[c]['accuracy_mean']:.3f} ± {results[c]['accuracy_std']:.3f}"
            for c in CONDITIONS[1:]}
    return (f"Test accuracy falls from {acc[0]:.3f} (clean curated labels) to {acc[-1]:.3f} at "
            f"p = {results['corruption']['p'][-1]:g}; noisy only: {cond['noisy']}, "
            f"curated + noisy: {cond['curated+noisy']}. Noise-equivalent p (accuracy): noisy "
            f"{ne['accuracy']['noisy']['note']}; curated + noisy "
            f"{ne['accuracy']['curated+noisy']['note']}.")


def _headline(results: dict) -> str:
    ne = results["noise_equivalent_p"]["noisy"]
    worth = "never reached" if ne is None else f"p = {ne:.2f}"
    return (f"accuracy curated {results['curated']['accuracy_mean']:.3f}, noisy "
            f"{results['noisy']['accuracy_mean']:.3f}, curated + noisy "
            f"{results['curated+noisy']['accuracy_mean']:.3f}; noisy labels worth curated "
            f"labels at {worth} ({len(results['seeds'])} seeds, {results['preset']} preset)")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Command-line options of ``jaxaudio noise`` / ``experiments/label_noise.py``."""
    from jaxaudio.train_many import TRAIN_MODES

    parser.add_argument("--preset", choices=tuple(PRESETS), default="demo",
                        help="sizes (default: demo)")
    parser.add_argument("--data", default=None, metavar="FSD_ROOT",
                        help="FSDKaggle2019 root folder (default: embedded synthetic data)")
    parser.add_argument("--out", required=True, help="output folder (finished stages reused)")
    parser.add_argument("--seed", type=int, default=0, help="first seed (default 0)")
    parser.add_argument("--seeds", type=int, default=None,
                        help="number of seeds (default: the preset's)")
    parser.add_argument("--robust", nargs="*", default=None, choices=tuple(ROBUST_LOSSES),
                        help="noise-robust losses run on the corruption curve")
    parser.add_argument("--epochs", type=int, default=None, help="override the preset's epochs")
    parser.add_argument("--train-mode", choices=TRAIN_MODES, default=None,
                        help="how the models of one training set are trained (default: shared "
                             "on CPU, vmap on GPU/TPU)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")


def run_from_args(args) -> int:
    """:func:`run` from parsed arguments; prints where the report is."""
    run(out=args.out, preset=args.preset, seed=args.seed, data=args.data,
        progress=not getattr(args, "no_progress", False), seeds=getattr(args, "seeds", None),
        robust=getattr(args, "robust", None), train_mode=getattr(args, "train_mode", None),
        epochs=getattr(args, "epochs", None))
    print(f"report: {pathlib.Path(args.out) / 'report.html'}")
    return 0
