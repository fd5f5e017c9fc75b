#!/usr/bin/env bash
# One call on the lent GPU machine: throughput benchmark plus training runs.
# Prepare on the CPU machine first (see README "Training on a GPU"):
#   python -m training.pack REC_A REC_B --out .gpu/data
#   python -m training.pack VAL_REC --centre-only --out .gpu/data
#   pip download keras==3.15.1 namex optree (cp312 manylinux wheels) -d .whl
# then run this script there with .gpu and .whl carried. Results go to $OUT.
# Issue 6's slim models against base, same recipe (one call, ~8 min):
#   BENCH_ARCHS="base eff-slim mnv2" ARCHS="eff-slim mnv2 base" bash benchmarks/gpu_session.sh
set -uo pipefail
OUT=${OUT:-/tmp/out}
mkdir -p "$OUT"
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
  --target /tmp/site .whl/*.whl || exit 1
export PYTHONPATH=/tmp/site:$PWD PYTHONUNBUFFERED=1 KERAS_BACKEND=jax
export XLA_PYTHON_CLIENT_PREALLOCATE=false TF_CPP_MIN_LOG_LEVEL=2
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee "$OUT/device.txt"
python3 -c "import jax, keras; print('jax', jax.__version__, 'keras', keras.__version__, jax.devices())" | tee -a "$OUT/device.txt"

D=.gpu/data
STEP=${STEP:-all}
if [[ $STEP == all || $STEP == bench ]]; then
  timeout 300 python3 -m benchmarks.train_throughput --data $D/akbari_lake $D/bsh_t2new_jungle \
    --arch ${BENCH_ARCHS:-pilotnet base eff} --json "$OUT/throughput.json" 2>&1 | grep -v "^I0000\|^W0000" | tee "$OUT/throughput.log"
fi
if [[ $STEP == all || $STEP == train ]]; then
  for arch in ${ARCHS:-eff base pilotnet separable}; do
    timeout 240 python3 train.py --arch "$arch" --data $D/akbari_lake $D/bsh_t2new_jungle \
      --val-recording $D/jclc_mountain --epochs ${EPOCHS:-40} --patience 10 \
      --batch-size 256 --pipeline device ${EXTRA:-} --out gpu-runs --quiet 2>&1 \
      | grep -v "^I0000\|^W0000\|absl" | tee -a "$OUT/train.log"
  done
  tar --exclude=model.h5 -czf "$OUT/gpu-runs.tgz" gpu-runs
fi
