"""The robustness option of study 1 end to end on a tiny setup: files, schema, report, reuse.

The smoke sizes are cut further for the test (3 clips of 0.25 s, 2 one-epoch members, PGD only)
and the classifier is a freshly initialised smoke network: only the plumbing is checked.
"""

from __future__ import annotations

import json

import pytest

from jaxaudio.dsp import channels
from jaxaudio.studies import attack_robustness as study
from jaxaudio.training import tasks


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    mp = pytest.MonkeyPatch()
    mp.setitem(study.PRESETS, "smoke", study.RobustnessPreset(
        3, 0.25, eot_draws=1, members=2, member_epochs=1, ensemble_sizes=(1, 2)))
    mp.setattr(study, "ROBUST_ATTACKS", ("pgd",))
    root = tmp_path_factory.mktemp("robustness")
    model = tasks.new_classifier("instruments", tasks.preset("instruments", "smoke"),
                                 seed=0).save(root / "model")
    out = root / "out"
    results = study.run(out=out, preset="smoke", seed=0, model=model, progress=False)
    yield out, results, model
    mp.undo()


def test_results_schema(tiny):
    out, results, _ = tiny
    on_disk = json.loads((out / "results.json").read_text())
    assert on_disk["study"] == study.NAME
    part = on_disk["robustness"]
    assert set(part["channels"]) == {"pgd"}
    for variant in ("plain", "robust"):
        table = part["channels"]["pgd"][variant]
        assert list(table) == list(channels.DEFAULT_CHANNELS)
        for entry in table.values():
            assert entry["survival"] is None or 0.0 <= entry["survival"] <= 1.0
            assert 0.0 <= entry["clean_accuracy"] <= 1.0
            assert entry["survivors"] <= entry["num_successful"] <= 3
    cost = part["cost"]["pgd"]
    assert 0.0 <= cost["plain_success_rate"] <= 1.0 and 0.0 <= cost["robust_success_rate"] <= 1
    assert [r["size"] for r in part["ensemble"]] == [1, 2]
    for row in part["ensemble"]:
        for key in ("clean_accuracy", "transferred_fgsm_accuracy", "transferred_pgd_accuracy",
                    "whitebox_fgsm_accuracy", "whitebox_pgd_accuracy"):
            assert 0.0 <= row[key] <= 1.0
    matrix = part["transfer"]["matrix"]
    assert len(matrix) == 3 and all(len(r) == 3 for r in matrix)  # 2 members + source
    assert all(matrix[i][i] is None for i in range(3))
    assert 0.3 < part["members"]["resample_fraction"] < 0.9
    assert set(part["seconds"]) == {"channels", "eot", "ensemble_training", "transfer",
                                    "ensemble"}


def test_report_page(tiny):
    out, _, _ = tiny
    html = (out / "report.html").read_text()
    assert "Channels, robust adversaries and an ensemble defence" in html
    assert "ensemble of 2" in html and "mp3_c0.5" in html
    assert (out / "figures" / "robustness_survival.png").is_file()


def test_rerun_reuses_every_stage(tiny):
    out, _, model = tiny
    again = study.run(out=out, preset="smoke", seed=0, model=model, progress=False)
    assert again["stages"]["computed"] == []
    assert again["robustness"]["ensemble"] == json.loads(
        (out / "results.json").read_text())["robustness"]["ensemble"]


def test_bad_preset_names_the_flag():
    with pytest.raises(ValueError, match="--preset: unknown preset 'huge'"):
        study.run(out="/nonexistent/never-written", preset="huge", progress=False)


def test_arguments_are_the_common_ones():
    import argparse

    parser = argparse.ArgumentParser()
    study.add_arguments(parser)
    args = parser.parse_args(["--out", "x", "--preset", "smoke", "--model", "m", "--no-progress"])
    assert (args.preset, args.model, args.data, args.seed, args.no_progress) == (
        "smoke", "m", None, 0, True)
