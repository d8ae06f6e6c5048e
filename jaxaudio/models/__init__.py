"""Flax models and the ``Classifier`` bundle."""

from jaxaudio.models.classifier import (
    MODELS,
    CheckpointError,
    Classifier,
    build_module,
    init_classifier,
    load_classifier,
    register_model,
)
from jaxaudio.models.cnn import AveragePoolCNN
from jaxaudio.models.voice import SingingVoiceDetector, ZeroMeanConv

__all__ = [
    "MODELS", "AveragePoolCNN", "CheckpointError", "Classifier", "SingingVoiceDetector",
    "ZeroMeanConv", "build_module", "init_classifier", "load_classifier", "register_model",
]
