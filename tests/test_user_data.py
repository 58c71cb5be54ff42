"""User data sources (.mat, .npz/.npy, image folder): shapes, scaling, orientation, labels and errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image
from scipy.io import savemat

from dscsc_core import DataError, DatasetSource, Param
from dscsc_core.plugin_api.datapaths import DataRoot
from dscsc_plugins.user_data import ArrayFileSource, ImageFolderSource, MatFileSource, to_unit_range

H, W = 4, 6  # deliberately not square, so a transposed image cannot pass for upright


def patterned_images(n: int = 3) -> np.ndarray:
    """n distinct uint8 images of H x W whose every pixel differs, so any flip or transpose shows."""
    base = np.arange(H * W, dtype=np.uint8).reshape(H, W) * 10
    return np.stack([base + k for k in range(n)])


def load(source: DatasetSource, root) -> object:
    return source.load(DataRoot(root, "test"))


def check_images(data, shape: tuple[int, ...]) -> None:
    assert isinstance(data.images, torch.Tensor)
    assert tuple(data.images.shape) == shape
    assert data.images.dtype == torch.float32
    assert 0.0 <= data.images.min().item() and data.images.max().item() <= 1.0


def raises_one_line(match: str, source: DatasetSource, root) -> str:
    with pytest.raises(DataError, match=match) as info:
        load(source, root)
    message = str(info.value)
    assert "\n" not in message
    return message


# --------------------------------------------------------------------------- declared parameters
def test_sources_declare_the_documented_parameters():
    def table(cls):
        return [(p.name, p.type, p.default) for p in cls.params]

    assert (MatFileSource.name, ArrayFileSource.name, ImageFolderSource.name) == ("mat", "npz", "folder")
    assert table(MatFileSource) == [
        ("path", str, None), ("images", str, "fea"), ("labels", str, "gnd"), ("shape", "ints", None),
        ("order", str, "column"), ("layout", str, "rows"),
    ]
    assert table(ArrayFileSource) == [
        ("path", str, None), ("images", str, "images"), ("labels", str, "labels"), ("labels_path", str, None),
    ]
    assert table(ImageFolderSource) == [("path", str, None), ("size", "ints", (32, 32)), ("grayscale", bool, True)]
    assert all(isinstance(p, Param) for cls in (MatFileSource, ArrayFileSource, ImageFolderSource) for p in cls.params)


# --------------------------------------------------------------------------- scaling
@pytest.mark.parametrize(
    ("values", "expected"),
    [
        (np.array([0, 51, 255], dtype=np.uint8), [0.0, 0.2, 1.0]),
        (np.array([0, 65535], dtype=np.uint16), [0.0, 1.0]),
        (np.array([0.0, 0.5, 1.0]), [0.0, 0.5, 1.0]),  # already in [0, 1]: kept
        (np.array([0.0, 127.5, 255.0]), [0.0, 0.5, 1.0]),  # float 0..255
        (np.array([0, 51, 255], dtype=np.int64), [0.0, 0.2, 1.0]),  # np.array of Python ints: 0..255, not /2^63
        (np.array([False, True]), [0.0, 1.0]),
    ],
)
def test_to_unit_range_scales_each_kind_of_data(values, expected):
    scaled = to_unit_range(values, "x")
    assert scaled.dtype == np.float32
    np.testing.assert_allclose(scaled, expected, atol=1e-6)


@pytest.mark.parametrize("values", [np.array([-1.0, 0.5]), np.array([0.0, 300.0]), np.array([-5, 3], dtype=np.int8)])
def test_to_unit_range_rejects_values_outside_the_allowed_ranges(values):
    with pytest.raises(DataError, match=r"allowed: 0\.\.1, 0\.\.255"):
        to_unit_range(values, "x")


def test_to_unit_range_rejects_nan():
    with pytest.raises(DataError, match="NaN or Inf"):
        to_unit_range(np.array([0.0, np.nan]), "x")


# --------------------------------------------------------------------------- .mat
def test_mat_column_major_rows_come_back_upright(tmp_path):
    originals = patterned_images()
    # MATLAB's fea(i, :) = img(:)' flattens column by column.
    fea = np.stack([img.flatten(order="F") for img in originals])
    savemat(tmp_path / "faces.mat", {"fea": fea, "gnd": np.array([[7], [3], [7]])})
    data = load(MatFileSource(path=str(tmp_path / "faces.mat"), shape=f"{H},{W}", order="column"), tmp_path)
    check_images(data, (3, 1, H, W))
    np.testing.assert_array_equal(np.rint(data.images[:, 0].numpy() * 255), originals)
    np.testing.assert_array_equal(data.labels, [1, 0, 1])
    assert data.n_clusters == 2


def test_mat_row_major_images_stored_one_per_column(tmp_path):
    originals = patterned_images()
    matrix = np.stack([img.ravel() for img in originals], axis=1)  # D x N
    savemat(tmp_path / "x.mat", {"X": matrix, "y": np.array([1, 2, 3])})
    source = MatFileSource(path=str(tmp_path / "x.mat"), images="X", labels="y", shape=(H, W), order="row",
                           layout="columns")
    data = load(source, tmp_path)
    np.testing.assert_array_equal(np.rint(data.images[:, 0].numpy() * 255), originals)
    np.testing.assert_array_equal(data.labels, [0, 1, 2])


def test_mat_wrong_order_does_not_give_the_original(tmp_path):
    # Guards the orientation test: reading column-major data as row-major scrambles it.
    fea = np.stack([img.flatten(order="F") for img in patterned_images()])
    savemat(tmp_path / "faces.mat", {"fea": fea, "gnd": np.arange(3)})
    data = load(MatFileSource(path=str(tmp_path / "faces.mat"), shape=(H, W), order="row"), tmp_path)
    assert not np.array_equal(np.rint(data.images[:, 0].numpy() * 255), patterned_images())


def test_mat_infers_a_square_side_and_scales_float_0_255(tmp_path):
    fea = np.linspace(0.0, 255.0, 2 * 25).reshape(2, 25)
    savemat(tmp_path / "sq.mat", {"fea": fea, "gnd": np.array([1, 1])})
    data = load(MatFileSource(path=str(tmp_path / "sq.mat")), tmp_path)
    check_images(data, (2, 1, 5, 5))
    assert data.images.max().item() == pytest.approx(1.0)
    assert data.n_clusters == 1


def test_mat_accepts_3d_and_4d_variables(tmp_path):
    stack = patterned_images()
    rgb = np.repeat(stack[..., None], 3, axis=3)  # N x H x W x 3
    savemat(tmp_path / "v.mat", {"gray": stack, "rgb": rgb, "gnd": np.array([0, 1, 0])})
    gray = load(MatFileSource(path=str(tmp_path / "v.mat"), images="gray"), tmp_path)
    color = load(MatFileSource(path=str(tmp_path / "v.mat"), images="rgb", shape=(H, W)), tmp_path)
    check_images(gray, (3, 1, H, W))
    check_images(color, (3, 3, H, W))
    np.testing.assert_array_equal(np.rint(color.images[:, 2].numpy() * 255), stack)


def test_mat_without_labels(tmp_path):
    savemat(tmp_path / "u.mat", {"X": np.zeros((4, 9))})
    data = load(MatFileSource(path=str(tmp_path / "u.mat"), images="X", labels=""), tmp_path)
    check_images(data, (4, 1, 3, 3))
    assert data.labels is None and data.n_clusters is None


def test_mat_path_relative_to_the_data_root(tmp_path, monkeypatch):
    (tmp_path / "root").mkdir()
    (tmp_path / "elsewhere").mkdir()
    savemat(tmp_path / "root" / "d.mat", {"fea": np.zeros((2, 4)), "gnd": np.array([0, 1])})
    monkeypatch.chdir(tmp_path / "elsewhere")
    data = load(MatFileSource(path="d.mat"), tmp_path / "root")
    check_images(data, (2, 1, 2, 2))


def test_mat_errors_name_the_problem_and_the_fix(tmp_path):
    savemat(tmp_path / "d.mat", {"fea": np.zeros((3, 24)), "gnd": np.array([0, 1, 2])})
    (tmp_path / "junk.mat").write_bytes(b"this is not a MATLAB file at all" * 10)
    d = str(tmp_path / "d.mat")
    raises_one_line("needs --path", MatFileSource(), tmp_path)
    raises_one_line("missing.mat not found", MatFileSource(path="missing.mat"), tmp_path)
    raises_one_line("cannot read .*junk.mat as a MATLAB", MatFileSource(path=str(tmp_path / "junk.mat")), tmp_path)
    message = raises_one_line("no variable 'X'", MatFileSource(path=d, images="X"), tmp_path)
    assert "variables present: fea, gnd" in message and "--images" in message
    message = raises_one_line("no variable 'y'", MatFileSource(path=d, labels="y"), tmp_path)
    assert "variables present: fea, gnd" in message and "--labels ''" in message
    raises_one_line("24 values, not a square.*--shape H,W", MatFileSource(path=d), tmp_path)
    raises_one_line("24 values but --shape 5,5 needs 25", MatFileSource(path=d, shape=(5, 5)), tmp_path)
    raises_one_line("two numbers H,W", MatFileSource(path=d, shape=(2, 3, 4)), tmp_path)
    raises_one_line(r"is not a file", MatFileSource(path=str(tmp_path)), tmp_path)


def test_mat_label_length_and_image_shape_errors(tmp_path):
    savemat(tmp_path / "d.mat", {"fea": np.zeros((3, 4)), "gnd": np.array([0, 1]), "cube": np.zeros((2, 5, 5, 5))})
    d = str(tmp_path / "d.mat")
    raises_one_line("labels 'gnd' in d.mat has 2 entries for 3 images", MatFileSource(path=d), tmp_path)
    raises_one_line(r"shape \(2, 5, 5, 5\); allowed: N x H x W", MatFileSource(path=d, images="cube"), tmp_path)
    savemat(tmp_path / "s.mat", {"fea": np.zeros((3, 2, 2))})
    source = MatFileSource(path=str(tmp_path / "s.mat"), labels="", shape=(3, 3))
    raises_one_line("holds 2x2 images, not --shape 3,3", source, tmp_path)


# --------------------------------------------------------------------------- .npz / .npy
def test_npz_with_labels_in_nhwc(tmp_path):
    rgb = np.stack([patterned_images(), patterned_images() // 2, patterned_images() // 3], axis=3)  # N x H x W x 3
    np.savez(tmp_path / "d.npz", images=rgb, labels=np.array(["cat", "dog", "cat"]))
    data = load(ArrayFileSource(path=str(tmp_path / "d.npz")), tmp_path)
    check_images(data, (3, 3, H, W))
    np.testing.assert_array_equal(np.rint(data.images.permute(0, 2, 3, 1).numpy() * 255), rgb)
    np.testing.assert_array_equal(data.labels, [0, 1, 0])
    assert data.n_clusters == 2


def test_npz_without_labels_and_with_labels_switched_off(tmp_path):
    np.savez(tmp_path / "plain.npz", images=np.zeros((5, 1, 3, 3), dtype=np.float32))
    np.savez(tmp_path / "both.npz", images=np.zeros((5, 3, 3)), labels=np.arange(5))
    plain = load(ArrayFileSource(path=str(tmp_path / "plain.npz")), tmp_path)
    off = load(ArrayFileSource(path=str(tmp_path / "both.npz"), labels=""), tmp_path)
    for data in (plain, off):
        check_images(data, (5, 1, 3, 3))
        assert data.labels is None and data.n_clusters is None


def test_npz_custom_keys(tmp_path):
    np.savez(tmp_path / "d.npz", X=patterned_images(), y=np.array([5, 5, 9]))
    data = load(ArrayFileSource(path=str(tmp_path / "d.npz"), images="X", labels="y"), tmp_path)
    np.testing.assert_array_equal(np.rint(data.images[:, 0].numpy() * 255), patterned_images())
    np.testing.assert_array_equal(data.labels, [0, 0, 1])


def test_npy_pair(tmp_path):
    np.save(tmp_path / "x.npy", patterned_images(4).astype(np.float64) / 255.0)
    np.save(tmp_path / "y.npy", np.array([[2], [0], [2], [1]]))
    data = load(ArrayFileSource(path=str(tmp_path / "x.npy"), labels_path=str(tmp_path / "y.npy")), tmp_path)
    check_images(data, (4, 1, H, W))
    np.testing.assert_array_equal(data.labels, [2, 0, 2, 1])
    assert data.n_clusters == 3
    alone = load(ArrayFileSource(path=str(tmp_path / "x.npy")), tmp_path)
    assert alone.labels is None


def test_npz_errors_name_the_problem_and_the_fix(tmp_path):
    np.savez(tmp_path / "d.npz", images=np.zeros((3, 4, 4)), labels=np.arange(3))
    np.save(tmp_path / "flat.npy", np.zeros((3, 16)))
    np.save(tmp_path / "odd.npy", np.zeros((3, 5, 4, 7)))
    np.save(tmp_path / "short.npy", np.arange(2))
    (tmp_path / "junk.npz").write_bytes(b"PK\x03\x04 broken zip")
    d = str(tmp_path / "d.npz")
    raises_one_line("needs --path", ArrayFileSource(), tmp_path)
    raises_one_line("nope.npz not found", ArrayFileSource(path="nope.npz"), tmp_path)
    raises_one_line("cannot read .*junk.npz", ArrayFileSource(path=str(tmp_path / "junk.npz")), tmp_path)
    message = raises_one_line("no key 'X'", ArrayFileSource(path=d, images="X"), tmp_path)
    assert "keys present: images, labels" in message
    raises_one_line("no key 'y'.*keys present: images, labels", ArrayFileSource(path=d, labels="y"), tmp_path)
    raises_one_line(r"shape \(3, 16\); allowed: N x H x W", ArrayFileSource(path=str(tmp_path / "flat.npy")), tmp_path)
    raises_one_line(r"shape \(3, 5, 4, 7\); allowed: .*C = 1 or 3", ArrayFileSource(path=str(tmp_path / "odd.npy")),
                    tmp_path)
    raises_one_line("has 2 entries for 3 images", ArrayFileSource(path=d, labels_path=str(tmp_path / "short.npy")),
                    tmp_path)
    raises_one_line("must be a .npy file", ArrayFileSource(path=d, labels_path=d), tmp_path)


def test_npz_refuses_pickled_object_arrays(tmp_path):
    np.save(tmp_path / "obj.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    raises_one_line("cannot read .*obj.npy", ArrayFileSource(path=str(tmp_path / "obj.npy")), tmp_path)


# --------------------------------------------------------------------------- image folder
def write_png(path, pixels: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(pixels).save(path)


def test_folder_with_class_subfolders(tmp_path):
    rng = np.random.default_rng(0)
    for name, count in (("zebra", 2), ("ant", 3)):
        for i in range(count):
            write_png(tmp_path / "pets" / name / f"{i}.png", rng.integers(0, 256, (10 + i, 7, 3), dtype=np.uint8))
    (tmp_path / "pets" / "ant" / "notes.txt").write_text("not an image")
    data = load(ImageFolderSource(path="pets", size=(8, 5)), tmp_path)
    check_images(data, (5, 1, 8, 5))
    np.testing.assert_array_equal(data.labels, [0, 0, 0, 1, 1])  # 'ant' sorts before 'zebra'
    assert data.n_clusters == 2
    color = load(ImageFolderSource(path="pets", size=(8, 5), grayscale=False), tmp_path)
    check_images(color, (5, 3, 8, 5))


def test_folder_keeps_orientation_and_pixel_values(tmp_path):
    write_png(tmp_path / "flat" / "a.png", patterned_images(1)[0])
    rgb = np.stack([patterned_images(1)[0], np.zeros((H, W), np.uint8), np.full((H, W), 255, np.uint8)], axis=2)
    write_png(tmp_path / "flat" / "b.png", rgb)
    gray = load(ImageFolderSource(path=str(tmp_path / "flat"), size=(H, W)), tmp_path)
    np.testing.assert_array_equal(np.rint(gray.images[0, 0].numpy() * 255), patterned_images(1)[0])
    assert gray.labels is None and gray.n_clusters is None
    color = load(ImageFolderSource(path=str(tmp_path / "flat"), size=f"{H},{W}", grayscale=False), tmp_path)
    np.testing.assert_array_equal(np.rint(color.images[1].permute(1, 2, 0).numpy() * 255), rgb)


def test_folder_rgb_images_three_pixels_high(tmp_path):
    # An H = 3 RGB stack must not be mistaken for channels-first.
    write_png(tmp_path / "f" / "a.png", np.zeros((9, 9, 3), np.uint8))
    data = load(ImageFolderSource(path=str(tmp_path / "f"), size=(3, 7), grayscale=False), tmp_path)
    check_images(data, (1, 3, 3, 7))


def test_folder_errors_name_the_problem_and_the_fix(tmp_path):
    (tmp_path / "empty").mkdir()
    (tmp_path / "texts").mkdir()
    (tmp_path / "texts" / "readme.md").write_text("hello")
    write_png(tmp_path / "classes" / "a" / "1.png", np.zeros((4, 4), np.uint8))
    (tmp_path / "classes" / "b").mkdir()
    write_png(tmp_path / "broken" / "ok.png", np.zeros((4, 4), np.uint8))
    (tmp_path / "broken" / "bad.png").write_bytes(b"not really a png")
    raises_one_line("needs --path FOLDER", ImageFolderSource(), tmp_path)
    raises_one_line("no images in .*empty; allowed: .*png", ImageFolderSource(path="empty"), tmp_path)
    raises_one_line("no images in .*texts", ImageFolderSource(path="texts"), tmp_path)
    raises_one_line("class folders without images .*: b;", ImageFolderSource(path="classes"), tmp_path)
    raises_one_line("cannot read image .*bad.png", ImageFolderSource(path="broken"), tmp_path)
    raises_one_line("ghost not found", ImageFolderSource(path="ghost"), tmp_path)
    raises_one_line("is not a folder", ImageFolderSource(path=str(tmp_path / "broken" / "ok.png")), tmp_path)
    raises_one_line("two numbers H,W", ImageFolderSource(path="classes/a", size=(4, 4, 4)), tmp_path)
