#!/usr/bin/env bash
# The GPU check: the CUDA tests, GPU timings of the README's job, a profiled Yale B step and a whole
# Yale B seed, then the whole suite with CUDA present. Each part has its own time limit and every
# log lands in OUT, so a part that runs out of time still leaves what it printed.
#
# Usage, on a machine with a CUDA GPU and the project installed, from the repository root:
#   DSCSC_DATA=/path/to/data bash benchmarks/gpu_check.sh OUT [SECONDS]
# SECONDS (default 470) bounds the whole check; the suite gets what the other parts leave.
set -u
out=${1:?usage: gpu_check.sh OUT [SECONDS]}
deadline=$(( $(date +%s) + ${2:-470} ))
mkdir -p "$out"
export PYTHONUNBUFFERED=1

part() {  # part NAME LIMIT COMMAND...: run COMMAND for at most LIMIT seconds (or what is left), log to OUT/NAME.log
    local name=$1 limit=$2 left=$(( deadline - $(date +%s) ))
    shift 2
    (( left < limit )) && limit=$left
    if (( limit < 10 )); then echo "== $name: skipped, no time left" | tee -a "$out/summary.log"; return; fi
    local start=$(date +%s)
    timeout "$limit" "$@" > "$out/$name.log" 2>&1
    local rc=$?
    echo "== $name: exit $rc after $(( $(date +%s) - start )) s (limit $limit s)" | tee -a "$out/summary.log"
    tail -n 4 "$out/$name.log" | tee -a "$out/summary.log"
}

{ nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
  python -c "import torch, kornia; print('torch', torch.__version__, 'cuda', torch.version.cuda, 'kornia', kornia.__version__)"
  nproc; } > "$out/summary.log" 2>&1
cat "$out/summary.log"
part test_cuda 120 python -m pytest -q -p no:cacheprovider -rA tests/test_cuda.py -s
part digits 45 python -c "import time, subprocess, sys; t = time.perf_counter(); \
r = subprocess.run(['dscsc', 'run', '--device', 'cuda', '--no-figures', '--out', '/tmp/dscsc-digits-run']); \
print('README dscsc run on cuda:', round(time.perf_counter() - t, 1), 's wall, exit', r.returncode)"
[ -f /tmp/dscsc-digits-run/result.json ] && python -c "import json; d = json.load(open('/tmp/dscsc-digits-run/result.json')); \
print('digits:', d['metrics'], d['timings'])" | tee -a "$out/summary.log"
part profile_yaleb 45 python benchmarks/profile_step.py --preset yaleb-2432 --device cuda --steps 20
part seed_yaleb 150 python benchmarks/timed_seed.py --preset yaleb-2432 --device cuda
part suite 600 python -m pytest -q -p no:cacheprovider --ignore=tests/test_cuda.py
