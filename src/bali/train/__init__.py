"""Training loop on Hugging Face Accelerate, checkpoints and resume."""
