"""Study 2 (REFERENCE.md §2): label noise in the instrument tagger.

The same classifier (average-pool CNN on mel features, front-end inside the train step) is
trained on

* **curated** clips only (carefully labelled),
* **noisy** clips only (shifted recording conditions *and* wrong labels, like FSDKaggle2019's
  noisy set),
* **curated + noisy**,
* **curated clips whose labels were corrupted** at rates ``p`` (a fraction ``p`` of the clips
  gets a uniformly drawn *other* label; :func:`jaxaudio.data.corruption.corrupt_labels`),
  with cross-entropy and with noise-robust losses (GCE, bootstrapping, label smoothing from
  :mod:`jaxaudio.losses`),

for several seeds, and evaluated on the curated test split (accuracy, lwlrap, macro ROC-AUC;
mean ± sample std over seeds). "Curated only" *is* the ``p = 0`` cross-entropy run of the
corruption curve (same data, labels, seed and model), so it is trained once.

The **noise-equivalent corruption rate** of the noisy (or mixed) training set is the ``p`` at
which the corrupted-curated curve, linearly interpolated between the measured rates, first falls
to that training set's figure: "the noisy labels are worth as much as curated labels with
``p`` of them wrong". It is computed per seed (paired: same seed, same initialisation) and
summarised as mean ± std over the seeds where it exists; when the curve never falls that low
within the measured rates the study says so instead of extrapolating.

Outputs under ``--out``: ``runs/*.json`` (one per trained model: finished runs are reused on a
rerun), ``results.json``, ``figures/label_noise_curves.png`` and ``report.html``.
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import html
import json
import math
import pathlib
import platform
import time
from typing import Optional, Sequence

import numpy as np

NAME = "label_noise"

#: Noise-robust losses by short name: (loss name in jaxaudio.losses, kwargs, label).
ROBUST_LOSSES: dict[str, tuple[str, tuple, str]] = {
    "gce": ("gce", (("q", 0.7),), "GCE (q = 0.7)"),
    "bootstrap": ("bootstrap", (("beta", 0.8),), "soft bootstrap (β = 0.8)"),
    "smoothing": ("label_smoothing", (("smoothing", 0.1),), "label smoothing (0.1)"),
}
_CE = ("cross_entropy", ())
METRICS = ("accuracy", "lwlrap", "roc_auc")
CONDITIONS = ("curated", "noisy", "curated+noisy")


@dataclasses.dataclass(frozen=True)
class NoisePreset:
    """Sizes of one preset of the study (only sizes change between presets, never the method).

    Attributes:
      num_curated, num_noisy, num_test: synthetic clips per split (with ``--data``: at most this
        many clips of the real split, in CSV order; ``None`` = all).
      min_seconds, max_seconds: synthetic clip durations (s).
      epochs, batch_size, learning_rate: training (Adam).
      width: network width (channels of the first conv; 64 in the paper).
      excerpt_frames: frames per training / evaluation excerpt (116 frames = 3.7 s at 16 kHz,
        hop 512).
      rates: corruption rates p of the curve (must start at 0: the curated-only run).
      seeds: default number of seeds.
      robust: short names (keys of ``ROBUST_LOSSES``) of the noise-robust losses run on the curve.
      stats_excerpts: excerpts used for the per-band normalisation statistics.
    """

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

#: Training mode used by the study: the fastest of ``jaxaudio.train_many.TRAIN_MODES`` measured
#: with ``benchmarks/label_noise_vmap.py`` on the 2-core development CPU
#: (``benchmarks/results/label_noise_vmap*.json``): at demo sizes (10 models, width 8, 58 frames)
#: ms per model-step vmap 97, shared 43, sequential 51; at paper sizes (width 64, 116 frames)
#: vmap 11970, shared 2457, sequential 2277 (shared = sequential within the machine's noise).
#: XLA:CPU turns vmapped convolutions into grouped convolutions, which are much slower.
DEFAULT_TRAIN_MODE = "shared"

#: PRNG of initialisation and dropout. XLA's RngBitGenerator compiles 5-10x faster than
#: threefry on CPU (0.5 s vs 3-5 s per random op shape measured here); runs stay deterministic
#: for a seed on a given backend.
PRNG_IMPL = "rbg"


# ----------------------------------------------------------------------------------------------
# Building blocks
# ----------------------------------------------------------------------------------------------
def new_classifier(*, width: int, excerpt_frames: int, seed: int, label_names):
    """A fresh average-pool CNN instrument classifier (16 kHz instrument front-end).

    Like :func:`jaxaudio.models.classifier.init_classifier`, but the initialisation is one
    jitted call cached per shape and uses :data:`PRNG_IMPL` keys (compiling threefry random
    numbers for every parameter shape costs about half a minute on a busy 2-core CPU).
    """
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


def noise_equivalent_p(rates: Sequence[float], curve: Sequence[float],
                       reference: float) -> tuple[Optional[float], str]:
    """Where a metric-vs-corruption curve first falls to ``reference``.

    Parameters
    ----------
    rates : sequence of float [shape=(R,)], strictly increasing, in [0, 1]
        Corruption rates p at which the curve was measured.
    curve : sequence of float [shape=(R,)]
        The metric (higher is better) at each rate.
    reference : float
        The figure of the training set being priced (e.g. noisy-only accuracy).

    Returns
    -------
    p : float or None
        The first p (linear interpolation between measured rates) with ``curve(p) <=
        reference``; ``rates[0]`` if the curve already starts at or below it; ``None`` if it
        never falls that low within ``[rates[0], rates[-1]]`` (no extrapolation).
    status : str
        ``"crossed"``, ``"at_or_above_clean"`` (the reference is at least as good as the
        uncorrupted run) or ``"never_below"`` (worse than even the most corrupted run).
    """
    rates = np.asarray(rates, np.float64)
    curve = np.asarray(curve, np.float64)
    if rates.ndim != 1 or rates.shape != curve.shape or rates.size < 1:
        raise ValueError(f"rates and curve must be 1-D of the same length >= 1, got "
                         f"{rates.shape} and {curve.shape}")
    if np.any(np.diff(rates) <= 0):
        raise ValueError(f"rates must be strictly increasing, got {rates.tolist()}")
    if not (np.all(np.isfinite(curve)) and math.isfinite(reference)):
        raise ValueError("curve and reference must be finite")
    if curve[0] <= reference:
        return float(rates[0]), "at_or_above_clean"
    for i in range(rates.size - 1):
        if curve[i + 1] <= reference:
            # curve[i] > reference >= curve[i + 1]: interpolate on this segment.
            frac = (curve[i] - reference) / (curve[i] - curve[i + 1])
            return float(rates[i] + frac * (rates[i + 1] - rates[i])), "crossed"
    return None, "never_below"


def summarize_noise_equivalent(rates, curves: np.ndarray, references: np.ndarray) -> dict:
    """Per-seed noise-equivalent p and its summary.

    Parameters
    ----------
    rates : [shape=(R,)] corruption rates.
    curves : [shape=(S, R)] the metric of seed ``s`` at each rate.
    references : [shape=(S,)] the priced training set's metric for each seed.

    Returns
    -------
    dict with ``per_seed`` (float or None), ``status`` per seed, ``mean``/``std`` (sample std,
    over the seeds where p exists; None if none or, for std, fewer than two), ``defined``
    (count), ``seeds``, ``from_mean_curve`` (p where the seed-mean curve meets the seed-mean
    reference) and a human-readable ``note``.
    """
    curves = np.asarray(curves, np.float64)
    references = np.asarray(references, np.float64)
    per_seed, status = [], []
    for curve, ref in zip(curves, references):
        p, s = noise_equivalent_p(rates, curve, float(ref))
        per_seed.append(p)
        status.append(s)
    defined = [p for p in per_seed if p is not None]
    mean = float(np.mean(defined)) if defined else None
    std = float(np.std(defined, ddof=1)) if len(defined) > 1 else None
    p_mean, s_mean = noise_equivalent_p(rates, curves.mean(0), float(references.mean()))
    never = status.count("never_below")
    above = status.count("at_or_above_clean")
    if not defined:
        note = (f"the corruption curve never falls to this figure up to p = {rates[-1]:g} in "
                f"any of {len(status)} seeds: these labels are worth less than curated labels "
                f"with {rates[-1]:.0%} of them wrong")
    else:
        note = f"p = {mean:.3f}" + (f" ± {std:.3f}" if std is not None else "") + \
            f" over {len(defined)} of {len(status)} seeds"
        if never:
            note += (f"; in {never} seed(s) the curve never falls this low up to "
                     f"p = {rates[-1]:g} (left out of the mean)")
        if above:
            note += (f"; in {above} seed(s) this set is at least as good as clean curated "
                     f"labels (counted as p = {rates[0]:g})")
    return {"per_seed": per_seed, "status": status, "mean": mean, "std": std,
            "defined": len(defined), "seeds": len(status), "from_mean_curve": p_mean,
            "from_mean_curve_status": s_mean, "note": note}


def _mean_std(values) -> tuple[float, float]:
    values = np.asarray(values, np.float64)
    std = float(np.std(values, ddof=1)) if values.size > 1 else 0.0
    return float(np.mean(values)), std


# ----------------------------------------------------------------------------------------------
# Data
# ----------------------------------------------------------------------------------------------
def load_data(preset: NoisePreset, *, preset_name: str, data: Optional[str], seed: int = 0,
              progress: bool = True) -> dict:
    """The curated, noisy and test splits as :class:`~jaxaudio.data.types.ClipDataset`.

    Synthetic (default): :func:`~jaxaudio.data.synth_instruments.make_synth_instruments`
    splits ``curated`` / ``noisy`` (shifted synthesis + its default 30 % label noise) /
    ``test``; the data seed is fixed by ``seed`` (the training seeds vary the models only).
    With ``data`` (FSDKaggle2019 root): the clips carrying exactly one of the 12 musical labels
    in the curated, noisy and test sets (``jaxaudio.data.fsdkaggle.load_fsdkaggle2019``),
    capped at the preset's sizes (CSV order) except for ``paper``.
    """
    if data is None:
        from jaxaudio.data.synth_instruments import make_synth_instruments

        sizes = {"curated": preset.num_curated, "noisy": preset.num_noisy,
                 "test": preset.num_test}
        out = {}
        for split, n in sizes.items():
            n = PAPER_SYNTH_SIZES[split] if n is None else n
            out[split] = make_synth_instruments(split=split, num_clips=n, seed=seed,
                                                min_seconds=preset.min_seconds,
                                                max_seconds=preset.max_seconds)
        return out
    from jaxaudio.data.fsdkaggle import load_fsdkaggle2019

    root = pathlib.Path(data)
    if not root.is_dir():
        raise ValueError(f"--data must be the FSDKaggle2019 root folder, got {data!r}")
    caps = {"curated": preset.num_curated, "noisy": preset.num_noisy, "test": preset.num_test}
    return {split: load_fsdkaggle2019(root, split=split, single_label=True, max_clips=cap,
                                      progress=progress)
            for split, cap in caps.items()}


# ----------------------------------------------------------------------------------------------
# Runs
# ----------------------------------------------------------------------------------------------
def _run_name(condition: str, loss: str, p: Optional[float], seed: int) -> str:
    tag = condition.replace("+", "_plus_")
    if p is not None:
        tag += f"_p{p:.2f}"
    return f"{tag}_{loss}_seed{seed}"


@dataclasses.dataclass
class _Job:
    """Models trained on the same clips with the same seed (one train_many call)."""

    training_set: str              # "curated", "noisy", "curated+noisy"
    seed: int
    names: list                    # run names
    targets: list                  # per model (N, C)
    losses: list                   # per model (name, kwargs)
    meta: list                     # per model dict written to the run file


def _plan(preset: NoisePreset, seeds: Sequence[int], splits: dict) -> list:
    """All trainings of the study, grouped by (training set, seed)."""
    from jaxaudio.data.corruption import corrupt_labels

    curated, noisy = splits["curated"], splits["noisy"]
    num_classes = curated.num_classes
    losses = [("ce", _CE)] + [(short, ROBUST_LOSSES[short][:2]) for short in preset.robust]
    jobs = []
    for seed in seeds:
        job = _Job("curated", seed, [], [], [], [])
        for short, loss in losses:
            for p in preset.rates:
                # One corruption per (seed, p), shared by all losses: the robust curve prices
                # the loss, not a different draw of wrong labels.
                corruption_seed = int(np.random.default_rng(
                    [seed, int(round(p * 1000)), 2020]).integers(2 ** 31))
                labels, changed = corrupt_labels(curated.labels, rate=p,
                                                 num_classes=num_classes,
                                                 seed=corruption_seed)
                job.names.append(_run_name("corrupted", short, p, seed))
                job.targets.append(np.eye(num_classes, dtype=np.float32)[labels])
                job.losses.append(loss)
                job.meta.append({"condition": "corrupted", "loss": short, "p": p,
                                 "seed": seed, "changed": int(changed.sum()),
                                 "num_train": len(curated)})
        jobs.append(job)
        jobs.append(_Job("noisy", seed, [_run_name("noisy", "ce", None, seed)],
                         [noisy.targets], [_CE],
                         [{"condition": "noisy", "loss": "ce", "p": None, "seed": seed,
                           "num_train": len(noisy)}]))
        jobs.append(_Job("curated+noisy", seed, [_run_name("curated+noisy", "ce", None, seed)],
                         [np.concatenate([curated.targets, noisy.targets])], [_CE],
                         [{"condition": "curated+noisy", "loss": "ce", "p": None, "seed": seed,
                           "num_train": len(curated) + len(noisy)}]))
    return jobs


def _train_job(job: _Job, todo: list, preset: NoisePreset, splits: dict, *, mode: str,
               progress: bool) -> list:
    """Train the models ``todo`` (indices into ``job``) together; returns their run records."""
    from jaxaudio.train import TrainConfig
    from jaxaudio.train_many import evaluate_many, train_many

    if job.training_set == "curated":
        waves = list(splits["curated"].waves)
    elif job.training_set == "noisy":
        waves = list(splits["noisy"].waves)
    else:
        waves = list(splits["curated"].waves) + list(splits["noisy"].waves)
    clf = new_classifier(width=preset.width, excerpt_frames=preset.excerpt_frames,
                         seed=job.seed, label_names=splits["curated"].label_names)
    config = TrainConfig(epochs=preset.epochs, batch_size=preset.batch_size,
                         learning_rate=preset.learning_rate, seed=job.seed,
                         stats_excerpts=preset.stats_excerpts)
    targets = np.stack([job.targets[i] for i in todo])
    loss_set = [_CE] + [ROBUST_LOSSES[short][:2] for short in preset.robust]
    result = train_many(clf, waves, targets, config, losses=[job.losses[i] for i in todo],
                        mode=mode, loss_set=loss_set, prng_impl=PRNG_IMPL, progress=progress,
                        desc=f"{job.training_set} seed {job.seed} ({len(todo)} models)")
    t0 = time.perf_counter()
    scores = evaluate_many(result.classifiers[0], result.variables, splits["test"])
    eval_seconds = time.perf_counter() - t0
    records = []
    for k, i in enumerate(todo):
        rec = dict(job.meta[i])
        rec.update(scores[k])
        rec.update({
            "name": job.names[i], "training_set": job.training_set,
            "loss_function": list(job.losses[i][:1]) + [dict(job.losses[i][1])],
            "train_loss": result.losses[k].tolist(), "steps": result.steps,
            "train_seconds_shared": result.seconds, "eval_seconds_shared": eval_seconds,
            "models_trained_together": len(todo), "train_mode": mode,
        })
        records.append(rec)
    return records


def _config_fingerprint(preset: NoisePreset, data: Optional[str], data_seed: int) -> dict:
    """What a run file depends on (not the number of seeds or the robust losses: each run file
    is one seed and loss, so adding seeds or losses reuses the others)."""
    sizes = dataclasses.asdict(preset)
    for key in ("seeds", "robust"):
        sizes.pop(key)
    return {"preset": sizes, "data": str(data) if data else "synthetic",
            "data_seed": data_seed}


# ----------------------------------------------------------------------------------------------
# Aggregation, figure, report
# ----------------------------------------------------------------------------------------------
def _aggregate(records: dict, preset: NoisePreset, seeds: Sequence[int]) -> dict:
    def rec(condition, loss, p, seed):
        cond = "corrupted" if condition == "corrupted" else condition
        return records[_run_name(cond, loss, p, seed)]

    out: dict = {}
    curves = {}
    for short in ["ce"] + list(preset.robust):
        curve = {"p": list(preset.rates), "loss": short}
        per_seed = {m: np.array([[rec("corrupted", short, p, s)[m] for p in preset.rates]
                                 for s in seeds]) for m in METRICS}
        for m in METRICS:
            curve[f"{m}_mean"] = per_seed[m].mean(0).tolist()
            curve[f"{m}_std"] = ([float(x) for x in per_seed[m].std(0, ddof=1)]
                                 if len(seeds) > 1 else [0.0] * len(preset.rates))
            curve[f"{m}_per_seed"] = per_seed[m].tolist()
        curve["labels_changed"] = [rec("corrupted", short, p, seeds[0])["changed"]
                                   for p in preset.rates]
        curves[short] = curve
    out["corruption"] = curves["ce"]
    out["corruption"]["loss_label"] = "cross-entropy"
    out["robust"] = {short: dict(curves[short], loss_label=ROBUST_LOSSES[short][2],
                                 loss_function=ROBUST_LOSSES[short][0],
                                 loss_kwargs=dict(ROBUST_LOSSES[short][1]))
                     for short in preset.robust}
    per_condition = {}
    for condition in CONDITIONS:
        if condition == "curated":
            rows = [rec("corrupted", "ce", 0.0, s) for s in seeds]
        else:
            rows = [rec(condition, "ce", None, s) for s in seeds]
        entry = {"num_train": rows[0]["num_train"]}
        for m in METRICS:
            values = [r[m] for r in rows]
            entry[f"{m}_mean"], entry[f"{m}_std"] = _mean_std(values)
            entry[f"{m}_per_seed"] = values
        if condition == "curated":
            entry["note"] = "the p = 0 cross-entropy runs of the corruption curve"
        per_condition[condition] = entry
        out[condition] = entry
    detail = {}
    for m in METRICS:
        curve = np.array(curves["ce"][f"{m}_per_seed"])
        detail[m] = {c: summarize_noise_equivalent(preset.rates, curve,
                                                   np.array(per_condition[c][f"{m}_per_seed"]))
                     for c in ("noisy", "curated+noisy")}
    out["noise_equivalent_p"] = {c: detail["accuracy"][c]["mean"]
                                 for c in ("noisy", "curated+noisy")}
    out["noise_equivalent_p_std"] = {c: detail["accuracy"][c]["std"]
                                     for c in ("noisy", "curated+noisy")}
    out["noise_equivalent_p_detail"] = detail
    # How much of the accuracy lost to corruption the robust loss recovers, per p.
    ce_acc = np.array(curves["ce"]["accuracy_mean"])
    out["robust_gain_accuracy"] = {
        short: (np.array(curves[short]["accuracy_mean"]) - ce_acc).tolist()
        for short in preset.robust}
    return out


def _plot(results: dict, path: pathlib.Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    path.parent.mkdir(parents=True, exist_ok=True)
    titles = {"accuracy": "accuracy", "lwlrap": "lwlrap", "roc_auc": "macro ROC-AUC"}
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.4))
    colors = {"noisy": "tab:red", "curated+noisy": "tab:purple"}
    robust_colors = ["tab:green", "tab:orange", "tab:brown"]
    for ax, m in zip(axes, METRICS):
        cur = results["corruption"]
        p = np.array(cur["p"])
        mean, std = np.array(cur[f"{m}_mean"]), np.array(cur[f"{m}_std"])
        ax.plot(p, mean, "o-", color="tab:blue", label="curated, corrupted at p (CE)")
        ax.fill_between(p, mean - std, mean + std, color="tab:blue", alpha=0.2)
        for color, (short, rob) in zip(robust_colors, results["robust"].items()):
            rm, rs = np.array(rob[f"{m}_mean"]), np.array(rob[f"{m}_std"])
            ax.plot(p, rm, "s--", color=color, label=f"curated, corrupted at p ({rob['loss_label']})")
            ax.fill_between(p, rm - rs, rm + rs, color=color, alpha=0.15)
        for cond in ("noisy", "curated+noisy"):
            v, s = results[cond][f"{m}_mean"], results[cond][f"{m}_std"]
            ax.axhline(v, color=colors[cond], lw=1.5, label=f"{cond} (CE)")
            ax.axhspan(v - s, v + s, color=colors[cond], alpha=0.08)
            ne = results["noise_equivalent_p_detail"][m][cond]["mean"]
            if ne is not None:
                ax.axvline(ne, color=colors[cond], ls=":", lw=1)
        if m == "accuracy":
            ax.axhline(1.0 / 12, color="gray", ls=":", lw=1, label="chance (1/12)")
        elif m == "roc_auc":
            ax.axhline(0.5, color="gray", ls=":", lw=1, label="chance")
        ax.set_xlabel("corruption rate p of the curated labels")
        ax.set_ylabel(titles[m] + " on the curated test split")
        ax.set_title(f"{titles[m]} (mean ± std over {len(results['seeds'])} seeds)")
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=7, loc="lower left")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def _fmt(mean, std) -> str:
    return f"{mean:.3f} ± {std:.3f}"


def render_section(results: dict, out_dir: pathlib.Path) -> str:
    """The study's report section: tables, noise-equivalent p and the figure (HTML)."""
    esc = html.escape
    parts = [f"<h2>Label noise: curated vs noisy vs corrupted labels</h2>",
             f"<p>{esc(results.get('summary', ''))}</p>"]
    head = "".join(f"<th>{esc(m)}</th>" for m in METRICS)
    rows = ""
    for cond in CONDITIONS:
        r = results[cond]
        rows += (f"<tr><th>{esc(cond)} ({r['num_train']} clips)</th>"
                 + "".join(f"<td class=\"num\">{_fmt(r[m + '_mean'], r[m + '_std'])}</td>"
                           for m in METRICS) + "</tr>")
    parts.append(f"<table><tr><th>training set</th>{head}</tr>{rows}</table>")
    curves = [("cross-entropy", results["corruption"])] + [
        (rob["loss_label"], rob) for rob in results["robust"].values()]
    head = "".join(f"<th>{esc(m)} ({esc(label)})</th>" for label, _ in curves for m in METRICS)
    rows = ""
    for i, p in enumerate(results["corruption"]["p"]):
        rows += f"<tr><th>{p:.2f}</th>" + "".join(
            f"<td class=\"num\">{_fmt(c[m + '_mean'][i], c[m + '_std'][i])}</td>"
            for _, c in curves for m in METRICS) + "</tr>"
    parts.append(f"<table><tr><th>p</th>{head}</tr>{rows}</table>")
    items = ""
    for m in METRICS:
        for cond in ("noisy", "curated+noisy"):
            d = results["noise_equivalent_p_detail"][m][cond]
            items += f"<li><b>{esc(cond)}</b>, {esc(m)}: {esc(d['note'])}</li>"
    parts.append(f"<p>Noise-equivalent corruption rate (per seed, linear interpolation of the "
                 f"corruption curve):</p><ul>{items}</ul>")
    fig = out_dir / "figures" / "label_noise_curves.png"
    if fig.is_file():
        parts.append('<figure><img src="figures/label_noise_curves.png" style="max-width:60em">'
                     "<figcaption>Test metric vs corruption rate p of the curated labels "
                     "(bands: ± std over seeds); horizontal lines: trained on noisy only and on "
                     "curated + noisy; dotted verticals: noise-equivalent p.</figcaption>"
                     "</figure>")
    return "\n".join(parts)


