"""Class labels from the built-in data sets: `image_folder`'s class subfolders (as
torchvision's ImageFolder), `cartoon_faces`' `classes:` attribute; through the decode-once
cache and the seeded batches."""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from ganlab.data.batches import Batches
from ganlab.data.cache import cache_path, cached, labels_path, open_cache
from ganlab.data.types import TensorImages, labels_of
from ganlab_plugins.data.datasets import ImageFolderParams, build_image_folder
from ganlab_plugins.data.face_attributes import BACKGROUNDS, FACE_CLASSES
from ganlab_plugins.data.faces import CartoonFacesParams, build_cartoon_faces, make_faces
from ganlab_plugins.data.image_files import FileImages, ZipImages
from tests.conftest import invoke, tiny_recipe, write_recipe

#: The gray level of each class's images in `coded_folder`: a batch's classes can be read
#: off its pixels.
LEVELS = {"a": 40, "b": 120, "c": 200}


def write_gray(path: Path, level: int, size: int = 12) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.full((size, size, 3), level, dtype=np.uint8)).save(path)


def coded_folder(root: Path, counts: dict[str, int]) -> Path:
    """A folder with one subfolder per class, every image of class ``k`` a solid gray of
    ``LEVELS[k]`` (PNG: lossless), ``counts[k]`` of them."""
    for name, count in counts.items():
        for i in range(count):
            write_gray(root / name / f"{i:03d}.png", LEVELS[name])
    return root


def classes_of_pixels(images: torch.Tensor) -> list[str]:
    """The class each image shows, by its gray level (images in [-1, 1])."""
    by_level = {level: name for name, level in LEVELS.items()}
    levels = ((images.float() + 1) * 127.5).round().int()
    assert (levels == levels[:, :1, :1, :1]).all(), "not solid images"
    return [by_level[int(level)] for level in levels[:, 0, 0, 0]]


def folder(root: Path, image_size: int = 8) -> FileImages | ZipImages:
    return build_image_folder(ImageFolderParams(root=str(root), image_size=image_size))


# --- image_folder -------------------------------------------------------------------------


def test_image_folder_classes_are_the_sorted_first_level_subfolders(tmp_path: Path) -> None:
    root = coded_folder(tmp_path / "set", {"c": 2, "a": 3, "b": 1})
    write_gray(root / "b" / "deeper" / "x.png", LEVELS["b"])  # at any depth: still class b
    dataset = folder(root)
    labels = labels_of(dataset)
    assert labels is not None and labels.names == ("a", "b", "c")
    names = [labels.names[k] for k in labels.values.tolist()]
    assert names == ["a", "a", "a", "b", "b", "c", "c"]
    # Every image is of the class its label says.
    images = torch.stack([dataset[i] for i in range(len(dataset))])
    assert classes_of_pixels(images) == names


def test_a_folder_of_loose_images_has_no_classes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    for i in range(3):
        write_gray(tmp_path / "loose" / f"{i}.png", 40)
    assert labels_of(folder(tmp_path / "loose")) is None
    assert "note" not in capsys.readouterr().err


def test_loose_images_beside_class_folders_keep_every_image_and_no_classes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """ImageFolder would drop the loose image; ganlab keeps training on it, gives no
    classes, and says why (a conditional model then refuses the data set)."""
    root = coded_folder(tmp_path / "mixed", {"a": 2, "b": 2})
    write_gray(root / "stray.png", 200)
    dataset = folder(root)
    assert len(dataset) == 5 and labels_of(dataset) is None
    err = capsys.readouterr().err
    assert "1 image(s) directly in it beside class subfolders" in err
    assert "Move them into a class subfolder" in err


def test_a_zip_has_the_classes_of_the_folder_it_was_made_from(
    tmp_path: Path, celeba_zip: Path
) -> None:
    root = coded_folder(tmp_path / "faces", {"a": 2, "b": 1})
    archive = tmp_path / "faces.zip"
    with zipfile.ZipFile(archive, "w") as z:  # as `zip -r faces.zip faces/` makes it
        for path in sorted(root.rglob("*.png")):
            z.write(path, str(path.relative_to(tmp_path)))
    dataset = folder(archive)
    labels = labels_of(dataset)
    assert labels is not None and labels.names == ("a", "b")
    assert labels.values.tolist() == [0, 0, 1]
    assert classes_of_pixels(torch.stack([dataset[i] for i in range(3)])) == ["a", "a", "b"]
    # CelebA's zip holds one folder of images: no classes.
    assert labels_of(folder(celeba_zip)) is None


# --- the cache ----------------------------------------------------------------------------


