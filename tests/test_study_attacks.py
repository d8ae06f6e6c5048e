"""Study 1 (instrument attacks) end to end on the smoke preset: files, schema, stage reuse.

One module-scoped run (the smoke preset trains a width-8 classifier for 2 epochs on 48 clips
and attacks 8 half-second excerpts for a few steps) is shared by all tests; the numbers are not
meaningful, only the plumbing is checked. The test that changes one attack's setting reruns
the same folder, so it comes last.
"""

from __future__ import annotations

import json
import math
import pathlib

import numpy as np
import pytest

from jaxaudio.studies import instrument_attacks as study

ENTRY_KEYS = {"success_rate", "accuracy_after", "snr_db_mean", "snr_db_median",
              "iterations_mean", "n", "targeted", "seconds", "success_rate_on_clean_correct",
              "success_at_0_iterations_rate"}


def _stage(out: pathlib.Path, label: str) -> dict:
    """Outputs of the stage the first run logged as ``label`` (e.g. ``attack pgd seed 0``)."""
    for line in (out / "stages" / "log.jsonl").read_text().splitlines():
        entry = json.loads(line)
        if entry["stage"] == label:
            with np.load(out / "stages" / f"{entry['name']}-{entry['key']}" / "arrays.npz") as f:
                return {k: f[k] for k in f.files}
    raise AssertionError(f"no stage {label!r}")


def _model_dir(out: pathlib.Path) -> pathlib.Path:
    return pathlib.Path(json.loads((out / "results.json").read_text())["model"]["path"])


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
    assert isinstance(on_disk["headline"], str) and on_disk["headline"]
    attacks = on_disk["attacks"]
    for name in study.ALL_ATTACKS:
        entry = attacks[name]
        assert ENTRY_KEYS <= set(entry), name
        assert 0.0 <= entry["success_rate"] <= 1.0
        assert 0.0 <= entry["accuracy_after"] <= 1.0
        assert entry["success_at_0_iterations_rate"] <= entry["success_rate"] + 1e-12
        assert entry["targeted"] == (name in ("cw", "cw_random", "mscw"))
        assert entry["n"] >= 1 and entry["seconds"] >= 0
        for key in ("snr_db_mean", "snr_db_median", "iterations_mean"):
            assert entry[key] is None or math.isfinite(entry[key])
        assert "noise_control_accuracy" in entry or entry["snr_db_mean"] is None
    sweep = [k for k in attacks if k.startswith("fgsm@")]
    assert len(sweep) == len(study.STUDY_PRESETS["smoke"].fgsm_epsilons)
    assert attacks["pgd"]["seeds"] == attacks["cw_random"]["seeds"] == 2
    assert attacks["cw"]["seeds"] == 1
    assert set(on_disk["noise_control"]) == set(study.ALL_ATTACKS)
    assert on_disk["preset_deviations_from_paper"]
    stages = on_disk["stages"]
    assert stages["reused"] == [] and {"model", "clean", "attack_set", "fgsm_sweep",
                                       "attack pgd seed 1", "wav_mscw"} <= set(stages["computed"])
    # The arrays every figure is drawn from.
    with np.load(out / "arrays" / "confusion.npz") as f:
        assert {"clean_labels", "clean_prediction", "cw_labels", "cw_prediction"} <= set(f.files)
    with np.load(out / "arrays" / "snr.npz") as f:
        assert set(f.files) == set(study.ALL_ATTACKS)
    with np.load(out / "arrays" / "fgsm_sweep.npz") as f:
        np.testing.assert_allclose(f["success_rate"], on_disk["fgsm_sweep"]["success_rate"])


def test_fixed_target_skips_clips_of_the_target_class(smoke):
    out, results = smoke
    data = _stage(out, "attack cw seed 0")
    index = results["label_names"].index(study.STUDY_PRESETS["smoke"].cw_target)
    assert np.all(data["labels"] != index)
    assert np.all(data["target"] == index)
    assert results["attacks"]["cw"]["n"] == int(data["clip_mask"].sum())


