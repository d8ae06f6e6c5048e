"""The instrument-attack report page, drawn from a hand-made study folder (no study code run).

The folder holds what the study writes: results.json, arrays/*.npz and listening WAVs.
"""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
import wave
from pathlib import Path

import numpy as np
import pytest

from jaxaudio.report import write_report

NAMES = ["Accordion", "Bass_drum", "Gong"]
ATTACKS = ("fgsm", "pgd", "cw", "cw_random", "mscw")


def _entry(success, *, targeted=False, zero=0.0, on_correct=0.5, snr=30.0):
    return {"success_rate": success, "success_rate_std": 0.0, "accuracy_after": 1 - success,
            "accuracy_after_std": 0.0, "success_rate_on_clean_correct": on_correct,
            "success_at_0_iterations_rate": zero, "snr_db_mean": snr, "snr_db_std": 2.0,
            "snr_db_median": snr, "iterations_median": 4.0, "iterations_mean": 4.0, "n": 6,
            "targeted": targeted, "seeds": 2 if targeted else 1, "seconds": 1.5,
            "noise_control_accuracy": 0.9, "wav_success_rate": success,
            "settings": {"eps": 0.002, "learning_rate": 1e-4},
            "published": {"accuracy_after": "0.17", "snr_db_mean": "40.1 ± 11.5",
                          "iterations_median": "16", "settings": "eps 0.0005"}}


def _write_wav(path: Path, n=800):
    path.parent.mkdir(parents=True, exist_ok=True)
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1), w.setsampwidth(2), w.setframerate(16000)
        w.writeframes(np.zeros(n, np.int16).tobytes())


def _folder(root: Path, *, clean_attacked=0.9, fgsm_zero=0.0) -> Path:
    rng = np.random.default_rng(0)
    results = {
        "study": "instrument_attacks", "title": "Study 1 test", "preset": "demo", "seed": 0,
        "label_names": NAMES, "clean_accuracy": 0.9, "clean_accuracy_attacked": clean_attacked,
        "chance": 1 / 3, "attacked_clips": {"n": 6, "seconds": 0.05},
        "method": {"cw_fixed_target": "Accordion"},
        "preset_deviations_from_paper": ["6 clips instead of 200"],
        "attacks": {n: _entry(0.5, targeted=n.startswith(("cw", "ms"))) for n in ATTACKS},
        "listening_examples": {"pgd": [{"clip": 3, "true": "Gong", "adversarial": "Accordion",
                                        "snr_db": 31.5, "perturbation_gain": 10.0}]},
        "published": {"clean_accuracy": 0.835, "noise_control": "white noise at 42 dB: 0.79"},
    }
    results["attacks"]["fgsm"]["success_at_0_iterations_rate"] = fgsm_zero
    root.mkdir(parents=True, exist_ok=True)
    (root / "results.json").write_text(json.dumps(results))
    arrays = root / "arrays"
    arrays.mkdir()
    true = rng.integers(0, 3, 6)
    conf = {"clean_labels": true, "clean_prediction": true}
    for n in ATTACKS:
        conf[f"{n}_labels"], conf[f"{n}_prediction"] = true, rng.integers(0, 3, 6)
    np.savez(arrays / "confusion.npz", **conf)
    np.savez(arrays / "snr.npz", **{n: rng.normal(30, 3, 5) for n in ATTACKS})
    np.savez(arrays / "fgsm_sweep.npz", epsilons=np.array([1e-3, 1e-2, 0.1]),
             success_rate=np.array([0.1, 0.4, 0.8]), accuracy_after=np.array([0.8, 0.5, 0.2]),
             snr_db_mean=np.array([30.0, 10.0, np.nan]))
    for stem in ("original", "adversary", "perturbation"):  # write_listening_example names
        _write_wav(root / "audio" / "pgd" / f"clip003_{stem}.wav")
    return root


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    out = _folder(tmp_path_factory.mktemp("attack_report") / "run")
    write_report(out)
    return out


def _body(html: str) -> str:
    return html.split("<details")[0]


def test_page_order_table_warnings_figures_players(folder):
    html = _body((folder / "report.html").read_text())
    order = [html.index(s) for s in ("<table", "published: PGD", "deviates from the paper",
                                     "<h2>Figures", "Listening examples")]
    assert order == sorted(order)
    assert "Read with care" not in html  # nothing degenerate in this folder
    for png in ("confusion_clean", "confusion_pgd", "confusion_cw", "snr_histogram",
                "fgsm_success_vs_eps"):
        assert (folder / "figures" / f"{png}.png").stat().st_size > 0
        assert f'src="figures/{png}.png"' in html
    assert html.count("<figcaption>") == 8
    players = [html.index(f"clip003_{s}") for s in ("original", "adversary", "perturbation")]
    assert players == sorted(players)
    assert "Gong" in html and "31.5" in html and "perturbation ×10" in html


