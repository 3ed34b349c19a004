"""What ganlab keeps on disk: checkpoints, run folders and their lock, ``metrics.jsonl``,
atomic writes, the decoded-image cache, the data fingerprint, and image files (PNG grids,
GIFs).

Internal, but for the image writers that `ganlab` exports.
"""
