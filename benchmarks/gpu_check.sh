#!/usr/bin/env bash
# The GPU check, one prepared script for a machine with a CUDA GPU (under 10 minutes on an
# H100/H200-class GPU): the test suite's training paths on CUDA, `fashionae bench` on CUDA, and
# the `paper` profile end to end with its wall time.
#
#   On the GPU machine (its python3 holds torch; the dataset's four files in a folder):
#     FASHIONAE_DATA=/path/to/fashion-mnist benchmarks/gpu_check.sh
#   Dry run of the same script on a CPU (small: the smoke profile instead of paper):
#     DEVICE=cpu benchmarks/gpu_check.sh
#
# Everything it prints is also written under $OUT (default /tmp/gpu_check): gpu_check.log,
# bench.json and the study folder; a study cut short by the time limit resumes when rerun.
set -uo pipefail
cd "$(dirname "$0")/.."
DEVICE=${DEVICE:-cuda}
PY=${PYTHON:-python3}
OUT=${OUT:-/tmp/gpu_check}
STUDY_LIMIT=${STUDY_LIMIT:-330}   # seconds for the paper profile (the target is 300)
export PYTHONPATH=src PYTHONUNBUFFERED=1
mkdir -p "$OUT"
exec > >(tee -a "$OUT/gpu_check.log") 2>&1

echo "== machine"
date -u
command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm --format=csv
$PY -c "import torch, platform; print('python', platform.python_version(), 'torch', torch.__version__, 'cuda', torch.version.cuda, 'available', torch.cuda.is_available())"
$PY -m fashionae data || { echo "no dataset: set FASHIONAE_DATA to the folder of the four IDX files"; exit 2; }

echo "== 1. tests on $DEVICE (training paths; bit-for-bit tests use --deterministic kernels on CUDA)"
start=$(date +%s)
FASHIONAE_TEST_DEVICE=$DEVICE timeout 240 $PY -m pytest -q -x -m "not slow" -p no:cacheprovider \
    tests/test_models.py tests/test_training.py tests/test_classifier.py tests/test_settings.py \
    tests/test_claims.py tests/test_study.py
echo "tests: exit $? in $(( $(date +%s) - start )) s"

echo "== 2. bench on $DEVICE"
timeout 120 $PY -m fashionae bench --device "$DEVICE" --windows 5 --out "$OUT/bench.json" --force
echo "bench: exit $?"

if [ "$DEVICE" = cuda ]; then profile=paper; else profile=smoke; fi
echo "== 3. the $profile profile end to end on $DEVICE (limit ${STUDY_LIMIT} s)"
start=$(date +%s)
timeout "$STUDY_LIMIT" $PY -m fashionae study studies/paper.toml --profile $profile --device "$DEVICE" \
    --out "$OUT/study-$profile"
code=$?
wall=$(( $(date +%s) - start ))
echo "study: exit $code, wall time $wall s"
$PY - "$OUT/study-$profile" <<'PY'
# what finished, and the mean epoch time of each model, to extrapolate a study cut short
import json, pathlib, statistics, sys
runs = sorted(pathlib.Path(sys.argv[1], "runs").glob("*"))
done = [r.name for r in runs if (r / "summary.json").is_file()]
print(f"{len(done)} of {len(runs)} started runs finished")
for r in runs:
    rows = [json.loads(l) for l in (r / "metrics.jsonl").read_text().splitlines()] if (r / "metrics.jsonl").is_file() else []
    if rows:
        print(f"  {r.name}: {len(rows)} epochs, {statistics.mean(x['seconds'] for x in rows):.2f} s per epoch, "
              f"{statistics.mean(x['train_images_per_second'] for x in rows):,.0f} training images/s, "
              f"last val {rows[-1]['val_loss']:.5f}")
PY
