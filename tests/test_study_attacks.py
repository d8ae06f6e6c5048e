"""Study 1 (instrument attacks) end to end on the smoke preset: files, schema, cache reuse.

One module-scoped run (the smoke preset trains a width-8 classifier for 2 epochs on 48 clips
and attacks 8 half-second excerpts for a few steps) is shared by all tests; the numbers are not
meaningful, only the plumbing is checked.
"""

from __future__ import annotations

import json
import math
import pathlib

import numpy as np
import pytest

from jaxaudio.studies import instrument_attacks as study

ENTRY_KEYS = {"success_rate", "accuracy_after", "snr_db_mean", "snr_db_median",
              "iterations_mean", "n", "targeted", "seconds"}


def _cache(out: pathlib.Path) -> pathlib.Path:
    """The run's cache folder ``out/cache/<key>`` (exactly one configuration was run)."""
    folders = [p for p in (out / "cache").iterdir() if p.is_dir()]
    assert len(folders) == 1, folders
    return folders[0]


@pytest.fixture(scope="module")
def smoke(tmp_path_factory):
    out = tmp_path_factory.mktemp("attack_study")
    results = study.run(out=out, preset="smoke", seed=0, progress=False)
    return out, results


def test_results_schema(smoke):
    out, results = smoke
    on_disk = json.loads((out / "results.json").read_text())
    assert on_disk["study"] == study.NAME == results["study"]
    assert isinstance(on_disk["clean_accuracy"], float) and 0 <= on_disk["clean_accuracy"] <= 1
    attacks = on_disk["attacks"]
    for name in study.ATTACKS:
        entry = attacks[name]
        assert ENTRY_KEYS <= set(entry), name
        assert 0.0 <= entry["success_rate"] <= 1.0
        assert 0.0 <= entry["accuracy_after"] <= 1.0
        assert entry["targeted"] == (name in ("cw", "cw_random", "mscw"))
        assert entry["n"] >= 1 and entry["seconds"] >= 0
        for key in ("snr_db_mean", "snr_db_median", "iterations_mean"):
            assert entry[key] is None or math.isfinite(entry[key])
        assert "noise_control_accuracy" in entry or entry["snr_db_mean"] is None
    sweep = [k for k in attacks if k.startswith("fgsm@")]
    assert len(sweep) == len(study.STUDY_PRESETS["smoke"].fgsm_epsilons)
    assert attacks["pgd"]["seeds"] == attacks["cw_random"]["seeds"] == 2
    assert attacks["cw"]["seeds"] == 1
    assert set(on_disk["noise_control"]) == set(study.ATTACKS)
    assert on_disk["preset_deviations_from_paper"]


def test_fixed_target_skips_clips_of_the_target_class(smoke):
    out, results = smoke
    data = np.load(_cache(out) / "cw_seed0.npz")
    target = study.STUDY_PRESETS["smoke"].cw_target
    names = json.loads((out / "model" / "classifier.json").read_text())["label_names"]
    index = names.index(target)
    assert np.all(data["labels"] != index)
    assert np.all(data["target"] == index)
    assert results["attacks"]["cw"]["n"] == int(data["clip_mask"].sum())


def test_figures_audio_and_report_exist(smoke):
    out, results = smoke
    for name in study.ATTACKS:
        assert (out / "figures" / f"confusion_{name}.png").stat().st_size > 0
    assert (out / "figures" / "snr_histogram.png").is_file()
    assert (out / "figures" / "fgsm_success_vs_eps.png").is_file()
    report = (out / "report.html").read_text()
    assert "Attacks on the instrument classifier" in report
    assert "published mean SNR" in report
    for name, examples in results["listening_examples"].items():
        for ex in examples:
            folder = out / "audio" / name
            stem = f"clip{ex['clip']:03d}"
            assert len(list(folder.glob(f"{stem}_original_*.wav"))) == 1
            assert len(list(folder.glob(f"{stem}_adversarial_*.wav"))) == 1
            gain = ex["perturbation_gain"]
            assert (folder / f"{stem}_perturbation_x{gain:g}.wav").is_file()
    # Examples are the first successful clips that needed at least one step.
    count = study.STUDY_PRESETS["smoke"].listening_examples
    for name in study.ATTACKS:
        run = np.load(_cache(out) / f"{name}_seed0.npz")
        eligible = int(np.sum(run["success"] & (run["iterations"] > 0)))
        assert len(results["listening_examples"][name]) == min(count, eligible)


def test_wav_success_is_measured_on_written_files(smoke, monkeypatch, tmp_path):
    import jaxaudio.data as data_module
    from jaxaudio.models import Classifier

    out, results = smoke
    for name in study.ATTACKS:
        assert results["attacks"][name]["wav_files"] == results["attacks"][name]["n"]
    clf = Classifier.load(out / "model")
    run = dict(np.load(_cache(out) / "pgd_seed0.npz"))
    written, read = [], []
    real_save, real_load = data_module.save_wav, data_module.load_audio

    def save(path, wave, rate, **kw):
        written.append(pathlib.Path(path))
        return real_save(path, wave, rate, **kw)

    def load(path, **kw):
        read.append(pathlib.Path(path))
        wave, rate = real_load(path, **kw)
        return np.zeros_like(wave), rate  # what the "file" holds decides the outcome

    monkeypatch.setattr(data_module, "save_wav", save)
    monkeypatch.setattr(data_module, "load_audio", load)
    check = study._wav_check(clf, None, run, 16000, tmp_path)
    assert check["wav_files"] == len(written) == len(read) == len(run["labels"])
    assert written == read
    silent_pred = np.asarray(clf.logits(np.zeros((1, run["adversarial_pcm"].shape[1]),
                                                 np.float32))).argmax(-1)[0]
    expected = float(np.mean(silent_pred != run["labels"]))
    assert check["wav_success_rate"] == pytest.approx(expected)


