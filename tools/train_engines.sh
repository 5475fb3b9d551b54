#!/usr/bin/env bash
# Trains the three default engines (mono, stereo, completion) from scratch on our own synthetic
# KITTI-format world, exports them to ONNX (+ sidecar JSON + safetensors) and scores them on held-out drives.
#
#   tools/train_engines.sh OUT [MINUTES]
#
# OUT gets data/ (the world), runs/<kind>/ (checkpoints, scalars.jsonl), engines/<kind>_default.*,
# eval/<kind>.json and one tarball per engine in OUT/pack/. MINUTES (default 5) is each trainer's wall-clock
# budget; the three train at once on one GPU. Everything is resumable: re-running continues the runs.
# Knobs (environment): PYTHON, DEVICE (cuda), TRAIN_DRIVES (40), FRAMES (100), EVAL_DRIVES (2), OBJECT_DRIVES (32:
# drives of `synth --scene objects`, 16 scenes each, mixed into completion training),
# WIDTH x HEIGHT (640 x 192), JOBS (nproc), MONO_STEPS, STEREO_STEPS (DPSNet), REFINE_STEPS (the default stereo
# engine, the refinement of the classical sweep), COMPLETION_STEPS, STEREO2_MINUTES.
# Needs only PyTorch, ONNX (+ onnxscript), ONNX Runtime, OpenCV, scikit-image, safetensors, tqdm, PyYAML:
# no ROS 2. The README shows the command that made the shipped engines.
set -uo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
[ -n "${1:-}" ] || { echo "usage: tools/train_engines.sh OUT [MINUTES]" >&2; exit 2; }
out=$(mkdir -p "$1" && cd "$1" && pwd) || { echo "train_engines: cannot use $1 as the output folder" >&2; exit 2; }
minutes=${2:-5}
PYTHON=${PYTHON:-python3}
DEVICE=${DEVICE:-cuda}
TRAIN_DRIVES=${TRAIN_DRIVES:-40}
FRAMES=${FRAMES:-100}
EVAL_DRIVES=${EVAL_DRIVES:-2}
WIDTH=${WIDTH:-640}
HEIGHT=${HEIGHT:-192}
JOBS=${JOBS:-$(nproc)}
OBJECT_DRIVES=${OBJECT_DRIVES:-32}
MONO_STEPS=${MONO_STEPS:-20000}
STEREO_STEPS=${STEREO_STEPS:-20000}
REFINE_STEPS=${REFINE_STEPS:-20000}
COMPLETION_STEPS=${COMPLETION_STEPS:-20000}
STEREO2_MINUTES=${STEREO2_MINUTES:-$(awk "BEGIN{print $minutes/5}")}
STEREO1_MINUTES=$(awk "BEGIN{print $minutes - $STEREO2_MINUTES}")
awk "BEGIN{exit !($STEREO1_MINUTES > 0 && $STEREO2_MINUTES > 0)}" || {
  echo "train_engines: STEREO2_MINUTES ($STEREO2_MINUTES) must be above 0 and below MINUTES ($minutes)" >&2; exit 2; }
export PYTHONPATH="$root${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
dp() { "$PYTHON" -m depth_perception.cli "$@"; }
log() { echo "[train_engines $(date +%H:%M:%S)] $*"; }
PACK_DIR=${PACK_DIR:-$out/pack}
mkdir -p "$out"/{data/train,data/eval,runs,engines,eval,logs} "$PACK_DIR"
workers=$(( JOBS > 6 ? (JOBS - 3) / 3 : 1 ))

log "1/4 synthetic world: $TRAIN_DRIVES training drives + $EVAL_DRIVES held-out, $FRAMES frames, ${WIDTH}x$HEIGHT"
synth() {  # root seed frames; a drive already there (a re-run) is kept
  compgen -G "$1/*/*_drive_$(printf %04d "$2")_sync" >/dev/null && return 0
  dp synth --seed "$2" --frames "$3" --width "$WIDTH" --height "$HEIGHT" --out "$1" --normals left \
    >"$out/logs/synth_$2.log" 2>&1 || echo "synth seed $2 failed (see logs/synth_$2.log)"
}
export -f synth dp; export out WIDTH HEIGHT PYTHON
seq 0 $((TRAIN_DRIVES - 1)) | xargs -P "$JOBS" -I{} bash -c "synth '$out/data/train' {} $FRAMES"
seq 1000 $((1000 + EVAL_DRIVES - 1)) | xargs -P "$JOBS" -I{} bash -c "synth '$out/data/eval' {} 50"
objects() {  # seed: 16 independent scenes of random objects (a re-run keeps a drive already there)
  [ -d "$out/data/objects/objects_$(printf %04d "$1")" ] && return 0
  dp synth --scene objects --seed "$1" --frames 16 --width "$WIDTH" --height "$HEIGHT" --out "$out/data/objects" \
    >"$out/logs/objects_$1.log" 2>&1 || echo "objects seed $1 failed (see logs/objects_$1.log)"
}
export -f objects
[ "$OBJECT_DRIVES" -gt 0 ] && seq 100 $((100 + OBJECT_DRIVES - 1)) | xargs -P "$JOBS" -I{} bash -c "objects {}"
mkdir -p "$out/data/objects"
log "world: $(find "$out/data" -name '*.png' -path '*image_02/data/*' | wc -l) left images"

