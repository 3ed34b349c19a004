"""SNGAN: ResNet generator and discriminator with spectral normalization (Miyato et al., 2018)."""
