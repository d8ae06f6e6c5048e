"""Properties of the controlled label corruption (docs/studies.md §2)."""

import numpy as np
import pytest

from jaxaudio.data.corruption import corrupt_labels, corrupt_multilabel, pair_flip

NUM_CLASSES = 12


def _labels(n=300, seed=0):
    return np.random.default_rng(seed).integers(0, NUM_CLASSES, n)


@pytest.mark.parametrize("rate", [0.0, 0.1, 0.25, 0.5, 0.77, 1.0])
def test_corrupt_labels_changes_exact_fraction_and_never_keeps_label(rate):
    labels = _labels()
    new, changed = corrupt_labels(labels, rate=rate, num_classes=NUM_CLASSES, seed=3)
    assert new.shape == labels.shape and changed.shape == labels.shape
    assert changed.dtype == bool
    assert changed.sum() == round(rate * labels.size)
    # The mask is exactly where labels differ: chosen clips always get another label.
    np.testing.assert_array_equal(changed, new != labels)
    assert np.all((new >= 0) & (new < NUM_CLASSES))


def test_corrupt_labels_reproducible_and_seed_dependent():
    labels = _labels()
    a = corrupt_labels(labels, rate=0.3, num_classes=NUM_CLASSES, seed=1)
    b = corrupt_labels(labels, rate=0.3, num_classes=NUM_CLASSES, seed=1)
    c = corrupt_labels(labels, rate=0.3, num_classes=NUM_CLASSES, seed=2)
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])
    assert not np.array_equal(a[1], c[1])


def test_corrupt_labels_does_not_modify_input():
    labels = _labels()
    before = labels.copy()
    corrupt_labels(labels, rate=0.5, num_classes=NUM_CLASSES, seed=0)
    np.testing.assert_array_equal(labels, before)


def test_corrupt_labels_draws_other_labels_uniformly():
    labels = np.zeros(11_000, dtype=np.int64)
    new, _ = corrupt_labels(labels, rate=1.0, num_classes=NUM_CLASSES, seed=0)
    counts = np.bincount(new, minlength=NUM_CLASSES)
    assert counts[0] == 0
    # 1000 expected per other class; +-15 % is > 4 standard deviations.
    assert np.all((counts[1:] > 850) & (counts[1:] < 1150))


@pytest.mark.parametrize("rate", [-0.1, 1.5, float("nan")])
def test_bad_rate_raises(rate):
    with pytest.raises(ValueError, match="rate"):
        corrupt_labels(_labels(), rate=rate, num_classes=NUM_CLASSES, seed=0)
    with pytest.raises(ValueError, match="rate"):
        pair_flip(_labels(), rate=rate, num_classes=NUM_CLASSES, seed=0)
    with pytest.raises(ValueError, match="drop_rate"):
        corrupt_multilabel(np.eye(3), drop_rate=rate, add_rate=0.0, seed=0)


def test_bad_labels_and_classes_raise():
    with pytest.raises(ValueError, match="num_classes"):
        corrupt_labels([0, 0, 0], rate=0.5, num_classes=1, seed=0)
    with pytest.raises(ValueError, match=r"\[0, num_classes"):
        corrupt_labels([0, 12], rate=0.5, num_classes=12, seed=0)
    with pytest.raises(ValueError, match=r"\[0, num_classes"):
        corrupt_labels([-1, 2], rate=0.5, num_classes=12, seed=0)


@pytest.mark.parametrize("drop_rate,add_rate", [(0.0, 0.0), (0.3, 0.05), (1.0, 1.0)])
def test_corrupt_multilabel_exact_counts(drop_rate, add_rate):
    rng = np.random.default_rng(0)
    targets = (rng.random((50, NUM_CLASSES)) < 0.2).astype(np.float32)
    present, absent = int(targets.sum()), int((1 - targets).sum())
    new, changed = corrupt_multilabel(targets, drop_rate=drop_rate, add_rate=add_rate, seed=4)
    assert new.shape == targets.shape and new.dtype == targets.dtype
    np.testing.assert_array_equal(changed, new != targets)
    dropped = int(np.sum(changed & (targets == 1)))
    added = int(np.sum(changed & (targets == 0)))
    assert dropped == round(drop_rate * present)
    assert added == round(add_rate * absent)
    assert set(np.unique(new)) <= {0.0, 1.0}


def test_corrupt_multilabel_reproducible_and_validates():
    targets = np.eye(NUM_CLASSES)[_labels(40)]
    a = corrupt_multilabel(targets, drop_rate=0.5, add_rate=0.1, seed=9)
    b = corrupt_multilabel(targets, drop_rate=0.5, add_rate=0.1, seed=9)
    c = corrupt_multilabel(targets, drop_rate=0.5, add_rate=0.1, seed=10)
    np.testing.assert_array_equal(a[0], b[0])
    assert not np.array_equal(a[0], c[0])
    with pytest.raises(ValueError, match="multi-hot"):
        corrupt_multilabel(targets * 0.5, drop_rate=0.1, add_rate=0.1, seed=0)
    with pytest.raises(ValueError, match="shape"):
        corrupt_multilabel(np.ones(5), drop_rate=0.1, add_rate=0.1, seed=0)


@pytest.mark.parametrize("rate", [0.0, 0.2, 1.0])
def test_pair_flip_follows_default_mapping(rate):
    labels = _labels()
    new, changed = pair_flip(labels, rate=rate, num_classes=NUM_CLASSES, seed=5)
    assert changed.sum() == round(rate * labels.size)
    np.testing.assert_array_equal(new[changed], (labels[changed] + 1) % NUM_CLASSES)
    np.testing.assert_array_equal(new[~changed], labels[~changed])


def test_pair_flip_custom_mapping_and_fixed_point_rejected():
    labels = _labels()
    mapping = np.roll(np.arange(NUM_CLASSES), 5)
    new, changed = pair_flip(labels, rate=0.5, num_classes=NUM_CLASSES, seed=0, mapping=mapping)
    np.testing.assert_array_equal(new[changed], mapping[labels[changed]])
    np.testing.assert_array_equal(changed, new != labels)
    with pytest.raises(ValueError, match="fixed point"):
        pair_flip(labels, rate=0.5, num_classes=NUM_CLASSES, seed=0,
                  mapping=np.arange(NUM_CLASSES))
    with pytest.raises(ValueError, match="shape"):
        pair_flip(labels, rate=0.5, num_classes=NUM_CLASSES, seed=0, mapping=np.arange(3))
