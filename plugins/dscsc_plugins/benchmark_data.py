"""The paper's benchmark datasets, read from the data root (never shipped, never downloaded).

Each source knows its file's layout, so images come out upright (N x 1 x H x W, values in
[0, 1]) with labels 0..K-1. See docs/data.md for the expected folder layout.
"""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import torch

from dscsc_core import DataError, Dataset, DatasetSource, Param

from .matlab import read_mat


def mat_variable(contents: dict, key: str, path: Path, dataset: str) -> np.ndarray:
    if key not in contents:
        found = ", ".join(contents)
        raise DataError(f"dataset '{dataset}': {path} has no variable '{key}' (it has: {found})")
    return np.asarray(contents[key])


def column_major_images(rows: np.ndarray, height: int, width: int) -> np.ndarray:
    """Rows of MATLAB column-major pixels -> upright N x H x W (a row-major reshape gives transposed faces)."""
    return rows.reshape(-1, width, height).transpose(0, 2, 1)


def as_dataset(name: str, images: np.ndarray, labels: np.ndarray, scale: float) -> Dataset:
    pixels = np.array(images, dtype=np.float32, order="C")  # the one copy, scaled in place
    pixels /= scale
    tensor = torch.from_numpy(pixels).unsqueeze(1)
    return Dataset(name, tensor, np.asarray(labels).ravel().astype(np.int64), None)


class _Cai32Source(DatasetSource):
    """Deng Cai's 32x32 .mat files: one column-major image per row."""

    relative_path = ""
    image_key = "fea"
    label_key = "gnd"
    label_offset = 1  # MATLAB labels start at 1
    scale = 255.0

    def read(self) -> Dataset:
        path = self.data_root.file(self.relative_path, self.name)
        contents = read_mat(path, self.name)
        rows = mat_variable(contents, self.image_key, path, self.name)
        labels = mat_variable(contents, self.label_key, path, self.name).ravel().astype(np.int64)
        return as_dataset(self.name, column_major_images(rows, 32, 32), labels - self.label_offset, self.scale)


class OrlSource(_Cai32Source):
    name = "orl"
    summary = "ORL / AT&T faces: 400 images of 32x32, 40 subjects (orl/ORL_32x32.mat)"
    relative_path = "orl/ORL_32x32.mat"


class Coil20Source(_Cai32Source):
    name = "coil20"
    summary = "COIL-20 objects: 1440 images of 32x32, 20 objects (coil20/COIL20.mat)"
    relative_path = "coil20/COIL20.mat"
    scale = 1.0  # stored already in [0, 1]


class UmistSource(_Cai32Source):
    name = "umist"
    summary = "UMIST faces: 480 images of 32x32, 20 people (umist/umist-32-32.mat)"
    relative_path = "umist/umist-32-32.mat"
    image_key, label_key, label_offset = "img", "label", 0


class Mnist1000Source(DatasetSource):
    name = "mnist1000"
    summary = "MNIST-1000: 100 training images of 28x28 per digit (mnist/mnist1000.mat)"
    relative_path = "mnist/mnist1000.mat"

    def read(self) -> Dataset:
        path = self.data_root.file(self.relative_path, self.name)
        contents = read_mat(path, self.name)
        rows = mat_variable(contents, "X", path, self.name)
        labels = mat_variable(contents, "Y", path, self.name)
        return as_dataset(self.name, rows.reshape(-1, 28, 28), labels, 1.0)  # row-major, already upright


def read_idx(path: Path, dataset: str, header: int, shape: tuple[int, ...]) -> np.ndarray:
    """An IDX file (gzip'd or not): a fixed header, then uint8 values."""
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as handle:
            raw = handle.read()
        return np.frombuffer(raw, dtype=np.uint8, offset=header).reshape(shape)
    except (OSError, ValueError, EOFError) as exc:
        raise DataError(f"dataset '{dataset}': {path} is not a valid IDX file ({exc})") from None


class MnistTestSource(DatasetSource):
    name = "mnist-test"
    summary = "MNIST test set: 10,000 images of 28x28 from the IDX files (mnist/t10k-*-ubyte.gz)"
    params = (Param("per_class", int, 0, "keep the first N images of each digit (0: all 10,000)", min=0),)

    def read(self) -> Dataset:
        images = read_idx(self.data_root.file("mnist/t10k-images-idx3-ubyte.gz", self.name), self.name, 16,
                          (10000, 28, 28))
        labels = read_idx(self.data_root.file("mnist/t10k-labels-idx1-ubyte.gz", self.name), self.name, 8,
                          (10000,)).astype(np.int64)
        if self.per_class:
            keep = first_per_class(labels, self.per_class)
            images, labels = images[keep], labels[keep]
        return as_dataset(self.name, images, labels, 255.0)


def first_per_class(labels: np.ndarray, count: int) -> np.ndarray:
    """Indices of the first ``count`` samples of every class, in class order then original order."""
    order = np.argsort(labels, kind="stable")
    sorted_labels = labels[order]
    starts = np.searchsorted(sorted_labels, sorted_labels, side="left")
    rank_in_class = np.arange(len(labels)) - starts
    return order[rank_in_class < count]


class ExtendedYaleBSource(DatasetSource):
    name = "yaleb"
    summary = "Extended Yale B: 2414 faces of 48x42, 38 people (yaleb/ExtendedYaleB.mat, SSC-OMP version)"
    relative_path = "yaleb/ExtendedYaleB.mat"

    def read(self) -> Dataset:
        path = self.data_root.file(self.relative_path, self.name)
        contents = read_mat(path, self.name)
        columns = mat_variable(contents, "EYALEB_DATA", path, self.name)
        labels = mat_variable(contents, "EYALEB_LABEL", path, self.name).ravel().astype(np.int64) - 1
        images = column_major_images(columns.T, 48, 42)
        return as_dataset(self.name, images, labels, 255.0)


class ExtendedYaleB2432Source(DatasetSource):
    name = "yaleb-2432"
    summary = "Extended Yale B, all 2432 faces of 48x42 incl. 18 corrupted (yaleb/YaleB_48x42_2432_rebuilt.npz)"
    relative_path = "yaleb/YaleB_48x42_2432_rebuilt.npz"
    params = (Param("drop_bad", bool, False, "drop the 18 images flagged corrupted (almost black)"),)

    def read(self) -> Dataset:
        path = self.data_root.file(self.relative_path, self.name)
        try:
            with np.load(path) as archive:
                images, labels, bad = archive["images"], archive["labels"], archive["is_bad"]
        except (OSError, ValueError, KeyError) as exc:
            raise DataError(f"dataset '{self.name}': cannot read {path} ({exc})") from None
        if self.drop_bad:
            images, labels = images[~bad], labels[~bad]
        return as_dataset(self.name, images, labels, 255.0)