log "2/4 training the engines at once, $minutes min each"
rm -f "$out"/engines/*_default.* "$out"/engines/stereo_dpsnet.* "$out"/engines/stereo_cpu.* "$out"/eval/*.json  # a run that fails must not leave an older engine to be packed
common=(--device "$DEVICE" --workers "$workers" --log-every 50 --ckpt-every 500 --height "$HEIGHT" --width "$WIDTH")
(dp train mono --data "$out/data/train" --out "$out/runs/mono" --mode mono+stereo --arch narrow \
   --steps "$MONO_STEPS" --batch-size 12 --lr 2e-4 --max-minutes "$minutes" "${common[@]}" \
   --export "$out/engines/mono_default.onnx" \
   >"$out/logs/mono.log" 2>&1; echo "mono exit $?" >>"$out/logs/mono.log") &
(dp train completion --data "$out/data/train" "$out/data/objects" --out "$out/runs/completion" --arch nlspn_light \
   --prior guided --no-correction --sensor-patterns 0.8 --iterations 12 --top-crop 0 \
   --steps "$COMPLETION_STEPS" --batch-size 8 --lr 1e-3 --max-minutes "$minutes" "${common[@]}" \
   --export "$out/engines/completion_default.onnx" --export-height "$HEIGHT" --export-width "$WIDTH" \
   >"$out/logs/completion.log" 2>&1; echo "completion exit $?" >>"$out/logs/completion.log") &
(dp train stereo --data "$out/data/train" --out "$out/runs/stereo1" --stage 1 --steps "$STEREO_STEPS" \
   --batch-size 8 --lr 1e-3 --max-minutes "$STEREO1_MINUTES" "${common[@]}" && \
 dp train stereo --data "$out/data/train" --out "$out/runs/stereo_dpsnet" --stage 2 --init "$out/runs/stereo1" \
   --steps "$STEREO_STEPS" --batch-size 8 --lr 1e-4 --max-minutes "$STEREO2_MINUTES" "${common[@]}" && \
 dp export "$out/runs/stereo_dpsnet" --out "$out/engines/stereo_dpsnet.onnx" --height "$HEIGHT" --width "$WIDTH"
 echo "stereo_dpsnet exit $?") >"$out/logs/stereo_dpsnet.log" 2>&1 &
# the default stereo engine: the refinement of the classical sweep (street drives; strips of 64 rows)
(dp train stereo --model refine --correct holes --loss log --data "$out/data/train" --out "$out/runs/stereo" \
   --frame-step 4 --steps "$REFINE_STEPS" --batch-size 4 --lr 1e-3 --max-minutes "$minutes" "${common[@]}" \
   --height 64 && \
 dp export "$out/runs/stereo" --out "$out/engines/stereo_default.onnx" --height "$HEIGHT" --width "$WIDTH" && \
 dp export "$out/runs/stereo" --out "$out/engines/stereo_cpu.onnx" --height $((HEIGHT / 2)) --width $((WIDTH / 2))
 echo "stereo exit $?") >"$out/logs/stereo.log" 2>&1 &  # stereo_cpu: the same network at half size, for CPUs
wait
[ -f "$out/engines/stereo_default.onnx" ] && dp eval stereo --data "$out/data/eval" --engine classical \
  "$out/engines/stereo_default.onnx" $([ -f "$out/engines/stereo_cpu.onnx" ] && echo "$out/engines/stereo_cpu.onnx") \
  $([ -f "$out/engines/stereo_dpsnet.onnx" ] && echo "$out/engines/stereo_dpsnet.onnx") \
  --max-frames 20 --json "$out/eval/stereo.json" >>"$out/logs/stereo.log" 2>&1
log "3/4 scoring"
for kind in mono completion; do  # a run that died (say, a non-finite loss) is exported from its last checkpoint
  [ -f "$out/engines/${kind}_default.onnx" ] || [ ! -f "$out/runs/$kind/checkpoint.json" ] || \
    dp export "$out/runs/$kind" --out "$out/engines/${kind}_default.onnx" --height "$HEIGHT" --width "$WIDTH" \
      >>"$out/logs/$kind.log" 2>&1
done
for kind in mono completion; do
  [ -f "$out/engines/${kind}_default.onnx" ] || { log "$kind: no engine (see logs/$kind.log)"; continue; }
  dp eval "$kind" --engine "$out/engines/${kind}_default.onnx" --data "$out/data/eval" --max-frames 20 \
    --json "$out/eval/$kind.json" >"$out/logs/${kind}_eval.log" 2>&1 || log "$kind eval failed"
done

log "4/4 packing into $PACK_DIR"
pack() {  # name files...: a gzipped tarball of the files (relative to OUT) that exist
  local name=$1 files=() f; shift
  for f in "$@"; do [ -f "$out/$f" ] && files+=("$f"); done
  [ ${#files[@]} -gt 0 ] && tar -C "$out" -czf "$PACK_DIR/$name.tar.gz" "${files[@]}"
}
# Five files at most (mono's weights are the largest and travel on their own).
pack mono engines/mono_default.onnx engines/mono_default.json eval/mono.json runs/mono/scalars.jsonl \
  runs/mono/checkpoint.json
pack mono_weights engines/mono_default.safetensors
for kind in stereo completion; do
  pack "$kind" "engines/${kind}_default".{onnx,json,safetensors} "eval/$kind.json" "runs/$kind/scalars.jsonl" \
    "runs/$kind/checkpoint.json"
done
pack stereo_cpu engines/stereo_cpu.{onnx,json,safetensors}
pack stereo_dpsnet engines/stereo_dpsnet.{onnx,json,safetensors} runs/stereo_dpsnet/scalars.jsonl \
  runs/stereo1/scalars.jsonl
tar -C "$out" -czf "$PACK_DIR/logs.tar.gz" logs
for kind in mono stereo stereo_dpsnet completion; do tail -n 4 "$out/logs/$kind.log" | sed "s/^/[$kind] /"; done
ls -la "$PACK_DIR"
