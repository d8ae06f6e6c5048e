"""jaxaudio.attacks.evaluation (attacked set, runs, WAV check, sweep entries, listening) and
jaxaudio.studies.attack_evaluation (study 1's results and report files).

Tiny numpy stand-ins for the classifier, the test split and the attacks; no training.
"""

from __future__ import annotations

import collections
import json
import math
import types

import numpy as np
import pytest
import soundfile as sf

from jaxaudio.attacks import evaluation
from jaxaudio.data import pcm16_samples
from jaxaudio.studies import attack_evaluation as reporting

Result = collections.namedtuple("Result", "success iterations snr_db original_prediction "
                                          "adversarial_prediction target adversarial")


class FakeClassifier:
    """Class 1 when the mean of the clip is positive, else 0."""

    frontend = types.SimpleNamespace(sample_rate=8000, n_fft=64)
    excerpt_samples = 400

    def __init__(self):
        self.calls = []

    def logits(self, waves):
        waves = np.asarray(waves)
        self.calls.append(waves.shape[0])
        m = waves.mean(-1)
        return np.stack([-m, m], -1)


def _grid(x):
    return (np.round(np.asarray(x) * 32768) / 32768).astype(np.float32)


@pytest.fixture(scope="module")
def test_set():
    rng = np.random.default_rng(0)
    waves = [rng.uniform(-0.9, 0.9, 300 + 50 * i).astype(np.float32) for i in range(10)]
    labels = np.array([0, 1, -1, 2, 0, 1, -1, 2, 0, 1])
    return types.SimpleNamespace(waves=waves, labels=labels, sample_rate=8000)


def _run(n=6, mask=None, success=None, iterations=None, seed=0):
    rng = np.random.default_rng(seed)
    mask = np.ones(n, bool) if mask is None else np.asarray(mask, bool)
    k = int(mask.sum())
    return {"clip_mask": mask, "labels": rng.integers(0, 3, k),
            "success": np.asarray(success if success is not None else rng.random(k) < 0.5),
            "iterations": np.asarray(iterations if iterations is not None
                                     else rng.integers(0, 5, k)),
            "snr_db": rng.normal(30, 5, k), "adversarial_prediction": rng.integers(0, 3, k),
            "original_prediction": rng.integers(0, 3, k), "target": np.full(k, -1),
            "seconds": np.asarray(1.5)}


# ------------------------------------------------------------------------------ attacked set
def test_attack_excerpts_subset_grid_and_predictions(test_set):
    clf = FakeClassifier()
    a = evaluation.attack_excerpts(test_set, clf, num_clips=5, clip_seconds=0.05, seed=3)
    single = np.flatnonzero(test_set.labels >= 0)
    assert a["chosen"].tolist() == sorted(a["chosen"].tolist()) and len(a["chosen"]) == 5
    assert set(a["chosen"]) <= set(single)
    assert a["waves"].shape == (5, 400) and a["waves"].dtype == np.float32
    np.testing.assert_array_equal(a["waves"] * 32768, np.round(a["waves"] * 32768))
    np.testing.assert_array_equal(a["labels"], test_set.labels[a["chosen"]])
    np.testing.assert_array_equal(a["clean_prediction"], (a["waves"].mean(-1) > 0).astype(int))
    again = evaluation.attack_excerpts(test_set, clf, num_clips=5, clip_seconds=0.05, seed=3)
    np.testing.assert_array_equal(again["chosen"], a["chosen"])
    every = evaluation.attack_excerpts(test_set, clf, num_clips=None, clip_seconds=None, seed=0)
    np.testing.assert_array_equal(every["chosen"], single)
    assert every["waves"].shape[1] == clf.excerpt_samples and every["rate"] == 8000


def test_attack_excerpts_bad_input(test_set):
    clf = FakeClassifier()
    with pytest.raises(ValueError, match="shorter than one analysis frame"):
        evaluation.attack_excerpts(test_set, clf, num_clips=2, clip_seconds=0.001, seed=0)
    other = types.SimpleNamespace(**{**vars(test_set), "sample_rate": 16000})
    with pytest.raises(ValueError, match="16000 Hz"):
        evaluation.attack_excerpts(other, clf, num_clips=2, clip_seconds=None, seed=0)
    multi = types.SimpleNamespace(**{**vars(test_set), "labels": np.full(10, -1)})
    with pytest.raises(ValueError, match="no single-label"):
        evaluation.attack_excerpts(multi, clf, num_clips=2, clip_seconds=None, seed=0)


def test_predict_chunks_and_matches_argmax():
    clf, waves = FakeClassifier(), np.random.default_rng(1).normal(size=(70, 16))
    pred = evaluation.predict(clf, waves, chunk_size=32)
    assert pred.dtype == np.int32 and clf.calls and max(clf.calls) <= 32
    np.testing.assert_array_equal(pred, (waves.mean(-1) > 0).astype(int))


