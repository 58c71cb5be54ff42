import os

import pytest
import torch

# Two CPU cores on CI: keep torch from oversubscribing them.
torch.set_num_threads(min(2, os.cpu_count() or 1))


@pytest.fixture
def registry():
    from dscsc_core.registry import load_registry

    return load_registry(strict=True)


# Benchmark files are never committed: tests read them through the data root. Point it at the
# shared folder next to the checkout unless the environment already names one.
_SHARED_DATA = os.path.join(os.path.dirname(__file__), "..", "..", "shared", "data")
if "DSCSC_DATA" not in os.environ and os.path.isdir(_SHARED_DATA):
    os.environ["DSCSC_DATA"] = os.path.abspath(_SHARED_DATA)
