#!/usr/bin/env bash
# The whole GPU table of docs/performance.md in one run on a GPU machine (about 8 minutes on
# an H200), from the repository root, without installing ganlab:
#   bash benchmarks/gpu_check.sh [OUT_DIR]
# Every figure comes from `ganlab bench --device cuda --json` (ganlab's loop, the minimal loop
# and the tutorial's loop timed in one process, warm-up excluded) or from a timed `ganlab run`;
# a measurement that fails is marked FAILED in the table and the others still run.
set -uo pipefail
out=${1:-${OUT:-/tmp/ganlab_gpu_check}}
mkdir -p "$out/bench"
if [ -d .whl ]; then  # packages the GPU image lacks, carried as wheels
  python3 -m pip install -q --no-index --no-deps --target /tmp/site .whl/*.whl
  export PYTHONPATH=/tmp/site
fi
# Without installing: make `ganlab_plugins` importable from plugins/.
mkdir -p /tmp/src && ln -sfn "$PWD/plugins" /tmp/src/ganlab_plugins
export PYTHONPATH="$PWD:/tmp/src:${PYTHONPATH:-}"
ganlab() { python3 -m ganlab.commands.cli "$@"; }
: >"$out/failures.txt"

# measure NAME COMMAND...: run it, its stdout into $out/bench/NAME.json, and note a failure.
measure() {
  local name=$1; shift
  echo "== [$((SECONDS / 60))m$((SECONDS % 60))s] $name"
  if ! "$@" >"$out/bench/$name.json" 2>"$out/bench/$name.log"; then
    echo "FAILED: $name (see $out/bench/$name.log)" | tee -a "$out/failures.txt"
    tail -5 "$out/bench/$name.log"
  fi
}

nvidia-smi --query-gpu=name,memory.total --format=csv,noheader
python3 -c "import torch; print('torch', torch.__version__, torch.cuda.get_device_name())"

echo "== 4,096 JPEGs of CelebA's size (178x218, about 10 KB) in CelebA's layout"
python3 - <<'PY'
from pathlib import Path
import numpy as np
from PIL import Image
root = Path("/tmp/celeba/img_align_celeba"); root.mkdir(parents=True, exist_ok=True)
rng = np.random.default_rng(0)
base = rng.integers(0, 256, (16, 16, 3), dtype=np.uint8)
for i in range(4096):
    small = np.clip(base.astype(int) + rng.integers(-40, 40, (16, 16, 3)), 0, 255)
    Image.fromarray(small.astype(np.uint8)).resize((178, 218), Image.BICUBIC).save(
        root / f"{i + 1:06d}.jpg", quality=90)
PY

# The tutorial's settings: DCGAN-64 (nz 100, ngf = ndf = 64), batch 128, Adam 2e-4.
tutorial=(recipes/dcgan_celeba.yaml --device cuda --set data.params.root=/tmp/celeba
  --steps 200 --warmup 20)
measure tutorial_fp32 ganlab bench "${tutorial[@]}" --json
measure tutorial_bf16 ganlab bench "${tutorial[@]}" --set train.precision=bf16 --no-reference --json
measure tutorial_fp32_graphs ganlab bench "${tutorial[@]}" --set train.cuda_graphs=true \
  --no-reference --json
measure tutorial_bf16_graphs ganlab bench "${tutorial[@]}" --set train.precision=bf16 \
  --set train.cuda_graphs=true --no-reference --json
measure tutorial_bf16_deterministic ganlab bench "${tutorial[@]}" --set train.precision=bf16 \
  --set train.deterministic=true --no-reference --json
measure sweep_bf16 ganlab bench "${tutorial[@]}" --set train.precision=bf16 \
  --batch-sizes 128,256,512,1024 --no-reference --json
measure size128_bf16 ganlab bench "${tutorial[@]}" --set train.precision=bf16 --image-size 128 \
  --no-reference --json

# The quickstart as a user runs it (2,500 steps, SWD every 500, samples, figures, W&B offline),
# timed from the command's start to its end: the target is under 15 s.
# time_run NAME SETS...: one such run, its seconds into $out/NAME.seconds.
time_run() {
  local name=$1; shift
  echo "== [$((SECONDS / 60))m$((SECONDS % 60))s] $name"
  local started; started=$(date +%s.%N)
  if ganlab run recipes/quickstart.yaml --device cuda --out "$out/$name" "$@" \
      >"$out/$name.log" 2>&1; then
    python3 -c "import sys; print(f'{float(sys.argv[2]) - float(sys.argv[1]):.1f}')" \
      "$started" "$(date +%s.%N)" >"$out/$name.seconds"
  else
    echo "FAILED: $name (see $out/$name.log)" | tee -a "$out/failures.txt"
  fi
}
time_run quickstart_fp32
time_run quickstart_bf16 --set train.precision=bf16
time_run quickstart_bf16_graphs --set train.precision=bf16 --set train.cuda_graphs=true

echo "== [$((SECONDS / 60))m$((SECONDS % 60))s] CUDA with train.deterministic: exact resume (150 steps, then 150 more)"
det=(recipes/dcgan_celeba.yaml --device cuda --set data.params.root=/tmp/celeba
  --set train.epochs=null --set train.deterministic=true --set "callbacks=[]" --set "loggers=[]"
  --set train.checkpoint_every=50)
ganlab run "${det[@]}" --out "$out/det_straight" --set train.steps=300 >"$out/det.log" 2>&1 &&
  ganlab run "${det[@]}" --out "$out/det_resumed" --set train.steps=150 >>"$out/det.log" 2>&1 &&
  ganlab run --resume "$(ls -d "$out"/det_resumed/*/*)" --set train.steps=300 >>"$out/det.log" 2>&1 ||
  echo "FAILED: deterministic resume (see $out/det.log)" | tee -a "$out/failures.txt"

echo "== [$((SECONDS / 60))m$((SECONDS % 60))s] the CUDA tests (train.cuda_graphs against eager, exact resume)"
if python3 -c "import pytest" 2>/dev/null; then
  python3 -m pytest -q -p no:cacheprovider tests/test_cuda_graphs.py -k cuda >"$out/pytest.log" 2>&1 ||
    echo "FAILED: tests/test_cuda_graphs.py (see $out/pytest.log)" | tee -a "$out/failures.txt"
  tail -3 "$out/pytest.log"
else
  echo "pytest is not installed here: the CUDA tests were not run" | tee -a "$out/failures.txt"
fi

echo "== [$((SECONDS / 60))m$((SECONDS % 60))s] the table"
python3 benchmarks/gpu_table.py "$out" | tee "$out/table.md"
