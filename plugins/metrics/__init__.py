"""Built-in metrics: sliced Wasserstein distance, FID and KID, and keeping the best checkpoint."""
