"""The data a run trains on: what data sets hand the runner (`types`), the decode-once cache
(`cache`), the fingerprint that tells a resumed run its data changed (`fingerprint`), and the
seeded batches (`batches`).

Internal: data set plugins use `ganlab.ImageDataset`, `ganlab.TensorImages`, `ganlab.Labels`.
"""
