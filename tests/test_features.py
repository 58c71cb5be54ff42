"""Fixed features (the ``features`` plugin kind) and the built-in wavelet scattering transform."""

import json
import math

import numpy as np
import pytest
import torch
from conftest import assert_one_line_error, invoke
from scipy import sparse
from sklearn.cluster import KMeans
from sklearn.manifold import spectral_embedding

from dscsc_core import DataError, FeatureExtractor, PluginError
from dscsc_core.metrics import clustering_accuracy
from dscsc_plugins.clusterers import SparseSpectralClusterer
from dscsc_plugins.features import ScatteringFeatures


def test_scattering_has_one_channel_per_path_and_one_value_per_2j_pixels():
    images = torch.rand(3, 1, 28, 28)
    maps = ScatteringFeatures()(images)  # J 3, L 8: 1 + 24 + 8^2 * 3 paths on a 32 x 32 grid
    assert maps.shape == (3, 217, 4, 4) and maps.dtype == torch.float32
    small = ScatteringFeatures(scales=2, orientations=4)(torch.rand(2, 3, 8, 8))
    assert small.shape == (2, 3 * (1 + 8 + 16), 2, 2)  # each colour channel transformed alone
    assert ScatteringFeatures(scales=2, orientations=4).channels_per_input() == 25
    wide = ScatteringFeatures(scales=2, orientations=4)(torch.rand(2, 1, 12, 20))  # padded to a 20 x 20 grid
    assert wide.shape == (2, 25, 5, 5)


def test_wavelets_have_no_mean_so_a_flat_image_has_only_its_average():
    flat = torch.full((1, 1, 32, 32), 0.5)
    maps = ScatteringFeatures(log_scale=0.0)(flat)
    assert torch.allclose(maps[0, 0], torch.full((4, 4), 0.5), atol=1e-5)  # order 0: the local average
    assert maps[0, 1:].abs().max() < 1e-4  # orders 1 and 2: wavelets see no flat image


def test_scattering_barely_moves_when_the_image_shifts_by_a_pixel():
    """Its point: local averages of wavelet moduli are stable to small translations, pixels are not."""
    generator = torch.Generator().manual_seed(0)
    images = torch.nn.functional.avg_pool2d(torch.rand(4, 1, 36, 36, generator=generator), 5, 1)  # smooth 32 x 32
    shifted = torch.roll(images, shifts=1, dims=3)
    extractor = ScatteringFeatures(log_scale=0.0)
    pixel_change = (shifted - images).norm() / images.norm()
    feature_change = (extractor(shifted) - extractor(images)).norm() / extractor(images).norm()
    assert feature_change < pixel_change / 3


def test_scattering_refuses_images_smaller_than_its_sampling_step():
    with pytest.raises(DataError, match=r"smaller than 2\^J = 16"):
        ScatteringFeatures(scales=4)(torch.rand(2, 1, 8, 8))


def test_the_base_class_checks_what_a_plugin_returns():
    class Dropped(FeatureExtractor):
        name = "dropped"

        def features(self, images):
            return images[1:]

    class Broken(FeatureExtractor):
        name = "broken"

        def features(self, images):
            return images * float("nan")

    with pytest.raises(PluginError, match="one C x H x W map per image"):
        Dropped()(torch.rand(3, 1, 4, 4))
    with pytest.raises(PluginError, match="NaN or Inf"):
        Broken()(torch.rand(3, 1, 4, 4))
    with pytest.raises(DataError, match="N x C x H x W"):
        Dropped()(torch.rand(3, 4, 4))


def test_a_run_on_features_trains_on_the_maps_and_names_them(tmp_path):
    out = tmp_path / "run"
    done = invoke("run", "--dataset", "synthetic", "--per-subspace", "10", "--features", "scattering",
                  "--features.scales", "2", "--features.orientations", "4", "--encoder", "conv1", "--encoder.kernels",
                  "1", "--pretrain-epochs", "1", "--epochs", "1", "--miner.k", "3", "--out", str(out))
    assert done.exit_code == 0, done.output
    result = json.loads((out / "result.json").read_text())
    assert result["data"]["input_shape"] == [25, 4, 4]  # 16 x 16 images, J 2: maps of 4 x 4
    assert result["components"]["features"]["name"] == "scattering"
    assert "augmentation 'geometric' acts on the 'scattering' maps" in done.stderr  # a warning, one line
    assert result["components"]["features"]["params"]["scales"] == 2
    assert (out / "figures" / "gallery.png").is_file()  # the gallery still shows the digits themselves


def test_a_run_without_features_names_none():
    from dscsc_core.plugin_api.kinds import REQUIRED_SELECTIONS

    assert "features" not in REQUIRED_SELECTIONS  # optional: default runs see the pixels, as before


