"""report.html from results.json, figures and audio; custom sections; the combined index."""

from __future__ import annotations

import html
import json
import re

import numpy as np
import pytest
import soundfile as sf

from jaxaudio.report import combine_reports, register_section, unregister_section, write_report

RESULTS = {
    "study": "toy_study",
    "clean_accuracy": 0.835,
    "num_clips": 200,
    "attacks": {
        "fgsm": {"accuracy": 0.25, "snr_db": -7.7, "iterations": 1},
        "pgd": {"accuracy": 0.17, "snr_db": 40.1, "iterations": 16},
    },
    "settings": {"seed": 3, "preset": "smoke", "model": {"width": 64, "dropout": 0.3}},
    "snr_per_clip": [float(v) for v in np.linspace(0.0, 99.0, 100)],
    "confusion": [[3, 1], [0, 4]],
}


def _tiny_png(path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(1, 1), dpi=20)
    ax.plot([0, 1], [1, 0])
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)


@pytest.fixture
def out_dir(tmp_path):
    (tmp_path / "results.json").write_text(json.dumps(RESULTS))
    _tiny_png(tmp_path / "figures" / "snr_histogram.png")
    _tiny_png(tmp_path / "top_level.png")
    (tmp_path / "audio").mkdir()
    sf.write(tmp_path / "audio" / "clip 7_adversarial.wav", np.zeros(800), 16000)
    return tmp_path


def _tags(page, tag):
    return re.findall(rf"<{tag}\b[^>]*>", page)


def test_report_shows_values_images_and_audio(out_dir):
    path = write_report(out_dir)
    assert path == out_dir / "report.html"
    page = path.read_text()
    assert page.startswith("<!DOCTYPE html>") and "<style>" in page
    assert "<title>toy_study</title>" in page
    for text in ("clean_accuracy", "0.835", "num_clips", "200", "seed", "smoke", "0.3"):
        assert f">{text}<" in page
    img_src = [re.search(r'src="([^"]*)"', t).group(1) for t in _tags(page, "img")]
    assert img_src == ["top_level.png", "figures/snr_histogram.png"]
    audio = _tags(page, "audio")
    assert len(audio) == 1 and "controls" in audio[0]
    assert 'src="audio/clip%207_adversarial.wav"' in audio[0]
    assert "clip 7 adversarial" in page  # label from the file name
    for src in img_src:  # links are relative to the report and point at real files
        assert (out_dir / src).is_file()


def test_dict_of_uniform_dicts_becomes_one_table(out_dir):
    page = write_report(out_dir).read_text()
    table = re.search(r'<section><h3>attacks</h3><table class="wide">(.*?)</table>', page)
    assert table is not None
    header, *rows = re.findall(r"<tr>(.*?)</tr>", table.group(1))
    assert re.findall(r"<th>(.*?)</th>", header) == ["", "accuracy", "snr_db", "iterations"]
    assert [re.search(r"<th>(.*?)</th>", r).group(1) for r in rows] == ["fgsm", "pgd"]
    assert ">40.1<" in rows[1] and ">-7.7<" in rows[0]


def test_long_number_lists_are_shortened_and_matrices_tabled(out_dir):
    page = write_report(out_dir).read_text()
    assert "n = 100" in page and "…" in page
    assert ">49.5<" not in page  # middle values are left out, only head, tail and summary
    assert '<table class="matrix">' in page


def test_all_text_is_escaped(tmp_path):
    evil = "<script>alert('x')</script>"
    (tmp_path / "results.json").write_text(json.dumps({evil: evil, "nested": {evil: [evil]}}))
    page = write_report(tmp_path, title="A & B <c>").read_text()
    assert "<script>" not in page
    assert html.escape(evil) in page
    assert "<title>A &amp; B &lt;c&gt;</title>" in page


def test_registered_section_appears_above_the_generic_tables(out_dir):
    def render(results, where):
        assert where == out_dir
        return f'<p id="custom">headline {results["clean_accuracy"]}</p>'

    register_section("toy_study", render)
    try:
        page = write_report(out_dir).read_text()
    finally:
        unregister_section("toy_study")
    assert '<p id="custom">headline 0.835</p>' in page
    assert page.index('id="custom"') < page.index("<h2>Results</h2>")
    assert 'id="custom"' not in write_report(out_dir).read_text()


def test_figures_and_audio_embedded_by_the_section_are_not_repeated(out_dir):
    def render(results, where):
        return ('<img src="figures/snr_histogram.png">'
                '<audio controls src="audio/clip%207_adversarial.wav"></audio>')

    register_section("toy_study", render)
    try:
        page = write_report(out_dir).read_text()
    finally:
        unregister_section("toy_study")
    img_src = [re.search(r'src="([^"]*)"', t).group(1) for t in _tags(page, "img")]
    assert img_src == ["figures/snr_histogram.png", "top_level.png"]  # section's, then the rest
    assert len(_tags(page, "audio")) == 1
    assert "<h2>Listening examples</h2>" not in page


def test_register_section_rejects_bad_arguments():
    with pytest.raises(ValueError, match="study_name"):
        register_section("", lambda r, p: "")
    with pytest.raises(ValueError, match="render"):
        register_section("x", "not callable")


def test_missing_or_invalid_results_are_rejected(tmp_path):
    with pytest.raises(ValueError, match="results.json"):
        write_report(tmp_path)
    (tmp_path / "results.json").write_text("{not json")
    with pytest.raises(ValueError, match="results.json"):
        write_report(tmp_path)
    (tmp_path / "results.json").write_text("[1, 2]")
    with pytest.raises(ValueError, match="JSON object"):
        write_report(tmp_path)
    with pytest.raises(ValueError, match="out_dir"):
        write_report(tmp_path / "nowhere")


def test_combine_reports_links_children_relatively(out_dir, tmp_path_factory):
    write_report(out_dir)
    index_dir = out_dir.parent
    index = combine_reports(index_dir, {"toy <study>": out_dir})
    page = index.read_text()
    href = re.search(r'<a href="([^"]*)">', page).group(1)
    assert (index_dir / href) == out_dir / "report.html"
    assert "toy &lt;study&gt;" in page and ">0.835<" in page
    with pytest.raises(ValueError, match="not found"):
        combine_reports(index_dir, {"ghost": tmp_path_factory.mktemp("empty")})
