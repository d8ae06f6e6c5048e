"""Report page of study 2 (label noise): drawn from ``results.json`` and ``arrays/curves.npz``.

Headline table (curated vs noisy vs curated + noisy next to the published context figures,
noise-equivalent p), warnings on degenerate numbers, the metric-vs-corruption figure, the
per-rate table. Reads files only; imports numpy, matplotlib and :mod:`jaxaudio.report.page`.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from jaxaudio.report import page

METRICS = ("accuracy", "lwlrap", "roc_auc")
_TITLES = {"accuracy": "accuracy", "lwlrap": "lwlrap", "roc_auc": "macro ROC-AUC"}
_CHANCE = {"accuracy": None, "roc_auc": 0.5}
_COLORS = {"noisy": "tab:red", "curated+noisy": "tab:purple"}
_ROBUST_COLORS = ("tab:green", "tab:orange", "tab:brown")

_CAPTION = (
    "Test metric on the curated test split vs the corruption rate p of the curated training "
    "labels (solid blue: cross-entropy; dashed: noise-robust losses; bands: ± sample std over "
    "seeds). Horizontal lines: the models trained on the noisy clips only and on curated + "
    "noisy (bands ± std). Read where the blue curve falls to a horizontal line: that p (dotted "
    "vertical, the noise-equivalent p) says the noisy labels are worth as much as curated "
    "labels with that fraction wrong. A robust loss helps where its dashed curve lies above the "
    "blue one; a curve that starts at chance means the preset trains too little to say anything.")


def _mean_std(a: np.ndarray):
    a = np.asarray(a, np.float64)
    std = a.std(0, ddof=1) if a.shape[0] > 1 else np.zeros(a.shape[1:])
    return a.mean(0), std


def _draw(out_dir: Path, results: dict, arrays: dict) -> Path:
    fig, axes = page.new_figure(15, 4.6, nrows=1, ncols=3)
    p = arrays["p"]
    num_classes = len(results.get("label_names", [])) or 12
    for ax, m in zip(axes, METRICS):
        mean, std = _mean_std(arrays[f"curated_ce_{m}"])
        ax.plot(p, mean, "o-", color="tab:blue", label="curated, corrupted at p (CE)")
        ax.fill_between(p, mean - std, mean + std, color="tab:blue", alpha=0.2)
        for color, short in zip(_ROBUST_COLORS, results["robust_losses"]):
            rm, rs = _mean_std(arrays[f"curated_{short}_{m}"])
            label = results["robust"][short]["loss_label"]
            ax.plot(p, rm, "s--", color=color, label=f"curated, corrupted at p ({label})")
            ax.fill_between(p, rm - rs, rm + rs, color=color, alpha=0.15)
        for cond, color in _COLORS.items():
            v, s = _mean_std(arrays[f"{cond}_{m}"])
            ax.axhline(v, color=color, lw=1.5, label=f"{cond} (CE)")
            ax.axhspan(v - s, v + s, color=color, alpha=0.08)
            ne = float(arrays[f"noise_equivalent_{cond}_{m}"])
            if np.isfinite(ne):
                ax.axvline(ne, color=color, ls=":", lw=1)
        chance = 1.0 / num_classes if m == "accuracy" else _CHANCE.get(m)
        if chance is not None:
            ax.axhline(chance, color="gray", ls=":", lw=1, label="chance")
        ax.set_xlabel("corruption rate p of the curated labels")
        ax.set_ylabel(f"{_TITLES[m]} on the curated test split")
        ax.set_title(f"{_TITLES[m]} (mean ± std over {len(arrays['seeds'])} seeds)")
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=7, loc="lower left")
    return page.save_figure(fig, out_dir / "figures" / "label_noise_curves.png")


def _headline(results: dict) -> str:
    rows = []
    for cond in ("curated", "noisy", "curated+noisy"):
        r = results[cond]
        ne = results["noise_equivalent_p_detail"]["accuracy"].get(cond, {})
        ne_text = "–" if cond == "curated" else page.fmt(ne.get("mean"), 2, std=ne.get("std"))
        rows.append([f"{cond} ({r['num_train']} clips)"]
                    + [page.fmt(r[f"{m}_mean"], std=r[f"{m}_std"]) for m in METRICS] + [ne_text])
    pub = results.get("published", {})
    published = [[f"published: DCASE 2019 task 2 {what} (80 labels)", "–",
                  page.fmt(pub[key]), "–", "–"]
                 for what, key in (("baseline", "dcase2019_task2_baseline_lwlrap"),
                                   ("best system", "dcase2019_task2_best_lwlrap")) if key in pub]
    header = ["training set", "accuracy", "lwlrap", "macro ROC-AUC",
              "noise-equivalent p (accuracy)"]
    text = page.table(header, rows, published=published)
    dev = results.get("preset_deviations_from_paper") or []
    if dev:
        text += (f'<p class="note">Preset <b>{page.esc(results["preset"])}</b> deviates from the '
                 f'paper protocol: {page.esc("; ".join(dev))}.</p>')
    return text


def _warnings(results: dict) -> list:
    out = []
    chance = 1.0 / max(len(results.get("label_names", [])) or 12, 1)
    acc = results["curated"]["accuracy_mean"]
    if acc < 1.5 * chance:
        out.append(f"curated-only accuracy {acc:.3f} is near chance ({chance:.3f}): the models "
                   "learned (almost) nothing, so the curves and noise-equivalent p say nothing "
                   "about label noise (train longer: --epochs, or the demo preset)")
    cur = results["corruption"]
    spread = max(cur["accuracy_std"]) if cur["accuracy_std"] else 0.0
    drop = cur["accuracy_mean"][0] - min(cur["accuracy_mean"])
    if len(results["seeds"]) > 1 and spread >= drop:
        out.append(f"the std over seeds ({spread:.3f}) is as large as the accuracy lost to "
                   f"corruption ({drop:.3f}): differences along the curve are within the noise")
    if len(results["seeds"]) < 2:
        out.append("one seed only: no spread over seeds (std shown as 0)")
    for cond in ("noisy", "curated+noisy"):
        d = results["noise_equivalent_p_detail"]["accuracy"][cond]
        if d["mean"] is None or "at_or_above_clean" in d["status"]:
            out.append(f"noise-equivalent p of {cond}: {d['note']}")
    return out


def _curve_table(results: dict) -> str:
    curves = [("CE", results["corruption"])] + [
        (r["loss_label"], r) for r in results["robust"].values()]
    header = ["p", "labels changed"] + [f"{m} ({label})" for label, _ in curves for m in METRICS]
    rows = [[f"{p:.2f}", results["corruption"]["labels_changed"][i]]
            + [page.fmt(c[f"{m}_mean"][i], std=c[f"{m}_std"][i]) for _, c in curves
               for m in METRICS]
            for i, p in enumerate(results["corruption"]["p"])]
    return page.table(header, rows)


_ISSUES_NOTE = (
    "cleanlab's confident learning (prune by noise rate) on out-of-sample probabilities from "
    "{folds}-fold training of the study's own network (first seed). Precision: share of the "
    "flagged clips whose label really is wrong; recall: share of the wrong labels flagged; "
    "ROC-AUC: of cleanlab's label quality score against the known masks (0.5 = chance).")


def _fmt_opt(value, digits: int = 3) -> str:
    return "–" if value is None else page.fmt(value, digits)


def label_issues_section(results: dict) -> str:
    """Finding the wrong labels: detection per corruption rate and per noise kind, the share
    flagged on the noisy split, and the test metrics after retraining on the cleaned data."""
    li = results.get("label_issues")
    if not li:
        return ""
    det = ["precision", "recall", "roc_auc"]
    rows = [[f"{p:.2f}", d["num_wrong"], d["num_flagged"]] + [_fmt_opt(d[m]) for m in det]
            for p, d in zip(li["rates"], li["curated_corrupted"])]
    parts = ["<section><h2>Finding the wrong labels</h2>",
             f'<p>{page.esc(_ISSUES_NOTE.format(folds=li["folds"]))}</p>',
             "<h3>Curated clips corrupted at known rates</h3>",
             page.table(["p", "wrong labels", "flagged", "precision", "recall", "ROC-AUC"], rows)]
    share = li["noisy_share_flagged"]
    parts.append(f'<h3>The noisy split</h3><p>Share of the noisy clips flagged: single-label '
                 f'filter {share["single"]:.3f}, multi-label filter {share["multi"]:.3f}, '
                 f'either {share["either"]:.3f}.</p>')
    if "noisy_per_kind" in li:
        filters = ("single", "multi", "either")
        rows = [[kind, d["num_clips"]] + [_fmt_opt(d[f]) for f in filters]
                for kind, d in li["noisy_per_kind"].items()]
        rows += [[f"all noisy kinds vs clean: {m}", "–"]
                 + [_fmt_opt(li["noisy_vs_truth"][f][m]) for f in filters] for m in det]
        parts.append(page.table(["noise kind (truth)", "clips", "share flagged: single-label "
                                 "filter", "multi-label filter", "either"], rows))
    test, gap = li["retrained"], li["gap_recovered"]
    order = ["curated", "noisy"] + [k for k in test if k not in ("curated", "noisy")]
    rows = [[k, test[k].get("num_train", "–")] + [_fmt_opt(test[k][m]) for m in METRICS]
            + [_fmt_opt(gap["accuracy"].get(k), 2)] for k in order]
    parts += ["<h3>Retrained on the cleaned noisy split</h3>",
              f"<p>{li['num_dropped']} flagged clips (either filter) dropped or relabelled to "
              "their most probable class; gap recovered = (metric − noisy) / (curated − noisy) "
              "on the test split, one seed.</p>",
              page.table(["training set", "clips", "accuracy", "lwlrap", "macro ROC-AUC",
                          "accuracy gap recovered"], rows),
              "</section>"]
    return "\n".join(parts)


def render(out_dir, results: dict) -> str:
    """The page body: headline table, warnings, the figure with its caption, per-rate table."""
    out_dir = Path(out_dir)
    arrays = page.read_arrays(out_dir / "arrays" / "curves.npz")
    png = _draw(out_dir, results, arrays)
    notes = "".join(f"<li><b>{page.esc(c)}</b>, {page.esc(m)}: {page.esc(d['note'])}</li>"
                    for m in METRICS
                    for c, d in results["noise_equivalent_p_detail"][m].items())
    return "\n".join([
        f'<p class="lead">{page.esc(results.get("summary", ""))}</p>',
        "<section><h2>Curated vs noisy vs curated + noisy</h2>", _headline(results),
        page.warnings(_warnings(results)), "</section>",
        "<section><h2>The corruption curve</h2>",
        page.figures([page.figure(out_dir, png, _CAPTION, title="Metric vs corruption rate p",
                                  wide=True)]),
        f"<p>Noise-equivalent corruption rate (per seed, linear interpolation of the corruption "
        f"curve):</p><ul>{notes}</ul>",
        _curve_table(results), "</section>", label_issues_section(results)])
