import os

import pytest
import torch

# Two CPU cores on CI: keep torch from oversubscribing them.
torch.set_num_threads(min(2, os.cpu_count() or 1))


@pytest.fixture
def registry():
    from dscsc_core.registry import load_registry

    return load_registry(strict=True)