def test_figures_audio_and_report_exist(smoke):
    out, results = smoke
    for name in study.ALL_ATTACKS:
        assert (out / "figures" / f"confusion_{name}.png").stat().st_size > 0
    assert (out / "figures" / "snr_histogram.png").is_file()
    assert (out / "figures" / "fgsm_success_vs_eps.png").is_file()
    report = (out / "report.html").read_text()
    assert "Attacks on the instrument classifier" in report
    assert "published: PGD" in report and "Read with care" in report
    for name, examples in results["listening_examples"].items():
        for ex in examples:
            folder = out / "audio" / name
            stem = f"clip{ex['clip']:03d}"
            for role in ("original", "adversary", "perturbation"):
                assert (folder / f"{stem}_{role}.wav").is_file()
    # Examples are the first successful clips that needed at least one step.
    count = study.STUDY_PRESETS["smoke"].listening_examples
    for name in study.ALL_ATTACKS:
        run = _stage(out, f"attack {name} seed 0")
        eligible = int(np.sum(run["success"] & (run["iterations"] > 0)))
        assert len(results["listening_examples"][name]) == min(count, eligible)


def test_wav_success_is_measured_on_written_files(smoke, monkeypatch, tmp_path):
    from jaxaudio.attacks import evaluation as data_module  # the WAV writer and reader it calls
    from jaxaudio.models import Classifier

    out, results = smoke
    for name in study.ALL_ATTACKS:
        assert results["attacks"][name]["wav_files"] == results["attacks"][name]["n"]
    clf = Classifier.load(_model_dir(out))
    run = _stage(out, "attack pgd seed 0")
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
    check = study.wav_stage(tmp_path, run=run, clf=clf, rate=16000)
    assert check["wav_files"] == len(written) == len(read) == len(run["labels"])
    assert written == read
    silent_pred = np.asarray(clf.logits(np.zeros((1, run["adversarial_pcm"].shape[1]),
                                                 np.float32))).argmax(-1)[0]
    expected = float(np.mean(silent_pred != run["labels"]))
    assert check["wav_success_rate"] == pytest.approx(expected)


def test_wav_success_equals_in_loop_success(smoke):
    """The loop quantises onto the grid a PCM_16 file holds (k / 32768), so the adversarials
    written as WAV files and read back are the arrays the attack evaluated: same outcome."""
    out, results = smoke
    for name in study.ALL_ATTACKS:
        run = _stage(out, f"attack {name} seed 0")
        assert results["attacks"][name]["wav_success_rate"] == pytest.approx(
            float(np.mean(run["success"])), abs=1e-12), name


def test_rerun_recomputes_nothing(smoke):
    out, results = smoke
    stages = sorted((out / "stages").glob("*/stage.json"))
    stamps = {p: p.stat().st_mtime_ns for p in stages}
    again = study.run(out=out, preset="smoke", seed=0, progress=False)
    assert again["stages"]["computed"] == []
    assert again["stages"]["reused"] == results["stages"]["computed"]
    assert {p: p.stat().st_mtime_ns for p in sorted((out / "stages").glob("*/stage.json"))} \
        == stamps
    assert again["model"]["source"] == "trained earlier"
    for name in study.ALL_ATTACKS:
        a, b = results["attacks"][name], again["attacks"][name]
        assert a == b  # every number read back from the stages, none re-timed


def test_perceptual_columns_and_psychoacoustic_row(smoke):
    """Every attack gains the share above the masking threshold (all clips) and a ViSQOL
    column (empty here: ViSQOL refuses the smoke preset's 0.5-s excerpts); the psychoacoustic
    attack is a row of its own with its settings."""
    from jaxaudio.dsp import perceptual

    out, results = smoke
    for name in study.ALL_ATTACKS:
        e, p = results["attacks"][name], _stage(out, f"perceptual_{name}")
        run = _stage(out, f"attack {name} seed 0")
        assert p["share_above_threshold"].shape == run["success"].shape
        assert np.all((p["share_above_threshold"] >= 0) & (p["share_above_threshold"] <= 1))
        ok = run["success"]
        expected = float(p["share_above_threshold"][ok].mean()) if ok.any() else None
        assert e["share_above_threshold_mean"] == pytest.approx(expected)
        assert not p["visqol_scored"].any() and np.all(np.isnan(p["visqol_mos"]))
        assert e["visqol_mos_mean"] is None and e["visqol_n"] == 0
    # The stage's share is the perceptual module's on the written adversarials.
    from jaxaudio.data import pcm16_to_float

    run, aset = _stage(out, "attack psy seed 0"), _stage(out, "attack_set")
    share = perceptual.share_above_threshold(aset["waves"][run["clip_mask"]],
                                             pcm16_to_float(run["adversarial_pcm"]), 16000)
    np.testing.assert_allclose(share, _stage(out, "perceptual_psy")["share_above_threshold"],
                               atol=1e-6)
    psy = results["attacks"]["psy"]
    assert psy["settings"]["stage1"] == "pgd" and psy["targeted"] is False
    assert "ViSQOL" in results["method"]["perceptual"]
    html = (out / "report.html").read_text()
    assert "psychoacoustic (PGD, then masked)" in html and "ViSQOL MOS-LQO" in html


