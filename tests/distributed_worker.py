"""One of the processes torchrun starts in tests/test_distributed.py: it trains a run given as JSON settings
with output folders of its own (``FOLDER/rank<R>``), and writes whether ``execute`` gave it a result."""

import json
import sys
from pathlib import Path

from dscsc_core.plugin_api.registry import load_registry
from dscsc_core.run.pipeline import execute, prepare, resolve_config
from dscsc_core.run.processes import process_group
from dscsc_core.training.distributed import Processes

settings, folder = json.loads(sys.argv[1]), Path(sys.argv[2])
registry = load_registry(strict=True)
run = prepare(resolve_config(registry, settings), registry)
with process_group(run.device):
    rank = Processes.current().rank
    mine = folder / f"rank{rank}"
    result = execute(run, checkpoint_dir=mine / "run", stage1_cache=mine / "stage1")
(folder / f"returned{rank}.json").write_text(json.dumps(result is not None))
