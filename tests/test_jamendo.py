"""Jamendo-VAD loader on tiny fixtures in Schlüter & Lehner's layout.

``audio/`` (ogg/wav), ``labels/*.lab``, ``filelists/train|valid|test``.
"""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf

from jaxaudio.data.jamendo import load_jamendo, read_lab
from jaxaudio.data.types import SongDataset

FILE_RATE = 22050
SONG_SECONDS = 0.5

LAB_A = """0 0.1 nosing
0.1 0.2 sing
0.2\t0.3  sing

0.35 0.4 sing
0.4 0.5 nosing
"""
LAB_B = "0 0.5 nosing\n"
LAB_C = "0.0 0.25 sing\n0.25 0.5 nosing\n"


def _song(seed):
    rng = np.random.default_rng(seed)
    return (0.3 * rng.standard_normal(int(SONG_SECONDS * FILE_RATE))).clip(-1, 1)


@pytest.fixture
def jamendo_root(tmp_path):
    audio, labels, lists = (tmp_path / d for d in ("audio", "labels", "filelists"))
    for d in (audio, labels, lists):
        d.mkdir()
    sf.write(audio / "01 - Song A.ogg", _song(0), FILE_RATE, format="OGG", subtype="VORBIS")
    sf.write(audio / "02 - Song B.wav", _song(1), FILE_RATE, subtype="PCM_16")
    # Listed as .mp3 (like the original release) but converted to WAV on disk: found by stem.
    sf.write(audio / "03 - Song C.wav", _song(2), FILE_RATE, subtype="PCM_16")
    (labels / "01 - Song A.lab").write_text(LAB_A)
    (labels / "02 - Song B.lab").write_text(LAB_B)
    (labels / "03 - Song C.lab").write_text(LAB_C)
    (lists / "train").write_text("01 - Song A.ogg\n02 - Song B.wav\n\n")
    (lists / "valid").write_text("03 - Song C.mp3\n")
    return tmp_path


def test_train_split_loads_songs_in_filelist_order(jamendo_root):
    ds = load_jamendo(jamendo_root, split="train", sample_rate=8000, progress=False)
    assert isinstance(ds, SongDataset)
    assert ds.names == ("01 - Song A", "02 - Song B")
    assert ds.sample_rate == 8000
    for wave in ds.waves:
        assert wave.dtype == np.float32 and wave.ndim == 1
        assert abs(len(wave) - SONG_SECONDS * 8000) <= 1


def test_segments_are_merged_sing_intervals(jamendo_root):
    ds = load_jamendo(jamendo_root, split="train", sample_rate=8000, progress=False)
    np.testing.assert_allclose(ds.segments[0], [[0.1, 0.3], [0.35, 0.4]])
    assert ds.segments[1].shape == (0, 2)  # a song without singing


def test_frame_labels_follow_the_lab_file(jamendo_root):
    ds = load_jamendo(jamendo_root, split="valid", sample_rate=8000, progress=False)
    frames = ds.frame_labels(0, hop_length=400)  # 20 frames/s
    times = np.arange(len(frames)) * 400 / 8000
    np.testing.assert_array_equal(frames, (times < 0.25).astype(np.float32))


def test_audio_is_found_by_stem_when_the_extension_differs(jamendo_root):
    ds = load_jamendo(jamendo_root, split="valid", sample_rate=8000, progress=False)
    assert ds.names == ("03 - Song C",)


def test_progress_bar_only_when_asked(jamendo_root, capsys):
    load_jamendo(jamendo_root, split="valid", sample_rate=8000, progress=False)
    assert capsys.readouterr().err == ""
    load_jamendo(jamendo_root, split="valid", sample_rate=8000, progress=True)
    assert "Jamendo valid" in capsys.readouterr().err


def test_read_lab_merges_overlaps_and_drops_empty_segments(tmp_path):
    path = tmp_path / "x.lab"
    path.write_text("1.0 2.0 sing\n0.5 1.5 sing\n3 3 sing\n4 5 sing\n2 4 nosing\n")
    np.testing.assert_allclose(read_lab(path), [[0.5, 2.0], [4.0, 5.0]])


# ----------------------------------------------------------------------------- errors


def test_missing_filelist_names_the_path(jamendo_root):
    with pytest.raises(ValueError, match=r"filelists[/\\]test"):
        load_jamendo(jamendo_root, split="test", progress=False)


def test_listed_song_missing_from_audio_names_it(jamendo_root):
    (jamendo_root / "filelists" / "test").write_text("04 - Ghost.mp3\n")
    with pytest.raises(ValueError, match=r"'04 - Ghost\.mp3'.*filelists[/\\]test"):
        load_jamendo(jamendo_root, split="test", progress=False)


def test_missing_lab_file_names_the_path(jamendo_root):
    (jamendo_root / "labels" / "02 - Song B.lab").unlink()
    with pytest.raises(ValueError, match=r"labels[/\\]02 - Song B\.lab"):
        load_jamendo(jamendo_root, split="train", progress=False)


@pytest.mark.parametrize("line, match", [
    ("0.1 0.2", "expected 'start end sing|nosing'"),
    ("0.1 0.2 sing extra", "expected 'start end sing|nosing'"),
    ("a 0.2 sing", "numbers"),
    ("0.3 0.2 sing", "start <= end"),
    ("-1 0.2 sing", "start <= end"),
    ("0.1 nan sing", "finite"),
    ("0.1 0.2 singing", "'sing' or 'nosing'"),
])
def test_malformed_lab_line_names_file_and_line(jamendo_root, line, match):
    (jamendo_root / "labels" / "02 - Song B.lab").write_text(f"0 0.1 nosing\n{line}\n")
    with pytest.raises(ValueError, match=rf"02 - Song B\.lab, line 2.*{match}"):
        load_jamendo(jamendo_root, split="train", progress=False)


def test_corrupt_audio_is_rejected_with_its_path(jamendo_root):
    (jamendo_root / "audio" / "02 - Song B.wav").write_bytes(b"RIFF garbage")
    with pytest.raises(ValueError, match=r"02 - Song B\.wav"):
        load_jamendo(jamendo_root, split="train", progress=False)


def test_empty_filelist_is_rejected(jamendo_root):
    (jamendo_root / "filelists" / "test").write_text("\n\n")
    with pytest.raises(ValueError, match="lists no files"):
        load_jamendo(jamendo_root, split="test", progress=False)


@pytest.mark.parametrize("kwargs, match", [
    ({"split": "validation"}, "split"),
    ({"split": "train", "sample_rate": -1}, "sample_rate"),
])
def test_bad_arguments_are_rejected(jamendo_root, kwargs, match):
    with pytest.raises(ValueError, match=match):
        load_jamendo(jamendo_root, progress=False, **kwargs)
