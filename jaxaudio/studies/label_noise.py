"""Study 2 (REFERENCE.md §2): label noise in the instrument tagger.

The same classifier (average-pool CNN on mel features, front-end inside the train step) is
trained on **curated** clips only, **noisy** clips only (shifted recording conditions *and*
wrong labels, like FSDKaggle2019's noisy set), **curated + noisy**, and **curated clips whose
labels were corrupted** at rates ``p`` (:func:`jaxaudio.data.corruption.corrupt_labels`), with
cross-entropy and with noise-robust losses (:mod:`jaxaudio.losses`), for several seeds, and
evaluated on the curated test split (accuracy, lwlrap, macro ROC-AUC; mean ± sample std over
seeds). "Curated only" *is* the ``p = 0`` cross-entropy run of the corruption curve. The
noise-equivalent corruption rate (:func:`jaxaudio.metrics.summarize_noise_equivalent`) prices
the noisy labels in curated labels with ``p`` of them wrong.

Stages (under ``out/stages``): ``data``, ``corruption`` per seed, ``train`` per (training
set, loss, seed: those models are trained together, then evaluated), ``aggregate``. Adding a
seed or a robust loss trains only the new models. Outputs: ``results.json``,
``arrays/curves.npz`` and ``report.html`` (:mod:`jaxaudio.report.label_noise`).
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

#: Context figures (REFERENCE.md §2), on the full 80-label FSDKaggle2019 test set: the DCASE
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
#: Synthetic clip counts of the paper preset (the real dataset uses all its clips).
PAPER_SYNTH_SIZES = {"curated": 600, "noisy": 600, "test": 200}

#: PRNG of initialisation and dropout. XLA's RngBitGenerator compiles 5-10x faster than
#: threefry on CPU; runs stay deterministic for a seed on a given backend.
PRNG_IMPL = "rbg"

#: Every training step is compiled for all losses (a ``lax.switch``), so a training's numbers
#: do not depend on which robust losses were selected alongside it.
LOSS_SET = (_CE,) + tuple(spec[:2] for spec in ROBUST_LOSSES.values())


def new_classifier(*, width: int, excerpt_frames: int, seed: int, label_names):
    """A fresh average-pool CNN instrument classifier (16 kHz instrument front-end), its
    initialisation one jitted call cached per shape with :data:`PRNG_IMPL` keys."""
    import jax

    from jaxaudio import frontend as fe
    from jaxaudio.models.classifier import Classifier

    frontend = fe.FrontendConfig.instrument()
    kwargs = {"num_classes": len(label_names), "width": int(width)}
    init = _jitted_init(frontend.n_mels, int(excerpt_frames), len(label_names), int(width))
    variables = jax.device_get(init(jax.random.key(seed, impl=PRNG_IMPL)))
    return Classifier(frontend=frontend, model_name="avgpool_cnn", model_kwargs=kwargs,
                      variables=variables, mean=np.zeros(frontend.n_mels, np.float32),
                      std=np.ones(frontend.n_mels, np.float32), label_names=tuple(label_names),
                      task="multiclass", excerpt_frames=int(excerpt_frames))


@functools.lru_cache(maxsize=8)
def _jitted_init(n_mels: int, frames: int, num_classes: int, width: int):
    import jax
    import jax.numpy as jnp

    from jaxaudio.models.cnn import AveragePoolCNN

    module = AveragePoolCNN(num_classes=num_classes, width=width)
    dummy = jnp.zeros((1, n_mels, frames), jnp.float32)
    return jax.jit(lambda key: module.init(key, dummy, train=False))


def load_data(preset: NoisePreset, *, preset_name: str, data: Optional[str], seed: int = 0,
              progress: bool = True) -> dict:
    """The curated, noisy and test splits as :class:`~jaxaudio.data.types.ClipDataset`.

    Synthetic (default): :func:`~jaxaudio.data.synth_instruments.make_synth_instruments`
    (data seed ``seed``). With ``data`` (FSDKaggle2019 root): the clips carrying exactly one of
    the 12 musical labels, capped at the preset's sizes (CSV order).
    """
    caps = {"curated": preset.num_curated, "noisy": preset.num_noisy, "test": preset.num_test}
    if data is None:
        from jaxaudio.data.synth_instruments import make_synth_instruments

        return {split: make_synth_instruments(
                    split=split, num_clips=PAPER_SYNTH_SIZES[split] if n is None else n,
                    seed=seed, min_seconds=preset.min_seconds, max_seconds=preset.max_seconds)
                for split, n in caps.items()}
    from jaxaudio.data.fsdkaggle import load_fsdkaggle2019

    if not pathlib.Path(data).is_dir():
        raise ValueError(f"--data must be the FSDKaggle2019 root folder, got {data!r}")
    return {split: load_fsdkaggle2019(pathlib.Path(data), split=split, single_label=True,
                                      max_clips=cap, progress=progress)
            for split, cap in caps.items()}


# ---------------------------------------------------------------------------------- stages
def _data(stage_dir, *, load, **sizes) -> dict:
    """Labels and targets of the three splits (the clips themselves are loaded on demand)."""
    splits = load()
    out = {"label_names": list(splits["curated"].label_names),
           "num_clips": {k: len(v) for k, v in splits.items()}}
    for split, d in splits.items():
        out[f"{split}_labels"] = np.asarray(d.labels)
        out[f"{split}_targets"] = np.asarray(d.targets)
    return out


def _corruption(stage_dir, *, data, seed: int, rates: list) -> dict:
    """The curated labels corrupted at every rate for one seed (shared by all losses, so the
    robust curve prices the loss, not another draw of wrong labels)."""
    from jaxaudio.data.corruption import corrupt_labels

    labels, changed = [], []
    for p in rates:
        corruption_seed = int(np.random.default_rng(
            [seed, int(round(p * 1000)), 2020]).integers(2 ** 31))
        lab, ch = corrupt_labels(data["curated_labels"], rate=p,
                                 num_classes=len(data["label_names"]), seed=corruption_seed)
        labels.append(lab)
        changed.append(ch)
    return {"labels": np.stack(labels), "changed": np.stack(changed)}


def _train(stage_dir, *, data, load, progress, condition: str, seed: int, loss: list,
           loss_set: list, train_mode: str, width: int, excerpt_frames: int, epochs: int,
           batch_size: int, learning_rate: float, stats_excerpts: int, rates=None,
           corruption=None) -> dict:
    """Train the models of one (training set, loss, seed) together, then evaluate them."""
    from jaxaudio.train import TrainConfig
    from jaxaudio.train_many import evaluate_many, train_many

    splits = load()
    if condition == "curated":
        waves = list(splits["curated"].waves)
        targets = np.eye(len(data["label_names"]), dtype=np.float32)[corruption["labels"]]
    else:
        parts = ["curated", "noisy"] if condition == "curated+noisy" else ["noisy"]
        waves = [w for s in parts for w in splits[s].waves]
        targets = np.concatenate([data[f"{s}_targets"] for s in parts])[None]
    clf = new_classifier(width=width, excerpt_frames=excerpt_frames, seed=seed,
                         label_names=data["label_names"])
    config = TrainConfig(epochs=epochs, batch_size=batch_size, learning_rate=learning_rate,
                         seed=seed, stats_excerpts=stats_excerpts)
    spec = lambda s: (s[0], tuple(sorted(s[1].items())))  # noqa: E731 (JSON -> loss spec)
    result = train_many(clf, waves, targets, config, losses=[spec(loss)] * len(targets),
                        mode=train_mode, loss_set=[spec(s) for s in loss_set],
                        prng_impl=PRNG_IMPL, progress=progress,
                        desc=f"{condition} seed {seed} ({len(targets)} models)")
    t0 = time.perf_counter()
    scores = evaluate_many(result.classifiers[0], result.variables, splits["test"])
    out = {m: np.array([s[m] for s in scores]) for m in METRICS}
    return dict(out, train_loss=result.losses, steps=result.steps, num_train=len(waves),
                train_seconds=result.seconds, eval_seconds=time.perf_counter() - t0)


def _aggregate(stage_dir, *, rates: list, seeds: list, robust: list, **stages) -> dict:
    """Curves (mean ± std over seeds), the three training sets, noise-equivalent p."""
    from jaxaudio.metrics import summarize_noise_equivalent

    def per_seed(cond, loss, m):
        return np.array([stages[f"{cond}_{loss}_{s}"][m] for s in seeds])  # (S, K)

    curves = {}
    for short in ["ce"] + robust:
        curve = {"p": rates, "loss": short}
        for m in METRICS:
            values = per_seed("curated", short, m)
            curve[f"{m}_mean"] = values.mean(0).tolist()
            curve[f"{m}_std"] = ([float(x) for x in values.std(0, ddof=1)]
                                 if len(seeds) > 1 else [0.0] * len(rates))
            curve[f"{m}_per_seed"] = values.tolist()
        curve["labels_changed"] = [int(c) for c in stages[f"corruption_{seeds[0]}"]["changed"]
                                   .sum(1)]
        curves[short] = curve
    out = {"corruption": dict(curves["ce"], loss_label="cross-entropy"),
           "robust": {short: dict(curves[short], loss_label=ROBUST_LOSSES[short][2],
                                  loss_function=ROBUST_LOSSES[short][0],
                                  loss_kwargs=dict(ROBUST_LOSSES[short][1]))
                      for short in robust}}
    for cond in CONDITIONS:
        loss_cond = "curated" if cond == "curated" else cond
        entry = {"num_train": int(stages[f"{loss_cond}_ce_{seeds[0]}"]["num_train"])}
        for m in METRICS:
            values = per_seed(loss_cond, "ce", m)[:, 0].tolist()
            entry[f"{m}_mean"], entry[f"{m}_std"] = _mean_std(values)
            entry[f"{m}_per_seed"] = values
        if cond == "curated":
            entry["note"] = "the p = 0 cross-entropy runs of the corruption curve"
        out[cond] = entry
    detail = {m: {c: summarize_noise_equivalent(
        rates, np.array(curves["ce"][f"{m}_per_seed"]), np.array(out[c][f"{m}_per_seed"]))
        for c in ("noisy", "curated+noisy")} for m in METRICS}
    out["noise_equivalent_p"] = {c: detail["accuracy"][c]["mean"] for c in CONDITIONS[1:]}
    out["noise_equivalent_p_std"] = {c: detail["accuracy"][c]["std"] for c in CONDITIONS[1:]}
    out["noise_equivalent_p_detail"] = detail
    ce_acc = np.array(curves["ce"]["accuracy_mean"])
    out["robust_gain_accuracy"] = {short: (np.array(curves[short]["accuracy_mean"])
                                           - ce_acc).tolist() for short in robust}
    return out


def _mean_std(values) -> tuple[float, float]:
    values = np.asarray(values, np.float64)
    std = float(np.std(values, ddof=1)) if values.size > 1 else 0.0
    return float(np.mean(values)), std


# ---------------------------------------------------------------------------------- the study
def _preset(name: str, *, seeds=None, robust=None, epochs=None) -> NoisePreset:
    """The preset with the command line's overrides, validated (errors name the flag)."""
    if name not in PRESETS:
        raise ValueError(f"unknown --preset {name!r}; choose one of {sorted(PRESETS)}")
    p = PRESETS[name]
    for flag, value in (("seeds", seeds), ("epochs", epochs)):
        if value is not None and (int(value) != value or value < 1):
            raise ValueError(f"--{flag} must be an integer >= 1, got {value}")
    if robust is not None:
        unknown = [r for r in robust if r not in ROBUST_LOSSES]
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
    data_name = str(data) if data else "synthetic"
    runner = Runner(out / "stages", progress=progress, depends={"data": data_name})
    load = functools.cache(lambda: load_data(p, preset_name=preset, data=data, seed=seed,
                                             progress=progress))
    sizes = {k: getattr(p, k) for k in ("num_curated", "num_noisy", "num_test",
                                        "min_seconds", "max_seconds")}
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
               "published": PUBLISHED, "preset_deviations_from_paper": _deviations(p, data)}
    trains = [s for k, s in stages.items() if not k.startswith("corruption")]
    results["timing"] = {
        "runs": sum(len(s["accuracy"]) for s in trains),
        "runs_reused": sum(len(s["accuracy"]) for s in trains if not s.computed),
        "train_mode": mode, "data_seconds": data_stage.seconds,
        "train_and_eval_seconds_of_all_runs": float(sum(s.seconds for s in trains)),
        "wall_seconds_this_call": time.perf_counter() - t_start,
        "machine": f"{platform.processor() or platform.machine()}, "
                   f"{os.cpu_count()} logical CPUs"}
    results["summary"] = _summary(results)
    results["headline"] = _headline(results)
    results["stages"] = runner.summary()
    _save_arrays(out / "arrays", results, stages, seed_list)
    atomic_write_text(out / "results.json", json.dumps(results, indent=2))
    report.write_report(out)
    return results