def test_warnings_for_degenerate_numbers(tmp_path):
    out = _folder(tmp_path / "bad", clean_attacked=0.4, fgsm_zero=0.3)
    results = json.loads((out / "results.json").read_text())
    results["attacks"]["cw"].update(success_rate=0.0, snr_db_mean=None)
    results["attacks"]["fgsm"]["success_rate_on_clean_correct"] = 0.125
    (out / "results.json").write_text(json.dumps(results))
    html = _body(write_report(out).read_text())
    box = html[html.index("Read with care"):html.index("<h2>Figures")]
    assert "clean accuracy is 0.400" in box
    assert "FGSM: success 0.500 counts clips that were already misclassified" in box
    assert "success_rate_on_clean_correct = 0.125" in box
    assert "C&amp;W → Accordion found no adversary" in box
    assert html.index("Read with care") < html.index("<h2>Figures")


def test_redraw_is_identical_and_in_a_fresh_process(folder, tmp_path):
    first = (folder / "report.html").read_text()
    pngs = {p.name: p.read_bytes() for p in (folder / "figures").glob("*.png")}
    write_report(folder)
    assert (folder / "report.html").read_text() == first
    assert {p.name: p.read_bytes() for p in (folder / "figures").glob("*.png")} == pngs
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[1]))
    subprocess.run([sys.executable, "-m", "jaxaudio", "report", str(folder)], check=True,
                   env=env, capture_output=True)
    assert (folder / "report.html").read_text() == first
    assert {p.name: p.read_bytes() for p in (folder / "figures").glob("*.png")} == pngs


def test_report_module_imports_no_study_code():
    code = ("import jaxaudio.report.attacks, sys; "
            "assert not any(m.startswith('jaxaudio.studies') for m in sys.modules), "
            "[m for m in sys.modules if m.startswith('jaxaudio.studies')]; "
            "assert 'matplotlib.pyplot' not in sys.modules")
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[1]))
    subprocess.run([sys.executable, "-c", code], check=True, env=env)


def test_selection_of_attacks_and_missing_sweep(tmp_path):
    out = _folder(tmp_path / "sel")
    results = json.loads((out / "results.json").read_text())
    results["attacks"] = {"pgd": results["attacks"]["pgd"]}
    (out / "results.json").write_text(json.dumps(copy.deepcopy(results)))
    (out / "arrays" / "fgsm_sweep.npz").unlink()
    html = _body(write_report(out).read_text())
    assert "published: PGD" in html and "published: FGSM" not in html
    assert "fgsm_success_vs_eps" not in html


def test_perceptual_columns_and_ab_listening(tmp_path):
    out = _folder(tmp_path / "psy")
    results = json.loads((out / "results.json").read_text())
    for n in ATTACKS:
        results["attacks"][n].update(visqol_mos_mean=4.1, visqol_n=5,
                                     share_above_threshold_mean=0.25)
    results["attacks"]["psy"] = dict(_entry(0.5), published={}, visqol_mos_mean=4.6,
                                     visqol_n=4, share_above_threshold_mean=0.0012,
                                     settings={"eps": 5e-4, "alpha": 0.1})
    results["listening_examples"]["pgd"][0].update(visqol_mos=4.25,
                                                   share_above_threshold=0.3125)
    (out / "results.json").write_text(json.dumps(results))
    with np.load(out / "arrays" / "confusion.npz") as f:
        conf = {k: f[k] for k in f.files}
    conf["psy_labels"], conf["psy_prediction"] = conf["pgd_labels"], conf["pgd_prediction"]
    np.savez(out / "arrays" / "confusion.npz", **conf)
    html = _body(write_report(out).read_text())
    table = html[html.index("<table"):html.index("</table>")]
    assert "ViSQOL MOS-LQO" in table and "share above masking threshold" in table
    assert "psychoacoustic (PGD, then masked)" in table
    assert "4.60 (n=4)" in table and "0.0012" in table
    ab = html[html.index("A/B listening"):html.index("Listening examples")]
    assert "A: original" in ab and "B: adversarial" in ab and "clip003_adversary" in ab
    assert "4.25" in ab and "0.3125" in ab and "31.5" in ab
    assert "perturbation" not in ab.split("</p>", 1)[1]  # A/B: no perturbation player
