#!/usr/bin/env bash
# The user's path, from built wheels (not editable installs), in a fresh venv:
#   1. build wheels of the core and every plugin (pip wheel --no-deps);
#   2. install the core alone: `texkit plugins` works, `texkit demo` names the package to install;
#   3. add texkit[studio] (Gradio): `texkit studio` starts, serves its page and stops on SIGTERM, torch stays CPU;
#   4. add texkit[all] + the example reward: --version, plugins, rewards --json, `texkit score` with
#      every installed reward on the demo mesh, the presets (list, init, dry run) and a 2-step
#      `texkit train` on the tiny model.
# Called from .ci/run after `make test`. Measured before the studio step: 6 min 21 s on 2 CPU cores shared
# with other jobs (2026-12-07, warm pip cache): build 23 s, installs ~100 s, score with every reward ~127 s,
# presets ~43 s, 2-step train ~55 s; not measured on an idle machine, where it should be shorter. The
# texkit[studio] step (Gradio install, start, fetch, stop) took 51 s of a 7.2 min run (2 CPU cores shared
# with other jobs), and 161 s of a 13.6 min run at load average 10-18.
# PYTHON picks the interpreter of the fresh venv; KEEP=1 keeps the work folder for a look afterwards.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
PYTHON=${PYTHON:-python3}
BUILD_PY=${BUILD_PY:-$ROOT/.venv/bin/python}
WORK=$(mktemp -d "${TMPDIR:-/tmp}/texkit-wheels.XXXXXX")
[ "${KEEP:-0}" = 1 ] || trap 'rm -rf "$WORK"' EXIT
START=$SECONDS
step() { printf '\n== [%3ds] %s\n' "$((SECONDS - START))" "$*"; }
fail() { echo "wheels.sh: FAIL: $*" >&2; exit 1; }

step "build wheels of the core and every plugin"
VERSION=$(cat texkit/VERSION)
# the build venv's setuptools when it is new enough for the PEP 639 license fields (fast), else isolated builds
ISOLATION=()
if "$BUILD_PY" -c "import setuptools, sys; sys.exit(int(setuptools.__version__.split('.')[0]) < 77)" 2>/dev/null; then
    ISOLATION=(--no-build-isolation)
