"""Generic dataset sources for the user's own images: a MATLAB .mat file, a NumPy .npz/.npy file, an image folder.

Every source returns N x C x H x W float32 pixels in [0, 1] (see ``to_unit_range``) and raises a
one-line ``DataError`` that says what was wrong and what is allowed.
"""

from __future__ import annotations

import math
import zipfile
from pathlib import Path

import numpy as np
import torch

from dscsc_core import DataError, Dataset, DatasetSource, Param

from .matlab import one_line, read_mat

SCALING_HELP = (
    "pixels become [0, 1]: uint8/int8/uint16/int16 data is divided by its type's largest value; "
    "other data is kept if its maximum is <= 1, else divided by 255"
)
IMAGE_SHAPES = "N x H x W, N x C x H x W or N x H x W x C with C = 1 or 3"
IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm", ".pgm", ".pbm"}


# --------------------------------------------------------------------------- shared helpers
def to_unit_range(pixels: np.ndarray, what: str) -> np.ndarray:
    """float32 pixels in [0, 1]; see ``SCALING_HELP``.

    Only 8- and 16-bit integers are divided by their type's maximum: ``np.array`` of Python ints
    gives int64, whose maximum (9.2e18) would silently turn every pixel into ~0.
    """
    if pixels.dtype.kind in "iu" and pixels.dtype.itemsize <= 2:
        scaled = pixels.astype(np.float32) / np.float32(np.iinfo(pixels.dtype).max)
    else:
        scaled = pixels.astype(np.float32)
        if scaled.size and scaled.max() > 1:
            scaled /= 255.0
    if not np.isfinite(scaled).all():
        raise DataError(f"{what} contains NaN or Inf values; every pixel must be a finite number")
    low, high = float(scaled.min()), float(scaled.max())
    if low < 0 or high > 1:
        original = (float(pixels.min()), float(pixels.max()))
        raise DataError(
            f"{what} has values from {original[0]:g} to {original[1]:g}; allowed: 0..1, 0..255, "
            "or the full range of a uint8/uint16 type"
        )
    return scaled


def _numeric(values: object, what: str) -> np.ndarray:
    """``values`` as a numeric array, or a DataError naming what it holds instead."""
    array = np.asarray(values)
    if array.dtype.kind not in "biuf":
        raise DataError(f"{what} holds {array.dtype} values; images must be numbers")
    return array


def _to_nchw(pixels: np.ndarray, what: str) -> np.ndarray:
    """N x C x H x W view of an image stack; channels-first wins when both readings fit."""
    if pixels.ndim == 3:
        return pixels[:, None]
    if pixels.ndim == 4 and pixels.shape[1] in (1, 3):
        return pixels
    if pixels.ndim == 4 and pixels.shape[3] in (1, 3):
        return pixels.transpose(0, 3, 1, 2)
    raise DataError(f"{what} has shape {pixels.shape}; allowed: {IMAGE_SHAPES}")


def _images_tensor(pixels: np.ndarray, what: str) -> torch.Tensor:
    """Scaled float32 N x C x H x W tensor of an image stack."""
    nchw = _to_nchw(pixels, what)
    if min(nchw.shape) == 0:
        raise DataError(f"{what} has shape {pixels.shape}: no images or no pixels")
    return torch.from_numpy(np.ascontiguousarray(to_unit_range(nchw, what)))


def _label_vector(values: object, n_images: int, what: str) -> np.ndarray:
    """Labels as a flat vector of one entry per image (MATLAB stores them as N x 1 or 1 x N)."""
    labels = np.asarray(values)
    if labels.dtype.kind not in "biufUS" or sum(size > 1 for size in labels.shape) > 1:
        raise DataError(
            f"{what} must be a vector of numbers or strings; got {labels.dtype} of shape {labels.shape}"
        )
    labels = labels.ravel()
    if len(labels) != n_images:
        raise DataError(f"{what} has {len(labels)} entries for {n_images} images; give one label per image")
    return labels


def _image_size(sizes: tuple[int, ...], option: str) -> tuple[int, int]:
    if len(sizes) != 2:
        raise DataError(f"--{option} takes two numbers H,W (e.g. 32,32); got {','.join(map(str, sizes))}")
    return sizes[0], sizes[1]


class _UserFileSource(DatasetSource):
    """A source reading a path the user names with --path."""

    path: str | None

    def user_path(self, hint: str, folder: bool = False) -> Path:
        if not self.path:
            raise DataError(f"dataset '{self.name}' needs --path {hint}")
        path = self.data_root.user_file(self.path, f"dataset '{self.name}'")
        if folder != path.is_dir():
            expected = "a folder" if folder else "a file"
            raise DataError(f"dataset '{self.name}': {path} is not {expected}; give --path {hint}")
        return path


