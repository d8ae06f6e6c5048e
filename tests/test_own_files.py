"""The commands on the user's own files: ``jaxaudio predict``, ``explain``, ``attack --audio``."""

from __future__ import annotations

import csv
import pathlib

import numpy as np
import pytest
import soundfile as sf

from jaxaudio import cli
from jaxaudio.data.audio import collect_audio
from jaxaudio.data.types import INSTRUMENT_LABELS, ClipDataset
from jaxaudio.models import inference
from jaxaudio.models.inference import clip_probabilities, predict_files, sing_segments
from jaxaudio.training import tasks


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    root = tmp_path_factory.mktemp("audio")
    (root / "sub").mkdir()
    t = np.arange(int(1.2 * 44100)) / 44100
    sf.write(root / "stereo_44k.wav", np.stack([0.3 * np.sin(2 * np.pi * 440 * t)] * 2, 1),
             44100, subtype="PCM_16")
    t = np.arange(8000 * 2) / 8000
    sf.write(root / "sub" / "mono_8k.flac", 0.2 * np.sin(2 * np.pi * 220 * t), 8000,
             subtype="PCM_16")
    (root / "notes.txt").write_text("not audio")
    return root


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    clf = tasks.new_classifier("instruments", tasks.preset("instruments", "smoke"), seed=0)
    return clf, clf.save(tmp_path_factory.mktemp("model") / "model")


def test_collect_audio_skips_other_files_and_names_the_flag(files, tmp_path):
    found, skipped = collect_audio([files])
    assert [f.name for f in found] == ["stereo_44k.wav", "mono_8k.flac"] and skipped == 1
    with pytest.raises(ValueError, match="--audio .*no such file"):
        collect_audio([tmp_path / "missing.wav"])
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="no audio files"):
        collect_audio([tmp_path / "empty"])


def test_clip_probabilities_match_the_evaluation_and_files_are_resampled(files, model_dir):
    clf, _ = model_dir
    rng = np.random.default_rng(0)
    waves = [rng.uniform(-0.3, 0.3, n).astype(np.float32) for n in (3000, 20000)]
    probs = clip_probabilities(clf, waves)
    np.testing.assert_allclose(probs.sum(1), 1.0, atol=1e-5)
    ds = ClipDataset(waves=waves, targets=np.eye(12, dtype=np.float32)[[0, 1]],
                     labels=np.array([0, 1], np.int32), label_names=INSTRUMENT_LABELS,
                     sample_rate=16000, names=("a", "b"))
    np.testing.assert_allclose(inference.clip_scores(clf, ds), probs, atol=1e-6)
    rows = predict_files(clf, collect_audio([files])[0], top=2, progress=False)
    assert [r["rate"] for r in rows] == [44100, 8000]
    assert [round(r["seconds"], 2) for r in rows] == [1.2, 2.0]  # durations kept at 16 kHz
    for r in rows:
        assert len(r["top"]) == 2 and r["top"][0][1] >= r["top"][1][1]
        assert r["top"][0][0] in INSTRUMENT_LABELS


def test_sing_segments_after_the_median_filter():
    p = np.zeros(100)
    p[20:50] = 0.9
    p[30] = 0.0  # one dip: removed by the median filter
    p[70:72] = 0.9  # a blip shorter than the filter: removed
    p[80:] = 0.52  # above 0.51 to the end
    segs = sing_segments(p, frames_per_second=10.0, median_seconds=0.5, threshold=0.51)
    assert segs == [(2.0, 5.0), (8.0, 10.0)]
    assert sing_segments(p, frames_per_second=10.0, median_seconds=0.5, threshold=0.6) == [
        (2.0, 5.0)]


def test_predict_command_writes_the_csv(files, model_dir, tmp_path, capsys):
    _, path = model_dir
    assert cli.main(["predict", "--model", str(path), "--audio", str(files), "--out",
                     str(tmp_path), "--no-progress", "--top", "3"]) == 0
    out = capsys.readouterr().out
    assert "stereo_44k.wav" in out and "skipped 1 non-audio" in out
    rows = list(csv.DictReader(open(tmp_path / "predictions.csv")))
    assert [r["rate"] for r in rows] == ["44100", "8000"]
    assert all(0 <= float(r["probability_1"]) <= 1 for r in rows) and "label_3" in rows[0]
    assert cli.main(["predict", "--model", str(tmp_path), "--audio", str(files), "--out",
                     str(tmp_path)]) == 2
    assert "--model" in capsys.readouterr().err


def test_voice_detector_gives_sung_segments(files):
    clf = tasks.new_classifier("voice", tasks.preset("voice", "smoke"), seed=0)
    rows = predict_files(clf, [files / "stereo_44k.wav"], progress=False)
    (row,) = rows
    assert 0.0 <= row["sing_fraction"] <= 1.0
    assert all(0.0 <= a < b <= row["seconds"] + 1.0 for a, b in row["segments"])
    assert "top" not in row


def test_explain_command_on_a_file(files, model_dir, tmp_path, capsys):
    import json

    clf, path = model_dir
    wav = files / "stereo_44k.wav"
    for method in ("lime", "occlusion", "integrated-gradients"):
        out = tmp_path / method
        assert cli.main(["explain", "--model", str(path), "--audio", str(wav), "--start", "0.2",
                         "--method", method, "--num-samples", "64", "--label", "Gong",
                         "--out", str(out), "--no-progress"]) == 0
        rec = json.loads((out / "explanation.json").read_text())
        assert rec["label"] == "Gong" and len(rec["weights"]) == 20
        assert sorted(rec["ranking"]) == list(range(20))
        assert rec["weights"][rec["ranking"][0]] == max(rec["weights"])
        assert (rec["fidelity_r2"] is None) == (method != "lime")
        assert (out / "explanation.png").stat().st_size > 1000
    for bad, flag in ((["--start", "5"], "--start"), (["--label", "Tuba"], "--label")):
        assert cli.main(["explain", "--model", str(path), "--audio", str(wav), "--out",
                         str(tmp_path / "x"), *bad]) == 2
        assert flag in capsys.readouterr().err


