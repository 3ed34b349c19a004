"""Reading image files: every pixel format scaled into 8 bits without clipping, linked class
folders followed, operating-system metadata skipped alike in folders and zips, and a link to
nothing refused as a corrupt image is."""

from __future__ import annotations

import os
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from ganlab.errors import GanlabError
from ganlab_plugins.data.datasets import ImageFolderParams, build_image_folder


def _read_all(root: Path, channels: int = 1) -> np.ndarray:
    """Every image under ``root`` as image_folder decodes it: uint8 (N, C, 8, 8)."""
    dataset = build_image_folder(ImageFolderParams(root=str(root), image_size=8, channels=channels))
    return np.stack([dataset.load_uint8(i).numpy() for i in range(len(dataset))])


def _save(image: Image.Image, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    image.save(path)


MID_GRAY_16 = np.full((8, 8), 32896, np.uint16)  # 128 * 257: exactly 8-bit 128


@pytest.mark.parametrize(
    ("name", "image"),
    [
        ("png16.png", Image.fromarray(MID_GRAY_16)),  # Pillow reads it as "I;16"
        # Pillow's convert("I;16B") clips too: the bytes themselves
        ("big_endian.tif", Image.frombytes("I;16B", (8, 8), MID_GRAY_16.astype(">u2").tobytes())),
        ("int32.tif", Image.fromarray(MID_GRAY_16.astype(np.int32))),  # mode "I"
        ("float.tif", Image.fromarray(np.full((8, 8), 128 / 255, np.float32))),  # mode "F"
    ],
)
def test_wide_samples_are_scaled_into_8_bits_not_clipped(
    tmp_path: Path, name: str, image: Image.Image
) -> None:
    _save(image, tmp_path / name)
    for channels in (1, 3):
        assert (_read_all(tmp_path, channels) == 128).all(), Image.open(tmp_path / name).mode


def test_palette_transparency_cmyk_and_la_read_as_their_colours(tmp_path: Path) -> None:
    rgb = Image.new("RGB", (8, 8), (200, 100, 50))
    palette = rgb.quantize(colors=2)
    palette.save(tmp_path / "a_palette.png", transparency=1)  # a transparent palette entry
    _save(rgb.convert("CMYK"), tmp_path / "b_cmyk.jpg")
    _save(Image.new("LA", (8, 8), (90, 255)), tmp_path / "c_la.png")
    images = _read_all(tmp_path, channels=3)
    assert tuple(images[0, :, 0, 0]) == (200, 100, 50)
    assert np.abs(images[1, :, 0, 0].astype(int) - (200, 100, 50)).max() <= 3  # JPEG
    assert (images[2] == 90).all()


def test_a_linked_class_folder_is_read_and_a_loop_is_not_followed(tmp_path: Path) -> None:
    root = tmp_path / "classes"
    for i in range(2):
        _save(Image.new("L", (8, 8), 10), root / "cat" / f"{i}.png")
        _save(Image.new("L", (8, 8), 20), tmp_path / "elsewhere" / "dog" / f"{i}.png")
    os.symlink(tmp_path / "elsewhere" / "dog", root / "dog", target_is_directory=True)
    os.symlink(root, root / "cat" / "again", target_is_directory=True)  # a loop
    dataset = build_image_folder(ImageFolderParams(root=str(root), image_size=8, channels=1))
    assert dataset.labels is not None
    assert dataset.labels.names == ("cat", "dog")
    assert dataset.labels.values.tolist() == [0, 0, 1, 1]


def test_os_metadata_is_skipped_by_the_folder_and_the_zip_reader_alike(tmp_path: Path) -> None:
    root = tmp_path / "faces"
    for i in range(3):
        _save(Image.new("L", (8, 8), 50 * i), root / "a" / f"{i}.png")
    not_images = {  # what macOS, Windows and editors leave beside images
        "__MACOSX/a/._0.png": b"\x00\x05\x16\x07AppleDouble",
        "a/._0.png": b"\x00\x05\x16\x07AppleDouble",
        ".DS_Store": b"\x00\x00\x00\x01Bud1",
        "a/Thumbs.db": b"\xd0\xcf\x11\xe0",
        "a/.hidden.png": b"not a png",
    }
    for name, data in not_images.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(data)
    archive = tmp_path / "faces.zip"
    with zipfile.ZipFile(archive, "w") as z:
        for path in sorted(root.rglob("*")):
            if path.is_file():
                z.write(path, f"faces/{path.relative_to(root)}")
    from_folder, from_zip = _read_all(root), _read_all(archive)
    assert len(from_folder) == 3
    assert (from_folder == from_zip).all()


def test_a_link_to_nothing_stops_the_run_naming_it(tmp_path: Path) -> None:
    _save(Image.new("L", (8, 8)), tmp_path / "a.png")
    os.symlink(tmp_path / "gone.png", tmp_path / "b.png")
    with pytest.raises(GanlabError, match=r"b\.png.*does not exist"):
        build_image_folder(ImageFolderParams(root=str(tmp_path), image_size=8))