# ------------------------------------------------------------------------------------- runs
def _fake_attack(seen):
    def attack(logits_fn, x, y, *, quantize_16bit, target=None, **kwargs):
        seen.append({"x": x, "y": y, "quantize_16bit": quantize_16bit, **kwargs})
        n = len(x)
        adv = _grid(np.clip(x + 0.01, -1, 1))
        return Result(success=y % 2 == 0, iterations=np.arange(n), snr_db=np.full(n, 20.0),
                      original_prediction=y, adversarial_prediction=(y + 1) % 3,
                      target=np.full(n, -1 if not isinstance(target, int) else target),
                      adversarial=adv)
    return attack


def test_run_on_set_fixed_target_leaves_out_its_class_and_pads():
    waves = _grid(np.random.default_rng(2).uniform(-0.5, 0.5, (6, 32)))
    labels = np.array([0, 1, 2, 1, 0, 1])
    seen = []
    run = evaluation.run_on_set(_fake_attack(seen), None, waves, labels, keep_adversarial=True,
                                target=1, eps=0.1)
    np.testing.assert_array_equal(run["clip_mask"], labels != 1)
    assert seen[0]["x"].shape == waves.shape and seen[0]["quantize_16bit"] is True
    assert seen[0]["eps"] == 0.1
    np.testing.assert_array_equal(seen[0]["x"][3:], np.repeat(waves[:1], 3, 0))  # padding
    assert len(run["success"]) == len(run["labels"]) == 3
    np.testing.assert_array_equal(run["labels"], [0, 2, 0])
    assert run["adversarial_pcm"].dtype == np.int16
    np.testing.assert_array_equal(run["adversarial_pcm"] / 32768,
                                  _grid(np.clip(waves[labels != 1] + 0.01, -1, 1)))
    assert float(run["seconds"]) >= 0 and run["snr_db"].dtype == np.float64
    untargeted = evaluation.run_on_set(_fake_attack([]), None, waves, labels,
                                       keep_adversarial=False, target="random")
    assert untargeted["clip_mask"].all() and "adversarial_pcm" not in untargeted
    with pytest.raises(ValueError, match="no clips left"):
        evaluation.run_on_set(_fake_attack([]), None, waves, np.ones(6, int),
                              keep_adversarial=False, target=1)


def test_wav_round_trip_counts_what_the_files_hold(tmp_path):
    adv = _grid(np.random.default_rng(3).uniform(-0.5, 0.5, (4, 64)))
    run = {"adversarial_pcm": pcm16_samples(adv), "labels": np.array([0, 1, 0, 1]),
           "target": np.array([-1, -1, 1, 1]), "success": np.array([True, True, True, False])}
    pred = np.array([1, 1, 1, 0])
    check = evaluation.wav_round_trip(run, lambda w: pred[:len(w)], 8000, tmp_path)
    # untargeted: pred != label (clips 0, 1 -> True, False); targeted: pred == target (T, F)
    assert check["wav_success_rate"] == 0.5
    assert check["wav_accuracy_after"] == 0.25
    assert check["wav_flipped_back"] == 1  # clip 1 succeeded in the loop, not from the file
    assert check["wav_files"] == 4 and check["max_abs_change_on_save"] == 0.0
    assert list(tmp_path.iterdir()) == []  # the temporary folder is gone


# ------------------------------------------------------------------------------------ sweep
@pytest.fixture(scope="module")
def sweep():
    return {"epsilons": np.array([1e-3, 1e-2, 0.1]),
            "success": np.array([[False] * 4, [True, False, False, True], [True] * 4]),
            "snr_db": np.array([[50.0] * 4, [30.0, 1.0, 1.0, np.inf], [-5.0, -7.0, -9.0, -3.0]]),
            "adversarial_prediction": np.array([[0, 1, 2, 0], [1, 1, 2, 1], [2, 0, 0, 1]]),
            "seconds": np.asarray(3.0)}


def test_sweep_entries_and_curves(sweep):
    labels = np.array([0, 1, 2, 0])
    entries = evaluation.sweep_entries(sweep, labels, (1e-3, 1e-2, 0.1))
    assert list(entries) == ["fgsm@0.001", "fgsm@0.01", "fgsm@0.1"]
    low, mid, high = entries.values()
    assert low["success_rate"] == 0 and low["snr_db_mean"] is None
    assert low["iterations_mean"] is None and low["accuracy_after"] == 1.0
    assert mid["success_rate"] == 0.5 and mid["snr_db_mean"] == 30.0  # inf is not counted
    assert mid["accuracy_after"] == 0.5 and mid["iterations_mean"] == 1.0
    assert high["snr_db_mean"] == -6.0 and high["snr_db_median"] == -6.0
    assert all(e["seconds"] == 1.0 and e["n"] == 4 and not e["targeted"]
               for e in entries.values())
    assert high["settings"] == {"eps": 0.1}
    curves = evaluation.sweep_curves(entries, (1e-3, 1e-2, 0.1))
    assert curves == {"epsilons": [1e-3, 1e-2, 0.1], "success_rate": [0.0, 0.5, 1.0],
                      "accuracy_after": [1.0, 0.5, 0.0], "snr_db_mean": [None, 30.0, -6.0]}