def test_features_too_coarse_for_the_images_is_one_line_before_training(tmp_path):
    done = invoke("run", "--dataset", "digits", "--features", "scattering", "--features.scales", "4",
                  "--out", str(tmp_path / "run"))
    assert_one_line_error(done, "smaller than 2^J = 16", "features.scales")
    assert not (tmp_path / "run").exists()


def test_features_enter_stage_one_identity(registry):
    from dscsc_core.run.identity import stage1_fingerprint
    from dscsc_core.run.pipeline import prepare, resolve_config

    settings = {"dataset": "digits", "encoder": "conv1", "augment": "none", "pretrain_epochs": 1, "epochs": 1}
    plain = prepare(resolve_config(registry, settings), registry)
    scattered = prepare(resolve_config(registry, {**settings, "features": "scattering"},
                                       {"params": {"features.scales": 2}}), registry)
    coarser = prepare(resolve_config(registry, {**settings, "features": "scattering"},
                                     {"params": {"features.scales": 2, "features.orientations": 4}}), registry)
    assert len({stage1_fingerprint(run) for run in (plain, scattered, coarser)}) == 3
    assert plain.inputs is plain.data.images and scattered.inputs.shape[1:] == (81, 2, 2)


def test_sparse_spectral_with_normalize_rows_is_ng_jordan_weiss():
    rng = np.random.default_rng(0)
    truth = np.repeat(np.arange(4), 15)
    same = truth[:, None] == truth[None, :]
    dense = np.where(same & (rng.random((60, 60)) < 0.15), rng.uniform(0.01, 1.0, (60, 60)), 0.0)
    dense += np.where(~same & (rng.random((60, 60)) < 0.02), 0.05, 0.0)
    coef = sparse.csr_matrix((dense + dense.T) / 2 + 1e-6 * same)
    clusterer = SparseSpectralClusterer(k=59, normalize_rows=True, assign_labels="kmeans")
    result = clusterer.fit_predict(coef, 4, 0)
    embedding = spectral_embedding(result.affinity, n_components=4, eigen_solver="lobpcg", random_state=0,
                                   drop_first=False)
    rows = embedding / np.linalg.norm(embedding, axis=1, keepdims=True)
    by_hand = KMeans(4, random_state=0, n_init=10).fit_predict(rows)
    assert clustering_accuracy(by_hand, result.labels) == 1.0
    assert math.isclose(np.linalg.norm(rows, axis=1).min(), 1.0)
    assert SparseSpectralClusterer().normalize_rows is False


def test_sparse_spectral_with_more_eigenvectors_still_gives_k_clusters():
    rng = np.random.default_rng(1)
    truth = np.repeat(np.arange(3), 20)
    same = truth[:, None] == truth[None, :]
    coef = sparse.csr_matrix(np.where(same, rng.uniform(0.5, 1.0, (60, 60)), 0.0) * (1 - np.eye(60)))
    clusterer = SparseSpectralClusterer(k=10, normalize_rows=True, assign_labels="kmeans", n_components=5)
    labels = clusterer.fit_predict(coef, 3, 0).labels
    assert set(labels) == {0, 1, 2} and clustering_accuracy(truth, labels) == 1.0


def test_sparse_spectral_eigenvector_count_is_checked_before_training(tmp_path):
    common = ("run", "--dataset", "synthetic", "--clusterer", "sparse-spectral", "--out", str(tmp_path / "run"))
    assert_one_line_error(invoke(*common, "--clusterer.n-components", "15"),
                          "n_components 15 differs from the 5 clusters", "kmeans")
    assert_one_line_error(invoke(*common, "--clusterer.n-components", "400", "--clusterer.assign-labels", "kmeans"),
                          "'n_components' must be smaller than N = 200")
    assert not (tmp_path / "run").exists()


def test_runs_sharing_a_dataset_cache_compute_its_features_once(registry, monkeypatch):
    """tune, bench and ablate prepare a run per candidate and seed: the maps are computed once for them all."""
    from dscsc_core.run.pipeline import LoadedDatasets, prepare, resolve_config

    calls = []
    computed = ScatteringFeatures.features
    monkeypatch.setattr(ScatteringFeatures, "features", lambda self, images: calls.append(1) or computed(self, images))
    settings = {"dataset": "synthetic", "features": "scattering", "encoder": "conv1", "augment": "none"}
    datasets = LoadedDatasets()
    runs = [prepare(resolve_config(registry, {**settings, "seed": seed}, {"params": {"features.scales": 2}}),
                    registry, datasets=datasets) for seed in (0, 1)]
    assert len(calls) == 1 and runs[0].inputs is runs[1].inputs
    prepare(resolve_config(registry, settings, {"params": {"features.scales": 1}}), registry, datasets=datasets)
    assert len(calls) == 2  # other parameters, other maps
