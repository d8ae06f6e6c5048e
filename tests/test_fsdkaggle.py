"""FSDKaggle2019 loader on tiny fixtures in the real on-disk layout (CSV + 44.1 kHz WAV)."""

from __future__ import annotations

import csv

import numpy as np
import pytest
import soundfile as sf

from jaxaudio.data.fsdkaggle import (
    FSDKAGGLE2019_LABELS,
    fsdkaggle_split,
    load_fsdkaggle2019,
    read_fsdkaggle_csv,
)
from jaxaudio.data.types import INSTRUMENT_LABELS, ClipDataset

FILE_RATE = 44100
CLIP_SECONDS = 0.2

CURATED_ROWS = [
    ("a.wav", "Accordion"),
    ("b.wav", "Bass_guitar,Strum"),  # instrument + non-instrument label
    ("c.wav", "Bark"),  # no instrument label
    ("d.wav", "Gong"),
    ("e.wav", "Accordion,Gong"),  # two instrument labels
    ("f.wav", "Hi-hat"),
]


def _write_split(root, csv_name, audio_name, rows, *, extra_columns=("freesound_id", "license"),
                 write_audio=True):
    meta = root / "FSDKaggle2019.meta"
    meta.mkdir(parents=True, exist_ok=True)
    with open(meta / csv_name, "w", newline="") as f:
        writer = csv.writer(f)  # quotes "a,b" label lists, like the real files
        writer.writerow(["fname", "labels", *extra_columns])
        for i, (fname, labels) in enumerate(rows):
            writer.writerow([fname, labels, *[f"{col}-{i}" for col in extra_columns]])
    audio = root / audio_name
    audio.mkdir(parents=True, exist_ok=True)
    if write_audio:
        t = np.arange(int(CLIP_SECONDS * FILE_RATE)) / FILE_RATE
        for i, (fname, _) in enumerate(rows):
            wave = 0.5 * np.sin(2 * np.pi * (200 + 100 * i) * t)
            sf.write(audio / fname, wave, FILE_RATE, subtype="PCM_16")


@pytest.fixture
def fsd_root(tmp_path):
    _write_split(tmp_path, "train_curated_post_competition.csv",
                 "FSDKaggle2019.audio_train_curated", CURATED_ROWS)
    _write_split(tmp_path, "train_noisy_post_competition.csv",
                 "FSDKaggle2019.audio_train_noisy",
                 [("n1.wav", "Marimba_and_xylophone"), ("n2.wav", "Male_singing,Female_singing")])
    _write_split(tmp_path, "test_post_competition.csv", "FSDKaggle2019.audio_test",
                 [("t1.wav", "Harmonica"), ("t2.wav", "Writing")],
                 extra_columns=("usage", "freesound_id", "license"))
    return tmp_path


def test_vocabulary_has_80_sorted_unique_labels_including_instruments():
    assert len(FSDKAGGLE2019_LABELS) == 80
    assert len(set(FSDKAGGLE2019_LABELS)) == 80
    assert list(FSDKAGGLE2019_LABELS) == sorted(FSDKAGGLE2019_LABELS)
    assert set(INSTRUMENT_LABELS) <= set(FSDKAGGLE2019_LABELS)


def test_single_label_keeps_clips_whose_only_label_is_an_instrument(fsd_root):
    ds = load_fsdkaggle2019(fsd_root, split="curated", progress=False)
    assert isinstance(ds, ClipDataset)
    assert ds.names == ("a.wav", "d.wav", "f.wav")
    assert ds.label_names == INSTRUMENT_LABELS
    expected = [INSTRUMENT_LABELS.index(n) for n in ("Accordion", "Gong", "Hi-hat")]
    np.testing.assert_array_equal(ds.labels, expected)
    np.testing.assert_array_equal(ds.targets, np.eye(12, dtype=np.float32)[expected])
    assert ds.sample_rate == 16000
    for wave in ds.waves:
        assert wave.dtype == np.float32 and wave.ndim == 1
        assert abs(len(wave) - CLIP_SECONDS * 16000) <= 1
        assert np.max(np.abs(wave)) <= 1.0


