#!/usr/bin/env bash
# The GPU checks, in one go (at most 8.5 minutes: each step has its own time limit):
#
#     bash benchmarks/gpu_suite.sh [RESULTS_DIR]
#
# 1. the CUDA tests of the suite (augmentation on the device, a short training run on CUDA);
# 2. the descriptor loss against the authors' formulation on the GPU, and the cost of a
#    descriptor step against a CE step (benchmarks/descriptors.py --device cuda --step-cost);
# 3. an ACDC-sized epoch (1,900 slices of 256x256, ENet, B = 8) of both paper runs, trained as
#    `reproduce` trains them: eager one after the other, eager at once (two processes), and at once
#    with torch.compile (benchmarks/epoch_time.py), each extrapolated to 200 epochs.
# Each step has its own time limit, so a slow or failing step does not hide the others. Results
# (JSON per step and the whole log) go to RESULTS_DIR (default: gpu-results/).
# The training path needs torch, numpy, scipy and tqdm. On an offline machine, point WHEELS at a
# folder of wheels (`pip download scipy tqdm -d FOLDER` elsewhere) and the missing ones are
# installed from it first.
set -u
out="${1:-gpu-results}"
mkdir -p "$out"
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" OMP_WAIT_POLICY=PASSIVE
py="${PYTHON:-python}"
log="$out/log.txt"

step() {  # step NAME SECONDS COMMAND...
    local name="$1" limit="$2"
    shift 2
    echo "=== $name ($(date +%T), limit ${limit}s): $*" | tee -a "$log"
    timeout "$limit" "$@" 2>&1 | tee -a "$log"
    echo "=== $name: exit ${PIPESTATUS[0]}" | tee -a "$log"
}

if [ -n "${WHEELS:-}" ]; then
    for module in scipy tqdm numpy; do
        "$py" -c "import $module" 2>/dev/null ||
            "$py" -m pip install -q --no-index --find-links "$WHEELS" "$module" 2>&1 | tee -a "$log"
    done
fi
step environment 30 "$py" -c "
import importlib, torch
print('torch', torch.__version__, 'cuda', torch.version.cuda, torch.cuda.get_device_name(0))
for name in ('numpy', 'scipy', 'tqdm', 'matplotlib', 'skimage', 'pytest'):
    try:
        print(name, importlib.import_module(name).__version__)
    except ImportError as error:
        print(name, 'MISSING', error)
"
step cuda-tests 90 "$py" -m pytest -q -p no:cacheprovider -o addopts="" -k cuda \
    tests/test_data_augment.py tests/test_concurrent_runs.py tests/test_weak_labels.py
step descriptors 60 "$py" benchmarks/descriptors.py --device cuda --step-cost
step epoch-eager-in-turn 100 "$py" benchmarks/epoch_time.py --device cuda --jobs 1 \
    --json "$out/epoch_eager_jobs1.json"
step epoch-eager-at-once 80 "$py" benchmarks/epoch_time.py --device cuda --jobs 2 \
    --json "$out/epoch_eager_jobs2.json"
step epoch-compiled-at-once 150 "$py" benchmarks/epoch_time.py --device cuda --jobs 2 --compile \
    --measure-epochs 3 --json "$out/epoch_compile_jobs2.json"
echo "done: $out" | tee -a "$log"
