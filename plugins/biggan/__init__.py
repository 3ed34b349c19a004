"""BigGAN (Brock et al., 2019): the models and the orthogonal regularization of G."""
