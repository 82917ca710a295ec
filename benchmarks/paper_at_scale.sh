#!/usr/bin/env bash
# The paper at scale on the toy stand-in: CE against descriptors, the ACDC presets exactly (ENet,
# 200 epochs, ±20 px, ...), on an ACDC-sized toy cardiac set at 64, 128 and 256 pixels a side;
# prints the descriptors / CE ratio of the mean test 3-D DSC at each size.
#
#     bash benchmarks/paper_at_scale.sh [OUT] [OPTIONS...]
#
# OPTIONS go to benchmarks/paper_at_scale.py (--device cuda, --devices cuda:0,cuda:1, --graph,
# --fast for 20 epochs, --tiny to check that it runs). SIZES="64 128" picks the sizes; LIMIT
# (seconds, default none) bounds each size: a size stopped by it keeps its finished epochs
# (the same command resumes it) and the table shows its progress. On one H200 in graph mode,
# benchmarks/gpu_suite.sh measures what a size costs.
set -u
out="${1:-paper-at-scale}"
shift || true
sizes="${SIZES:-64 128 256}"
py="${PYTHON:-python}"
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" OMP_WAIT_POLICY=PASSIVE
mkdir -p "$out"
folders=()
for size in $sizes; do
    echo "=== ${size} px ($(date +%T))"
    if [ -n "${LIMIT:-}" ]; then
        # SIGINT: reproduce stops its run processes and keeps their finished epochs
        timeout -s INT -k 30 "$LIMIT" "$py" benchmarks/paper_at_scale.py --size "$size" \
            --out "$out/${size}px" --json "$out/${size}px.json" "$@"
    else
        "$py" benchmarks/paper_at_scale.py --size "$size" --out "$out/${size}px" \
            --json "$out/${size}px.json" "$@"
    fi
    echo "=== ${size} px: exit $?"
    [ -f "$out/${size}px/ce/config.json" ] && folders+=("$out/${size}px")
done
echo "=== descriptors / CE at each size"
[ ${#folders[@]} -gt 0 ] && "$py" benchmarks/paper_at_scale.py --table "${folders[@]}" --json "$out/table.json"
