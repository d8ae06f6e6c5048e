"""The ``jaxaudio`` command: train then evaluate a smoke model end to end, and bad input."""

import json

import pytest

from jaxaudio import cli


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    out = tmp_path_factory.mktemp("cli_train")
    rc = cli.main(["train", "--dataset", "synth-instruments", "--preset", "smoke",
                   "--out", str(out)])
    assert rc == 0
    return out


def test_train_writes_model_and_metrics(trained):
    metrics = json.loads((trained / "metrics.json").read_text())
    assert (trained / "model" / "classifier.json").is_file()
    assert 0.0 <= metrics["accuracy"] <= 1.0
    assert metrics["dataset"] == "synth-instruments" and metrics["preset"] == "smoke"
    assert len(metrics["history"]) == metrics["epochs"]


def test_evaluate_reproduces_the_training_run_metrics(trained, tmp_path, capsys):
    rc = cli.main(["evaluate", "--model", str(trained / "model"), "--preset", "smoke",
                   "--out", str(tmp_path)])
    assert rc == 0
    evaluated = json.loads((tmp_path / "metrics.json").read_text())
    from_training = json.loads((trained / "metrics.json").read_text())
    # Same model, same test split: the saved-and-reloaded classifier scores identically.
    for key in ("accuracy", "lwlrap", "roc_auc", "num_clips"):
        assert evaluated[key] == pytest.approx(from_training[key], abs=1e-6), key
    assert '"accuracy"' in capsys.readouterr().out


def test_evaluate_defaults_to_the_training_run_and_keeps_its_metrics(trained, capsys):
    """Without --preset/--seed/--dataset/--out, evaluate uses those train recorded next to the
    model and writes evaluation/metrics.json, leaving train's metrics.json as it was."""
    before = (trained / "metrics.json").read_text()
    assert cli.main(["evaluate", "--model", str(trained / "model")]) == 0
    evaluated = json.loads((trained / "evaluation" / "metrics.json").read_text())
    from_training = json.loads(before)
    assert (evaluated["preset"], evaluated["seed"], evaluated["dataset"]) == (
        "smoke", 0, "synth-instruments")
    assert evaluated["num_clips"] == from_training["num_clips"]
    assert evaluated["accuracy"] == pytest.approx(from_training["accuracy"], abs=1e-6)
    assert (trained / "metrics.json").read_text() == before
    capsys.readouterr()


def test_evaluate_missing_model_is_a_clear_error(tmp_path, capsys):
    rc = cli.main(["evaluate", "--model", str(tmp_path / "nope"), "--preset", "smoke"])
    assert rc == 2
    err = capsys.readouterr().err
    assert "jaxaudio: error:" in err and "nope" in err


def test_real_dataset_without_data_is_a_clear_error(tmp_path, capsys):
    rc = cli.main(["train", "--dataset", "fsdkaggle2019", "--preset", "smoke",
                   "--out", str(tmp_path / "run")])
    assert rc == 2
    assert "--data" in capsys.readouterr().err


def test_song_evaluation_raw_and_median_filtered():
    from jaxaudio.training import tasks
    from jaxaudio.models import inference

    p = tasks.preset("voice", "smoke")
    songs = tasks.load_split("synth-voice", "test", preset_name="smoke", seed=0)
    clf = tasks.new_classifier("voice", p, seed=0)
    step = 20
    plain = inference.evaluate_songs(clf, songs, frame_step=step, median_seconds=0)
    assert "accuracy_median_filtered" not in plain
    # A median over less than one step is the identity: same accuracy as the raw frames.
    one = 0.5 * step * clf.frontend.hop_length / clf.frontend.sample_rate
    same = inference.evaluate_songs(clf, songs, frame_step=step, median_seconds=one)
    assert same["accuracy_median_filtered"] == pytest.approx(plain["accuracy"])
    smoothed = inference.evaluate_songs(clf, songs, frame_step=step, median_seconds=2.0)
    assert 0.0 <= smoothed["accuracy_median_filtered"] <= 1.0
    assert plain["num_frames"] == len(range(0, 1 + len(songs.waves[0]) // clf.frontend.hop_length,
                                            step))


