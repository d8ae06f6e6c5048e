"""Label noise: noisy training sets at set corruption rates (``noise``), wrong-label detection
with cleanlab on out-of-fold scores (``issues``), its scoring against the known noise and the
cleaning retrain (``cleaning``), and curves over seeds (``curves``)."""
