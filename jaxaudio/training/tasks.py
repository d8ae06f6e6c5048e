"""Named tasks: which data, model, front-end and preset sizes go together, and how to evaluate.

Two tasks exist, each with an embedded synthetic dataset (the default, no downloads) and a real
dataset loader:

- ``instruments``: 12-class instrument tagging, average-pool CNN, 16 kHz front-end
  (``synth-instruments`` or ``fsdkaggle2019``);
- ``voice``: binary singing voice detection, Schlüter & Lehner's detector, 22.05 kHz front-end
  (``synth-voice`` or ``jamendo``).

Presets (``smoke``, ``demo``, ``paper``) only change sizes (clips, epochs, network width),
never the method.
"""

from __future__ import annotations

import dataclasses
import functools
import pathlib
from typing import Optional

import jax
import numpy as np

from jaxaudio.data.fsdkaggle import fsdkaggle_split, load_fsdkaggle2019
from jaxaudio.data.jamendo import load_jamendo
from jaxaudio.data.synth_instruments import make_mixed_instruments, make_synth_instruments
from jaxaudio.data.synth_voice import make_synth_voice
from jaxaudio.data.types import INSTRUMENT_LABELS
from jaxaudio.dsp import frontend as fe
from jaxaudio.models.classifier import Classifier, init_classifier
from jaxaudio.models.cnn import AveragePoolCNN
from jaxaudio.models.inference import VOICE_LABELS
from jaxaudio.training.train import ClipExcerpts, SongExcerpts, TrainConfig

DATASETS = ("synth-instruments", "synth-voice", "fsdkaggle2019", "jamendo")
PRESETS = ("smoke", "demo", "paper")
#: The published detector's test error (%, mean ± std), after the median filter.
VOICE_PUBLISHED_ERROR = {"mean_percent": 11.54, "std_percent": 0.96}
#: Synthetic clips per split of the instrument splits when a size is ``None`` (the paper preset
#: of the label-noise study; the real dataset then uses all its clips).
SYNTH_INSTRUMENT_SIZES = {"curated": 600, "noisy": 600, "test": 200}
#: PRNG of :func:`new_instrument_classifier_rbg` (and of the label-noise study's training).
#: XLA's RngBitGenerator compiles 5-10x faster than threefry on CPU; runs stay deterministic
#: for a seed on a given backend.
RBG_PRNG_IMPL = "rbg"


@dataclasses.dataclass(frozen=True)
class Preset:
    """Sizes of one preset.

    Attributes:
      num_train, num_test: synthetic clips (instruments) or songs (voice) per split.
      min_seconds, max_seconds: synthetic clip / song durations (s).
      epochs, batch_size, learning_rate: training.
      lr_decay_per_epoch: the learning rate is multiplied by this after every epoch (0.85 for
        the voice detector in every preset, as published; 1.0 = constant).
      width: network width (channels of the first conv; 64 in the papers).
      excerpt_frames: frames per training excerpt.
      examples_per_epoch: voice only: excerpts drawn per epoch (batches per epoch times
        ``batch_size``; 2000 x 32 as published).
      eval_frame_step: voice only: evaluate every n-th frame of the test songs.
    """

    num_train: int
    num_test: int
    min_seconds: float
    max_seconds: float
    epochs: int
    batch_size: int = 16
    learning_rate: float = 1e-3
    lr_decay_per_epoch: float = 1.0
    width: int = 64
    excerpt_frames: int = 116
    examples_per_epoch: int = 0
    eval_frame_step: int = 1


PRESET_TABLE: dict[tuple[str, str], Preset] = {
    ("instruments", "smoke"): Preset(num_train=48, num_test=24, min_seconds=0.5, max_seconds=2.0,
                                     epochs=2, width=8, excerpt_frames=32),
    ("instruments", "demo"): Preset(num_train=600, num_test=240, min_seconds=0.5, max_seconds=6.0,
                                    epochs=20, width=16, excerpt_frames=116),
    ("instruments", "paper"): Preset(num_train=600, num_test=200, min_seconds=0.5,
                                     max_seconds=6.0, epochs=200, width=64, excerpt_frames=116),
    # voice: Adam 1e-3 x 0.85 per epoch, batches of 32, 20 epochs of 2000 batches (published);
    # demo: 40 batches per epoch; smoke: 2 epochs of 2 batches
    ("voice", "smoke"): Preset(num_train=2, num_test=1, min_seconds=8.0, max_seconds=10.0,
                               epochs=2, batch_size=32, lr_decay_per_epoch=0.85, width=8,
                               excerpt_frames=115, examples_per_epoch=2 * 32, eval_frame_step=20),
    ("voice", "demo"): Preset(num_train=48, num_test=8, min_seconds=20.0, max_seconds=40.0,
                              epochs=20, batch_size=32, lr_decay_per_epoch=0.85, width=16,
                              excerpt_frames=115, examples_per_epoch=40 * 32, eval_frame_step=4),
    ("voice", "paper"): Preset(num_train=61, num_test=16, min_seconds=20.0, max_seconds=40.0,
                               epochs=20, batch_size=32, lr_decay_per_epoch=0.85, width=64,
                               excerpt_frames=115, examples_per_epoch=2000 * 32,
                               eval_frame_step=1),
}


