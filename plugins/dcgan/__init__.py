"""DCGAN (Radford et al., 2016), as in the PyTorch tutorial."""
