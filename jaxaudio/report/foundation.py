"""The demo's foundation page: the two trained classifiers, from their ``metrics.json`` files.

Reads ``<foundation>/results.json`` (which names the classifiers) and each classifier's
``<foundation>/<name>/metrics.json`` (test metrics and the per-epoch training history written by
``jaxaudio train``); draws one training-loss curve per classifier.
"""

from __future__ import annotations

from pathlib import Path

from jaxaudio.report import page

#: Published figures (docs/studies.md §1 and §3).
PUBLISHED = {
    "instruments": "clean accuracy 0.835 (FSDKaggle2019, 12 labels, 200 validation clips)",
    "voice": "frame error 11.54 ± 0.96 % after the 0.8 s median filter (Jamendo-VAD test "
             "songs), i.e. accuracy 0.885",
}


def _pct(x) -> str:
    return "–" if x is None else f"{100 * x:.1f} %"


def voice_errors(metrics: dict) -> str:
    """The voice row's error cell: raw and median-filtered frame error, the linear baseline."""
    acc, acc_f = metrics.get("accuracy"), metrics.get("accuracy_median_filtered")
    err = metrics.get("error", None if acc is None else 1 - acc)
    err_f = metrics.get("error_median_filtered", None if acc_f is None else 1 - acc_f)
    out = (f"frame error {_pct(err)}, {_pct(err_f)} after the "
           f"{metrics.get('median_filter_seconds', 0.8):g} s median filter "
           f"(p(sing) > {metrics.get('threshold', 0.5):g})")
    lin = metrics.get("linear_baseline")
    if lin:
        out += (f"; linear baseline (one log-mel frame) {_pct(lin.get('error'))}, "
                f"{_pct(lin.get('error_median_filtered'))} filtered")
    return out


def _history_png(out_dir: Path, name: str, history: list) -> Path:
    fig, ax = page.new_figure(5.5, 3.2)
    ax.plot([h["epoch"] for h in history], [h["loss"] for h in history], marker="o")
    ax.set_xlabel("epoch")
    ax.set_ylabel("training loss")
    ax.set_title(f"{name}: training loss per epoch")
    ax.grid(alpha=0.3)
    ax.xaxis.get_major_locator().set_params(integer=True)
    return page.save_figure(fig, out_dir / "figures" / f"{name}_training.png", dpi=100)


def render(out_dir: Path, results: dict) -> str:
    """Headline table (measured next to published), warnings, training curves."""
    rows, warns, figs = [], [], []
    for name in results.get("classifiers", []):
        metrics = page.read_results(out_dir / name / "metrics.json")
        chance = 1.0 / metrics["num_classes"] if "num_classes" in metrics else None
        acc = metrics["accuracy"]
        extra = (f"lwlrap {page.fmt(metrics.get('lwlrap'))}, ROC-AUC "
                 f"{page.fmt(metrics.get('roc_auc'))}" if "lwlrap" in metrics else
                 voice_errors(metrics))
        rows.append([name, metrics.get("dataset", ""), page.fmt(acc), extra,
                     metrics.get("epochs", ""), page.fmt(metrics.get("seconds"), 0),
                     PUBLISHED.get(name, "")])
        if chance is not None and acc < 1.5 * chance:
            warns.append(f"{name}: test accuracy {acc:.3f} is near chance ({chance:.3f}); the "
                         "studies built on it measure an untrained model")
        if metrics.get("history"):
            figs.append(page.figure(
                out_dir, _history_png(out_dir, name, metrics["history"]),
                "The loss should fall and flatten; a curve still falling steeply at the last "
                "epoch means the preset trains too briefly for the figures to be final.",
                title=f"Training of the {name} classifier"))
    header = ["classifier", "data", "test accuracy", "other metrics", "epochs", "seconds",
              "published"]
    return ("<p class=\"lead\">The two classifiers every study attacks or explains, trained on "
            "the embedded synthetic data (instrument accuracy: clip level, mean logits over "
            "half-overlapping excerpts; voice: frames, sing when p(sing) > 0.51, error "
            "raw and after the 0.8 s median filter under which the published error is "
            "reported).</p>"
            + page.table(header, rows) + page.warnings(warns) + "<h2>Training</h2>"
            + page.figures(figs))