# --------------------------------------------------------------------------- MATLAB .mat
class MatFileSource(_UserFileSource):
    name = "mat"
    summary = "images (and labels) from variables of a MATLAB .mat file (v4 to v7.2)"
    params = (
        Param("path", str, None, "the .mat file: absolute, relative to the working folder or to the data root"),
        Param("images", str, "fea", "variable holding the images"),
        Param("labels", str, "gnd", "variable holding the labels; '' for none"),
        Param("shape", "ints", None, "image H,W of a 2-D matrix; default: a square side from the row length", min=1),
        Param(
            "order", str, "column",
            "how each image of a 2-D matrix was flattened: column (MATLAB img(:)) or row (C / NumPy)",
            choices=("column", "row"),
        ),
        Param(
            "layout", str, "rows", "one image per row or per column of a 2-D matrix; 3-D/4-D variables are "
            f"read as {IMAGE_SHAPES}. {SCALING_HELP}", choices=("rows", "columns"),
        ),
    )

    def read(self) -> Dataset:
        path = self.user_path("FILE.mat")
        variables = read_mat(path, self.name)
        # Look both names up before decoding, so a misspelt name is reported before any shape problem.
        values = self._variable(variables, self.images, path, "--images")
        label_values = self._variable(variables, self.labels, path, "--labels") if self.labels else None
        what = f"dataset 'mat': variable '{self.images}' in {path.name}"
        pixels = _numeric(values, what)
        if pixels.ndim == 2:
            pixels = self._unflatten(pixels, what)
        images = _images_tensor(pixels, what)
        if self.shape is not None and images.shape[2:] != _image_size(self.shape, "shape"):
            height, width = images.shape[2:]
            raise DataError(f"{what} holds {height}x{width} images, not --shape {','.join(map(str, self.shape))}")
        labels = None
        if label_values is not None:
            labels = _label_vector(label_values, len(images), f"dataset 'mat': labels '{self.labels}' in {path.name}")
        return Dataset(self.name, images, labels, None)

    def _variable(self, variables: dict[str, object], name: str, path: Path, option: str) -> object:
        if name not in variables:
            present = ", ".join(sorted(variables)) or "none"
            raise DataError(
                f"dataset 'mat': {path.name} has no variable '{name}'; variables present: {present}; "
                f"choose one with {option} NAME" + (" or --labels '' for none" if option == "--labels" else "")
            )
        return variables[name]

    def _unflatten(self, matrix: np.ndarray, what: str) -> np.ndarray:
        """N x H x W images from a matrix holding one flattened image per row (or column)."""
        if self.layout == "columns":
            matrix = matrix.T
        n_images, length = matrix.shape
        height, width = _image_size(self.shape, "shape") if self.shape else _square_side(length, what)
        if height * width != length:
            raise DataError(
                f"{what}: each image has {length} values but --shape {height},{width} needs {height * width}"
            )
        if self.order == "column":
            # img(:) runs down each column first, so a flat image is W columns of H pixels: unflatten then transpose.
            return matrix.reshape(n_images, width, height).transpose(0, 2, 1)
        return matrix.reshape(n_images, height, width)


def _square_side(length: int, what: str) -> tuple[int, int]:
    side = math.isqrt(length)
    if side * side != length:
        raise DataError(f"{what}: each image has {length} values, not a square number; give --shape H,W")
    return side, side


# --------------------------------------------------------------------------- NumPy .npz / .npy
DEFAULT_LABELS_KEY = "labels"


