"""Study 4 end to end at smoke size: stages, results.json, report, CLI errors."""

import json

import numpy as np
import pytest

from jaxaudio import cli
from jaxaudio.studies import recommender as study

ATTACKS = ["mp_aware_closest"]  # the KL attack is covered by tests/test_recommender.py


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    out = tmp_path_factory.mktemp("rec")
    results = study.run(out=out, preset="smoke", progress=False, attacks=ATTACKS)
    return out, results


def test_results_and_report(finished):
    out, results = finished
    on_disk = json.loads((out / "results.json").read_text())
    assert on_disk["study"] == "recommender" and on_disk["preset"] == "smoke"
    n = on_disk["collection"]["num_songs"]
    assert n == study.PRESETS["smoke"].num_songs
    arrays = np.load(out / "arrays" / "hubness.npz")
    for key in ("kl", "mp_gaussian", "mp_empirical"):
        assert arrays[f"k_occurrence_{key}"].sum() == n * study.METHOD["k"]
    assert set(on_disk["summary"]) == set(ATTACKS)
    for s in on_disk["summary"].values():
        assert s["attacked"] == study.PRESETS["smoke"].num_attacked
        assert 0.0 <= s["conversion_rate"] <= 1.0
    assert on_disk["summary"]["mp_aware_closest"]["system"] == "mp_empirical"
    assert on_disk["summary"]["mp_aware_closest"]["objective"] == "mp"
    assert on_disk["noise_control"]["snr_db"] == 40.0
    html = (out / "report.html").read_text()
    assert "Hubness" in html and "published" in html and "k_occurrence.png" in html
    assert (out / "figures" / "k_occurrence.png").is_file()


def test_rerun_reuses_every_stage(finished):
    out, _ = finished
    again = study.run(out=out, preset="smoke", progress=False, attacks=ATTACKS)
    assert again["stages"]["computed"] == []


def test_cli_errors_name_the_flag(tmp_path, capsys):
    assert cli.main(["recommend", "--preset", "smoke", "--audio", str(tmp_path / "nope"),
                     "--out", str(tmp_path / "o")]) == 2
    assert "--audio" in capsys.readouterr().err
    (tmp_path / "empty").mkdir()
    assert cli.main(["recommend", "--preset", "smoke", "--audio", str(tmp_path / "empty"),
                     "--out", str(tmp_path / "o")]) == 2
    assert "--audio" in capsys.readouterr().err
    assert cli.main(["recommend", "--preset", "smoke", "--num-songs", "0",
                     "--out", str(tmp_path / "o")]) == 2
    assert "--num-songs" in capsys.readouterr().err


@pytest.mark.parametrize("kwargs, flag", [
    ({"preset": "huge"}, "--preset"), ({"num_songs": 7}, "--num-songs"),
    ({"num_songs": 2.5}, "--num-songs"), ({"song_seconds": 0}, "--song-seconds"),
    ({"attacks": ["nope"]}, "--attacks"), ({"attacks": []}, "--attacks")])
def test_bad_options_name_the_flag(tmp_path, kwargs, flag):
    with pytest.raises(ValueError, match=flag):
        study.run(out=tmp_path / "o", progress=False, **{"preset": "smoke", **kwargs})
    assert not (tmp_path / "o").exists()  # checked before anything is written
