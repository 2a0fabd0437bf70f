# Source on the GPU machine (`source benchmarks/gpu/setup_device.sh`): install the carried wheels
# (.whl, cp312, see docs/performance.md) and texkit with its plugins into /tmp/site, put it on
# PYTHONPATH, and copy the carried .assets to ../shared/assets where the benchmarks look for meshes.
export PYTHONUNBUFFERED=1
OUT=${OUT:-/tmp/texkit-out}
mkdir -p "$OUT"
# setuptools reuses build/ folders left by an earlier call when their files look newer: start clean
rm -rf /tmp/site build plugins/*/build plugins/*/src/*.egg-info
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || return 1
export PYTHONPATH=/tmp/site
export PATH=/tmp/site/bin:$PATH
for pkg in . plugins/*/; do
  python3 -m pip install -q --no-index --no-deps --no-build-isolation --upgrade --target /tmp/site "$pkg" >/dev/null 2>&1 || { echo "install failed: $pkg"; return 1; }
done
mkdir -p ../shared && rm -rf ../shared/assets && cp -r .assets ../shared/assets
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv > "$OUT/gpu.csv"
python3 -c "import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda)" >> "$OUT/gpu.csv"