def test_rerun_reuses_the_cache(smoke):
    out, results = smoke
    cache = sorted(_cache(out).glob("*.npz"))
    assert {p.name for p in cache} >= {"fgsm_seed0.npz", "pgd_seed0.npz", "pgd_seed1.npz",
                                       "cw_seed0.npz", "cw_random_seed0.npz", "mscw_seed0.npz",
                                       "fgsm_sweep.npz"}
    stamps = {p: p.stat().st_mtime_ns for p in cache}
    again = study.run(out=out, preset="smoke", seed=0, progress=False)
    assert {p: p.stat().st_mtime_ns for p in cache} == stamps
    assert again["model"]["source"] == "trained earlier"
    for name in study.ATTACKS:
        a, b = results["attacks"][name], again["attacks"][name]
        assert a["success_rate"] == b["success_rate"]
        assert a["seconds"] == b["seconds"]  # read from the cache, not re-timed
        assert a["wav_success_rate"] == b["wav_success_rate"]


def test_wav_success_equals_in_loop_success(smoke):
    """The loop quantises onto the grid a PCM_16 file holds (k / 32768), so the adversarials
    written as WAV files and read back are the arrays the attack evaluated: same outcome."""
    out, results = smoke
    for name in study.ATTACKS:
        run = np.load(_cache(out) / f"{name}_seed0.npz")
        assert results["attacks"][name]["wav_success_rate"] == pytest.approx(
            float(np.mean(run["success"])), abs=1e-12), name


def test_cache_key_changes_with_settings_seed_and_weights(smoke):
    import dataclasses

    import jax

    from jaxaudio.models import Classifier

    out, _ = smoke
    clf = Classifier.load(out / "model")
    sp = study.STUDY_PRESETS["smoke"]
    key = study._cache_key(sp, seed=0, data=None, clf=clf)
    assert key == _cache(out).name
    assert study._cache_key(sp, seed=1, data=None, clf=clf) != key
    assert study._cache_key(dataclasses.replace(sp, num_clips=3), seed=0, data=None,
                            clf=clf) != key
    nudged = dataclasses.replace(clf, variables=jax.tree.map(lambda a: a * 1.001,
                                                             clf.variables))
    assert study._cache_key(sp, seed=0, data=None, clf=nudged) != key


def test_real_data_runs_on_the_fsdkaggle2019_validation_quarter(tmp_path):
    """``--data FSD_ROOT``: as in the study, the attacked clips are the single-label
    instrument clips of the fixed-seed 25 % validation quarter of the curated set (files in the
    real layout, 44.1 kHz WAV, resampled to 16 kHz)."""
    from test_fsdkaggle import _write_split

    from jaxaudio import tasks
    from jaxaudio.data.types import INSTRUMENT_LABELS

    root = tmp_path / "fsd"
    rows = [(f"c{i:02d}.wav", INSTRUMENT_LABELS[i % 8]) for i in range(16)]
    rows += [("m.wav", "Accordion,Gong"), ("w.wav", "Writing")]  # never attacked
    _write_split(root, "train_curated_post_competition.csv",
                 "FSDKaggle2019.audio_train_curated", rows)
    quarter = tasks.load_split("fsdkaggle2019", "test", preset_name="smoke", seed=0,
                               data=str(root))
    assert 0 < len(quarter) < 16
    model_dir = tmp_path / "model"
    tasks.new_classifier("instruments", tasks.preset("instruments", "smoke"), seed=0).save(
        model_dir)
    results = study.run(out=tmp_path / "out", preset="smoke", seed=0, data=str(root),
                        model=str(model_dir), seeds=1, attacks=["pgd"], progress=False)
    assert results["dataset"] == "fsdkaggle2019"
    # Only the selected attack ran, and only it is reported.
    assert results["attacks_run"] == ["pgd"] and set(results["attacks"]) == {"pgd"}
    assert results["fgsm_sweep"] is None
    assert set(results["noise_control"]) == {"pgd"}
    assert "PGD" in (tmp_path / "out" / "report.html").read_text()
    assert results["attacks"]["pgd"]["n"] == len(quarter)
    run = np.load(_cache(tmp_path / "out") / "pgd_seed0.npz")
    np.testing.assert_array_equal(run["labels"], quarter.labels)


def test_bad_arguments_rejected(tmp_path):
    with pytest.raises(ValueError, match="preset"):
        study.run(out=tmp_path, preset="huge")
    with pytest.raises(ValueError, match="seeds"):
        study.run(out=tmp_path, preset="smoke", seeds=0)
    with pytest.raises(ValueError, match="num_clips"):
        study.run(out=tmp_path, preset="smoke", num_clips=0)
    for bad in (["pgd", "deepfool"], []):
        with pytest.raises(ValueError, match="attacks"):
            study.run(out=tmp_path, preset="smoke", attacks=bad)