def task_of(dataset: str) -> str:
    if dataset not in DATASETS:
        raise ValueError(f"unknown dataset {dataset!r}; choose one of {DATASETS}")
    return "instruments" if dataset in ("synth-instruments", "fsdkaggle2019") else "voice"


def preset(task: str, name: str) -> Preset:
    if name not in PRESETS:
        raise ValueError(f"--preset: unknown preset {name!r}; choose one of {', '.join(PRESETS)}")
    return PRESET_TABLE[(task, name)]


def frontend_for(task: str) -> fe.FrontendConfig:
    return fe.FrontendConfig.instrument() if task == "instruments" else fe.FrontendConfig.voice()


# ----------------------------------------------------------------------------------------------
# Data
# ----------------------------------------------------------------------------------------------
def load_split(dataset: str, split: str, *, preset_name: str = "demo", seed: int = 0,
               data: Optional[str] = None, progress: bool = True, multi_label: bool = False):
    """Load ``split`` of ``dataset`` (``progress``: the real loaders' bar over files).

    ``multi_label`` (synthetic instruments, ``"train"``/``"test"``): half the clips carry two
    instruments playing together, both tagged (``make_mixed_instruments``), for a multi-label
    tagger; the real datasets' loaders give multi-hot targets already.

    Splits: instruments ``"train"`` (curated), ``"noisy"``, ``"test"``; voice ``"train"``,
    ``"valid"``, ``"test"``. Real datasets need ``data`` (their root folder). For FSDKaggle2019,
    ``"train"``/``"valid"`` are the fixed-seed 75/25 split of the curated single-label subset
    and ``"test"`` is the validation quarter, as in the study (docs/studies.md §1).
    """
    task = task_of(dataset)
    p = preset(task, preset_name)
    if dataset == "synth-instruments":

        names = {"train": "curated", "curated": "curated", "noisy": "noisy", "test": "test"}
        if split not in names:
            raise ValueError(f"unknown split {split!r} for {dataset}; use one of {sorted(names)}")
        n = p.num_test if split == "test" else p.num_train
        if multi_label and split in ("train", "curated", "test"):

            return make_mixed_instruments(split=names[split], num_clips=n, seed=seed,
                                          min_seconds=p.min_seconds, max_seconds=p.max_seconds)
        return make_synth_instruments(split=names[split], num_clips=n, seed=seed,
                                      min_seconds=p.min_seconds, max_seconds=p.max_seconds)
    if dataset == "synth-voice":

        sizes = {"train": p.num_train, "valid": p.num_test, "test": p.num_test}
        if split not in sizes:
            raise ValueError(f"unknown split {split!r} for {dataset}; use one of {sorted(sizes)}")
        return make_synth_voice(split=split, num_songs=sizes[split], seed=seed,
                                min_seconds=p.min_seconds, max_seconds=p.max_seconds)
    if data is None:
        raise ValueError(f"dataset {dataset!r} needs --data pointing at its root folder")
    if dataset == "fsdkaggle2019":

        if split == "noisy":
            return load_fsdkaggle2019(data, split="noisy", progress=progress)
        if split not in ("train", "test", "valid"):
            raise ValueError(f"unknown split {split!r} for {dataset}")
        curated = load_fsdkaggle2019(data, split="curated", progress=progress)
        train, valid = fsdkaggle_split(curated, fraction=0.25, seed=seed)
        return train if split == "train" else valid

    return load_jamendo(data, split=split, progress=progress)