def test_sweep_on_set_converts_the_result():
    res = types.SimpleNamespace(epsilons=[0.1, 0.2], success=[[True], [False]],
                                snr_db=np.float32([[1.0], [2.0]]),
                                adversarial_prediction=[[1], [0]])
    seen = {}

    def fake(logits_fn, waves, labels, *, epsilons, quantize_16bit):
        seen.update(epsilons=epsilons, quantize_16bit=quantize_16bit)
        return res

    out = evaluation.sweep_on_set(fake, None, np.zeros((1, 4)), np.zeros(1), (0.1, 0.2))
    assert seen == {"epsilons": [0.1, 0.2], "quantize_16bit": True}
    assert out["snr_db"].dtype == np.float64 and out["success"].shape == (2, 1)
    assert float(out["seconds"]) >= 0


# ---------------------------------------------------------------------------------- results
def test_headline_order_and_missing_numbers():
    e = {"success_rate": 0.5, "snr_db_mean": 31.25, "noise_control_accuracy": 0.75}
    line = reporting.headline({"fgsm": dict(e, success_rate=1.0), "pgd": e}, 0.8, 12)
    assert line.startswith("pgd: success 0.50 on 12 excerpts (clean accuracy 0.80)")
    assert "31.2 dB" in line and line.endswith("0.75")
    empty = reporting.headline({"mscw": {"success_rate": 0.0, "snr_db_mean": None}}, 0.5, 3)
    assert empty.startswith("mscw:") and "mean SNR –" in empty and empty.endswith("accuracy –")
    assert reporting.headline({}, 0.5, 3) == ""


def test_results_table_keys_entries_and_json(sweep):
    aset = {"labels": np.array([0, 1, 2, 0]), "clean_prediction": np.array([0, 1, 0, 0]),
            "chosen": np.array([1, 4, 5, 9]), "waves": np.zeros((4, 800), np.float32),
            "rate": 8000}
    summary = {"pgd": {"success_rate": 0.5, "snr_db_mean": 20.0}}
    results = reporting.results_table(
        {"study": "s", "title": "t"}, summary=summary, noise_control={"pgd": {"accuracy": 0.5}},
        attack_set=aset, sweep=sweep, epsilons=(1e-3, 1e-2, 0.1), clean_accuracy=0.9,
        label_names=["a", "b", "c"], model={"path": "m"}, settings={"pgd": {"eps": 1}},
        published={"pgd": {"accuracy_after": "0.17"}},
        method=reporting.method_notes(slots=4, margin=2048, cw_target="a"),
        deviations=("smoke",), listening={"pgd": []})
    assert list(results)[:4] == ["study", "title", "headline", "model"]
    assert list(results)[-3:] == ["fgsm_sweep", "listening_examples", "published"]
    assert results["clean_accuracy_attacked"] == 0.75 and results["chance"] == pytest.approx(1 / 3)
    assert results["attacks"]["pgd"]["settings"] == {"eps": 1}
    assert results["attacks"]["pgd"]["published"] == {"accuracy_after": "0.17"}
    assert "fgsm@0.01" in results["attacks"] and results["attacks_run"] == ["pgd"]
    assert results["fgsm_sweep"]["success_rate"] == [0.0, 0.5, 1.0]
    clips = results["attacked_clips"]
    assert clips["clip_indices"] == [1, 4, 5, 9] and clips["seconds"] == 0.1
    assert results["method"]["early_stopping"].endswith("(4 slots)")
    assert results["preset_deviations_from_paper"] == ["smoke"]
    json.dumps(results)  # JSON-ready
    no_sweep = reporting.results_table(
        {}, summary=summary, noise_control={}, attack_set=aset, sweep=None, epsilons=(),
        clean_accuracy=0.9, label_names=["a"], model={}, settings={"pgd": {}},
        published={"pgd": {}}, method={}, deviations=(), listening={})
    assert no_sweep["fgsm_sweep"] is None and list(no_sweep["attacks"]) == ["pgd"]