def test_multi_label_keeps_any_instrument_clip_with_multi_hot_targets(fsd_root):
    ds = load_fsdkaggle2019(fsd_root, split="curated", single_label=False, progress=False)
    assert ds.names == ("a.wav", "b.wav", "d.wav", "e.wav", "f.wav")
    idx = INSTRUMENT_LABELS.index
    np.testing.assert_array_equal(
        ds.labels, [idx("Accordion"), idx("Bass_guitar"), idx("Gong"), -1, idx("Hi-hat")])
    # Non-instrument labels (Strum) are dropped from the targets; both instruments of e kept.
    np.testing.assert_array_equal(ds.targets.sum(1), [1, 1, 1, 2, 1])
    assert ds.targets[3, idx("Accordion")] == 1 and ds.targets[3, idx("Gong")] == 1


def test_custom_label_subset_orders_classes_as_given(fsd_root):
    ds = load_fsdkaggle2019(fsd_root, split="curated", labels=("Gong", "Accordion", "Bark"),
                            sample_rate=8000, progress=False)
    assert ds.label_names == ("Gong", "Accordion", "Bark")
    assert ds.names == ("a.wav", "c.wav", "d.wav")
    np.testing.assert_array_equal(ds.labels, [1, 2, 0])
    assert ds.sample_rate == 8000


def test_max_clips_keeps_the_first_selected_clips(fsd_root):
    ds = load_fsdkaggle2019(fsd_root, split="curated", max_clips=2, progress=False)
    assert ds.names == ("a.wav", "d.wav")


def test_noisy_and_test_splits_ignore_extra_columns(fsd_root):
    noisy = load_fsdkaggle2019(fsd_root, split="noisy", single_label=False, progress=False)
    assert noisy.names == ("n1.wav", "n2.wav")
    assert noisy.labels[1] == -1
    test = load_fsdkaggle2019(fsd_root, split="test", progress=False)
    assert test.names == ("t1.wav",)
    assert test.labels[0] == INSTRUMENT_LABELS.index("Harmonica")


def test_progress_bar_only_when_asked(fsd_root, capsys):
    load_fsdkaggle2019(fsd_root, split="test", progress=False)
    assert capsys.readouterr().err == ""
    load_fsdkaggle2019(fsd_root, split="test", progress=True)
    assert "FSDKaggle2019 test" in capsys.readouterr().err


def test_read_csv_returns_all_rows_with_label_tuples(fsd_root):
    rows = read_fsdkaggle_csv(fsd_root / "FSDKaggle2019.meta/train_curated_post_competition.csv")
    assert rows[1] == ("b.wav", ("Bass_guitar", "Strum"))
    assert len(rows) == len(CURATED_ROWS)


# ----------------------------------------------------------------------------- errors


def test_unknown_label_in_csv_names_file_line_and_label(tmp_path):
    _write_split(tmp_path, "train_curated_post_competition.csv",
                 "FSDKaggle2019.audio_train_curated",
                 [("a.wav", "Accordion"), ("b.wav", "Accordion,Kazoo")], write_audio=False)
    with pytest.raises(ValueError, match=r"train_curated_post_competition\.csv.*line 3.*Kazoo"):
        load_fsdkaggle2019(tmp_path, split="curated", progress=False)


def test_empty_label_field_is_an_unknown_label(tmp_path):
    _write_split(tmp_path, "test_post_competition.csv", "FSDKaggle2019.audio_test",
                 [("a.wav", "")], write_audio=False)
    with pytest.raises(ValueError, match="line 2.*unknown label ''"):
        load_fsdkaggle2019(tmp_path, split="test", progress=False)


def test_no_matching_clip_is_an_error_naming_the_csv(fsd_root):
    with pytest.raises(ValueError, match="test_post_competition.csv.*Gong"):
        load_fsdkaggle2019(fsd_root, split="test", labels=("Gong",), progress=False)


def test_missing_csv_names_the_path(tmp_path):
    with pytest.raises(ValueError, match="train_noisy_post_competition.csv"):
        load_fsdkaggle2019(tmp_path, split="noisy", progress=False)


def test_csv_without_labels_column_is_rejected(tmp_path):
    meta = tmp_path / "FSDKaggle2019.meta"
    meta.mkdir()
    (meta / "test_post_competition.csv").write_text("fname,tags\na.wav,Gong\n")
    with pytest.raises(ValueError, match="'labels'"):
        load_fsdkaggle2019(tmp_path, split="test", progress=False)


