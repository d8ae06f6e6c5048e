"""A user's own Flax module as a jaxaudio Classifier: registered, attacked, saved, and loaded
again by the command in a fresh process (which imports the module from PYTHONPATH)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import jax
import numpy as np
import pytest

MODULE = textwrap.dedent('''
    import flax.linen as nn
    import jax.numpy as jnp

    class TinyNet(nn.Module):
        """Standardised mel features (batch, n_mels, frames) -> logits (batch, classes)."""
        classes: int = 3

        @nn.compact
        def __call__(self, x, train: bool = False):
            h = nn.Conv(4, (3, 3))(x[..., None])
            h = nn.BatchNorm(use_running_average=not train)(nn.relu(h))
            h = nn.Dropout(0.1, deterministic=not train)(h)
            return nn.Dense(self.classes)(h.mean(axis=(1, 2)))
''')


@pytest.fixture(scope="module")
def user_module(tmp_path_factory):
    folder = tmp_path_factory.mktemp("user_code")
    (folder / "my_models.py").write_text(MODULE)
    sys.path.insert(0, str(folder))
    import my_models

    yield folder, my_models
    sys.path.remove(str(folder))


def test_register_init_attack_save_and_load(user_module, tmp_path):
    from jaxaudio import attacks
    from jaxaudio.dsp import frontend as fe
    from jaxaudio.models import Classifier, init_classifier, register_model

    folder, my_models = user_module
    assert register_model("tiny_net", my_models.TinyNet) is my_models.TinyNet
    assert register_model("tiny_net", my_models.TinyNet) is my_models.TinyNet  # idempotent
    with pytest.raises(ValueError, match="taken"):
        register_model("avgpool_cnn", my_models.TinyNet)
    with pytest.raises(ValueError, match="Module subclass"):
        register_model("f", lambda x: x)
    clf = init_classifier(model_name="tiny_net", model_kwargs={"classes": 3},
                          frontend=fe.FrontendConfig.instrument(), label_names=("a", "b", "c"),
                          task="multiclass", excerpt_frames=16, key=jax.random.key(0))
    waves = np.random.default_rng(0).uniform(-0.3, 0.3, (2, clf.excerpt_samples)).astype(
        np.float32)
    res = attacks.pgd(clf.logits_fn, waves, np.array([0, 1]), key=jax.random.key(1),
                      max_iterations=3)
    assert np.asarray(res.adversarial).shape == waves.shape
    from jaxaudio.training.train import ClipExcerpts, TrainConfig, train

    source = ClipExcerpts(waves=list(np.repeat(waves, 4, 0)),
                          targets=np.eye(3, dtype=np.float32)[[0, 1] * 4],
                          excerpt_samples=clf.excerpt_samples)
    trained = train(clf, source, TrainConfig(epochs=1, batch_size=4, stats_excerpts=8),
                    progress=False).classifier
    assert trained.fingerprint() != clf.fingerprint()  # BatchNorm, dropout and Adam all ran
    clf = trained
    path = clf.save(tmp_path / "model")
    meta = json.loads((path / "classifier.json").read_text())
    assert meta["model_class"] == "my_models:TinyNet"
    again = Classifier.load(path)
    assert again.fingerprint() == clf.fingerprint()

    # A fresh process knows nothing of tiny_net: it imports my_models from PYTHONPATH.
    wav = tmp_path / "clip.wav"
    import soundfile as sf

    sf.write(wav, waves[0], 16000, subtype="PCM_16")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(folder), os.environ.get(
        "PYTHONPATH", "")]), JAXAUDIO_COMPILATION_CACHE="")
    run = subprocess.run([sys.executable, "-m", "jaxaudio", "predict", "--model", str(path),
                          "--audio", str(wav), "--out", str(tmp_path / "pred"), "--no-progress"],
                         capture_output=True, text=True, env=env, timeout=300)
    assert run.returncode == 0, run.stderr
    assert (tmp_path / "pred" / "predictions.csv").is_file()
    # Without the module on the path: one line naming it, exit 2.
    env["PYTHONPATH"] = os.environ.get("PYTHONPATH", "")
    run = subprocess.run([sys.executable, "-m", "jaxaudio", "predict", "--model", str(path),
                          "--audio", str(wav), "--out", str(tmp_path / "pred2")],
                         capture_output=True, text=True, env=env, timeout=300)
    assert run.returncode == 2 and "my_models:TinyNet" in run.stderr
    assert "Traceback" not in run.stderr
