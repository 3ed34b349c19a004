"""StyleGAN2 (Karras et al., 2020): the models, their layers, and the path-length penalty."""