# ---------------------------------------------------------------------------- report files
def test_write_report_arrays(tmp_path, sweep):
    aset = {"labels": np.array([0, 1, 2, 0]), "clean_prediction": np.array([0, 1, 0, 0])}
    runs = {"pgd": [_run(4, seed=1), _run(4, seed=2)], "cw": [_run(4, seed=3)]}
    reporting.write_report_arrays(tmp_path / "arrays", aset, runs, sweep)
    with np.load(tmp_path / "arrays" / "snr.npz") as f:
        expected = np.concatenate([r["snr_db"][r["success"]] for r in runs["pgd"]])
        np.testing.assert_array_equal(f["pgd"], expected)
        assert len(f["cw"]) == runs["cw"][0]["success"].sum()
    with np.load(tmp_path / "arrays" / "confusion.npz") as f:
        assert set(f.files) == {"clean_labels", "clean_prediction", "pgd_labels",
                                "pgd_prediction", "cw_labels", "cw_prediction"}
        np.testing.assert_array_equal(f["pgd_prediction"],
                                      runs["pgd"][0]["adversarial_prediction"])
    with np.load(tmp_path / "arrays" / "fgsm_sweep.npz") as f:
        np.testing.assert_array_equal(f["success_rate"], [0.0, 0.5, 1.0])
        assert np.isnan(f["snr_db_mean"][0]) and f["snr_db_mean"][1] == 30.0
    reporting.write_report_arrays(tmp_path / "other", aset, runs, None)
    assert not (tmp_path / "other" / "fgsm_sweep.npz").exists()


def test_listening_examples_first_stepped_successes(tmp_path):
    rng = np.random.default_rng(4)
    waves = _grid(rng.uniform(-0.5, 0.5, (5, 800)))
    mask = np.array([True, False, True, True, True])
    scale = np.array([2e-3, 0.03, 1e-4, 5e-3])[:, None]
    adv = _grid(np.clip(waves[mask] + scale * rng.standard_normal((4, 800)), -1, 1))
    run = dict(_run(5, mask=mask, success=[True, True, True, True], iterations=[0, 2, 3, 1]),
               adversarial_pcm=pcm16_samples(adv))
    run["snr_db"][2] = np.inf
    folder = tmp_path / "audio" / "pgd"
    examples = evaluation.listening_examples(folder, waves, run, ["a", "b", "c"], 8000, 2)
    # success at 0 iterations (first) is skipped; count 2 -> kept clips 1, 2 = test clips 2, 3
    assert [ex["clip"] for ex in examples] == [2, 3]
    assert examples[1]["snr_db"] is None and examples[0]["true"] == "abc"[run["labels"][1]]
    for j, ex in zip((1, 2), examples):
        delta = adv[j] - waves[mask][j]
        gain = ex["perturbation_gain"]
        assert math.log10(gain) == round(math.log10(gain))  # a power of ten
        assert 0.05 < gain * np.abs(delta).max() <= 0.5
        assert ex["perturbation_gain_db"] == pytest.approx(20 * math.log10(gain))
        stem = f"clip{ex['clip']:03d}"
        for role, wave in (("original", waves[mask][j]), ("adversary", adv[j]),
                           ("perturbation", gain * delta)):
            data, rate = sf.read(folder / f"{stem}_{role}.wav", dtype="float32")
            assert rate == 8000
            np.testing.assert_allclose(data, wave, atol=1.01 / 32768)
    assert len(list(folder.iterdir())) == 6
    silent = dict(run, adversarial_pcm=pcm16_samples(waves[mask]), iterations=np.ones(4, int))
    first = evaluation.listening_examples(tmp_path / "silent", waves, silent, ["a", "b", "c"],
                                          8000, 1)
    assert first[0]["perturbation_gain"] == 1.0  # nothing to amplify


def test_listening_positions_skip_step_zero_successes():
    run = {"success": np.array([True, False, True, True, True]),
           "iterations": np.array([0, 3, 2, 1, 4])}
    assert evaluation.listening_positions(run, 2) == [2, 3]
    assert evaluation.listening_positions(run, 9) == [2, 3, 4]
    assert evaluation.listening_positions(dict(run, success=np.zeros(5, bool)), 3) == []


def test_listening_scores_and_perceptual_note():
    run = {"success": np.array([True, True, False, True]), "iterations": np.array([0, 2, 1, 5])}
    scores = {"pgd": {"visqol_mos": np.array([4.0, np.nan, 1.0, 3.5]),
                      "share_above_threshold": np.array([0.1, 0.2, 0.3, 0.4])}}
    listening = {"pgd": [{"clip": 1}, {"clip": 3}]}
    reporting.add_listening_scores(listening, scores, {"pgd": [run]}, 2)
    assert listening["pgd"] == [{"clip": 1, "visqol_mos": None, "share_above_threshold": 0.2},
                                {"clip": 3, "visqol_mos": 3.5, "share_above_threshold": 0.4}]
    assert "the first 16 attacked clips" in reporting.perceptual_note(16)
    assert "all attacked clips" in reporting.perceptual_note(None)
