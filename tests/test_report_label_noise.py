"""Report page of the label-noise study: drawn from files only, redrawn identically."""

import json
import subprocess
import sys

import numpy as np
import pytest

from jaxaudio import report
from jaxaudio.studies import label_noise as ln


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    """A finished smoke folder whose trainings are replaced by deterministic fake scores."""
    out = tmp_path_factory.mktemp("noise_report")
    mp = pytest.MonkeyPatch()

    def fake(stage_dir, *, condition, seed, epochs, rates=None, **_):
        k = len(rates) if condition == "curated" else 1
        rng = np.random.default_rng([seed, k, len(condition)])
        out = {m: np.sort(rng.uniform(0.1, 0.9, k))[::-1].copy()
               for m in ("accuracy", "lwlrap", "roc_auc")}
        return dict(out, train_loss=np.zeros((k, epochs)), steps=1, num_train=48,
                    train_seconds=0.0, eval_seconds=0.0)

    mp.setattr(ln, "_train", fake)
    try:
        results = ln.run(out=out, preset="smoke", progress=False)
    finally:
        mp.undo()
    return out, results


def test_page_has_headline_figure_and_published_rows(finished):
    out, results = finished
    html = (out / "report.html").read_text()
    assert (out / "figures" / "label_noise_curves.png").is_file()
    for text in ("Curated vs noisy vs curated + noisy", "DCASE 2019 task 2 baseline",
                 "noise-equivalent p", "label_noise_curves.png", "Read where the blue curve",
                 "All numbers (results.json)", "deviates from the paper protocol"):
        assert text in html, text
    # Headline table comes before the figure, raw numbers last.
    assert html.index("DCASE 2019") < html.index("label_noise_curves.png") \
        < html.index("All numbers")
    assert results["published"]["dcase2019_task2_baseline_lwlrap"] == 0.546


def test_redraw_is_identical(finished):
    out, _ = finished
    first = (out / "report.html").read_text()
    png = (out / "figures" / "label_noise_curves.png").read_bytes()
    report.write_report(out)
    assert (out / "report.html").read_text() == first
    assert (out / "figures" / "label_noise_curves.png").read_bytes() == png


def test_redraw_in_a_new_process_imports_no_study_code(finished):
    out, _ = finished
    before = (out / "report.html").read_text()
    code = ("import sys; from jaxaudio import report; report.write_report(sys.argv[1]); "
            "bad = [m for m in sys.modules if m.startswith('jaxaudio.studies') "
            "or m.startswith('jaxaudio.training.train')]; print(bad); assert not bad, bad")
    subprocess.run([sys.executable, "-c", code, str(out)], check=True)
    assert (out / "report.html").read_text() == before


def test_warnings_on_degenerate_numbers(finished, tmp_path):
    import shutil

    out, results = finished
    shutil.copytree(out / "arrays", tmp_path / "arrays")
    r = json.loads(json.dumps(results))
    r["curated"]["accuracy_mean"] = 0.08  # chance with 12 labels
    r["corruption"]["accuracy_std"] = [1.0] * len(r["rates"])
    (tmp_path / "results.json").write_text(json.dumps(r))
    html = report.write_report(tmp_path).read_text()
    assert "Read with care" in html and "near chance" in html
    assert "within the noise" in html
