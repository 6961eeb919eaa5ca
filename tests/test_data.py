"""archspec.data: images read as they are, folders and npz files that cannot hang or balloon, the streaming path."""

from __future__ import annotations

import io
import os
import pickle
import struct
import subprocess
import sys
import threading
import warnings
import zipfile
import zlib
from pathlib import Path

import numpy as np
import pytest
from conftest import ROOT
from PIL import ExifTags, Image

from archspec.data import (
    IMAGE_SUFFIXES,
    MAX_IMAGE_PIXELS,
    RESIZE_MODES,
    Catalog,
    DataError,
    Images,
    from_arrays,
    load_images,
    scan,
    split,
)

pytest.importorskip("sklearn", reason="the fit extra (pip install -e '.[fit]') is not installed")


def save(path: Path, image: Image.Image, **options: object) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    image.save(path, **options)
    return path


def grey(value: int, size: tuple[int, int] = (6, 4)) -> Image.Image:
    """An 8-bit grey image of ``size`` (width, height) Pillow's way."""
    return Image.new("L", size, value)


def two_classes(root: Path, first: Image.Image, other: Image.Image | None = None, suffix: str = ".png") -> Path:
    """``root/a/0`` holds ``first``, ``root/b/0`` holds ``other`` (an 8-bit grey image by default)."""
    save(root / "a" / f"0{suffix}", first)
    save(root / "b" / "0.png", other if other is not None else grey(0, first.size))
    return root


def refused(source: object, **options: object) -> str:
    with pytest.raises(DataError) as error:
        scan(source, **options).load()  # type: ignore[arg-type]
    assert error.value.code == "AS1001"
    return str(error.value)


def png_header(width: int, height: int) -> bytes:
    """A PNG file whose header declares ``width`` × ``height`` grey pixels, and which holds none."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"")) + chunk(b"IEND", b"")


def _size_text(count: int) -> str:
    from archspec.weights_file import _size

    return _size(count)


def finishes(call, seconds: float = 20.0) -> object:
    """``call()``'s result or exception, failing the test if it has not returned within ``seconds``."""
    outcome: dict[str, object] = {}

    def run() -> None:
        try:
            outcome["value"] = call()
        except Exception as exc:
            outcome["value"] = exc

    worker = threading.Thread(target=run, daemon=True)
    worker.start()
    worker.join(seconds)
    assert not worker.is_alive(), "blocked"
    return outcome["value"]


# Images are read as they are: depth, float values, palettes, colour modes, alpha, orientation, frames.


def test_16_bit_grey_pngs_are_scaled_by_65535_not_clipped(tmp_path):
    deep = np.array([[0, 1000, 30000, 65535]], dtype=np.uint16).repeat(2, axis=0)
    root = two_classes(tmp_path, Image.fromarray(deep), grey(51, (4, 2)))
    catalog = scan(root)
    assert (catalog.dtype, catalog.channels) == ("float32", 1)
    images = catalog.load()
    assert images.x.dtype == np.float32 and images.scale == 1.0
    np.testing.assert_array_equal(images.x[0, 0], deep.astype(np.float32) / np.float32(65535))
    assert images.x[1, 0, 0, 0] == np.float32(51) / np.float32(255)  # 8-bit images beside them: over 255


def test_8_bit_images_stay_uint8(tmp_path):
    images = load_images(two_classes(tmp_path, Image.new("RGB", (4, 2), (10, 20, 30))))
    assert images.x.dtype == np.uint8 and images.scale == 255.0
    assert images.x[0, :, 0, 0].tolist() == [10, 20, 30]
    assert images.x[1, :, 0, 0].tolist() == [0, 0, 0]  # grey beside colour: three equal channels


def test_float_images_in_unit_range_are_used_as_they_are(tmp_path):
    values = np.array([[0.0, 0.25, 0.5, 1.0]], dtype=np.float32)
    root = two_classes(tmp_path, Image.fromarray(values), suffix=".tif")
    images = load_images(root)
    assert images.x.dtype == np.float32
    np.testing.assert_array_equal(images.x[0, 0], values)


def test_float_images_outside_unit_range_are_refused_with_the_range(tmp_path):
    values = np.array([[-0.5, 0.25, 2.0]], dtype=np.float32)
    root = two_classes(tmp_path, Image.fromarray(values), suffix=".tif")
    assert refused(root) == (
        f"{root / 'a' / '0.tif'}: float pixel values run from -0.5 to 2; float images must hold values in [0, 1]"
    )


