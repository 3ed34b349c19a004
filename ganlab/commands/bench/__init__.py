"""`ganlab bench`: how fast ganlab trains a recipe against the loops it is measured against,
and the arithmetic (FLOPs) one training step does."""
