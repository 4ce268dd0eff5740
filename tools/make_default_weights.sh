#!/usr/bin/env bash
# The recipe behind the packaged weights: train the CamVid prior, train the enhancer with it,
# score both ablations, and copy the results into sagc/weights/. Run from the repository root:
#     bash tools/make_default_weights.sh /path/to/data   (with camvid/ and sice/ inside)
# Each step checkpoints; rerun a step with --resume after an interruption.
set -euo pipefail
DATA=${1:?usage: make_default_weights.sh DATA_ROOT (with camvid/ and sice/)}
RUNS=${RUNS:-runs}
CAMVID=$DATA/camvid
COMMON=(--normal "$CAMVID/train/images" --synthetic-low "$CAMVID/train/images"
        --val "$CAMVID/val/images" --config configs/sagc_default.yaml --set prior="$RUNS/seg/best.pt")

sagc train seg --config configs/seg_camvid.yaml --data "$CAMVID" --out "$RUNS/seg"
# the shipped default: configs/sagc_default.yaml as it is (adversarial term off)
sagc train enhancer "${COMMON[@]}" --out "$RUNS/noadv"
# ablations: the full method (adversarial on) and no semantics (one global class, no prior)
sagc train enhancer "${COMMON[@]}" --out "$RUNS/full" --set adversarial=true
sagc train enhancer "${COMMON[@]}" --out "$RUNS/nosem" --set semantics=false
# the night weights: the same recipe with 30 % of the synthetic samples darkened at night level
sagc train enhancer "${COMMON[@]}" --out "$RUNS/night" --set night_fraction=0.3

python tools/score_weights.py "$RUNS/full/best.pt" "$RUNS/noadv/best.pt" "$RUNS/nosem/best.pt" \
    --camvid-val "$CAMVID/val/images" --sice "$DATA/sice"
cp "$RUNS/seg/best.pt" sagc/weights/segprior_camvid.pt
cp "$RUNS/noadv/best.pt" sagc/weights/default.pt
cp "$RUNS/night/best.pt" sagc/weights/night.pt