def test_report_redraws_a_demo_folder_from_its_files(trained, tmp_path, capsys):
    """``jaxaudio report`` on a demo-shaped folder: the foundation page (table + training
    curve drawn from metrics.json) and the index, identical when drawn twice."""
    import shutil

    foundation = tmp_path / "foundation"
    (foundation / "instruments").mkdir(parents=True)
    shutil.copy(trained / "metrics.json", foundation / "instruments" / "metrics.json")
    (foundation / "results.json").write_text(json.dumps(
        {"study": "foundation", "title": "two classifiers", "classifiers": ["instruments"],
         "headline": "test accuracy: instruments x"}))
    (tmp_path / "index.json").write_text(json.dumps(
        {"title": "demo", "parts": {"foundation": "foundation"}}))
    assert cli.main(["report", str(tmp_path)]) == 0
    page = (foundation / "report.html").read_text()
    accuracy = json.loads((trained / "metrics.json").read_text())["accuracy"]
    assert f"{accuracy:.3f}" in page and "figures/instruments_training.png" in page
    assert (foundation / "figures" / "instruments_training.png").is_file()
    assert "test accuracy: instruments x" in (tmp_path / "index.html").read_text()
    assert cli.main(["report", str(tmp_path)]) == 0
    assert (foundation / "report.html").read_text() == page
    assert cli.main(["report", str(tmp_path / "nowhere")]) == 2
    assert "neither results.json" in capsys.readouterr().err


@pytest.mark.parametrize("argv, flag", [
    (["train", "--dataset", "synth-instruments", "--out", "OUT", "--epochs", "0"], "--epochs"),
    (["train", "--dataset", "synth-instruments", "--out", "OUT", "--epochs", "-3"], "--epochs"),
    (["attack", "--out", "OUT", "--seed", "-1"], "--seed"),
    (["attack", "--out", "OUT", "--num-clips", "0"], "--num-clips"),
    (["noise", "--out", "OUT", "--seeds", "0"], "--seeds"),
    (["audit", "--out", "OUT", "--num-samples", "0"], "--num-samples"),
    (["audit", "--out", "OUT", "--per-direction", "0"], "--per-direction"),
    (["evaluate", "--model", "OUT", "--data", "OUT"], "--dataset"),
    (["noise", "--out", "FILE"], "--out"),
])
def test_bad_arguments_are_refused_before_any_work(argv, flag, tmp_path, capsys):
    (tmp_path / "file.txt").write_text("not a folder")
    argv = [str(tmp_path / "file.txt") if a == "FILE" else str(tmp_path / "run") if a == "OUT"
            else a for a in argv]
    assert cli.main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("jaxaudio: error:") and flag in err and "Traceback" not in err
    assert not (tmp_path / "run").exists()  # nothing was started


def test_unknown_study_in_only_and_version(capsys):
    with pytest.raises(SystemExit) as exit_:
        cli.main(["demo", "--only", "atack"])
    assert exit_.value.code == 2 and "invalid choice: 'atack'" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_:
        cli.main(["--version"])
    assert exit_.value.code == 0 and capsys.readouterr().out.startswith("jaxaudio ")


def test_model_of_another_task_is_refused(trained, capsys):
    rc = cli.main(["evaluate", "--model", str(trained / "model"), "--dataset", "synth-voice",
                   "--preset", "smoke"])
    assert rc == 2 and "is an instrument classifier" in capsys.readouterr().err


def test_ctrl_c_prints_one_line_and_exits_130(monkeypatch, tmp_path, capsys):
    def interrupted(args):
        raise KeyboardInterrupt

    monkeypatch.setattr(cli, "cmd_report", interrupted)
    assert cli.main(["report", str(tmp_path)]) == 130
    err = capsys.readouterr().err.strip()
    assert err.startswith("jaxaudio: interrupted") and "\n" not in err


