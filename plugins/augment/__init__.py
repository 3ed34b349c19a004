"""Built-in augmentations of what D sees: DiffAugment and ADA."""