def _summary(results: dict) -> str:
    acc = results["corruption"]["accuracy_mean"]
    ne = results["noise_equivalent_p_detail"]["accuracy"]
    return (f"Test accuracy falls from {acc[0]:.3f} (clean curated labels) to {acc[-1]:.3f} at "
            f"p = {results['corruption']['p'][-1]:g}; noisy only: "
            f"{_fmt(results['noisy']['accuracy_mean'], results['noisy']['accuracy_std'])}, "
            f"curated + noisy: {_fmt(results['curated+noisy']['accuracy_mean'], results['curated+noisy']['accuracy_std'])}. "
            f"Noise-equivalent p (accuracy): noisy {ne['noisy']['note']}; curated + noisy "
            f"{ne['curated+noisy']['note']}.")


# ----------------------------------------------------------------------------------------------
# The study
# ----------------------------------------------------------------------------------------------
def run(*, out, preset: str = "demo", seed: int = 0, data: Optional[str] = None, model=None,
        progress: bool = True, seeds: Optional[int] = None, robust: Optional[Sequence[str]] = None,
        train_mode: str = DEFAULT_TRAIN_MODE, epochs: Optional[int] = None) -> dict:
    """Run the label-noise study; write ``results.json``, the figure and ``report.html``.

    Parameters
    ----------
    out : path-like
        Output folder (created). Finished runs in ``out/runs/`` are reused.
    preset : {"smoke", "demo", "paper"}
    seed : int
        First training seed (seeds ``seed, seed + 1, …``) and the synthetic data seed.
    data : str, optional
        FSDKaggle2019 root folder; default: the embedded synthetic instruments.
    model : ignored
        This study trains its own classifiers.
    progress : bool
        Progress bars (over runs, and over steps inside a training).
    seeds : int >= 1, optional
        Number of seeds (default: the preset's).
    robust : sequence of str, optional
        Noise-robust losses (keys of ``ROBUST_LOSSES``); default: the preset's.
    train_mode : {"vmap", "shared", "sequential"}
        How models of one training set and seed are trained (``jaxaudio.train_many``).
    epochs : int >= 1, optional
        Override the preset's epochs.

    Returns
    -------
    dict
        The content of ``results.json``.
    """
    del model
    from tqdm.auto import tqdm

    from jaxaudio import report
    from jaxaudio.train_many import TRAIN_MODES

    if preset not in PRESETS:
        raise ValueError(f"unknown preset {preset!r}; choose one of {sorted(PRESETS)}")
    p = PRESETS[preset]
    if seeds is not None:
        if int(seeds) != seeds or seeds < 1:
            raise ValueError(f"seeds must be an integer >= 1, got {seeds}")
        p = dataclasses.replace(p, seeds=int(seeds))
    if robust is not None:
        robust = tuple(robust)
        unknown = [r for r in robust if r not in ROBUST_LOSSES]
        if unknown:
            raise ValueError(f"unknown robust loss(es) {unknown}; choose from "
                             f"{sorted(ROBUST_LOSSES)}")
        p = dataclasses.replace(p, robust=robust)
    if epochs is not None:
        if int(epochs) != epochs or epochs < 1:
            raise ValueError(f"epochs must be an integer >= 1, got {epochs}")
        p = dataclasses.replace(p, epochs=int(epochs))
    if train_mode not in TRAIN_MODES:
        raise ValueError(f"train_mode must be one of {TRAIN_MODES}, got {train_mode!r}")
    if not p.rates or p.rates[0] != 0.0:
        raise ValueError("the corruption rates must start at 0 (the curated-only run)")

    t_start = time.perf_counter()
    out = pathlib.Path(out)
    runs_dir = out / "runs"
    runs_dir.mkdir(parents=True, exist_ok=True)
    fingerprint = _config_fingerprint(p, data, seed)
    fp_path = out / "config.json"
    if fp_path.is_file() and any(runs_dir.glob("*.json")):
        old = json.loads(fp_path.read_text())
        if old != json.loads(json.dumps(fingerprint)):
            raise ValueError(f"{out} holds runs of another configuration ({fp_path}); use a "
                             "new --out folder or delete it")
    fp_path.write_text(json.dumps(fingerprint, indent=2))

    t0 = time.perf_counter()
    splits = load_data(p, preset_name=preset, data=data, seed=seed, progress=progress)
    data_seconds = time.perf_counter() - t0
    seed_list = [seed + i for i in range(p.seeds)]
    jobs = _plan(p, seed_list, splits)
    total = sum(len(j.names) for j in jobs)
    records, reused = {}, 0
    bar = tqdm(total=total, desc="label-noise runs", unit="run", disable=not progress)
    for job in jobs:
        todo = []
        for i, name in enumerate(job.names):
            path = runs_dir / f"{name}.json"
            if path.is_file():
                try:
                    records[name] = json.loads(path.read_text())
                    reused += 1
                    bar.update(1)
                    continue
                except json.JSONDecodeError:
                    pass  # a torn write: train again
            todo.append(i)
        if not todo:
            continue
        for rec in _train_job(job, todo, p, splits, mode=train_mode, progress=progress):
            path = runs_dir / f"{rec['name']}.json"
            tmp = path.with_suffix(".tmp")
            tmp.write_text(json.dumps(rec, indent=1))
            tmp.replace(path)  # atomic: a killed run never leaves half a file
            records[rec["name"]] = rec
            bar.update(1)
    bar.close()

    results = {"study": NAME, "title": "Study 2: label noise in the instrument tagger",
               "preset": preset, "data": fingerprint["data"], "seeds": seed_list,
               "rates": list(p.rates), "robust_losses": list(p.robust),
               "epochs": p.epochs, "width": p.width, "excerpt_frames": p.excerpt_frames,
               "num_clips": {k: len(v) for k, v in splits.items()}}
    results.update(_aggregate(records, p, seed_list))
    train_seconds = {}
    for rec in records.values():  # each job's shared time counted once
        train_seconds[(rec["training_set"], rec["seed"], rec["train_mode"],
                       rec["train_seconds_shared"])] = (rec["train_seconds_shared"]
                                                        + rec["eval_seconds_shared"])
    results["timing"] = {
        "runs": total, "runs_reused": reused, "train_mode": train_mode,
        "data_seconds": data_seconds,
        "train_and_eval_seconds_of_all_runs": float(sum(train_seconds.values())),
        "wall_seconds_this_call": time.perf_counter() - t_start,
        "machine": f"{platform.processor() or platform.machine()}, "
                   f"{__import__('os').cpu_count()} logical CPUs",
    }
    results["summary"] = _summary(results)
    _plot(results, out / "figures" / "label_noise_curves.png")
    (out / "results.json").write_text(json.dumps(results, indent=2))
    report.register_section(NAME, render_section)
    report.write_report(out)
    return results


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Command-line options of ``jaxaudio noise`` / ``experiments/label_noise.py``."""
    from jaxaudio.train_many import TRAIN_MODES

    parser.add_argument("--preset", choices=tuple(PRESETS), default="demo",
                        help="sizes (default: demo)")
    parser.add_argument("--data", default=None, metavar="FSD_ROOT",
                        help="FSDKaggle2019 root folder (default: embedded synthetic data)")
    parser.add_argument("--out", required=True, help="output folder (runs are reused)")
    parser.add_argument("--seed", type=int, default=0, help="first seed (default 0)")
    parser.add_argument("--seeds", type=int, default=None,
                        help="number of seeds (default: the preset's)")
    parser.add_argument("--robust", nargs="*", default=None, choices=tuple(ROBUST_LOSSES),
                        help="noise-robust losses run on the corruption curve")
    parser.add_argument("--epochs", type=int, default=None, help="override the preset's epochs")
    parser.add_argument("--train-mode", choices=TRAIN_MODES, default=DEFAULT_TRAIN_MODE,
                        help=f"how the models of one training set are trained "
                             f"(default {DEFAULT_TRAIN_MODE}, the fastest measured on CPU)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")


def run_from_args(args) -> int:
    """:func:`run` from parsed arguments; prints where the report is."""
    run(out=args.out, preset=args.preset, seed=args.seed, data=args.data,
        progress=not getattr(args, "no_progress", False), seeds=getattr(args, "seeds", None),
        robust=getattr(args, "robust", None),
        train_mode=getattr(args, "train_mode", DEFAULT_TRAIN_MODE),
        epochs=getattr(args, "epochs", None))
    print(f"report: {pathlib.Path(args.out) / 'report.html'}")
    return 0