def test_attack_command_on_files_writes_verified_adversaries(files, model_dir, tmp_path, capsys):
    from jaxaudio.attacks.evaluation import predict
    from jaxaudio.data import load_audio

    clf, path = model_dir
    out = tmp_path / "att"
    assert cli.main(["attack", "--model", str(path), "--audio", str(files), "--out", str(out),
                     "--attack", "cw", "--target", "Accordion", "--preset", "smoke",
                     "--set", "cw.learning_rate=1e-3", "--no-progress"]) == 0
    assert "skipped 1 non-audio" in capsys.readouterr().out
    rows = list(csv.DictReader(open(out / "attacks.csv")))
    assert [pathlib.Path(r["file"]).name for r in rows] == ["stereo_44k.wav", "mono_8k.flac"]
    for r in rows:
        assert r["target"] == "Accordion" and r["attack"] == "cw"
        wave, rate = load_audio(r["adversarial_wav"])
        assert rate == 16000 and sf.info(r["adversarial_wav"]).subtype == "PCM_16"
        again = clf.label_names[int(predict(clf, wave[None].astype(np.float32))[0])]
        assert again == r["prediction_after"]  # the reported prediction is the file's
        assert (r["success"] == "True") == (again == "Accordion")
        assert float(r["snr_db"]) > 0
        assert (out / "audio" / (pathlib.Path(r["file"]).stem + ".perturbation.wav")).is_file()


@pytest.mark.parametrize("extra, flag", [
    (["--label", "Tuba"], "--label"),
    (["--target", "Tuba"], "--target"),
    (["--attack", "pgd", "--label", "Gong", "--target", "Gong"], "--target"),
    (["--labels", "missing.csv"], "--labels"),
    (["--label", "Gong", "--labels", "x.csv"], "--label or --labels"),
    (["--max-seconds", "0.5"], "--max-seconds"),
])
def test_attack_on_files_bad_input_names_the_flag(files, model_dir, tmp_path, capsys, extra,
                                                  flag):
    _, path = model_dir
    code = cli.main(["attack", "--model", str(path), "--audio", str(files / "stereo_44k.wav"),
                     "--out", str(tmp_path), "--preset", "smoke", *extra])
    assert code == 2 and flag in capsys.readouterr().err


def test_attack_on_files_needs_a_model(files, tmp_path, capsys):
    assert cli.main(["attack", "--audio", str(files), "--out", str(tmp_path)]) == 2
    assert "--model" in capsys.readouterr().err


def test_attack_on_files_reads_labels_csv(files, model_dir, tmp_path):
    _, path = model_dir
    table = tmp_path / "labels.csv"
    table.write_text("fname,label\nstereo_44k.wav,Harmonica\nmono_8k.flac,Gong\n")
    assert cli.main(["attack", "--model", str(path), "--audio", str(files), "--out",
                     str(tmp_path / "o"), "--labels", str(table), "--attack", "fgsm",
                     "--preset", "smoke"]) == 0
    rows = list(csv.DictReader(open(tmp_path / "o" / "attacks.csv")))
    assert [(r["label"], r["label_given"]) for r in rows] == [("Harmonica", "True"),
                                                              ("Gong", "True")]
    table.write_text("fname,label\nstereo_44k.wav,Harmonica\n")  # a file without a row
    assert cli.main(["attack", "--model", str(path), "--audio", str(files), "--out",
                     str(tmp_path / "p"), "--labels", str(table), "--preset", "smoke"]) == 2


def test_file_flags_without_audio_are_refused(tmp_path, capsys):
    assert cli.main(["attack", "--preset", "smoke", "--out", str(tmp_path), "--label",
                     "Gong"]) == 2
    assert "used only with --audio" in capsys.readouterr().err


def test_psychoacoustic_attack_on_a_file(files, model_dir, tmp_path):
    from jaxaudio.attacks.evaluation import predict
    from jaxaudio.data import load_audio

    clf, path = model_dir
    out = tmp_path / "psy"
    wav = files / "sub" / "mono_8k.flac"
    assert cli.main(["attack", "--model", str(path), "--audio", str(wav), "--out", str(out),
                     "--attack", "psy", "--preset", "smoke", "--no-progress"]) == 0
    (row,) = list(csv.DictReader(open(out / "attacks.csv")))
    assert row["attack"] == "psy" and row["target"] == ""
    adversarial, _ = load_audio(row["adversarial_wav"])
    clean, _ = load_audio(wav, sample_rate=16000)
    clean = np.round(np.clip(clean, -1, 1) * 32768) / 32768  # the 16-bit input it attacked
    # Both stages stay in the smoke preset's L-infinity ball (5e-4), up to one 16-bit step.
    assert np.abs(adversarial - clean).max() <= 5e-4 + 1.5 / 32768
    again = clf.label_names[int(predict(clf, adversarial[None].astype(np.float32))[0])]
    assert again == row["prediction_after"]
    assert (row["success"] == "True") == (again != row["prediction_before"])