fi
"$BUILD_PY" -m pip wheel -q --no-deps "${ISOLATION[@]}" -w "$WORK/wheels" . plugins/*/
ls "$WORK/wheels"
CORE_WHEEL="$WORK/wheels/texkit-$VERSION-py3-none-any.whl"
[ -f "$CORE_WHEEL" ] || fail "no core wheel $CORE_WHEEL"

step "fresh venv; the pinned CPU torch first (as the Makefile does), then the core wheel alone"
"$PYTHON" -m venv "$WORK/venv"
VPY="$WORK/venv/bin/python"
TK="$WORK/venv/bin/texkit"
# --no-compile: byte-compiling torch's thousands of files is most of an install's time
"$VPY" -m pip install -q --no-compile torch==2.13.0 "$CORE_WHEEL"
cd "$WORK"  # not the checkout: python -c must import the installed texkit
"$VPY" -c "import texkit, pathlib; assert 'site-packages' in texkit.__file__, texkit.__file__; print('core from', pathlib.Path(texkit.__file__).parent)"

step "core alone: texkit plugins, and texkit demo names the distribution to install"
"$TK" plugins
set +e
"$TK" demo --out "$WORK/core-demo" >"$WORK/hint.txt" 2>&1
code=$?
set -e
cat "$WORK/hint.txt"
[ "$code" = 2 ] || fail "texkit demo without plugins exited $code, expected 2 (one-line error)"
grep -q "texkit-diffusers" "$WORK/hint.txt" || fail "texkit demo without plugins does not name texkit-diffusers"
if grep -q "Traceback" "$WORK/hint.txt"; then fail "texkit demo without plugins printed a traceback"; fi

step "texkit[studio] from the wheels (Gradio from PyPI): texkit studio starts and serves its page, torch stays the CPU build"
"$VPY" -m pip install -q --no-compile "$CORE_WHEEL[studio]"
"$VPY" -c "import torch; assert torch.__version__ == '2.13.0+cpu', 'the studio extra replaced torch: ' + torch.__version__"
if "$VPY" -m pip list 2>/dev/null | grep -qi '^nvidia-'; then fail "the studio extra pulled CUDA libraries"; fi
"$TK" studio --port 0 --workspace "$WORK/studio" >"$WORK/studio.log" 2>&1 &
STUDIO_PID=$!
"$VPY" - "$WORK/studio.log" <<'PY' || { cat "$WORK/studio.log"; kill "$STUDIO_PID" 2>/dev/null; fail "texkit studio did not serve its page"; }
import json, sys, urllib.request
from texkit.studio import wait_until_serving
url = wait_until_serving(sys.argv[1], 300)
page = urllib.request.urlopen(url, timeout=10).read().decode()
config = json.loads(urllib.request.urlopen(url + "/config", timeout=10).read())
assert "texkit studio" in page and config["title"] == "texkit studio", config.get("title")
print(f"texkit studio served {url} ({len(page)} bytes, gradio {config.get('version')})")
PY
kill -TERM "$STUDIO_PID"
wait "$STUDIO_PID" || fail "texkit studio did not stop cleanly on SIGTERM"
if grep -q "Traceback" "$WORK/studio.log"; then cat "$WORK/studio.log"; fail "texkit studio printed a traceback"; fi

step "texkit[all] and the example reward, from the wheels"
"$VPY" -m pip install -q --no-compile --find-links "$WORK/wheels" "$CORE_WHEEL[all]" "$WORK"/wheels/texkit_*.whl
"$VPY" -m pip list 2>/dev/null | grep -i '^texkit'
if "$VPY" -m pip list 2>/dev/null | grep -i '^texkit' | grep -q '/'; then fail "an editable texkit install"; fi

step "texkit --version / plugins / rewards --json"
"$TK" --version | tee "$WORK/version.txt"
grep -q "$VERSION" "$WORK/version.txt" || fail "texkit --version does not print $VERSION"
"$TK" plugins | tee "$WORK/plugins.txt"
if grep -qi "fail" "$WORK/plugins.txt"; then fail "a plugin failed to import in the clean install"; fi
"$TK" rewards --json >"$WORK/rewards.json"
REWARDS=$("$VPY" -c "import json, sys; print(' '.join(r['name'] for r in json.load(open(sys.argv[1]))))" "$WORK/rewards.json")
echo "rewards: $REWARDS"
for want in symmetry curvature_color aesthetic clip_score jpeg_compressibility palette; do
    [[ " $REWARDS " == *" $want "* ]] || fail "reward $want missing from the clean install"
done

step "texkit score demo with every reward"
"$VPY" -c "
import numpy as np
from PIL import Image
Image.fromarray((np.random.default_rng(0).random((64, 64, 3)) * 255).astype('uint8')).save('texture.png')"
# one call for the rewards that need no parameters (--param would go to every --reward of a call),
# one call each for those that do
plain=()
for reward in $REWARDS; do
    case $reward in
        aesthetic) "$TK" score demo texture.png --reward aesthetic --param tiny=true --size 64 --views front_short ;;  # random CLIP + head: no download
        clip_score) "$TK" score demo texture.png --reward clip_score --param tiny=true --param 'text="a glazed ceramic gourd"' --size 64 --views front_short ;;  # random CLIP, a text: no download, no prompt in `score`
        camera_pose) "$TK" score demo texture.png --reward camera_pose --param 'reward_params={"tiny": true}' --size 64 --views front_short ;;  # wraps aesthetic
        reference) "$TK" score demo texture.png --reward reference --param texture=texture.png --size 64 --views front_short ;;  # against itself
        *) plain+=(--reward "$reward") ;;
    esac >>"$WORK/scores.txt" || fail "texkit score --reward $reward"
done
"$TK" score demo texture.png "${plain[@]}" --size 64 --views front_short >>"$WORK/scores.txt" || fail "texkit score ${plain[*]}"
cat "$WORK/scores.txt"
for reward in $REWARDS; do
    grep -q "^$reward = " "$WORK/scores.txt" || fail "no score line for reward $reward"
done

step "presets from the wheel: texkit presets, init, and a dry run"
"$TK" presets | tee "$WORK/presets.txt"
for preset in curvature-smooth curvature-sharp symmetry feature-emphasis curvature-alignment camera-pose 3d-reference; do
    grep -q "^$preset	" "$WORK/presets.txt" || fail "preset $preset missing from the installed wheel"
done
"$TK" init symmetry-quick -o "$WORK/symmetry-quick.toml"
grep -q '^steps = 250' "$WORK/symmetry-quick.toml" || fail "texkit init symmetry-quick wrote no 250-step config"
"$TK" train symmetry --dry-run | tee "$WORK/dry-run.txt"
grep -q "predicted GPU time for 2000 steps" "$WORK/dry-run.txt" || fail "texkit train symmetry --dry-run printed no GPU time"

step "texkit train: 2 steps on the tiny model"
cat >"$WORK/quick.toml" <<EOF
[mesh]
path = "demo"

[prompts]
text = ["a glazed ceramic gourd"]

[generator]
name = "tiny"
options = { steps = 2 }

[cameras]
paint = { elevation = [-20, -20], azimuth = [0, 180] }
reward = { elevation = [-20, -20], azimuth = [90, -90] }

[texture]
size = 64
render_size = 64

[rewards.curvature_color]
weight = 1.0

[training]
steps = 2
lr = 1e-3

[output]
dir = "$WORK/run"
EOF
"$TK" train "$WORK/quick.toml"
[ -f "$WORK/run/metrics.jsonl" ] || fail "texkit train wrote no metrics.jsonl"
[ "$(wc -l <"$WORK/run/metrics.jsonl")" -ge 2 ] || fail "texkit train logged fewer than 2 steps"

step "wheels: all checks passed"
