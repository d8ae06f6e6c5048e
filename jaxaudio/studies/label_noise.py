"""Study 2 (docs/studies.md §2): label noise in the instrument tagger.

One average-pool CNN is trained on **curated** clips, **noisy** clips (shifted recording
conditions *and* wrong labels, like FSDKaggle2019's), **curated + noisy**, and curated clips
with labels **corrupted** at rates ``p`` (cross-entropy and robust losses, several seeds), and
tested on the curated test split (:mod:`jaxaudio.labels.curves`); then the wrong labels are
found by cleanlab and the network retrained on the cleaned noisy split
(:mod:`jaxaudio.labels.cleaning`, first seed). Stages: ``data``, ``corruption`` per seed,
``train`` per (training set, loss, seed), ``aggregate``, ``issue_data``, ``issues_curated``,
``issues_noisy``, ``clean_train``. Writes ``results.json``, ``arrays/curves.npz``, ``report.html``.
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import pathlib
import time
from typing import Optional, Sequence

import jax

from jaxaudio.labels import curves as noise_curves
from jaxaudio.labels import noise as noise_sets
from jaxaudio.labels.curves import METRICS
from jaxaudio.studies import common
from jaxaudio.studies import label_noise_issues as issues_section
from jaxaudio.studies.label_noise_issues import FOLDS  # noqa: F401 (part of the study)
from jaxaudio.training import tasks
from jaxaudio.training.many import TRAIN_MODES, default_train_mode

NAME = "label_noise"
TITLE = "Study 2: label noise in the instrument tagger"

#: Noise-robust losses by short name: (loss name in jaxaudio.training.losses, kwargs, label).
ROBUST_LOSSES: dict[str, tuple[str, tuple, str]] = {
    "gce": ("gce", (("q", 0.7),), "GCE (q = 0.7)"),
    "bootstrap": ("bootstrap", (("beta", 0.8),), "soft bootstrap (β = 0.8)"),
    "smoothing": ("label_smoothing", (("smoothing", 0.1),), "label smoothing (0.1)"),
}
_CE = issues_section.CE

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
    issue_rates: tuple = (0.1, 0.3, 0.5)


PRESETS: dict[str, NoisePreset] = {
    "smoke": NoisePreset(num_curated=48, num_noisy=48, num_test=24, min_seconds=0.5,
                         max_seconds=1.5, epochs=1, width=4, excerpt_frames=24,
                         rates=(0.0, 0.5, 0.9), seeds=2, robust=("gce",), stats_excerpts=48,
                         issue_rates=(0.5,)),
    "demo": NoisePreset(num_curated=240, num_noisy=240, num_test=180, min_seconds=0.5,
                        max_seconds=4.0, epochs=14, width=8, excerpt_frames=58,
                        rates=tuple(round(0.1 * i, 1) for i in range(10)), seeds=3,
                        robust=("gce",)),
    "paper": NoisePreset(num_curated=None, num_noisy=None, num_test=None, min_seconds=0.5,
                         max_seconds=6.0, epochs=200, width=64, excerpt_frames=116,
                         rates=tuple(round(0.1 * i, 1) for i in range(10)), seeds=5,
                         robust=("gce", "bootstrap", "smoothing"), stats_excerpts=512,
                         issue_rates=tuple(round(0.1 * i, 1) for i in range(1, 10))),
}
#: Every training step is compiled for all losses (a ``lax.switch``), so a training's numbers
#: do not depend on which robust losses were selected alongside it.
LOSS_SET = (_CE,) + tuple(spec[:2] for spec in ROBUST_LOSSES.values())
#: The label-issue stages also train multi-label taggers (binary cross-entropy).
ISSUE_LOSS_SET = LOSS_SET + (issues_section.BCE,)
#: Kept under their old names here (benchmarks/label_noise_vmap.py reads them).
PAPER_SYNTH_SIZES = tasks.SYNTH_INSTRUMENT_SIZES
new_classifier = tasks.new_instrument_classifier_rbg


# ---------------------------------------------------------------------------------- stages
def _data(stage_dir, *, load, **sizes) -> dict:
    """Labels and targets of the three splits (the clips themselves are loaded on demand)."""
    return noise_curves.split_labels(load())


def _corruption(stage_dir, *, data, seed: int, rates: list) -> dict:
    """The curated labels corrupted at every rate for one seed (shared by all losses, so the
    robust curve prices the loss, not another draw of wrong labels)."""
    labels, changed = noise_sets.corrupt_at_rates(data["curated_labels"], rates=rates, seed=seed,
                                                  num_classes=len(data["label_names"]))
    return {"labels": labels, "changed": changed}


def _fresh(data, seed: int, fit: dict):
    return noise_curves.fresh_model(data["label_names"], seed=seed, **fit)


def _train(stage_dir, *, data, load, progress, condition: str, seed: int, loss: list,
           loss_set: list, train_mode: str, rates=None, corruption=None, **fit) -> dict:
    """Train the models of one (training set, loss, seed) together, then evaluate them."""
    splits = load()
    waves, targets = noise_sets.noise_training_set(
        splits, condition, corrupted=None if corruption is None else corruption["labels"])
    return noise_curves.train_and_test(
        *_fresh(data, seed, fit), waves, targets, splits["test"], loss=loss, loss_set=loss_set,
        mode=train_mode, prng_impl=tasks.RBG_PRNG_IMPL, progress=progress,
        desc=f"{condition} seed {seed} ({len(targets)} models)")


def _aggregate(stage_dir, *, rates: list, seeds: list, robust: list, **stages) -> dict:
    """Curves (mean ± std over seeds), the three training sets, noise-equivalent p."""
    info = {r: {"loss_label": ROBUST_LOSSES[r][2], "loss_function": ROBUST_LOSSES[r][0],
                "loss_kwargs": dict(ROBUST_LOSSES[r][1])} for r in robust}
    return noise_curves.noise_curves_summary(stages, rates=rates, seeds=seeds, robust=info)


# ------------------------------------------------------------------------- stage wiring
def _settings(p: NoisePreset, mode: str, loss_set) -> dict:
    return {"width": p.width, "excerpt_frames": p.excerpt_frames, "epochs": p.epochs,
            "batch_size": p.batch_size, "learning_rate": p.learning_rate,
            "stats_excerpts": p.stats_excerpts, "train_mode": mode,
            "loss_set": [[n, dict(kw)] for n, kw in loss_set]}


def _train_all(runner, p: NoisePreset, seeds: list, data_stage, context: dict, mode: str):
    """One training stage per (training set, loss, seed); returns {name: StageResult}."""
    backend, stages = {"backend": jax.default_backend()}, {}  # rbg keys: per backend
    for seed in seeds:
        corr = stages[f"corruption_{seed}"] = runner.stage(
            "corruption", _corruption, inputs={"data": data_stage},
            settings={"seed": seed, "rates": list(p.rates)}, label=f"corruption seed {seed}")
        groups = [("curated", short) for short in ["ce"] + list(p.robust)]
        for cond, short in groups + [("noisy", "ce"), ("curated+noisy", "ce")]:
            spec = _CE if short == "ce" else ROBUST_LOSSES[short][:2]
            settings = dict(_settings(p, mode, LOSS_SET), condition=cond, seed=seed,
                            loss=[spec[0], dict(spec[1])])
            inputs = {"data": data_stage}
            if cond == "curated":
                settings["rates"], inputs["corruption"] = list(p.rates), corr
            stages[f"{cond}_{short}_{seed}"] = runner.stage(
                "train", _train, settings=settings, inputs=inputs, context=context,
                depends=backend, label=f"train {cond} {short} seed {seed}")
    return stages


def _label_issues(runner, p: NoisePreset, mode: str, seed: int, data, data_stage, stages: dict,
                  context: dict) -> dict:
    """The label-issue section (:mod:`jaxaudio.studies.label_noise_issues`) of ``seed``."""
    load_issues = functools.cache(lambda: issues_section.issue_split(
        context["load"], data=data, seed=seed, min_seconds=p.min_seconds,
        max_seconds=p.max_seconds))
    return issues_section.label_issue_stages(
        runner, seed=seed, data_stage=data_stage, corruption=stages[f"corruption_{seed}"],
        curated_test={m: float(stages[f"curated_ce_{seed}"][m][0]) for m in METRICS},
        settings=_settings(p, mode, ISSUE_LOSS_SET), rates=p.rates, issue_rates=p.issue_rates,
        robust=p.robust, robust_losses={r: ROBUST_LOSSES[r][:2] for r in p.robust},
        context=context, load_issues=load_issues)


# ---------------------------------------------------------------------------------- the study
def _preset(name: str, *, seeds=None, robust=None, epochs=None, train_mode=None):
    """``(preset with the command line's overrides, train mode)``, validated (errors name the
    flag)."""
    p = common.choose_preset(name, PRESETS)
    seeds, epochs = common.check_count(seeds, "seeds"), common.check_count(epochs, "epochs")
    unknown = [r for r in robust or () if r not in ROBUST_LOSSES]
    if unknown:
        raise ValueError(f"--robust: unknown loss(es) {unknown}; choose from "
                         f"{sorted(ROBUST_LOSSES)}")
    mode = default_train_mode() if train_mode is None else train_mode
    if mode not in TRAIN_MODES:
        raise ValueError(f"--train-mode must be one of {TRAIN_MODES}, got {mode!r}")
    noise_curves.check_rates(p.rates, p.issue_rates)
    return dataclasses.replace(p, seeds=seeds or p.seeds, epochs=epochs or p.epochs,
                               robust=p.robust if robust is None else tuple(robust)), mode


def _head(p: NoisePreset, preset: str, seed: int, data, seeds: list,
          data_stage) -> tuple[dict, list]:
    """The first fields of ``results.json``: the run, its sizes, its deviations from paper."""
    paper = PRESETS["paper"]
    dev = [] if data else ["synthetic instrument clips instead of FSDKaggle2019"]
    dev += [f"{f} {getattr(p, f)} (paper preset: {getattr(paper, f)})"
            for f in ("num_curated", "num_noisy", "num_test", "epochs", "width",
                      "excerpt_frames", "rates", "seeds", "robust", "issue_rates")
            if getattr(p, f) != getattr(paper, f)]
    return {"study": NAME, "title": TITLE, "preset": preset, "seed": seed,
            "data": str(data) if data else "synthetic", "seeds": seeds, "rates": list(p.rates),
            "robust_losses": list(p.robust), "epochs": p.epochs, "width": p.width,
            "excerpt_frames": p.excerpt_frames, "num_clips": data_stage["num_clips"],
            "label_names": data_stage["label_names"]}, dev


def run(*, out, preset: str = "demo", seed: int = 0, data: Optional[str] = None, model=None,
        progress: bool = True, seeds: Optional[int] = None, robust: Optional[Sequence[str]] = None,
        train_mode: Optional[str] = None, epochs: Optional[int] = None,
        label_issues: bool = True) -> dict:
    """Run the label-noise study; write ``results.json``, ``arrays/`` and ``report.html``.

    ``seed``: the first training seed (``seed, seed + 1, …``) and the synthetic data seed;
    ``seeds``, ``robust`` (keys of ``ROBUST_LOSSES``), ``epochs`` override the preset;
    ``train_mode`` (``jaxaudio.training.many.TRAIN_MODES``) defaults by backend; ``model`` is
    ignored (the study trains its own classifiers); ``label_issues`` False skips finding the
    wrong labels. Finished stages are reused. Returns the content of ``results.json``.
    """
    del model
    p, mode = _preset(preset, seeds=seeds, robust=robust, epochs=epochs, train_mode=train_mode)
    if data is not None and not pathlib.Path(data).is_dir():
        raise ValueError(f"--data must be the FSDKaggle2019 root folder, got {data!r}")
    t_start, runner = time.perf_counter(), common.study_runner(out, progress=progress, data=data)
    sizes = {k: getattr(p, k) for k in ("num_curated", "num_noisy", "num_test",
                                        "min_seconds", "max_seconds")}
    load = functools.cache(lambda: tasks.instrument_splits(**sizes, data=data, seed=seed,
                                                           progress=progress))
    data_stage = runner.stage("data", _data, settings=dict(sizes, data_seed=seed),
                              context={"load": load})
    seed_list, context = [seed + i for i in range(p.seeds)], {"load": load, "progress": progress}
    stages = _train_all(runner, p, seed_list, data_stage, context, mode)
    agg = runner.stage("aggregate", _aggregate, inputs=stages, settings={
        "rates": list(p.rates), "seeds": seed_list, "robust": list(p.robust)})
    issues = _label_issues(runner, p, mode, seed_list[0], data, data_stage, stages,
                           context) if label_issues else None
    head, dev = _head(p, preset, seed, data, seed_list, data_stage)
    results = dict(head, **agg.outputs, label_issues=issues, published=PUBLISHED,
                   preset_deviations_from_paper=dev, timing=noise_curves.training_timing(
                       [s for k, s in stages.items() if not k.startswith("corruption")],
                       mode=mode, data_seconds=data_stage.seconds, t_start=t_start))
    results["summary"] = noise_curves.summary_sentence(results)
    results["headline"] = noise_curves.headline(results)
    noise_curves.save_curve_arrays(pathlib.Path(out) / "arrays", noise_curves.curve_arrays(
        stages, rates=p.rates, seeds=seed_list, robust=p.robust,
        noise_equivalent=results["noise_equivalent_p_detail"]))
    return common.finish(out, results, runner=runner)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Command-line options of ``jaxaudio noise`` / ``experiments/label_noise.py``."""
    common.add_common_arguments(
        parser, preset_help="clips, rates, seeds, epochs and network width",
        data_help="FSDKaggle2019 root folder (default: embedded synthetic data)",
        seed_help="first seed of the data and training (default 0)")
    parser.add_argument("--seeds", type=int, default=None,
                        help="number of seeds (default: the preset's)")
    parser.add_argument("--robust", nargs="*", default=None, choices=tuple(ROBUST_LOSSES),
                        help="noise-robust losses run on the corruption curve")
    parser.add_argument("--epochs", type=int, default=None, help="override the preset's epochs")
    parser.add_argument("--train-mode", choices=TRAIN_MODES, default=None,
                        help="how the models of one training set are trained (default: shared "
                             "on CPU, vmap on GPU/TPU)")
    parser.add_argument("--no-label-issues", action="store_true",
                        help="skip finding the wrong labels (k-fold training + cleanlab + "
                             "retraining on the cleaned noisy split)")


def run_from_args(args) -> int:
    """:func:`run` from parsed arguments; prints the headline and where the report is."""
    results = run(out=args.out, preset=args.preset, seed=args.seed, data=args.data,
                  progress=not args.no_progress, seeds=getattr(args, "seeds", None),
                  robust=getattr(args, "robust", None),
                  train_mode=getattr(args, "train_mode", None),
                  epochs=getattr(args, "epochs", None),
                  label_issues=not getattr(args, "no_label_issues", False))
    return common.print_outcome(results, args.out)
