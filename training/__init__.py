"""Training pipeline: reading recordings, building datasets, fitting steering models."""
