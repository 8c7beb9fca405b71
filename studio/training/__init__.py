"""Training: the data view a method samples from, the loop, checkpoints and resume."""