def test_readme_python_blocks_run_as_written(trained, tmp_path, monkeypatch):
    """Every ```python block of the README runs, in a folder holding the files it names
    (``runs/inst/model`` = a smoke model trained by ``jaxaudio train``, ``my_clip.wav``)."""
    import pathlib
    import re

    import numpy as np
    import soundfile as sf

    readme = (pathlib.Path(__file__).parents[1] / "README.md").read_text()
    blocks = re.findall(r"```python\n(.*?)```", readme, flags=re.S)
    assert blocks, "the README has no Python example"
    (tmp_path / "runs").mkdir()
    (tmp_path / "runs" / "inst").symlink_to(trained, target_is_directory=True)
    t = np.arange(3 * 44100) / 44100
    sf.write(tmp_path / "my_clip.wav", np.stack([0.3 * np.sin(2 * np.pi * 440 * t)] * 2, 1),
             44100)  # stereo 44.1 kHz: load_audio mixes and resamples
    monkeypatch.chdir(tmp_path)
    spaces = []
    for code in blocks:
        spaces.append({})
        exec(compile(code, "README.md", "exec"), spaces[-1])
    result = next(ns["result"] for ns in spaces if "result" in ns)
    from jaxaudio.models import Classifier

    mine = Classifier.load(tmp_path / "runs" / "mine" / "model")  # the "your own model" block
    assert mine.model_name == "my_net" and mine.logits(np.zeros((1, 16000), np.float32)).shape == (
        1, 12)
    assert np.asarray(result.success).shape == (1,)
    saved, rate = sf.read(tmp_path / "my_clip.adversarial.wav", dtype="float32")
    assert rate == 16000 and sf.info(tmp_path / "my_clip.adversarial.wav").subtype == "PCM_16"
    np.testing.assert_allclose(saved, np.asarray(result.adversarial)[0], atol=1 / 32768)


def test_foundation_page_shows_the_voice_errors_next_to_the_published_and_linear(tmp_path):
    from jaxaudio.report import foundation as fpage

    folder = tmp_path / "foundation"
    (folder / "voice").mkdir(parents=True)
    (folder / "voice" / "metrics.json").write_text(json.dumps(
        {"accuracy": 0.9, "error": 0.1, "accuracy_median_filtered": 0.92,
         "error_median_filtered": 0.08, "median_filter_seconds": 0.8, "threshold": 0.51,
         "linear_baseline": {"error": 0.27, "error_median_filtered": 0.25},
         "dataset": "synth-voice", "epochs": 20, "seconds": 200.0, "history": []}))
    html = fpage.render(folder, {"classifiers": ["voice"]})
    assert "frame error 10.0 %, 8.0 % after the 0.8 s median filter (p(sing) &gt; 0.51)" in \
        html or "frame error 10.0 %, 8.0 % after the 0.8 s median filter (p(sing) > 0.51)" in html
    assert "linear baseline (one log-mel frame) 27.0 %" in html
    assert "11.54 ± 0.96 %" in html


def test_every_flag_has_help():
    import argparse

    parser = cli.build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    missing = [(name, a.option_strings or a.dest) for name, sp in sub.choices.items()
               for a in sp._actions if a.help is None and a.dest != "help"]
    assert missing == []


def test_preset_choices_are_listed_in_one_order():
    import argparse

    sub = next(a for a in cli.build_parser()._actions
               if isinstance(a, argparse._SubParsersAction))
    orders = {name: tuple(a.choices) for name, sp in sub.choices.items() for a in sp._actions
              if "--preset" in a.option_strings}
    assert set(orders.values()) == {("smoke", "demo", "paper")}, orders


def test_file_system_errors_are_one_line(monkeypatch, tmp_path, capsys):
    def refused(args):
        raise PermissionError(13, "Permission denied", str(tmp_path / "out"))

    monkeypatch.setattr(cli, "cmd_report", refused)
    assert cli.main(["report", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert err == f"jaxaudio: error: Permission denied: {tmp_path / 'out'}"


def test_demo_runs_the_foundation_and_leaves_study_options_out(tmp_path, monkeypatch):
    """`jaxaudio demo --only` (no study) trains both smoke classifiers through cmd_train as the
    demo calls it; the default study list leaves the NOT_IN_DEMO options out."""
    ran = []
    for command, module, *_ in cli.STUDY_COMMANDS:
        monkeypatch.setattr(cli._study(module), "run", lambda module=module, **kw: ran.append(module))
    monkeypatch.setattr(cli, "STUDY_COMMANDS", tuple(
        row for row in cli.STUDY_COMMANDS if row[0] in cli.NOT_IN_DEMO))
    out = tmp_path / "demo"
    assert cli.main(["demo", "--preset", "smoke", "--out", str(out)]) == 0
    for name in ("instruments", "voice"):
        assert (out / "foundation" / name / "metrics.json").exists()
    assert ran == []  # the robustness option is not part of the demo unless --only names it
