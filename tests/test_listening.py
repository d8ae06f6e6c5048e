"""jaxaudio.data.listening: three 16-bit WAVs, perturbation = gain * (adversarial - original)."""

import numpy as np
import pytest
import soundfile as sf

from jaxaudio.data.listening import write_listening_example

LSB = 1 / 32768


def test_writes_original_adversary_and_amplified_perturbation(tmp_path):
    rng = np.random.default_rng(0)
    x = (0.3 * rng.standard_normal(4000)).clip(-0.9, 0.9).astype(np.float32)
    adv = x + 1e-3 * rng.standard_normal(4000).astype(np.float32)
    info = write_listening_example(tmp_path / "audio", "up", x, adv, 16000)
    assert list(info["files"]) == ["original", "adversarial", "perturbation"]
    assert info["files"]["adversarial"] == "up_adversary.wav"
    back = {}
    for role, name in info["files"].items():
        back[role], rate = sf.read(tmp_path / "audio" / name, dtype="float64")
        assert rate == 16000 and sf.info(tmp_path / "audio" / name).subtype == "PCM_16"
    gain = info["perturbation_gain"]
    assert gain == pytest.approx(0.5 / np.abs(adv - x).max())
    assert np.abs(back["original"] - x).max() <= LSB / 2 + 1e-9
    assert np.abs(back["adversarial"] - adv).max() <= LSB / 2 + 1e-9
    assert np.abs(back["perturbation"] - gain * (adv - x)).max() <= LSB / 2 + 1e-6
    assert np.abs(back["perturbation"]).max() == pytest.approx(0.5, abs=LSB)


def test_bad_input(tmp_path):
    with pytest.raises(ValueError, match="1-D"):
        write_listening_example(tmp_path, "a", np.zeros(8), np.zeros(9), 8000)
    with pytest.raises(ValueError, match="peak"):
        write_listening_example(tmp_path, "a", np.zeros(8), np.ones(8) * 0.1, 8000, peak=0)
