"""``dscsc run --nproc N``: the same command again in N processes on this machine, started by torchrun.

torchrun runs inside this process (``torch.distributed.run``, what the ``torchrun`` command runs); the processes
find each other on a free local port (``--standalone``), and each reads its rank from the variables torchrun sets.
A process that fails has printed its own one-line error: torchrun's report of it is left out.
"""

from __future__ import annotations

import logging
import os

# torchrun sets one thread per process where nothing says how many (and warns): share the cores instead.
_THREADS = "OMP_NUM_THREADS"


def start_processes(args: list[str], count: int) -> int:
    """``dscsc ARGS`` in ``count`` processes; the exit status: 0, the first failed process's, or 128 + the signal
    that stopped them (Ctrl-C: each process has stopped after its epoch, the first with a checkpoint)."""
    from torch.distributed.elastic.multiprocessing import SignalException
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
    from torch.distributed.run import get_args_parser, run

    torchrun = get_args_parser().parse_args(["--standalone", f"--nproc-per-node={count}", "--module", "dscsc_cli"])
    torchrun.training_script_args = list(args)  # not parsed: argparse would read --nproc as its --nproc-per-node
    threads = os.environ.get(_THREADS)
    os.environ[_THREADS] = threads or str(max(1, (os.cpu_count() or 1) // count))
    logging.disable(logging.CRITICAL)  # torchrun's log of its processes' start, end and failure
    try:
        run(torchrun)
    except ChildFailedError as failed:
        code = failed.get_first_failure()[1].exitcode
        return code if code > 0 else 1  # killed by a signal: no status of its own
    except SignalException as stopped:
        return 128 + int(stopped.sigval)
    finally:
        logging.disable(logging.NOTSET)
        if threads is None:
            del os.environ[_THREADS]
        else:
            os.environ[_THREADS] = threads
    return 0