def test_labels_survive_the_cache_and_other_classes_make_another(tmp_path: Path) -> None:
    root = coded_folder(tmp_path / "data" / "set", {"a": 3, "b": 2, "c": 1})
    recipe = tiny_recipe(root, data={"name": "image_folder", "params": {"root": str(root)}})
    recipe["data"]["params"]["image_size"] = 8
    prepared = invoke("data", "prepare", str(write_recipe(tmp_path / "r.yaml", recipe)))
    assert prepared.exit_code == 0 and "Prepared 6 images" in prepared.output, prepared.output

    dataset = folder(root)
    path = cache_path(dataset)
    assert labels_path(path).is_file()
    stored = open_cache(path, (6, 3, 8, 8)).labels  # read back from the files alone
    assert stored is not None and stored.names == ("a", "b", "c")
    assert stored.values.tolist() == [0, 0, 0, 1, 1, 2]

    # The same files with other classes (root one folder up: one class, "set") are
    # another cache, never the labels of the first.
    recipe["data"]["params"]["root"] = str(tmp_path / "data")
    again = invoke("data", "prepare", str(write_recipe(tmp_path / "up.yaml", recipe)))
    assert again.exit_code == 0 and "Prepared 6 images" in again.output, again.output
    up = cached(folder(tmp_path / "data"))
    assert up.labels is not None and up.labels.names == ("set",)
    stored_up = open_cache(cache_path(folder(tmp_path / "data")), (6, 3, 8, 8)).labels
    assert stored_up is not None and stored_up.values.tolist() == [0] * 6


@pytest.mark.parametrize("from_cache", [True, False], ids=["cache", "files"])
def test_a_batch_holds_its_images_classes_in_every_epoch(tmp_path: Path, from_cache: bool) -> None:
    """The seeded order slices labels with the same indices as images: from the uint8
    cache (in memory) and from the files (through the loader)."""
    dataset = folder(coded_folder(tmp_path / "set", {"a": 5, "b": 4, "c": 2}))
    source = cached(dataset) if from_cache else dataset
    batches = Batches(source, batch_size=3, seed=7, device=torch.device("cpu"))
    names = ("a", "b", "c")
    seen = []
    for epoch in range(2):
        for images, labels in batches.epoch(epoch):
            assert labels is not None and labels.dtype == torch.int64
            assert classes_of_pixels(images) == [names[k] for k in labels.tolist()]
            seen.append(labels.tolist())
    assert seen[:4] != seen[4:]  # each epoch its own order
    # Starting mid-epoch (a resumed run) gives the same batches as the rest of the epoch.
    rest = [labels.tolist() for _, labels in batches.epoch(1, start=2)]
    assert rest == seen[6:]


# --- cartoon_faces ------------------------------------------------------------------------


def test_cartoon_faces_have_no_classes_unless_asked() -> None:
    built = build_cartoon_faces(CartoonFacesParams(count=8, image_size=16))
    assert isinstance(built, TensorImages) and built.labels is None
    assert torch.equal(built.images, make_faces(8, 16))  # the quickstart's faces, unchanged


@pytest.mark.parametrize("attribute", sorted(FACE_CLASSES))
def test_cartoon_faces_classes_cover_every_face_with_readable_names(attribute: str) -> None:
    built = build_cartoon_faces(CartoonFacesParams(count=400, image_size=16, classes=attribute))
    labels = built.labels
    assert labels is not None and labels.problem(400) is None
    assert all(name.replace("_", "").isalpha() for name in labels.names)
    assert set(labels.values.tolist()) == set(range(len(labels.names)))  # every class occurs
    assert torch.equal(built.images, make_faces(400, 16))  # the same faces, with classes


def test_a_faces_class_is_what_it_shows() -> None:
    """Class `sky` faces have the sky background (the corner pixel), and so on; glasses
    are drawn on about a fifth of the faces, the `glasses` class."""
    built = build_cartoon_faces(CartoonFacesParams(count=300, image_size=16, classes="background"))
    assert built.labels is not None and built.labels.names[0] == "sky"
    expected = np.round(BACKGROUNDS * 255).astype(int)[built.labels.values.numpy()]
    corners = built.images[:, :, 0, 0].numpy().astype(int)
    assert (np.abs(corners - expected) <= 1).all()
    glasses = build_cartoon_faces(CartoonFacesParams(count=300, image_size=16, classes="glasses"))
    assert glasses.labels is not None and glasses.labels.names == ("no_glasses", "glasses")
    assert 0.12 < glasses.labels.frequencies()[1] < 0.28