def test_32_bit_integer_images_are_scaled_by_65535_when_they_fit_16_bits(tmp_path):
    fits = np.array([[0, 40000, 65535]], dtype=np.int32)
    root = two_classes(tmp_path / "fits", Image.fromarray(fits), suffix=".tif")
    with Image.open(root / "a" / "0.tif") as stored:
        assert stored.mode == "I"
    np.testing.assert_array_equal(load_images(root).x[0, 0], fits.astype(np.float32) / np.float32(65535))
    wide = two_classes(tmp_path / "wide", Image.fromarray(np.array([[0, 70000]], dtype=np.int32)), suffix=".tif")
    assert refused(wide) == (
        f"{wide / 'a' / '0.tif'}: 32-bit integer pixel values run from 0 to 70000; integer images are read as "
        "16-bit (0 to 65,535), so these cannot be scaled: save them as 16-bit, or as floats in [0, 1]"
    )


def test_palette_images_go_through_their_palette(tmp_path):
    palette = Image.new("P", (4, 2))
    palette.putpalette([200, 10, 20] + [0, 0, 0] * 255)
    transparent = Image.new("P", (4, 2))
    transparent.putpalette([5, 6, 7] + [0, 0, 0] * 255)
    transparent.info["transparency"] = 0
    root = two_classes(tmp_path, palette, transparent)
    with Image.open(root / "b" / "0.png") as stored:
        assert (stored.mode, stored.info["transparency"]) == ("P", 0)
    images = load_images(root)
    assert images.channels == 3
    assert images.x[:, :, 0, 0].tolist() == [[200, 10, 20], [5, 6, 7]]
    from archspec.data.decode import _plane  # no format saves PA; a PA image converts the same way

    with_alpha = Image.new("PA", (4, 2))
    with_alpha.putpalette([5, 6, 7] + [0, 0, 0] * 255)
    assert np.asarray(_plane("pa", with_alpha))[0, 0].tolist() == [5, 6, 7]


def test_cmyk_becomes_rgb(tmp_path):
    root = two_classes(tmp_path, Image.new("CMYK", (4, 2), (0, 255, 255, 0)), suffix=".jpg")
    red = load_images(root).x[0, :, 0, 0].astype(int)
    assert red[0] > 200 and red[1] < 40 and red[2] < 40


def test_alpha_is_dropped_not_composited(tmp_path):
    root = two_classes(tmp_path, Image.new("RGBA", (4, 2), (10, 20, 30, 0)), Image.new("LA", (4, 2), (90, 0)))
    images = load_images(root)
    assert images.x[:, :, 0, 0].tolist() == [[10, 20, 30], [90, 90, 90]]


def test_the_exif_orientation_is_applied(tmp_path):
    stored = np.zeros((20, 40), dtype=np.uint8)
    stored[:, :20] = 255  # the left half bright, as stored
    exif = Image.Exif()
    exif[ExifTags.Base.Orientation] = 6  # shown rotated a quarter turn clockwise
    root = tmp_path / "photos"
    save(root / "a" / "0.jpg", Image.fromarray(stored), exif=exif, quality=95)
    save(root / "b" / "0.jpg", Image.fromarray(stored), quality=95)
    catalog = scan(root)
    assert catalog.sizes.tolist() == [[40, 20], [20, 40]]  # (height, width), upright
    upright = catalog.load((40, 20), "stretch").x[0, 0].astype(int)
    assert upright[:20].mean() > 200 and upright[20:].mean() < 50  # the left half is now on top


def test_an_animated_gif_gives_its_first_frame(tmp_path):
    frames = [grey(10, (4, 2)), grey(200, (4, 2))]
    save(tmp_path / "a" / "0.gif", frames[0], save_all=True, append_images=frames[1:])
    save(tmp_path / "b" / "0.png", grey(0, (4, 2)))
    with Image.open(tmp_path / "a" / "0.gif") as stored:
        assert stored.n_frames == 2
    assert load_images(tmp_path).x[0, 0, 0, 0] == 10