class ArrayFileSource(_UserFileSource):
    name = "npz"
    summary = "images (and labels) from a NumPy .npz archive, or a .npy file of images plus an optional labels .npy"
    params = (
        Param("path", str, None, "the .npz or .npy file: absolute, relative to the working folder or the data root"),
        Param("images", str, "images", "key of the images in a .npz archive"),
        Param(
            "labels", str, DEFAULT_LABELS_KEY,
            f"key of the labels in a .npz archive ('{DEFAULT_LABELS_KEY}' is used only if present; '' for none)",
        ),
        Param(
            "labels_path", str, None,
            f"a .npy file of labels, one per image (overrides --labels). Images: {IMAGE_SHAPES}. {SCALING_HELP}",
        ),
    )

    def read(self) -> Dataset:
        path = self.user_path("FILE.npz or FILE.npy")
        pixels, labels = self._arrays(path)
        what = f"dataset 'npz': images in {path.name}"
        images = _images_tensor(_numeric(pixels, what), what)
        if self.labels_path:
            labels_file = self.data_root.user_file(self.labels_path, f"dataset '{self.name}'")
            labels = self._load(labels_file)
            if not isinstance(labels, np.ndarray):
                raise DataError(f"dataset 'npz': --labels-path {labels_file.name} must be a .npy file, not a .npz")
        if labels is not None:
            labels = _label_vector(labels, len(images), f"dataset 'npz': labels for {path.name}")
        return Dataset(self.name, images, labels, None)

    def _arrays(self, path: Path) -> tuple[np.ndarray, np.ndarray | None]:
        """(images, labels or None) from a .npy image file or a .npz archive."""
        loaded = self._load(path)
        if isinstance(loaded, np.ndarray):
            return loaded, None
        with loaded:
            try:
                return self._pick(loaded, path)
            except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:
                raise DataError(f"dataset 'npz': cannot read arrays from {path}: {one_line(exc)}") from None

    def _pick(self, archive: np.lib.npyio.NpzFile, path: Path) -> tuple[np.ndarray, np.ndarray | None]:
        keys = ", ".join(archive.files) or "none"
        if self.images not in archive.files:
            raise DataError(
                f"dataset 'npz': {path.name} has no key '{self.images}'; keys present: {keys}; "
                "choose one with --images KEY"
            )
        labels = None
        if self.labels in archive.files:
            labels = archive[self.labels]
        elif self.labels and self.labels != DEFAULT_LABELS_KEY:
            raise DataError(
                f"dataset 'npz': {path.name} has no key '{self.labels}'; keys present: {keys}; "
                "choose one with --labels KEY or --labels '' for none"
            )
        return archive[self.images], labels

    def _load(self, path: Path) -> np.ndarray | np.lib.npyio.NpzFile:
        try:
            # No pickles: an archive from elsewhere must not run code when it is opened.
            return np.load(path, allow_pickle=False)
        except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:
            raise DataError(f"dataset 'npz': cannot read {path} as a .npy or .npz file: {one_line(exc)}") from None


# --------------------------------------------------------------------------- image folder
class ImageFolderSource(_UserFileSource):
    name = "folder"
    summary = "image files in a folder: one sub-folder per class (labelled) or all in one folder (unlabelled)"
    params = (
        Param("path", str, None, "the folder: absolute, relative to the working folder or to the data root"),
        Param("size", "ints", (32, 32), "every image is resized to H,W (bilinear, antialiased)", min=1),
        Param("grayscale", bool, True, f"read images as 1-channel gray (else RGB). {SCALING_HELP}"),
    )

    def read(self) -> Dataset:
        folder = self.user_path("FOLDER", folder=True)
        files, labels = self._listing(folder)
        height, width = _image_size(self.size, "size")
        pixels = np.stack([self._pixels(file, (width, height)) for file in files])
        # Arrange N x C x H x W here: guessing the channel axis would misread an RGB stack 3 pixels high.
        pixels = pixels[:, None] if self.grayscale else pixels.transpose(0, 3, 1, 2)
        images = _images_tensor(pixels, f"dataset 'folder': images in {folder}")
        return Dataset(self.name, images, labels, None)

    def _listing(self, folder: Path) -> tuple[list[Path], np.ndarray | None]:
        """Image files and their class indices (None without class sub-folders), like torchvision's ImageFolder."""
        classes = sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))
        if not classes:
            files = _image_files(folder.iterdir())
            if not files:
                raise DataError(
                    f"dataset 'folder': no images in {folder}; allowed: {', '.join(sorted(IMAGE_SUFFIXES))} files, "
                    "directly in the folder or in one sub-folder per class"
                )
            return files, None
        per_class = [_image_files(c.rglob("*")) for c in classes]
        empty = [c.name for c, files in zip(classes, per_class, strict=True) if not files]
        if empty:
            raise DataError(
                f"dataset 'folder': class folders without images in {folder}: {', '.join(empty)}; "
                "remove them or add images"
            )
        labels = np.concatenate([np.full(len(files), index) for index, files in enumerate(per_class)])
        return [file for files in per_class for file in files], labels

    def _pixels(self, file: Path, size: tuple[int, int]) -> np.ndarray:
        """One image as an H x W (gray) or H x W x 3 uint8 array; ``size`` is PIL's (width, height)."""
        from PIL import Image

        try:
            with Image.open(file) as image:
                # PIL's bilinear resize widens its filter when shrinking, i.e. it antialiases.
                converted = image.convert("L" if self.grayscale else "RGB")
                return np.asarray(converted.resize(size, Image.Resampling.BILINEAR))
        except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as exc:
            raise DataError(f"dataset 'folder': cannot read image {file}: {one_line(exc)}") from None


def _image_files(paths) -> list[Path]:
    """Image files among ``paths``, sorted; other files (notes, hidden files) are skipped."""
    return sorted(
        p for p in paths if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES and not p.name.startswith(".")
    )


__all__ = ["ArrayFileSource", "ImageFolderSource", "MatFileSource", "to_unit_range"]
