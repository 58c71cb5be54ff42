"""A component's tensors stay on the run's device: one made elsewhere (a mask built with a bare
``torch.arange(n)`` while the run trains on a GPU) is a PluginError naming the component and the fix,
not a bare device mismatch deep in a training step. The meta device stands in for "elsewhere" here,
so this is checked without a GPU (tests/test_cuda.py runs the built-ins on a real one)."""

from __future__ import annotations

import pytest
import torch
from conftest import assert_one_line_error, invoke

from dscsc_core import AugmentationPolicy, NegativeMiner, PluginError, SelfExpressionRegularizer


class ElsewhereMiner(NegativeMiner):
    name = "elsewhere"

    def mine(self, z, coef):
        return torch.ones(z.shape[0], z.shape[0], dtype=torch.bool, device="meta")


class ElsewhereAugmentation(AugmentationPolicy):
    name = "elsewhere"

    def augment(self, images):
        return torch.empty_like(images, device="meta")


class ElsewherePenalty(SelfExpressionRegularizer):
    name = "elsewhere"

    def penalty(self, coef):
        return torch.zeros((), device="meta")


@pytest.mark.parametrize("component, tensor, message", [
    (ElsewhereMiner(), torch.randn(6, 3), "miner 'elsewhere' returned its mask on meta, but the features are on cpu; "
                                          "make it on z.device"),
    (ElsewhereAugmentation(), torch.rand(2, 1, 4, 4), "augmentation 'elsewhere' returned its view on meta, but the "
                                                      "images are on cpu"),
    (ElsewherePenalty(), torch.randn(4, 4), "regularizer 'elsewhere' returned its penalty on meta, but C is on cpu"),
])
def test_a_tensor_made_on_another_device_is_a_plugin_error(component, tensor, message):
    with pytest.raises(PluginError, match=message):
        component(tensor)


def test_the_run_reports_it_in_one_line(tmp_path):
    plugin = tmp_path / "elsewhere.py"
    plugin.write_text(
        "import torch\n"
        "from dscsc_core import NegativeMiner, hookimpl\n\n"
        "class Elsewhere(NegativeMiner):\n"
        "    name = 'elsewhere'\n"
        "    summary = 'a mask on another device'\n\n"
        "    def mine(self, z, coef):\n"
        "        return torch.ones(z.shape[0], z.shape[0], dtype=torch.bool, device='meta')\n\n"
        "@hookimpl\n"
        "def dscsc_register_miners(register):\n"
        "    register(Elsewhere)\n")
    result = invoke("run", "--plugin", str(plugin), "--miner", "elsewhere", "--dataset", "synthetic",
                    "--pretrain-epochs", "1", "--epochs", "1", "--device", "cpu", "--out", str(tmp_path / "run"))
    assert_one_line_error(result, "miner 'elsewhere' returned its mask on meta", "make it on z.device")
    assert not (tmp_path / "run" / "result.json").exists()
