"""Built-in data sets: image folders and CelebA (`datasets`, reading files with
`image_files` and `decoding`), and the procedural cartoon faces the quickstart trains on
(`faces`, drawn by `face_attributes` and `face_drawing`)."""
