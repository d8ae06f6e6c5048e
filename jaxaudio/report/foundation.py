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
    "voice": "frame error 11.5 % (Jamendo-VAD test songs), i.e. accuracy 0.885",
}


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
                 f"after the median filter {page.fmt(metrics.get('accuracy_median_filtered'))}")
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
            "half-overlapping excerpts; voice accuracy: frames at threshold 0.5).</p>"
            + page.table(header, rows) + page.warnings(warns) + "<h2>Training</h2>"
            + page.figures(figs))