def _save_arrays(folder: pathlib.Path, results: dict, stages: dict, seeds: list) -> None:
    """``curves.npz``: per-seed metrics of every curve and training set (the figure's data)."""
    arrays = {"p": np.asarray(results["rates"], np.float64), "seeds": np.asarray(seeds)}
    for m in METRICS:
        for short in ["ce"] + results["robust_losses"]:
            arrays[f"curated_{short}_{m}"] = np.stack(
                [stages[f"curated_{short}_{s}"][m] for s in seeds])
        for cond in CONDITIONS[1:]:
            arrays[f"{cond}_{m}"] = np.stack([stages[f"{cond}_ce_{s}"][m][0] for s in seeds])
            ne = results["noise_equivalent_p_detail"][m][cond]["mean"]
            arrays[f"noise_equivalent_{cond}_{m}"] = np.float64(np.nan if ne is None else ne)
    folder.mkdir(parents=True, exist_ok=True)
    tmp = folder / ".curves.tmp.npz"
    np.savez(tmp, **arrays)
    os.replace(tmp, folder / "curves.npz")


def _fmt(mean, std) -> str:
    return f"{mean:.3f} ± {std:.3f}"


def _summary(results: dict) -> str:
    acc = results["corruption"]["accuracy_mean"]
    ne = results["noise_equivalent_p_detail"]["accuracy"]
    cond = {c: _fmt(results[c]["accuracy_mean"], results[c]["accuracy_std"])
            for c in CONDITIONS[1:]}
    return (f"Test accuracy falls from {acc[0]:.3f} (clean curated labels) to {acc[-1]:.3f} at "
            f"p = {results['corruption']['p'][-1]:g}; noisy only: {cond['noisy']}, "
            f"curated + noisy: {cond['curated+noisy']}. "
            f"Noise-equivalent p (accuracy): noisy {ne['noisy']['note']}; curated + noisy "
            f"{ne['curated+noisy']['note']}.")


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
