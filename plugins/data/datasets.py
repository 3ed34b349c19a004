"""The image data sets read from disk: any folder (or zip) of images, ``image_folder``, and
CelebA as the tutorial uses it, ``celeba``.

Both apply the tutorial's transform: Resize (short side), CenterCrop, ToTensor,
Normalize(0.5, 0.5), decoding with PIL exactly as torchvision's ImageFolder does
(`ganlab_plugins.data.decoding`). Both can be decoded once into ganlab's uint8 cache.
``image_folder`` also gives class labels as torchvision's ImageFolder does: an image's class
is the first-level subfolder it lies in (`ganlab_plugins.data.image_files.folder_classes`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field

import ganlab
from ganlab_plugins.data.image_files import (
    IMAGE_EXTENSIONS,
    FileImages,
    ZipImages,
    archive_parts,
    find_images,
    folder_classes,
    is_os_metadata,
    zip_image_names,
)

CELEBA_HELP = (
    "Download img_align_celeba.zip (about 1.4 GB, 'Align&Cropped Images') from the CelebA "
    "page, https://mmlab.ie.cuhk.edu.hk/projects/CelebA.html (or its Google Drive / Kaggle "
    "mirrors). Then either unzip it so that {root}/img_align_celeba/000001.jpg exists, or "
    "put the zip itself at {root}/img_align_celeba.zip (ganlab reads it without unzipping). "
    "To use another place: --set data.params.root=PATH (a folder or the .zip)."
)


class ImageFolderParams(ganlab.Params):
    root: str = Field(
        description="folder searched recursively for images, or a .zip of them; its "
        "first-level subfolders are the images' classes (as torchvision's ImageFolder)"
    )
    image_size: int = Field(default=64, gt=0, description="side of the square crop")
    channels: Literal[1, 3] = Field(default=3, description="3 for RGB, 1 for grayscale")


def build_image_folder(params: ImageFolderParams) -> FileImages | ZipImages:
    """Every image under a folder (or zip), resized and center-cropped; subfolders are classes.

    An image's class is the first-level subfolder it lies in (`folder_classes`); a zip's
    members are read as the folder it was made from (`archive_parts`)."""
    root = Path(params.root).expanduser()
    if root.is_file() and root.suffix.lower() == ".zip":
        names = zip_image_names(root)
        if not names:
            raise ganlab.GanlabError(f"data.params.root: {root} holds no images.")
        labels = folder_classes(archive_parts(names), str(root))
        return ZipImages(root, names, params.image_size, params.channels, labels)
    if not root.is_dir():
        raise ganlab.GanlabError(
            f"data.params.root: folder {str(root)!r} not found. Point it at a folder of "
            "images, e.g. --set data.params.root=path/to/images."
        )
    files = find_images(root)
    if not files:
        raise ganlab.GanlabError(
            f"data.params.root: {root} holds no images ({', '.join(IMAGE_EXTENSIONS)}). "
            "Put images there or point root at another folder."
        )
    labels = folder_classes([f.relative_to(root).parts for f in files], str(root))
    return FileImages(files, params.image_size, params.channels, labels, root)


class CelebAParams(ganlab.Params):
    root: str = Field(
        default="data/celeba",
        description="folder holding img_align_celeba/ or img_align_celeba.zip, or the zip",
    )
    image_size: int = Field(default=64, gt=0, description="side of the square crop")


def build_celeba(params: CelebAParams) -> FileImages | ZipImages:
    """CelebA aligned faces (202,599 JPEGs) from the folder or the downloaded zip."""
    root = Path(params.root).expanduser()
    candidates = (
        [root]
        if root.suffix.lower() == ".zip"
        else [
            root / "img_align_celeba",  # the tutorial's layout
            root / "img_align_celeba.zip",  # the download, not unzipped
        ]
    )
    if root.name == "img_align_celeba" and root.is_dir():
        candidates.insert(0, root)
    for place in candidates:
        if place.is_dir():
            files = sorted(
                p
                for p in place.iterdir()
                if p.suffix.lower() in (".jpg", ".jpeg") and not is_os_metadata(p.name)
            )
            if files:
                return FileImages(files, params.image_size, 3, root=place)
            raise ganlab.GanlabError(
                f"CelebA folder {place} holds no .jpg files. " + CELEBA_HELP.format(root=root)
            )
        if place.is_file():
            names = [n for n in zip_image_names(place) if n.lower().endswith((".jpg", ".jpeg"))]
            if names:
                return ZipImages(place, names, params.image_size, 3)
            raise ganlab.GanlabError(
                f"CelebA zip {place} holds no .jpg files. " + CELEBA_HELP.format(root=root)
            )
    raise ganlab.GanlabError(f"CelebA not found at {str(root)!r}. " + CELEBA_HELP.format(root=root))


@ganlab.hookimpl
def ganlab_register_datasets(register: ganlab.Register) -> None:
    register("image_folder", build_image_folder, params=ImageFolderParams)
    register("celeba", build_celeba, params=CelebAParams)
