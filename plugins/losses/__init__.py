"""Built-in GAN losses (classic and relativistic), penalties on D (R1, R2, gradient penalty)
and regularizers (LeCam, bCR)."""
