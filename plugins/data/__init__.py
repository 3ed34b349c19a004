"""Built-in data sets: image folders, CelebA, MNIST and CIFAR-10 (`datasets`), and the
procedural cartoon faces the quickstart trains on (`faces`)."""