def test_a_mode_pillow_cannot_convert_is_refused_by_name(tmp_path, monkeypatch):
    root = two_classes(tmp_path, Image.new("LAB", (4, 2)), suffix=".tif")
    converted = Image.Image.convert

    def convert(image: Image.Image, mode: str | None = None, *args: object, **kwargs: object) -> Image.Image:
        if image.mode == "LAB":
            raise ValueError("conversion from LAB to RGB not supported")
        return converted(image, mode, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(Image.Image, "convert", convert)
    assert refused(root) == (
        f"{root / 'a' / '0.tif'}: image mode LAB cannot be converted to RGB or grey; convert the file first"
    )


# Sizes and resize modes.


def columns(height: int, width: int) -> Image.Image:
    """A grey image whose column ``i`` holds 30 × ``i``."""
    return Image.fromarray(np.tile(np.arange(width, dtype=np.uint8) * 30, (height, 1)))


def test_each_resize_mode_brings_an_image_to_the_size(tmp_path):
    root = two_classes(tmp_path, columns(4, 8), columns(4, 4))
    catalog = scan(root)
    assert RESIZE_MODES == ("crop", "pad", "stretch")
    crop = catalog.load((4, 4), "crop").x[:, 0]
    assert crop[0].tolist() == [[60, 90, 120, 150]] * 4  # scaled to cover (here 1:1), the centre kept
    assert crop[1].tolist() == [[0, 30, 60, 90]] * 4  # an image of the size is left as it is
    pad = catalog.load((4, 4), "pad").x[0, 0]
    assert pad[[0, 3]].tolist() == [[0] * 4] * 2 and (pad[1:3, 1:] > 0).all()  # halved into 2×4, centred
    stretch = catalog.load((4, 4), "stretch").x[0, 0]
    assert stretch.shape == (4, 4) and (stretch == stretch[0]).all() and stretch[0, 0] < stretch[0, 3]
    with pytest.raises(DataError, match=r"resize must be one of crop, pad, stretch, got 'fill'"):
        catalog.load((4, 4), "fill")


def test_mixed_sizes_load_at_a_given_size_and_are_named_without_one(tmp_path):
    save(tmp_path / "a" / "0.png", grey(1, (8, 4)))
    save(tmp_path / "a" / "1.png", grey(2, (8, 8)))
    save(tmp_path / "b" / "0.png", grey(3, (6, 6)))
    save(tmp_path / "b" / "1.png", grey(4, (6, 6)))
    catalog = scan(tmp_path)
    assert catalog.size is None
    assert catalog.describe() == f"{tmp_path}: 4 images, 3 sizes from 4×8 to 8×8 (height×width), 1 channel, 2 classes"
    assert catalog.load((5, 5), "crop").x[:, 0, 2, 2].tolist() == [1, 2, 3, 4]
    assert catalog.stored_bytes((5, 5)) == 4 * 1 * 5 * 5
    message = refused(tmp_path)
    assert message.startswith(
        f"{tmp_path / 'a' / '1.png'}: 8×8 pixels, but {tmp_path / 'a' / '0.png'} has 4×8: every image must have one "
        "size, or a size must be given to scale them to (fit's --size, with --resize crop, pad or stretch)"
    )


def test_a_large_jpeg_shrunk_a_lot_is_decoded_at_a_reduced_scale_and_still_right(tmp_path, monkeypatch):
    from PIL import JpegImagePlugin

    rng = np.random.default_rng(0)
    big = np.kron(rng.integers(0, 256, (8, 8, 3), dtype=np.uint8), np.ones((64, 64, 1), dtype=np.uint8))
    root = two_classes(tmp_path, Image.fromarray(big), Image.new("RGB", (512, 512)), suffix=".jpg")
    drafts = []
    draft = JpegImagePlugin.JpegImageFile.draft

    def spy(image: Image.Image, mode: str | None, size: tuple[int, int] | None) -> object:
        drafts.append(draft(image, mode, size))
        return drafts[-1]

    monkeypatch.setattr(JpegImagePlugin.JpegImageFile, "draft", spy)
    small = scan(root).load((8, 8)).x[0].transpose(1, 2, 0).astype(int)
    assert drafts[0] == ("RGB", (0, 0, 64.0, 64.0))  # decoded at 1/8 scale: 64×64
    direct = np.asarray(Image.fromarray(big).resize((8, 8), Image.Resampling.BILINEAR)).astype(int)
    assert np.abs(small - direct).max() <= 4


def test_describe_names_the_size_order_channels_and_skipped_files(tmp_path):
    two_classes(tmp_path, grey(0), Image.new("RGB", (6, 4)))
    (tmp_path / "a" / "notes.txt").write_text("not an image")
    (tmp_path / "README.md").write_text("a file beside the class folders")
    save(tmp_path / "a" / ".hidden.png", grey(0, (9, 9)))
    save(tmp_path / "b" / ".thumbnails" / "0.png", grey(0, (9, 9)))
    save(tmp_path / ".cache" / "0.png", grey(0, (9, 9)))
    catalog = scan(tmp_path)
    expected = f"{tmp_path}: 2 images, 4×6 (height×width), 3 channels, 2 classes; 2 other files skipped"
    assert catalog.describe() == expected
    assert catalog.load().describe() == expected
    assert scan("digits").describe() == "digits: 1,797 images, 8×8 (height×width), 1 channel, 10 classes"


# Folders: class folders, the digits name, links, special files, the pixel cap, damaged files.


def test_an_empty_class_folder_is_a_located_error(tmp_path):
    save(tmp_path / "cat" / "0.png", grey(0))
    (tmp_path / "dog").mkdir()
    (tmp_path / "dog" / "notes.txt").write_text("no images here")
    save(tmp_path / "emu" / "0.png", grey(0))
    assert refused(tmp_path) == (
        f"{tmp_path / 'dog'}: class folder holds no images (labels follow the folder order, so skipping it would "
        "shift every later class); add images or remove the folder"
    )


def test_digits_names_the_bundled_set_unless_a_digits_path_exists(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert scan("digits").kind == "digits"
    two_classes(tmp_path / "digits", grey(0))
    assert refused("digits") == (
        "digits: names both the bundled digits and the path ./digits; write builtin:digits for the bundled set or "
        "./digits for the path"
    )
    assert scan("builtin:digits").kind == "digits"
    assert (scan("./digits").kind, scan(Path("digits")).kind) == ("folder", "folder")
    assert refused("builtin:mnist") == "builtin:mnist: no such built-in data set; the one built in is builtin:digits"


def test_a_class_folder_linked_outside_the_data_folder_is_refused_not_walked(tmp_path):
    root = two_classes(tmp_path / "data", grey(0))
    (root / "everything").symlink_to("/")
    message = finishes(lambda: refused(root))
    assert message == (
        f"{root / 'everything'}: a symbolic link to /, outside the data folder {root}; links are followed only to "
        "files inside it (copy the file in instead)"
    )


def test_links_to_files_outside_or_to_folders_are_refused_and_links_to_files_inside_are_read(tmp_path):
    root = two_classes(tmp_path / "data", grey(7))
    outside = save(tmp_path / "elsewhere.png", grey(0))
    (root / "a" / "1.png").symlink_to(outside)
    assert refused(root) == (
        f"{root / 'a' / '1.png'}: a symbolic link to {outside}, outside the data folder {root}; links are followed "
        "only to files inside it (copy the file in instead)"
    )
    (root / "a" / "1.png").unlink()
    (root / "a" / "again").symlink_to(root / "b")
    assert refused(root) == (
        f"{root / 'a' / 'again'}: a symbolic link to the folder {root / 'b'}; links to folders are not followed, so "
        "that no folder is read twice or in a loop (move the folder here instead)"
    )
    (root / "a" / "again").unlink()
    (root / "a" / "1.png").symlink_to(root / "b" / "0.png")
    assert load_images(root).y.tolist() == [0, 0, 1]
    (root / "a" / "2.png").symlink_to(root / "gone.png")
    assert refused(root) == f"{root / 'a' / '2.png'}: a symbolic link to {root / 'gone.png'}, which does not exist"


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs here")
def test_a_fifo_named_like_an_image_is_refused_without_being_opened(tmp_path):
    root = two_classes(tmp_path, grey(0))
    os.mkfifo(root / "a" / "1.png")
    message = finishes(lambda: refused(root))
    assert message == f"{root / 'a' / '1.png'}: not a regular file (a FIFO); only regular files are read"


def test_an_image_over_the_pixel_cap_is_refused_from_its_header(tmp_path):
    assert MAX_IMAGE_PIXELS == 2**26
    root = two_classes(tmp_path, grey(0))
    (root / "a" / "1.png").write_bytes(png_header(9000, 8000))  # 72 M pixels in a file of 70 bytes
    assert refused(root) == (
        f"{root / 'a' / '1.png'}: 8,000×9,000 pixels (height×width), 72,000,000 in all, more than the 67,108,864 an "
        "image may have (max_pixels); shrink it first"
    )
    (root / "a" / "1.png").unlink()
    assert refused(root, max_pixels=20) == (
        f"{root / 'a' / '0.png'}: 4×6 pixels (height×width), 24 in all, more than the 20 an image may have "
        "(max_pixels); shrink it first"
    )


def test_pillows_decompression_bomb_checks_are_refusals_and_leak_no_warning(tmp_path):
    root = two_classes(tmp_path, grey(0))
    (root / "a" / "1.png").write_bytes(png_header(10000, 10000))  # past Pillow's warning threshold
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        message = refused(root, max_pixels=2**40)
    assert message.startswith(
        f"{root / 'a' / '1.png'}: refused as a possible decompression bomb (Image size (100000000 pixels) exceeds "
    )
    (root / "a" / "1.png").write_bytes(png_header(20000, 20000))  # past Pillow's error threshold
    assert refused(root, max_pixels=2**40).startswith(f"{root / 'a' / '1.png'}: refused as a possible decompression")


def test_damaged_images_are_not_readable_images(tmp_path):
    root = two_classes(tmp_path, Image.fromarray(np.random.default_rng(0).integers(0, 256, (64, 64), np.uint8)))
    whole = (root / "a" / "0.png").read_bytes()
    (root / "a" / "0.png").write_bytes(whole[: len(whole) * 2 // 3])
    catalog = scan(root)  # the header is whole: the damage shows when the pixels are decoded
    with pytest.raises(DataError) as error:
        catalog.load()
    assert str(error.value).startswith(f"{root / 'a' / '0.png'}: not a readable image (OSError: ")
    (root / "a" / "0.png").write_bytes(b"GIF89a but nothing after")
    assert refused(root).startswith(f"{root / 'a' / '0.png'}: not a readable image (")
    (root / "a" / "0.png").write_bytes(b"%!PS-Adobe-3.0 EPSF-3.0\n")  # never handed to Ghostscript
    assert refused(root) == (
        f"{root / 'a' / '0.png'}: not a readable image (UnidentifiedImageError: cannot identify image file as BMP, "
        "GIF, JPEG, PNG, PPM, TIFF or WEBP)"
    )


def test_a_file_that_changes_after_the_scan_is_refused(tmp_path):
    root = two_classes(tmp_path, grey(0))
    catalog = scan(root)
    save(root / "a" / "0.png", grey(0, (5, 5)))
    with pytest.raises(DataError, match=r"0.png: changed since the data was scanned \(4×6 L → 5×5 L\); scan it again"):
        catalog.load()


def test_the_scan_reads_headers_only(tmp_path, monkeypatch):
    root = two_classes(tmp_path, grey(0))
    monkeypatch.setattr(Image.Image, "load", lambda image: pytest.fail("pixels decoded during the scan"))
    assert scan(root).sizes.tolist() == [[4, 6], [4, 6]]


# npz files: no pickles, no trust in headers, bounded labels.


def npy(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.lib.format.write_array(buffer, array, allow_pickle=True)
    return buffer.getvalue()


def npy_prefix(header: bytes) -> bytes:
    """The magic string and length of a version 1.0 ``.npy`` file, then ``header`` as its header."""
    return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header


def npz(path: Path, members: dict[str, bytes], method: int = zipfile.ZIP_STORED) -> Path:
    with zipfile.ZipFile(path, "w", method) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return path


def good_members(count: int = 6) -> dict[str, bytes]:
    return {"x.npy": npy(np.zeros((count, 4, 4), np.uint8)), "y.npy": npy(np.arange(count) % 2)}


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs here")
def test_a_fifo_named_npz_is_refused_without_being_opened(tmp_path):
    os.mkfifo(tmp_path / "data.npz")
    message = finishes(lambda: refused(tmp_path / "data.npz"))
    assert message == f"{tmp_path / 'data.npz'}: not a regular file (a FIFO); only regular files are read"


def test_a_header_declaring_more_than_its_member_holds_is_refused_before_allocating(tmp_path):
    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(header, {"descr": "<f4", "fortran_order": False, "shape": (2**40, 1, 4, 4)})
    path = npz(tmp_path / "huge.npz", {**good_members(), "x.npy": header.getvalue() + b"\0" * 64})
    assert refused(path) == (
        f"{path}: not a readable .npz file (member 'x.npy' declares 1099511627776×1×4×4 float32 values, "
        f"{_size_text(2**40 * 64)}, but holds 64 bytes of data)"
    )


def test_object_arrays_are_refused_without_unpickling(tmp_path):
    path = npz(tmp_path / "objects.npz", {**good_members(), "y.npy": npy(np.array([0, 1, {"a": 1}], dtype=object))})
    assert refused(path) == (
        f"{path}: y holds Python objects (dtype object), which only a pickle can restore; .npz files are read "
        "without pickles: save numbers (and class names as strings)"
    )


def test_a_deflated_member_that_inflates_like_a_bomb_is_refused(tmp_path):
    path = tmp_path / "bomb.npz"
    np.savez_compressed(path, x=np.zeros((64, 1, 256, 256), np.uint8), y=np.arange(64) % 2)
    with zipfile.ZipFile(path) as archive:
        info = archive.getinfo("x.npy")
    ratio = info.file_size / info.compress_size
    assert refused(path) == (
        f"{path}: member 'x.npy' inflates {ratio:,.0f}-fold, from {_size_text(info.compress_size)} to "
        f"{_size_text(info.file_size)}; image data does not compress like that, so the file is refused as a possible "
        "zip bomb (at most 100-fold; numpy.savez stores arrays uncompressed)"
    )
    raw = bytearray(path.read_bytes())  # a directory that overstates the compressed size, to pass the ratio
    entry = raw.find(b"PK\x01\x02")  # the central directory's first entry: x.npy
    struct.pack_into("<I", raw, entry + 20, info.file_size // 50)
    path.write_bytes(bytes(raw))
    assert refused(path) == (
        f"{path}: not a readable .npz file (member 'x.npy' declares {_size_text(info.file_size // 50)} of compressed "
        f"data from offset 0, past the end of the file ({_size_text(len(raw))}))"
    )


def test_arrays_over_the_memory_available_are_refused(tmp_path, monkeypatch):
    from archspec import budget

    path = tmp_path / "big.npz"
    np.savez(path, x=np.zeros((6, 64, 64), np.float32), y=np.arange(6) % 2)
    monkeypatch.setattr(budget, "memory_limit", lambda: 50_000)
    with zipfile.ZipFile(path) as archive:
        total = sum(info.file_size for info in archive.infolist())
    assert refused(path) == (
        f"{path}: its arrays take {_size_text(total)}, more than the 50,000 bytes of memory available"
    )
    monkeypatch.setattr(budget, "memory_limit", lambda: 2**40)
    catalog = scan(path)
    monkeypatch.setattr(budget, "memory_limit", lambda: 1000)
    with pytest.raises(DataError) as error:
        catalog.load()
    assert str(error.value) == (
        f"{path}: x takes 98,304 bytes as float32, more than the 1,000 bytes of memory available"
    )


def test_damaged_npz_files_are_not_readable(tmp_path):
    no_magic = npz(tmp_path / "magic.npz", {**good_members(), "x.npy": b"not an array at all"})
    assert refused(no_magic).startswith(
        f"{no_magic}: not a readable .npz file (member 'x.npy': ValueError: the magic string is not correct"
    )
    text = b"{'descr': '<f4', 'fortran_order': False, 'shape': (2,\n"  # a header numpy's tokenizer fails on
    broken = npz(tmp_path / "header.npz", {**good_members(), "x.npy": npy_prefix(text)})
    assert refused(broken) == (
        f"{broken}: not a readable .npz file (member 'x.npy': TokenError: ('EOF in multi-line statement', (2, 0)))"
    )
    deflated = npz(tmp_path / "deflated.npz", good_members(), zipfile.ZIP_DEFLATED)
    data = bytearray(deflated.read_bytes())
    with zipfile.ZipFile(deflated) as archive:
        info = archive.getinfo("x.npy")
    start = info.header_offset + 30 + len(info.filename) + len(info.extra)
    data[start : start + info.compress_size] = b"\xff" * info.compress_size
    deflated.write_bytes(bytes(data))
    assert refused(deflated).startswith(f"{deflated}: not a readable .npz file (member 'x.npy': zlib.error: ")
    truncated = tmp_path / "truncated.npz"
    whole = npz(tmp_path / "whole.npz", good_members()).read_bytes()
    truncated.write_bytes(whole[: len(whole) - 30])
    assert refused(truncated).startswith(f"{truncated}: not a readable .npz file (BadZipFile: ")


def test_a_label_beyond_the_image_count_is_refused_unless_classes_name_it(tmp_path):
    path = tmp_path / "labels.npz"
    np.savez(path, x=np.zeros((5, 4, 4), np.uint8), y=np.array([0, 1, 0, 10**12, 1]))
    assert path.stat().st_size < 6000
    assert refused(path) == (
        f"{path}: label 1000000000000 of image 3 is not below 5, the number of images: without a classes array the "
        "labels number the classes from 0, so there cannot be more classes than images (save classes=[...] naming "
        "every class to use labels this large)"
    )
    np.savez(path, x=np.zeros((5, 4, 4), np.uint8), y=np.array([0, 1, 0, 7, 1]), classes=np.array(list("abcdefgh")))
    assert len(scan(path).classes) == 8


@pytest.mark.parametrize(
    ("arrays", "message"),
    [
        ({"images": np.zeros((2, 4, 4))}, "missing array x and y (found: images); expected x, y"),
        ({"x": np.zeros((2, 4)), "y": np.arange(2)}, "x has shape (2, 4); expected N×C×H×W or N×H×W"),
        ({"x": np.zeros((2, 4, 4)), "y": np.arange(3)}, "y has shape (3,); expected one label per image (2,)"),
        ({"x": np.zeros((2, 4, 4)), "y": np.zeros(2)}, "y holds float64 values; expected integer class labels from 0"),
        ({"x": np.array(["a", "b"]), "y": np.arange(2)}, "x holds <U1 values; expected numbers"),
        ({"x": np.zeros((2, 4, 4)), "y": np.zeros(2, int)}, "every image has label 0: a classifier needs at least 2"),
        ({"x": np.zeros((0, 4, 4)), "y": np.zeros(0, int)}, "holds no images"),
        (
            {"x": np.zeros((2, 4, 4)), "y": np.array([0, 3]), "classes": np.array(["a", "b"])},
            "label 3 of image 1 is out of range: labels run from 0 to 1 (2 classes)",
        ),
        ({"x": np.array([[[0.0]], [[np.inf]]]), "y": np.arange(2)}, "image 1 holds NaN or infinite values"),
    ],
    ids=["keys", "x shape", "y shape", "float labels", "strings", "one class", "empty", "out of range", "infinite"],
)
def test_npz_and_array_checks_keep_their_messages(tmp_path, arrays, message):
    path = tmp_path / "data.npz"
    np.savez(path, **arrays)
    assert refused(path).startswith(f"{path}: {message}")
    if "x" in arrays and "y" in arrays:
        with pytest.raises(DataError) as error:
            from_arrays(arrays["x"], arrays["y"], arrays.get("classes"), source="mine")
        assert str(error.value).startswith(f"mine: {message}")


def test_npz_uint8_stays_uint8_and_other_numbers_become_float32_as_they_are(tmp_path):
    np.savez(tmp_path / "u8.npz", x=np.full((4, 3, 2, 2), 255, np.uint8), y=np.array([0, 1, 0, 1]))
    images = load_images(tmp_path / "u8.npz")
    assert (images.x.dtype, images.x.shape, int(images.x.max()), images.scale) == (np.uint8, (4, 3, 2, 2), 255, 255.0)
    np.savez(tmp_path / "f64.npz", x=np.full((4, 2, 2), -3.5), y=np.array([0, 1, 0, 1]))
    catalog = scan(tmp_path / "f64.npz")
    assert (catalog.kind, catalog.dtype, catalog.channels, catalog.size) == ("npz", "float32", 1, (2, 2))
    assert catalog.load().x.dtype == np.float32 and float(catalog.load().x.min()) == -3.5
    np.save(tmp_path / "fortran.npy", np.asfortranarray(np.arange(32, dtype=np.float32).reshape(2, 4, 4)))
    npz(tmp_path / "f.npz", {"x.npy": (tmp_path / "fortran.npy").read_bytes(), "y.npy": npy(np.arange(2))})
    np.testing.assert_array_equal(load_images(tmp_path / "f.npz").x[:, 0], np.arange(32).reshape(2, 4, 4))


# Arrays, digits, the split, fingerprints and the streaming dataset.


def test_digits_stay_float32_over_16_and_load_images_keeps_working():
    digits = load_images("digits")
    assert isinstance(digits, Images)
    assert (digits.x.dtype, digits.x.shape, float(digits.x.max())) == (np.float32, (1797, 1, 8, 8), 1.0)
    assert digits.scale == 1.0
    assert digits.labels is digits.y
    parts = split(scan("digits"), 0.2, seed=0)
    assert parts.describe() == "split: 1,438 train / 359 validation (seed 0)"
    assert np.array_equal(parts.val, split(digits, 0.2, seed=0).val)


def test_arrays_load_at_their_size_as_they_are_and_resize_channel_by_channel_to_another():
    x = np.stack([np.tile(np.arange(8, dtype=np.float32) / 8, (4, 1))] * 2)[:, None]
    catalog = from_arrays(x, np.array([0, 1]), ["cat", "dog"])
    assert isinstance(catalog, Catalog)
    assert (catalog.kind, catalog.classes, catalog.dtype) == ("arrays", ("cat", "dog"), "float32")
    assert catalog.stored_bytes(None) == 2 * 4 * 8 * 4
    assert catalog.load().x is catalog.load().x  # no copy at the stored size
    crop = catalog.load((4, 4), "crop").x
    np.testing.assert_allclose(crop[0, 0, 0], [2 / 8, 3 / 8, 4 / 8, 5 / 8], atol=1e-6)


def test_fingerprints_follow_the_files_not_the_scan(tmp_path):
    root = two_classes(tmp_path, grey(0))
    first = scan(root).fingerprint()
    assert len(first) == 16 and int(first, 16) >= 0
    assert scan(root).fingerprint() == first
    save(root / "b" / "1.png", grey(0))
    assert scan(root).fingerprint() != first
    x, y = np.zeros((4, 2, 2), np.uint8), np.array([0, 1, 0, 1])
    assert from_arrays(x, y).fingerprint() == from_arrays(x.copy(), y).fingerprint()
    x[3, 1, 1] = 1
    assert from_arrays(x, y).fingerprint() != from_arrays(np.zeros_like(x), y).fingerprint()


def test_the_streaming_dataset_gives_what_load_gives_in_worker_processes(tmp_path):
    torch = pytest.importorskip("torch")
    from torch.utils.data import DataLoader

    rng = np.random.default_rng(0)
    for index in range(8):
        array = rng.integers(0, 256, (6 + index, 9, 3), dtype=np.uint8)
        save(tmp_path / "ab"[index % 2] / f"{index}.png", Image.fromarray(array))
    catalog = scan(tmp_path)
    held = catalog.load((5, 7), "pad")
    indices = np.array([7, 0, 3, 4])
    dataset = catalog.dataset(indices, (5, 7), "pad")
    assert len(dataset) == 4
    image, label = dataset[0]
    assert (image.dtype, tuple(image.shape), label) == (torch.uint8, (3, 5, 7), 1)
    pickle.loads(pickle.dumps(dataset))
    loader = DataLoader(dataset, batch_size=2, num_workers=2)
    batches = list(loader)
    x = torch.cat([batch[0] for batch in batches]).numpy()
    y = torch.cat([batch[1] for batch in batches]).numpy()
    np.testing.assert_array_equal(x, held.x[indices])
    np.testing.assert_array_equal(y, held.y[indices])
    arrays = from_arrays(held.x, held.y).dataset(indices, (5, 7))
    np.testing.assert_array_equal(arrays[1][0].numpy(), held.x[0])


def test_loading_more_than_the_memory_available_is_refused(tmp_path, monkeypatch):
    from archspec import budget

    root = two_classes(tmp_path, grey(0))
    catalog = scan(root)
    monkeypatch.setattr(budget, "memory_limit", lambda: 1000)
    with pytest.raises(DataError) as error:
        catalog.load((100, 100))
    assert str(error.value) == (
        f"{root}: 2 images of 1×100×100 uint8 take 20,000 bytes, more than the 1,000 bytes of memory available; "
        "give a smaller size, or stream them (Catalog.dataset)"
    )


def test_the_data_layer_imports_torch_only_for_streaming():
    code = "import sys, archspec.data; archspec.data.scan('digits'); print('torch' in sys.modules)"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True, timeout=120)
    assert out.stdout.strip() == "False"
    assert ".png" in IMAGE_SUFFIXES


@pytest.mark.parametrize("shape", [(49, 49), (50, 49), (152, 160), (51, 97)])
def test_a_crop_stays_inside_the_image_whatever_the_rounding(shape):
    from PIL import Image

    from archspec.data.resize import fitted

    image = Image.new("RGB", (shape[1], shape[0]), (200, 10, 10))
    out = fitted(image, (64, 64), "crop")
    assert out.size == (64, 64)
    assert np.asarray(out)[..., 0].min() == 200  # nothing from outside the image came in
