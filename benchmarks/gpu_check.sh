#!/usr/bin/env bash
# One-shot check of the CUDA path on a GPU machine, from the repository root:
#   bash benchmarks/gpu_check.sh [OUT_DIR]
# It trains the quickstart in fp32 and bf16 with the data resident on the GPU, times the
# tutorial-size step in ganlab against benchmarks/reference_dcgan.py, and runs the
# tutorial recipe on a folder of CelebA-shaped JPEGs through two loader workers.
set -euo pipefail
out=${1:-${OUT:-/tmp/ganlab_gpu_check}}
mkdir -p "$out"
if [ -d .whl ]; then  # packages the GPU image lacks, carried as wheels
  python3 -m pip install -q --no-index --no-deps --target /tmp/site .whl/*.whl
  export PYTHONPATH=/tmp/site
fi
# Without installing: make `ganlab_plugins` importable from plugins/.
mkdir -p /tmp/src && ln -sfn "$PWD/plugins" /tmp/src/ganlab_plugins
export PYTHONPATH="$PWD:/tmp/src:${PYTHONPATH:-}"
ganlab() { python3 -m ganlab.cli "$@"; }

nvidia-smi --query-gpu=name,memory.total --format=csv,noheader
python3 -c "import torch; print('torch', torch.__version__, torch.cuda.get_device_name())"

echo "== quickstart, fp32 and bf16, data resident on the GPU"
ganlab run recipes/quickstart.yaml --device cuda --out "$out/qs_fp32" --set callbacks.0.params.every=1000
ganlab run recipes/quickstart.yaml --device cuda --out "$out/qs_bf16" --set train.precision=bf16 \
  --set callbacks.0.params.every=1000

echo "== tutorial-size step (64x64, batch 128, nz 100, ngf = ndf = 64): reference vs ganlab"
python3 benchmarks/reference_dcgan.py --device cuda --steps 600
for precision in fp32 bf16; do
  ganlab run recipes/dcgan_celeba.yaml --device cuda --out "$out/step_$precision" \
    --set data.name=cartoon_faces --set "data.params={count: 8192, image_size: 64}" \
    --set train.epochs=null --set train.steps=620 --set train.precision=$precision --set "callbacks=[]"
done

echo "== tutorial recipe on 4,096 CelebA-shaped JPEGs, 2 workers"
python3 - <<'PY'
from pathlib import Path
import numpy as np
from PIL import Image
root = Path("/tmp/celeba/img_align_celeba"); root.mkdir(parents=True, exist_ok=True)
rng = np.random.default_rng(0)
for i in range(4096):
    Image.fromarray(rng.integers(0, 256, (218, 178, 3), dtype=np.uint8)).save(root / f"{i + 1:06d}.jpg")
PY
ganlab run recipes/dcgan_celeba.yaml --device cuda --out "$out/celeba" \
  --set data.params.root=/tmp/celeba --set train.epochs=1 --set callbacks.0.params.every=10

echo "== CUDA with train.deterministic: its cost, and exact resume (150 steps, then 150 more)"
det=(recipes/dcgan_celeba.yaml --device cuda --set data.name=cartoon_faces
  --set "data.params={count: 8192, image_size: 64}" --set train.epochs=null
  --set train.deterministic=true --set "callbacks=[]" --set train.checkpoint_every=50)
ganlab run "${det[@]}" --out "$out/det_straight" --set train.steps=300
ganlab run "${det[@]}" --out "$out/det_resumed" --set train.steps=150
ganlab run --resume "$(ls -d "$out"/det_resumed/*/*)" --set train.steps=300
python3 - "$out" <<'PY'
import json, sys
from pathlib import Path
import torch
out = Path(sys.argv[1])
a, b = (next((out / n).glob("*/*")) for n in ("det_straight", "det_resumed"))
rows = [[json.loads(l) for l in (r / "metrics.jsonl").read_text().splitlines()] for r in (a, b)]
wa, wb = (torch.load(r / "checkpoints/final.pt", weights_only=True)["generator"] for r in (a, b))
same = all(torch.equal(wa[k], wb[k]) for k in wa)
print(f"deterministic CUDA resume: {len(rows[0])} rows, losses equal: {rows[0] == rows[1]}, "
      f"generator weights equal: {same}")
PY

echo "== summary (images per second from each run.json)"
python3 - "$out" <<'PY'
import json, shutil, sys
from pathlib import Path
out = Path(sys.argv[1])
for info in sorted(out.glob("*/*/*/run.json")):
    data = json.loads(info.read_text())
    name = info.parts[-4]
    print(f"{name:10} {data['status']:10} steps={data['steps']:5} wall={data['wall_seconds']:7.1f}s "
          f"{data['images_per_second']:9.0f} img/s")
    final = info.parent / "samples" / "final.png"
    if final.exists():
        shutil.copy(final, out / f"{name}_final.png")
PY
