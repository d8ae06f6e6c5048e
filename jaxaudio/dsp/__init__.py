"""Signal processing: the differentiable front-end (STFT, mel, scaling), batching over chunks, transmission channels and perceptual scores."""