def instrument_splits(*, num_curated: Optional[int], num_noisy: Optional[int],
                      num_test: Optional[int], min_seconds: float, max_seconds: float,
                      data: Optional[str] = None, seed: int = 0, progress: bool = True) -> dict:
    """The curated, noisy and test instrument splits (label-noise study) as ``ClipDataset``.

    Synthetic (``data`` None): :func:`~jaxaudio.data.synth_instruments.make_synth_instruments`
    with data seed ``seed``, ``min_seconds``..``max_seconds`` long clips, a size ``None``
    meaning :data:`SYNTH_INSTRUMENT_SIZES`. With ``data`` (FSDKaggle2019 root): the clips
    carrying exactly one of the 12 musical labels, capped at the sizes (CSV order; ``None`` =
    all). Unlike :func:`load_split` the real curated set is not split: ``test`` is
    FSDKaggle2019's test set.
    """
    caps = {"curated": num_curated, "noisy": num_noisy, "test": num_test}
    if data is None:

        return {split: make_synth_instruments(
                    split=split, num_clips=SYNTH_INSTRUMENT_SIZES[split] if n is None else n,
                    seed=seed, min_seconds=min_seconds, max_seconds=max_seconds)
                for split, n in caps.items()}

    if not pathlib.Path(data).is_dir():
        raise ValueError(f"--data must be the FSDKaggle2019 root folder, got {data!r}")
    return {split: load_fsdkaggle2019(pathlib.Path(data), split=split, single_label=True,
                                      max_clips=cap, progress=progress)
            for split, cap in caps.items()}


def example_source(task: str, dataset, p: Preset, frontend: fe.FrontendConfig):
    if task == "instruments":
        return ClipExcerpts(waves=list(dataset.waves), targets=dataset.targets,
                            excerpt_samples=frontend.num_samples_for_frames(p.excerpt_frames))
    return SongExcerpts(dataset=dataset, excerpt_frames=p.excerpt_frames,
                        hop_length=frontend.hop_length, examples_per_epoch=p.examples_per_epoch)


def new_classifier(task: str, p: Preset, *, seed: int, label_names=None) -> Classifier:
    frontend = frontend_for(task)
    if task == "instruments":
        label_names = tuple(label_names or INSTRUMENT_LABELS)
        return init_classifier(
            model_name="avgpool_cnn",
            model_kwargs={"num_classes": len(label_names), "width": p.width},
            frontend=frontend, label_names=label_names, task="multiclass",
            excerpt_frames=p.excerpt_frames, key=jax.random.key(seed))
    return init_classifier(
        model_name="singing_voice_detector",
        model_kwargs={"width": p.width, "zero_mean_first_conv": True},
        frontend=frontend, label_names=VOICE_LABELS, task="binary",
        excerpt_frames=p.excerpt_frames, key=jax.random.key(seed))


def new_instrument_classifier_rbg(*, width: int, excerpt_frames: int, seed: int,
                                  label_names) -> Classifier:
    """A fresh average-pool CNN instrument classifier (16 kHz front-end), initialised by one
    jitted call (cached per shape) from a :data:`RBG_PRNG_IMPL` key (the label-noise study).

    Not :func:`new_classifier`: that one initialises eagerly from a threefry key, so the same
    ``seed`` gives other weights; both stay, each reproducing its own runs.
    """
    frontend = frontend_for("instruments")
    kwargs = {"num_classes": len(label_names), "width": int(width)}
    init = _jitted_init(frontend.n_mels, int(excerpt_frames), len(label_names), int(width))
    variables = jax.device_get(init(jax.random.key(seed, impl=RBG_PRNG_IMPL)))
    return Classifier(frontend=frontend, model_name="avgpool_cnn", model_kwargs=kwargs,
                      variables=variables, mean=np.zeros(frontend.n_mels, np.float32),
                      std=np.ones(frontend.n_mels, np.float32), label_names=tuple(label_names),
                      task="multiclass", excerpt_frames=int(excerpt_frames))


@functools.lru_cache(maxsize=8)
def _jitted_init(n_mels: int, frames: int, num_classes: int, width: int):
    import jax.numpy as jnp

    module = AveragePoolCNN(num_classes=num_classes, width=width)
    dummy = jnp.zeros((1, n_mels, frames), jnp.float32)
    return jax.jit(lambda key: module.init(key, dummy, train=False))


def train_config(task: str, p: Preset, *, seed: int, epochs: Optional[int] = None,
                 **overrides) -> TrainConfig:
    return TrainConfig(epochs=epochs or p.epochs, batch_size=p.batch_size,
                       learning_rate=p.learning_rate, lr_decay_per_epoch=p.lr_decay_per_epoch,
                       seed=seed,
                       loss="cross_entropy" if task == "instruments" else "binary_cross_entropy",
                       **overrides)


# ----------------------------------------------------------------------------------------------
# Evaluation
# ----------------------------------------------------------------------------------------------