def test_psychoacoustic_option(tmp_path):
    sp, selected = study.study_options("smoke", None, None, None, None, False)
    assert "psy" not in selected and not sp.psychoacoustic
    assert study.study_options("smoke", None, None, None, None)[1] == study.ALL_ATTACKS
    assert study.study_options("smoke", None, None, None, ["psy", "pgd"])[1] == ("pgd", "psy")
    with pytest.raises(ValueError, match="no-psychoacoustic"):
        study.study_options("smoke", None, None, None, ["psy"], False)
    new = study.apply_overrides(study.STUDY_PRESETS["smoke"], ["psy.alpha=0.5"])
    assert new.psy["alpha"] == 0.5
    with pytest.raises(ValueError, match="--set"):
        study.apply_overrides(study.STUDY_PRESETS["smoke"], ["psy.check_every=2.5"])
    import argparse

    parser = argparse.ArgumentParser()
    study.add_arguments(parser)
    assert parser.parse_args(["--out", "x", "--no-psychoacoustic"]).psychoacoustic is False
    assert parser.parse_args(["--out", "x"]).psychoacoustic is None


def test_real_data_runs_on_the_fsdkaggle2019_validation_quarter(tmp_path):
    """``--data FSD_ROOT``: as in the study, the attacked clips are the single-label
    instrument clips of the fixed-seed 25 % validation quarter of the curated set (files in the
    real layout, 44.1 kHz WAV, resampled to 16 kHz)."""
    from test_fsdkaggle import _write_split

    from jaxaudio.data.types import INSTRUMENT_LABELS
    from jaxaudio.training import tasks

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
    out = tmp_path / "out"
    results = study.run(out=out, preset="smoke", seed=0, data=str(root),
                        model=str(model_dir), seeds=1, attacks=["pgd"], progress=False)
    assert results["dataset"] == "fsdkaggle2019"
    # Only the selected attack ran, and only it is reported.
    assert results["attacks_run"] == ["pgd"] and set(results["attacks"]) == {"pgd"}
    assert results["fgsm_sweep"] is None
    assert set(results["noise_control"]) == {"pgd"}
    assert "model" not in results["stages"]["computed"]  # --model: no training stage
    assert "PGD" in (out / "report.html").read_text()
    assert results["attacks"]["pgd"]["n"] == len(quarter)
    np.testing.assert_array_equal(_stage(out, "attack pgd seed 0")["labels"], quarter.labels)


def test_overrides_change_one_attack_and_reject_bad_input(tmp_path):
    sp = study.STUDY_PRESETS["smoke"]
    new = study.apply_overrides(sp, ["pgd.learning_rate=2e-5", "pgd.max_iterations=3",
                                     "fgsm.eps=0.01", "cw.alpha=0.5"])
    assert new.pgd == dict(sp.pgd, learning_rate=2e-5, max_iterations=3)
    assert isinstance(new.pgd["max_iterations"], int)
    assert new.fgsm_eps == 0.01 and new.cw["alpha"] == 0.5 and new.mscw == sp.mscw
    assert study.apply_overrides(sp, None) == sp and sp.pgd["learning_rate"] == 1e-5
    for bad in ("pgd.nope=1", "deepfool.eps=1", "pgd.learning_rate=fast", "pgd.learning_rate",
                "cw_random.alpha=1", "pgd.max_iterations=2.5", "eps=1"):
        with pytest.raises(ValueError, match="--set"):
            study.apply_overrides(sp, [bad])
    with pytest.raises(ValueError, match="--set"):  # before any training
        study.run(out=tmp_path, preset="smoke", overrides=["pgd.lr=1"])


def test_bad_arguments_rejected(tmp_path):
    with pytest.raises(ValueError, match="preset"):
        study.run(out=tmp_path, preset="huge")
    with pytest.raises(ValueError, match="seeds"):
        study.run(out=tmp_path, preset="smoke", seeds=0)
    with pytest.raises(ValueError, match="--num-clips"):
        study.run(out=tmp_path, preset="smoke", num_clips=0)
    for bad in (["pgd", "deepfool"], []):
        with pytest.raises(ValueError, match="attacks"):
            study.run(out=tmp_path, preset="smoke", attacks=bad)


