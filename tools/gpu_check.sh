#!/usr/bin/env bash
# The GPU check, one call on a CUDA machine: CUDA tests, the stage profile, and `sagc bench` at
# 1080p with and without noise reduction, NVDEC against the CPU decoder on a real file. JSON and
# the test log go to $OUT (default /tmp/sagc-gpu); everything else is printed.
#   bash tools/gpu_check.sh 2>&1 | tee gpu_check.log      # from the repository root
# Wheels in .whl/ (e.g. PyAV for the machine's Python) are installed first when present.
set -uo pipefail
OUT=${OUT:-/tmp/sagc-gpu}
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1
if [ -d .whl ]; then
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target /tmp/site .whl/*.whl || exit 1
    export PYTHONPATH=/tmp/site
fi
# setup.py's package_dir layout without an install (no build tools offline): link the folders
# into sagc/ of this copy of the tree, which is first on sys.path when run from the root
for part in core ops models stream train eval cli; do [ -e "sagc/$part" ] || ln -s "../$part" "sagc/$part"; done
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader
python3 -c "import torch, av, cv2; print('torch', torch.__version__, 'av', av.__version__, 'cv2', cv2.__version__)"
python3 -m pytest -q -rs -p no:cacheprovider tests/test_cuda.py 2>&1 | tee "$OUT/test_cuda.log"
PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH} python3 tools/cuda_profile.py --size 1920x1080 --json "$OUT/profile.json"
# the default settings, then without the guided upsampling, then without the noise reduction
for settings in "4 0.5" "4 0" "0 0.5"; do
    set -- $settings
    python3 -m sagc bench --synthetic 1920x1080@30 --device cuda --frames 300 --denoise "$1" --guide "$2" \
        --json "$OUT/bench1080_d$1_g$2.json"
done
# a real H.264 file (made here with PyAV) for NVDEC against the CPU decoder, and the CLI on the
# GPU with smoothing (the eager path)
python3 -c "from pathlib import Path; from tests.conftest import make_clip; make_clip(Path('/tmp/clip.mp4'), size=(1920, 1080), frames=300, rate=30)"
for decode in ${DECODERS:-auto cpu}; do
    python3 -m sagc bench /tmp/clip.mp4 --device cuda --frames 300 --decode "$decode" \
        --json "$OUT/bench_file_$decode.json"
done
/usr/bin/time -f "enhance --device cuda --smooth 0.8: %e s wall" python3 -m sagc enhance /tmp/clip.mp4 -o /tmp/clip_out.mp4 --device cuda --smooth 0.8 2>&1 | tail -3
python3 -c "import av; c = av.open('/tmp/clip_out.mp4'); print('output frames', sum(1 for _ in c.decode(video=0)))"
