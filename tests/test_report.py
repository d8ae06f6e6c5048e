"""report.html from files: the generic page of an unknown study, the shared page pieces, the
combined index and redrawing a folder."""

from __future__ import annotations

import html
import json
import re

import numpy as np
import pytest
import soundfile as sf

from jaxaudio.report import combine_reports, page, redraw, write_report

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
    fig, ax = page.new_figure(1, 1)
    ax.plot([0, 1], [1, 0])
    page.save_figure(fig, path, dpi=20)


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


def test_missing_or_invalid_results_are_rejected(tmp_path):
    with pytest.raises(ValueError, match="results.json"):
        write_report(tmp_path)
    (tmp_path / "results.json").write_text("{not json")
    with pytest.raises(ValueError, match="results.json"):
        write_report(tmp_path)
    (tmp_path / "results.json").write_text("[1, 2]")
    with pytest.raises(ValueError, match="JSON object"):
        write_report(tmp_path)
    with pytest.raises(ValueError, match="folder not found"):
        write_report(tmp_path / "nowhere")


def test_combine_reports_links_children_relatively(out_dir, tmp_path_factory):
    write_report(out_dir)
    index_dir = out_dir.parent
    results = dict(RESULTS, headline="accuracy 0.835 -> 0.17")
    (out_dir / "results.json").write_text(json.dumps(results))
    index = combine_reports(index_dir, {"toy <study>": out_dir})
    text = index.read_text()
    href = re.search(r'<a href="([^"]*)">', text).group(1)
    assert (index_dir / href) == out_dir / "report.html"
    assert "toy &lt;study&gt;" in text and "accuracy 0.835 -&gt; 0.17" in text
    with pytest.raises(ValueError, match="not found"):
        combine_reports(index_dir, {"ghost": tmp_path_factory.mktemp("empty")})


def test_page_pieces_escape_and_link(out_dir):
    fig = page.figure(out_dir, out_dir / "figures" / "snr_histogram.png", "read <this>",
                      title="SNR")
    assert '<a href="figures/snr_histogram.png"><img src="figures/snr_histogram.png"' in fig
    assert "read &lt;this&gt;" in fig and "<b>SNR.</b>" in fig
    assert "figure missing" in page.figure(out_dir, out_dir / "nope.png", "x")
    box = page.listening(out_dir, [{"title": "clip 7", "facts": {"true": "Piano", "SNR": 41.234},
                                    "players": [("original", out_dir / "audio" / "none.wav"),
                                                ("adversarial", out_dir / "audio" /
                                                 "clip 7_adversarial.wav")]}])
    assert box.count("<audio") == 1 and "41.23" in box and "Piano" in box
    assert page.warnings([]) == ""
    assert "clean accuracy 0.1" in page.warnings(["clean accuracy 0.1"])
    t = page.table(["a", "b"], [["x", 0.5]], published=[["paper", "0.4"]])
    assert '<tr class="published">' in t and '<td class="num">0.5</td>' in t
    folded = page.raw_numbers(RESULTS)
    assert folded.startswith("<details>") and "clean_accuracy" in folded


def test_redraw_study_and_demo_folders(out_dir):
    first = write_report(out_dir).read_text()
    assert redraw(out_dir) == [out_dir / "report.html"]
    assert (out_dir / "report.html").read_text() == first
    demo = out_dir.parent
    (demo / "index.json").write_text(json.dumps({"title": "demo",
                                                 "parts": {"toy": out_dir.name}}))
    written = redraw(demo)
    assert written[-1] == demo / "index.html" and written[0] == out_dir / "report.html"
    with pytest.raises(ValueError, match="neither results.json"):
        redraw(out_dir / "figures")
