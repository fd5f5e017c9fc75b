#!/usr/bin/env bash
# Second GPU call: training runs with 8 passes per epoch (see benchmarks/results-gpu.md).
set -uo pipefail
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 1
export PYTHONPATH=/tmp/site:$PWD PYTHONUNBUFFERED=1 KERAS_BACKEND=jax XLA_PYTHON_CLIENT_PREALLOCATE=false TF_CPP_MIN_LOG_LEVEL=2
D=.gpu/data; T="--data $D/akbari_lake $D/bsh_t2new_jungle --val-recording $D/jclc_mountain --batch-size 256 --passes 8 --out gpu-runs --quiet"
tr() { timeout $1 python3 train.py $T "${@:2}" 2>&1 | grep -v "^I0000\|^W0000\|absl\|libtpu" | grep "epoch\|best\|run folder\|Error\|error" | tee -a $OUT/train2.log; }
tr 150 --arch eff --epochs 40 --patience 8 --pipeline device
tr 100 --arch base --epochs 40 --patience 8 --pipeline device
tr 80 --arch pilotnet --epochs 40 --patience 8 --pipeline device
tr 100 --arch base --epochs 40 --patience 8 --pipeline device --mixed-precision
tar --exclude=model.h5 -czf $OUT/gpu-runs2.tgz gpu-runs
tr 90 --arch eff --epochs 8 --patience 8 --pipeline host
tr 75 --arch separable --epochs 40 --patience 8 --pipeline device --lr 3e-4
tar --exclude=model.h5 -czf $OUT/gpu-runs2.tgz gpu-runs