def test_changing_one_attack_setting_recomputes_only_that_attack(smoke):
    """Last: it adds PGD stages to the shared folder."""
    out, results = smoke
    again = study.run(out=out, preset="smoke", seed=0, progress=False,
                      overrides=["pgd.learning_rate=2e-3"])
    computed = set(again["stages"]["computed"])
    assert {"attack pgd seed 0", "attack pgd seed 1"} <= computed
    # The psychoacoustic row started from PGD's adversaries; with PGD's settings changed it runs
    # its own stage 1 (its preset settings), so it is recomputed too.
    psy = {"attack psy seed 0", "noise_psy", "wav_psy", "perceptual_psy"}
    assert computed <= {"attack pgd seed 0", "attack pgd seed 1", "noise_pgd", "wav_pgd",
                        "perceptual_pgd"} | psy and psy <= computed
    assert again["attacks"]["pgd"]["settings"]["learning_rate"] == 2e-3
    for name in ("fgsm", "cw", "cw_random", "mscw"):
        assert again["attacks"][name] == results["attacks"][name]


@pytest.mark.parametrize("name", sorted(set(study.STUDY_PRESETS) - {"paper"}))
def test_presets_change_sizes_only(name):
    """Every preset runs the paper's attack settings; only sizes (clips, excerpt length, seeds,
    iteration budget, sweep points, parallel slots, listening examples) may differ."""
    paper, preset = study.STUDY_PRESETS["paper"], study.STUDY_PRESETS[name]
    assert preset.fgsm_eps == paper.fgsm_eps and preset.cw_target == paper.cw_target
    assert set(preset.fgsm_epsilons) <= set(paper.fgsm_epsilons)
    for attack in ("pgd", "cw", "mscw"):
        mine, published = dict(getattr(preset, attack)), dict(getattr(paper, attack))
        assert mine.pop("max_iterations") <= published.pop("max_iterations")
        assert mine == published, attack
    assert paper.pgd == {"eps": 5e-4, "learning_rate": 1e-5, "max_iterations": 500}
    mine, full = dict(preset.psy), dict(paper.psy)
    for budget in ("stage1_iterations", "max_iterations"):
        assert mine.pop(budget) <= full.pop(budget)
    assert mine == full and preset.psychoacoustic == paper.psychoacoustic
    assert paper.cw["alpha"] == 0.01 and paper.mscw["alpha"] == 10.0


def test_preset_attack_kwargs_budgets_and_psy_reuse():
    sp = study.STUDY_PRESETS["smoke"]
    kw = sp.attack_kwargs(["Gong", "Accordion"], 16000)
    assert kw["cw"] == dict(sp.cw, slots=sp.slots, target=1)
    assert kw["cw_random"]["target"] == kw["mscw"]["target"] == "random"
    assert kw["psy"]["sample_rate"] == 16000 and kw["fgsm"] == {"eps": sp.fgsm_eps}
    with pytest.raises(ValueError, match="C&W target"):
        sp.attack_kwargs(["Gong"], 16000)
    assert sp.max_iterations("fgsm") == 1
    assert sp.max_iterations("cw_random") == sp.cw["max_iterations"]
    assert sp.max_iterations("psy") == sp.psy["stage1_iterations"]
    assert sp.psy_reuses_pgd(("pgd", "psy")) and not sp.psy_reuses_pgd(("psy",))
    changed = study.apply_overrides(sp, ["pgd.learning_rate=2e-3"])
    assert not changed.psy_reuses_pgd(("pgd", "psy"))


def test_file_flags_belong_to_the_command_not_the_study():
    """The study parses no --audio flags; ``jaxaudio attack`` adds them and routes --audio."""
    import argparse

    from jaxaudio.cli import attack_command

    bare = argparse.ArgumentParser()
    study.add_arguments(bare)
    with pytest.raises(SystemExit):
        bare.parse_args(["--out", "x", "--audio", "a.wav"])
    full = argparse.ArgumentParser()
    attack_command.add_arguments(full)
    args = full.parse_args(["--out", "x", "--target", "Gong"])
    with pytest.raises(ValueError, match="--target: used only with --audio"):
        attack_command.run_from_args(args)
    settings = attack_command.file_settings("smoke", ["pgd.max_iterations=3"], 16000)
    assert settings["pgd"]["max_iterations"] == 3 and settings["psy"]["sample_rate"] == 16000
