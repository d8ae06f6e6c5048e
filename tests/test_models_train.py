"""Classifier bundle, Orbax persistence, training determinism and resume."""

import dataclasses

import json

import chex
import jax
import numpy as np
import pytest

from jaxaudio.training import tasks
from jaxaudio.models import CheckpointError, Classifier
from jaxaudio.training.train import ClipExcerpts, TrainConfig, train



@pytest.fixture(scope="module")
def tiny_source(tiny_classifier, tiny_clips):
    waves, labels = tiny_clips
    targets = np.eye(3, dtype=np.float32)[labels]
    return ClipExcerpts(waves=waves, targets=targets,
                        excerpt_samples=tiny_classifier.excerpt_samples)


CONFIG = TrainConfig(epochs=2, batch_size=8, seed=3, stats_excerpts=24)


class Killed(Exception):
    """Stands for a kill of the training process."""


def kill_after_first_epoch(epoch, row):
    if epoch == 0:
        raise Killed


def _params(clf):
    return jax.tree_util.tree_leaves(jax.device_get(clf.variables))


def test_resume_after_kill_gives_identical_parameters(tmp_path, tiny_classifier, tiny_source):
    full = train(tiny_classifier, tiny_source, CONFIG, out_dir=tmp_path / "full", progress=False)

    with pytest.raises(Killed):
        train(tiny_classifier, tiny_source, CONFIG, out_dir=tmp_path / "run", progress=False,
              on_epoch_end=kill_after_first_epoch)
    resumed = train(tiny_classifier, tiny_source, CONFIG, out_dir=tmp_path / "run",
                    resume=True, progress=False)
    assert resumed.resumed_from == 0
    assert [h["epoch"] for h in resumed.history] == [1, 2]
    chex.assert_trees_all_equal(jax.device_get(full.classifier.variables),
                                jax.device_get(resumed.classifier.variables))
    # and training changed something
    assert any(not np.array_equal(a, b) for a, b in
               zip(_params(tiny_classifier), _params(full.classifier)))


def test_save_load_roundtrip_and_logits(tmp_path, tiny_classifier):
    waves = np.random.default_rng(0).uniform(-0.5, 0.5, (2, 3000)).astype(np.float32)
    path = tiny_classifier.save(tmp_path / "model")
    loaded = Classifier.load(path)
    chex.assert_trees_all_equal(jax.device_get(loaded.variables),
                                jax.device_get(tiny_classifier.variables))
    logits = loaded.logits(waves)
    chex.assert_shape(logits, (2, 3))
    chex.assert_trees_all_close(logits, tiny_classifier.logits(waves), atol=1e-6)
    assert loaded.label_names == tiny_classifier.label_names
    grads = jax.grad(lambda w: loaded.logits_fn(w).sum())(waves)
    assert np.all(np.isfinite(np.asarray(grads)))
    # The fingerprint survives the round trip and changes with any weight or statistic.
    assert loaded.fingerprint() == tiny_classifier.fingerprint()
    first = True

    def nudge_one(a):
        nonlocal first
        hit, first = first, False
        return a + 1e-3 if hit else a

    nudged = dataclasses.replace(loaded, variables=jax.tree.map(nudge_one, loaded.variables))
    assert nudged.fingerprint() != loaded.fingerprint()
    shifted = dataclasses.replace(loaded, mean=np.asarray(loaded.mean) + 1e-3)
    assert shifted.fingerprint() != loaded.fingerprint()


def test_corrupt_checkpoint_gives_clear_error(tmp_path, tiny_classifier):
    path = tiny_classifier.save(tmp_path / "model")
    for f in (path / "variables").rglob("*"):
        if f.is_file() and f.stat().st_size > 0 and f.suffix != ".json":
            f.write_bytes(b"garbage" * 3)
    with pytest.raises(CheckpointError, match="corrupt"):
        Classifier.load(path)
    with pytest.raises(CheckpointError, match="missing"):
        Classifier.load(tmp_path / "nowhere")


def test_bad_waves_rejected(tiny_classifier):
    bad = np.zeros((1, 3000), np.float32)
    bad[0, 5] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        tiny_classifier.logits(bad)
    with pytest.raises(ValueError, match="shape"):
        tiny_classifier.logits(np.zeros(3000, np.float32))


def test_bad_train_config():
    with pytest.raises(ValueError, match="epochs"):
        TrainConfig(epochs=0)
    with pytest.raises(ValueError, match="unknown loss"):
        TrainConfig(loss="hinge")
    with pytest.raises(ValueError, match="unknown dataset"):
        tasks.task_of("mnist")


def test_voice_detector_shapes_and_zero_mean_first_layer():
    clf = tasks.new_classifier("voice", tasks.preset("voice", "smoke"), seed=0)
    waves = np.zeros((2, clf.excerpt_samples), np.float32)
    assert clf.logits(waves).shape == (2, 1)
    # zero-mean first conv: the detector ignores a constant offset of the log spectrogram
    feats = np.random.default_rng(0).standard_normal((1, 80, 115)).astype(np.float32)
    shifted = feats + 3.0 * clf.std[None, :, None]  # +3 after standardisation in every band
    a = np.asarray(clf.feature_logits(feats))
    b = np.asarray(clf.feature_logits(shifted))
    np.testing.assert_allclose(a, b, atol=1e-4)


DECAY = dataclasses.replace(CONFIG, lr_decay_per_epoch=0.5)


