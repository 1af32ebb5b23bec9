"""Storage backends: where training data is read from and model versions are kept."""
