#!/usr/bin/env bash
# Issue 18's monocular-only ablations: short `train mono --mode mono` runs that differ from the shipped recipe in
# one choice each, every run with the pose probe in its scalar log, then each scored median-scaled on held-out
# synthetic drives.
#
#   tools/mono_ablations.sh DATA EVAL OUT [MINUTES] [VARIANT...]
#
# DATA: training drives (e.g. `synth --seed S --frames 60 --width 320 --height 96` for S in 0-5); EVAL: held-out
# synthetic drives; OUT gets runs/<variant>/ (checkpoint, scalars.jsonl with pose_cos / pose_scale / depth_scale),
# eval/<variant>.json and summary.txt (one row per variant: the probe's last figures and the median-scaled
# AbsRel / delta<1.25). MINUTES (default 10) is each run's wall-clock budget; runs resume when re-run.
# Variants (default: all): base reflect bn_standard init_md2 pose_full static monodepth2 (all five at once).
# Knobs (environment): PYTHON, DEVICE (cpu), JOBS (2 runs at once), THREADS (1 per run), HEIGHT x WIDTH
# (96 x 320), BATCH (8), LR (2e-4), STEPS (2320: the schedule's length), PROBE_EVERY (25), EVAL_FRAMES (5).
set -uo pipefail
[ $# -ge 3 ] || { echo "usage: tools/mono_ablations.sh DATA EVAL OUT [MINUTES] [VARIANT...]" >&2; exit 2; }
data=$1 eval_data=$2 out=$3 minutes=${4:-10}
shift $(($# < 4 ? $# : 4))
variants=("$@")
[ ${#variants[@]} -gt 0 ] || variants=(base reflect bn_standard init_md2 pose_full static monodepth2)
PYTHON=${PYTHON:-python3}
DEVICE=${DEVICE:-cpu}
JOBS=${JOBS:-2}
THREADS=${THREADS:-1}
HEIGHT=${HEIGHT:-96}
WIDTH=${WIDTH:-320}
BATCH=${BATCH:-8}
LR=${LR:-2e-4}
STEPS=${STEPS:-2320}
PROBE_EVERY=${PROBE_EVERY:-25}
EVAL_FRAMES=${EVAL_FRAMES:-5}
mkdir -p "$out/runs" "$out/eval" || exit 2

flags_of() {
    case $1 in
        base) echo "" ;;
        reflect) echo "--decoder-padding reflect" ;;
        bn_standard) echo "--bn-init standard" ;;
        init_md2) echo "--init-depth 0" ;;
        pose_full) echo "--pose-width 64" ;;
        static) echo "--min-motion 0.05" ;;
        monodepth2) echo "--decoder-padding reflect --bn-init standard --init-depth 0 --pose-width 64 --min-motion 0.05" ;;
        *) echo "mono_ablations: unknown variant $1" >&2; return 2 ;;
    esac
}

run_one() {
    local v=$1 flags
    flags=$(flags_of "$v") || return 2
    # shellcheck disable=SC2086  # the flags are words
    OMP_NUM_THREADS=$THREADS DEPTH_PERCEPTION_QUIET=1 "$PYTHON" -m depth_perception.cli train mono \
        --data "$data" --out "$out/runs/$v" --mode mono --arch narrow --height "$HEIGHT" --width "$WIDTH" \
        --batch-size "$BATCH" --lr "$LR" --steps "$STEPS" --max-minutes "$minutes" --workers 0 --device "$DEVICE" \
        --probe-every "$PROBE_EVERY" --log-every "$PROBE_EVERY" $flags > "$out/runs/$v.log" 2>&1 || {
        echo "mono_ablations: $v failed (see $out/runs/$v.log)" >&2; return 1; }
    OMP_NUM_THREADS=$THREADS DEPTH_PERCEPTION_QUIET=1 "$PYTHON" -m depth_perception.cli eval mono \
        --engine "$out/runs/$v" --data "$eval_data" --max-frames "$EVAL_FRAMES" --scaling median \
        --device "$DEVICE" --json "$out/eval/$v.json" >> "$out/runs/$v.log" 2>&1 || {
        echo "mono_ablations: eval of $v failed (see $out/runs/$v.log)" >&2; return 1; }
    echo "mono_ablations: $v done"
}

status=0
running=0
for v in "${variants[@]}"; do
    flags_of "$v" > /dev/null || exit 2
    run_one "$v" &
    running=$((running + 1))
    if [ "$running" -ge "$JOBS" ]; then wait -n || status=1; running=$((running - 1)); fi
done
while [ "$running" -gt 0 ]; do wait -n || status=1; running=$((running - 1)); done

"$PYTHON" - "$out" "${variants[@]}" <<'EOF' | tee "$out/summary.txt"
import json
import sys
from pathlib import Path

out, variants = Path(sys.argv[1]), sys.argv[2:]
print(f"{'variant':<12} {'steps':>6} {'pose_cos':>9} {'best cos':>9} {'pose_scale':>10} {'depth_scale':>11} "
      f"{'AbsRel':>7} {'d<1.25':>7}")
for v in variants:
    scalars = out / "runs" / v / "scalars.jsonl"
    rows = [json.loads(line) for line in scalars.read_text().splitlines()] if scalars.is_file() else []
    probed = [r for r in rows if "pose_cos" in r]
    last = probed[-1] if probed else {}
    ev = out / "eval" / f"{v}.json"
    report = json.loads(ev.read_text()) if ev.is_file() else {}
    fmt = lambda x, d=3: "-" if x is None else f"{x:.{d}f}"  # noqa: E731
    print(f"{v:<12} {int(last.get('step', 0)):>6} {fmt(last.get('pose_cos')):>9} "
          f"{fmt(max((r['pose_cos'] for r in probed), default=None)):>9} {fmt(last.get('pose_scale'), 2):>10} "
          f"{fmt(last.get('depth_scale'), 2):>11} {fmt(report.get('abs_rel')):>7} {fmt(report.get('a1')):>7}")
EOF
exit $status