def test_optimizer_step_size_falls_by_the_decay_after_every_epoch():
    from jaxaudio.training.train import adam, learning_rate_schedule, optimizer

    schedule = learning_rate_schedule(1e-3, 0.85, 4)
    np.testing.assert_allclose([float(schedule(t)) for t in (0, 3, 4, 7, 8, 11)],
                               [1e-3, 1e-3, 8.5e-4, 8.5e-4, 7.225e-4, 7.225e-4], rtol=1e-6)
    assert optimizer(1e-3, 1.0, 4) is adam(1e-3)  # constant: the very same Adam as before
    # Adam on a constant gradient moves by the step size: 4 steps of 1e-3, then 4 of 5e-4
    tx, params = optimizer(1e-3, 0.5, 4), {"w": np.zeros(3, np.float32)}
    state, moves = tx.init(params), []
    for _ in range(8):
        updates, state = tx.update({"w": np.ones(3, np.float32)}, state, params)
        moves.append(-float(updates["w"][0]))
    np.testing.assert_allclose(moves, [1e-3] * 4 + [5e-4] * 4, rtol=1e-4)


def test_decayed_training_differs_only_after_the_first_epoch_and_resumes_exactly(
        tmp_path, tiny_classifier, tiny_source):
    constant = train(tiny_classifier, tiny_source, CONFIG, progress=False)
    full = train(tiny_classifier, tiny_source, DECAY, out_dir=tmp_path / "full", progress=False)
    assert full.history[0]["loss"] == constant.history[0]["loss"]  # same step size in epoch 1
    assert any(not np.array_equal(a, b) for a, b in
               zip(_params(constant.classifier), _params(full.classifier)))

    with pytest.raises(Killed):
        train(tiny_classifier, tiny_source, DECAY, out_dir=tmp_path / "run", progress=False,
              on_epoch_end=kill_after_first_epoch)
    with pytest.raises(CheckpointError, match="lr_decay_per_epoch"):  # other settings: refused
        train(tiny_classifier, tiny_source, CONFIG, out_dir=tmp_path / "run", resume=True,
              progress=False)
    resumed = train(tiny_classifier, tiny_source, DECAY, out_dir=tmp_path / "run",
                    resume=True, progress=False)
    assert resumed.resumed_from == 0
    chex.assert_trees_all_equal(jax.device_get(full.classifier.variables),
                                jax.device_get(resumed.classifier.variables))


def test_song_excerpts_are_cut_on_demand_like_the_stacked_array():
    from jaxaudio.data.types import SongDataset
    from jaxaudio.training.train import SongExcerpts

    rng = np.random.default_rng(1)
    songs = SongDataset(waves=[rng.uniform(-0.5, 0.5, n).astype(np.float32) for n in (4000, 6000)],
                        segments=[np.array([[0.05, 0.15]]), np.zeros((0, 2))], sample_rate=16000,
                        names=("a", "b"))
    source = SongExcerpts(dataset=songs, excerpt_frames=9, hop_length=128, examples_per_epoch=10)
    waves, targets = source.epoch(np.random.default_rng(0))
    stacked = np.asarray(waves)
    assert stacked.shape == (10, 8 * 128) and stacked.dtype == np.float32 and len(waves) == 10
    np.testing.assert_array_equal(waves[np.array([3, 1])], stacked[[3, 1]])
    np.testing.assert_array_equal(waves[2:5], stacked[2:5])
    assert targets.shape == (10, 1) and set(np.unique(targets)) <= {0.0, 1.0}


def test_resume_refuses_other_training_data_and_unrecorded_folders(tmp_path, tiny_classifier,
                                                                    tiny_source):
    import dataclasses as dc

    from jaxaudio.training.train import source_fingerprint

    train(tiny_classifier, tiny_source, CONFIG, out_dir=tmp_path / "run", progress=False)
    changed = dc.replace(tiny_source, waves=[w * 0.5 for w in tiny_source.waves])
    assert source_fingerprint(changed) != source_fingerprint(tiny_source)
    assert source_fingerprint(tiny_source) == source_fingerprint(
        dc.replace(tiny_source, waves=[w.copy() for w in tiny_source.waves]))
    with pytest.raises(CheckpointError, match="training_data"):  # same settings, other clips
        train(tiny_classifier, changed, CONFIG, out_dir=tmp_path / "run", resume=True,
              progress=False)
    (tmp_path / "run" / "train_config.json").unlink()  # a folder from before the record
    with pytest.raises(CheckpointError, match="without a record"):
        train(tiny_classifier, tiny_source, CONFIG, out_dir=tmp_path / "run", resume=True,
              progress=False)


# Orbax's restore of the garbled file leaves an async callback that fires after its event loop
# closed; Python reports it as unraisable. The refusal itself is what this test checks.
@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
def test_weights_changed_in_place_after_saving_are_refused(tmp_path, tiny_classifier):
    """Zeroed weight bytes keep the checkpoint's shapes (Orbax restores them); the fingerprint
    saved with the classifier catches them."""
    path = tiny_classifier.save(tmp_path / "model")
    assert Classifier.load(path).fingerprint() == tiny_classifier.fingerprint()
    biggest = max((f for f in (path / "variables").rglob("*") if f.is_file()),
                  key=lambda f: f.stat().st_size)
    data = bytearray(biggest.read_bytes())
    middle = len(data) // 2
    data[middle:middle + 64] = bytes(64)
    biggest.write_bytes(bytes(data))
    with pytest.raises(CheckpointError):
        Classifier.load(path)
    path2 = tiny_classifier.save(tmp_path / "model2")  # a label renamed by hand
    meta = json.loads((path2 / "classifier.json").read_text())
    meta["label_names"][0] = "renamed"
    (path2 / "classifier.json").write_text(json.dumps(meta))
    with pytest.raises(CheckpointError, match="fingerprint"):
        Classifier.load(path2)