def test_duplicate_fname_in_csv_is_rejected(tmp_path):
    _write_split(tmp_path, "test_post_competition.csv", "FSDKaggle2019.audio_test",
                 [("a.wav", "Gong"), ("a.wav", "Gong")], write_audio=False)
    with pytest.raises(ValueError, match="duplicate fname 'a.wav'"):
        load_fsdkaggle2019(tmp_path, split="test", progress=False)


def test_missing_audio_file_names_the_path(fsd_root):
    (fsd_root / "FSDKaggle2019.audio_train_curated" / "d.wav").unlink()
    with pytest.raises(ValueError, match=r"audio_train_curated[/\\]d\.wav"):
        load_fsdkaggle2019(fsd_root, split="curated", progress=False)


def test_corrupt_audio_file_is_rejected_with_its_path(fsd_root):
    (fsd_root / "FSDKaggle2019.audio_test" / "t1.wav").write_bytes(b"RIFF garbage")
    with pytest.raises(ValueError, match=r"t1\.wav"):
        load_fsdkaggle2019(fsd_root, split="test", progress=False)


@pytest.mark.parametrize("kwargs, match", [
    ({"split": "train"}, "split"),
    ({"split": "curated", "sample_rate": 0}, "sample_rate"),
    ({"split": "curated", "max_clips": 0}, "max_clips"),
    ({"split": "curated", "labels": ("Accordion", "Kazoo")}, "Kazoo"),
    ({"split": "curated", "labels": ()}, "labels"),
    ({"split": "curated", "labels": ("Gong", "Gong")}, "duplicates"),
    ({"split": "curated", "labels": "Gong"}, "labels"),
])
def test_bad_arguments_are_rejected(fsd_root, kwargs, match):
    with pytest.raises(ValueError, match=match):
        load_fsdkaggle2019(fsd_root, progress=False, **kwargs)


# ----------------------------------------------------------------------------- split


def _toy_dataset(counts=(10, 7, 3, 1), num_multi=2):
    labels = np.concatenate(
        [np.full(c, k) for k, c in enumerate(counts)] + [np.full(num_multi, -1)])
    num_classes = len(counts)
    targets = np.zeros((len(labels), num_classes), np.float32)
    for i, k in enumerate(labels):
        if k >= 0:
            targets[i, k] = 1
        else:
            targets[i, :2] = 1
    return ClipDataset(
        waves=[np.full(5, i, np.float32) for i in range(len(labels))],
        targets=targets, labels=labels.astype(np.int32),
        label_names=tuple(f"c{k}" for k in range(num_classes)),
        sample_rate=16000, names=tuple(f"clip{i}" for i in range(len(labels))),
    )


def test_split_is_a_stratified_fixed_seed_partition():
    ds = _toy_dataset()
    train, valid = fsdkaggle_split(ds, fraction=0.25, seed=3)
    assert len(valid) == round(0.25 * len(ds))
    assert set(train.names).isdisjoint(valid.names)
    assert set(train.names) | set(valid.names) == set(ds.names)
    # Original order kept, data travels with the name.
    assert list(valid.names) == sorted(valid.names, key=ds.names.index)
    for name, wave in zip(valid.names, valid.waves):
        assert wave[0] == ds.names.index(name)
    # Each class contributes its proportional share, up to one clip.
    for k in np.unique(ds.labels):
        share = 0.25 * np.sum(ds.labels == k)
        assert abs(np.sum(valid.labels == k) - share) < 1
    again_train, again_valid = fsdkaggle_split(ds, fraction=0.25, seed=3)
    assert again_valid.names == valid.names and again_train.names == train.names
    other = {fsdkaggle_split(ds, fraction=0.25, seed=s)[1].names for s in range(5)}
    assert len(other) > 1


@pytest.mark.parametrize("fraction", [0.0, 1.0, -0.1, 0.001])
def test_split_rejects_fractions_leaving_a_part_empty(fraction):
    with pytest.raises(ValueError, match="fraction"):
        fsdkaggle_split(_toy_dataset(), fraction=fraction)
