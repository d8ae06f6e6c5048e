"""The study-3 report page: drawn from files only, identical on redraw, warns on degenerate
numbers, imports no study code."""

import json
import subprocess
import sys

import numpy as np
import pytest

from jaxaudio import report

DIRS, DOMS = ("nosing_to_sing", "sing_to_nosing"), ("waveform", "spectrogram")
SELS = ("lime", "occlusion", "integrated_gradients", "norm")


LEVELS = (0.51, 0.6, 0.75, 0.9)


def _folder(out, *, audited=2, sweep=False):
    """A tiny finished study folder (results.json, arrays/*.npz) as the study writes it."""
    t1 = {d: {n: {**{s: 0.5 for s in SELS}, "num_examples": audited} for n in DIRS} for d in DOMS}
    t2 = {d: {n: {"lime": 0.5, "norm": 1.0, "lime_mean_components": 4.0, "occlusion": 0.5,
                  "norm_for_occlusion": 1.0, "integrated_gradients": 0.0,
                  "norm_for_integrated_gradients": 0.5, "num_examples": audited}
              for n in DIRS} for d in DOMS}
    pub = {"table1": {d: {n: 0.4 for n in DIRS} for d in DOMS},
           "table2": {d: {n: {"lime": 0.9, "norm": 0.99} for n in DIRS} for d in DOMS}}
    results = {
        "study": "lime_veracity", "title": "Study 3", "preset": "smoke", "seed": 0,
        "data": "synth-voice", "headline": "x", "preset_deviations_from_paper": ["num_samples 128"],
        "model": {"accuracy": 0.5}, "published": pub, "table1_all": t1, "table2_all": t2,
        "excerpts": {n: {"num": 2, "num_correct": 1} for n in DIRS},
        "attacks": {d: {n: {"num_excerpts": 2, "num_success": audited, "num_audited": audited}
                        for n in DIRS} for d in DOMS},
        "segmentation": {"n_temporal": 5, "n_frequency": 4, "top_k": 3},
        "horses": {"num_found": 1, "num_examples": 2, "kinds": ["band", "comb", "blob"]},
        "subset": {"num_adversaries": 0, "num_examples": 2, "subset_size": 3, "chance": 0.15},
        "stability": {}, "fidelity": {"adversaries": {"auc": 0.5}},
        "timing": {"num_samples": 128}, "listening": [],
    }
    if sweep:
        results["attack_settings"] = {"threshold": 0.51, "per_song": 2, "stretch_frames": 16}
        results["stretch_attacks"] = {d: {"levels": list(LEVELS), "num_stretches": 4,
                                          "success_rate": [0.75, 0.5, 0.5, 0.25],
                                          "median_iterations": [7.0, 9.0, 20.0, 60.0],
                                          **({"median_snr_db": [41.5, 39, 37, 35]}
                                             if d == "waveform" else {})} for d in DOMS}
    (out / "arrays").mkdir(parents=True)
    (out / "results.json").write_text(json.dumps(results))
    if sweep:
        np.savez(out / "arrays" / "strength_sweep.npz", levels=np.array(LEVELS),
                 **{f"{d}.{n}.{s}": np.linspace(0.8, 0.2, 4) if s == "lime" else np.ones(4)
                    for d in DOMS for n in DIRS for s in ("lime", "norm", "num_examples")})
    np.savez(out / "arrays" / "flip_curves.npz",
             **{f"{d}.{n}.{s}": np.linspace(0, 1, 21) for d in DOMS for n in DIRS for s in SELS})
    rects = np.array([[f * 20, f * 20 + 20, t * 23, t * 23 + 23]
                      for t in range(5) for f in range(4)])
    rng = np.random.default_rng(0)
    np.savez(out / "arrays" / "example.npz", domain="spectrogram", direction="sing_to_nosing",
             rects=rects, spec=rng.normal(size=(80, 115)), delta=rng.normal(size=(80, 115)),
             weight_map=rng.normal(size=(80, 115)), lime_top=np.array([0, 1, 2]),
             norm_top=np.array([3, 4, 5]))
    np.savez(out / "arrays" / "horses.npz", rects=rects, spec=rng.normal(size=(1, 80, 115)),
             component=np.array([7]), kind=np.array([1]), lime_top=np.array([[7, 1, 2]]),
             lime_score=np.array([0.3]))
    np.savez(out / "arrays" / "fidelity.npz", score=rng.uniform(size=6),
             correct=np.arange(6) % 2 == 0, domain=np.arange(6) % 2, horse_score=np.array([0.3]),
             horse_correct=np.array([True]))
    return out


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    return _folder(tmp_path_factory.mktemp("lime_report"))


def test_redraw_is_identical(folder):
    first = report.write_report(folder).read_text()
    pngs = {p.name: p.read_bytes() for p in (folder / "figures").glob("*.png")}
    second = report.write_report(folder).read_text()
    assert first == second
    assert pngs == {p.name: p.read_bytes() for p in (folder / "figures").glob("*.png")}
    assert set(pngs) == {"fig1_flip_curves.png", "fig2_example.png", "fig3_horses.png",
                         "fig4_fidelity.png"}


def test_page_order_and_warnings(folder):
    text = (folder / "report.html").read_text()
    # headline table (with the published rows) before the figures, raw numbers folded last
    assert text.index("published") < text.index("Figure 1") < text.index("<details>")
    assert 'class="scroll"' in text  # wide tables scroll instead of running off the page
    assert "Read with care" in text and "subset control is empty" in text
    assert "frame accuracy is 0.50" in text


def test_strength_sweep_figure_and_protocol(tmp_path):
    out = _folder(tmp_path / "sweep", sweep=True)
    text = report.write_report(out).read_text()
    assert (out / "figures" / "fig5_strength_sweep.png").is_file()
    assert "Figure 5" in text and "decision confidence" in text
    assert "every frame flipped in 75 % of 4 stretches" in text and "41.5 dB" in text
    assert "stretches of 16 frames" in text
    assert text.index("Adversaries as in the published audit") < text.index("Figure 1")


def test_empty_cells_warn(tmp_path):
    out = _folder(tmp_path / "empty", audited=0)
    text = report.write_report(out).read_text()
    assert "0 adversaries found" in text


def test_report_module_imports_no_study_code():
    code = ("import sys, jaxaudio.report.lime_veracity; "
            "print([m for m in sys.modules if m.startswith(('jaxaudio.studies', 'jaxaudio.attacks',"
            " 'jaxaudio.explain', 'jaxaudio.audit', 'jax.')) or m == 'jax'])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
