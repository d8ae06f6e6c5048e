"""A timbre-based music recommender (study 4, docs/studies.md §4), pure JAX where attacked.

* :mod:`~jaxaudio.recommender.features`: MFCCs, one full-covariance Gaussian per song, KL.
* :mod:`~jaxaudio.recommender.hubness`: distance matrices, nearest neighbours, k-occurrence,
  hubs, skewness, Mutual Proximity (Gaussian and empirical).
* :mod:`~jaxaudio.recommender.collection`: the embedded synthetic songs, or a folder of files.
* :mod:`~jaxaudio.recommender.attack`: the hub attack (and its Mutual-Proximity-aware form).
"""

from jaxaudio.recommender import attack, collection, features, hubness
from jaxaudio.recommender.attack import Recommender, choose_targets, hub_attack, make_recommender
from jaxaudio.recommender.features import Gaussian, gaussian_of_wave, kl_divergence, kl_matrix, mfcc

__all__ = ["attack", "collection", "features", "hubness", "Recommender", "make_recommender",
           "hub_attack", "choose_targets", "Gaussian", "gaussian_of_wave", "kl_divergence",
           "kl_matrix", "mfcc"]
