#!/usr/bin/env bash
# The GPU checks, in one go (at most 7.8 minutes: each step has its own time limit):
#
#     bash benchmarks/gpu_suite.sh [RESULTS_DIR]
#
# 1. environment: torch, CUDA, the card's name;
# 2. the CUDA tests of the suite (augmentation on the device, a short training run on CUDA);
# 3. ENet's step (ACDC presets, 256², B = 8) eager against graph mode: ms per step, the GPU's busy
#    fraction, graph mode captured against graph mode run eagerly (same numbers), no host
#    synchronisation in the step (benchmarks/graphed_step.py);
# 4. an ACDC-sized epoch (1,900 slices of 256²) of both paper runs at once, eager then in graph
#    mode, extrapolated to 200 epochs (benchmarks/epoch_time.py; target: both in <= 10 minutes);
# 5. data-parallel training with one rank on the GPU (nccl, SyncBatchNorm, sharded validation)
#    against one process (benchmarks/ddp_check.py);
# 6. the paper at scale on the toy stand-in at 64², graph mode, 200 epochs as far as its time
#    limit allows (benchmarks/paper_at_scale.sh; the table projects what is left).
# ALL=1 also runs the earlier checks (descriptors against the authors' formulation, epochs in turn
# and with torch.compile), which take about 5 more minutes.
# Each step has its own time limit (SIGINT first: runs in processes stop cleanly), so a slow or
# failing step does not hide the others. Results (JSON per step, summary.json and the whole log)
# go to RESULTS_DIR (default: gpu-results/).
# The training path needs torch, numpy, scipy and tqdm. On an offline machine, point WHEELS at a
# folder of wheels (`pip download scipy tqdm -d FOLDER` elsewhere) and the missing ones are
# installed from it first.
set -u
out="${1:-gpu-results}"
mkdir -p "$out"
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" OMP_WAIT_POLICY=PASSIVE
export TUTORIAL_DATA_DIR="${TUTORIAL_DATA_DIR:-${TMPDIR:-/tmp}/tutorial-gpu-suite-data}"  # not in RESULTS_DIR
py="${PYTHON:-python}"
log="$out/log.txt"

step() {  # step NAME SECONDS COMMAND...
    local name="$1" limit="$2"
    shift 2
    echo "=== $name ($(date +%T), limit ${limit}s): $*" | tee -a "$log"
    timeout -s INT -k 15 "$limit" "$@" 2>&1 | tee -a "$log"
    echo "=== $name: exit ${PIPESTATUS[0]}" | tee -a "$log"
}

if [ -n "${WHEELS:-}" ]; then
    for module in scipy tqdm numpy; do
        "$py" -c "import $module" 2>/dev/null ||
            "$py" -m pip install -q --no-index --find-links "$WHEELS" "$module" 2>&1 | tee -a "$log"
    done
fi
step environment 20 "$py" -c "
import importlib, json, torch
info = {'torch': torch.__version__, 'cuda': torch.version.cuda, 'gpu': torch.cuda.get_device_name(0)}
print(info)
for name in ('numpy', 'scipy', 'tqdm', 'matplotlib', 'skimage', 'pytest'):
    try:
        print(name, importlib.import_module(name).__version__)
    except ImportError as error:
        print(name, 'MISSING', error)
open('$out/environment.json', 'w').write(json.dumps(info))
"
step cuda-tests 45 "$py" -m pytest -q -p no:cacheprovider -o addopts="" -k cuda \
    tests/test_data_augment.py tests/test_concurrent_runs.py tests/test_placement.py tests/test_weak_labels.py
step graphed-step 90 "$py" benchmarks/graphed_step.py --device cuda --json "$out/graphed_step.json"
step epoch-eager-at-once 75 "$py" benchmarks/epoch_time.py --device cuda --jobs 2 \
    --json "$out/epoch_eager_jobs2.json"
step epoch-graph-at-once 90 "$py" benchmarks/epoch_time.py --device cuda --jobs 2 --graph \
    --json "$out/epoch_graph_jobs2.json"
step ddp-one-gpu 45 "$py" benchmarks/ddp_check.py --device cuda --nproc 1 --json "$out/ddp_cuda.json"
# its own LIMIT stops the Python process (bash would wait for it), 15 s before the step's
step paper-at-scale-64 120 env SIZES=64 LIMIT=105 bash benchmarks/paper_at_scale.sh \
    "$out/paper-at-scale" --device cuda --graph
if [ -n "${ALL:-}" ]; then
    step descriptors 60 "$py" benchmarks/descriptors.py --device cuda --step-cost
    step epoch-eager-in-turn 100 "$py" benchmarks/epoch_time.py --device cuda --jobs 1 \
        --json "$out/epoch_eager_jobs1.json"
    step epoch-compiled-at-once 150 "$py" benchmarks/epoch_time.py --device cuda --jobs 2 \
        --compile --measure-epochs 3 --json "$out/epoch_compile_jobs2.json"
fi
"$py" - "$out" <<'PY' | tee -a "$log"
import json, sys
from pathlib import Path
out = Path(sys.argv[1])
found = {p.stem: json.loads(p.read_text()) for p in sorted(out.glob("*.json")) if p.stem != "summary"}
table = out / "paper-at-scale" / "table.json"
if table.is_file():
    found["paper_at_scale"] = json.loads(table.read_text())
(out / "summary.json").write_text(json.dumps(found, indent=2))
print("summary.json:", ", ".join(found))
PY
echo "done: $out" | tee -a "$log"
