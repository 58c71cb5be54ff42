"""Algorithm 1: the network, the losses and the two-stage trainer, with checkpoints and Stage I reuse beside it."""
