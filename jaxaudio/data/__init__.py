"""Audio I/O, embedded synthetic datasets, real dataset loaders, windowing, label corruption."""

from jaxaudio.data.audio import (
    load_audio,
    pcm16_samples,
    pcm16_to_float,
    quantize_pcm16,
    save_wav,
)
from jaxaudio.data.corruption import corrupt_labels, corrupt_multilabel, pair_flip
from jaxaudio.data.fsdkaggle import FSDKAGGLE2019_LABELS, fsdkaggle_split, load_fsdkaggle2019
from jaxaudio.data.jamendo import load_jamendo
from jaxaudio.data.synth_instruments import make_synth_instruments
from jaxaudio.data.synth_voice import make_synth_voice
from jaxaudio.data.types import INSTRUMENT_LABELS, ClipDataset, SongDataset
from jaxaudio.data.windowing import window, window_dataset

#: Names the embedded synthetic data in the stage keys of the studies (``depends``). Raise it
#: whenever a change to the synthesis changes the clips, so that a rerun into an old output
#: folder retrains instead of reusing models and stages made from the old clips.
#: 2: curated/test instrument clips near studio-clean; 1: the first synthesis.
SYNTHETIC_DATA = "synthetic-2"

__all__ = [
    "FSDKAGGLE2019_LABELS", "INSTRUMENT_LABELS", "SYNTHETIC_DATA", "ClipDataset", "SongDataset",
    "corrupt_labels", "corrupt_multilabel", "fsdkaggle_split", "load_audio", "load_fsdkaggle2019",
    "load_jamendo", "make_synth_instruments", "make_synth_voice", "pair_flip", "pcm16_samples", "pcm16_to_float", "quantize_pcm16",
    "save_wav", "window", "window_dataset",
]
