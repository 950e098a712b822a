#!/usr/bin/env bash
# The whole GPU check in ONE command (bench/device/README.md says how to call it with the device tool).
#
#   bash bench/device/gpu_check.sh              # on the GPU machine: OUT is set by the device tool
#   bash bench/device/gpu_check.sh --rehearse   # here, on the CPU: tiny counts, OUT=/tmp/gpu-rehearsal,
#                                               # the machine's missing packages hidden (bench/device/mimic)
#
# Needs .device/ (python bench/device/prepare.py). Steps, cheapest and most valuable first, each
# under `timeout` inside one overall budget (GPU_CHECK_BUDGET seconds, default 500), so a hang in one
# step leaves time for the rest; a step that finishes early leaves its time to the later ones:
#   0. env: nvidia-smi, versions, training-path imports, the kit's model loads as float32 on CUDA
#   1. agreement: forward+backward CPU fp32 vs CUDA bf16 on the same rows/prompts; then the same tiny
#      CLI commands (tune shallow, tune deep, ipt deep, compare zero-shot/probe/pt/ipt/attempt/vip) with
#      --device cpu and --device cuda, concurrently, separate stores, JSON compared score by score
#   2. throughput: bench/throughput.py --device cuda (bank vs PEFT, bf16, R = 1/8/32/100)
#   3. ipt: the real-suite reproduction, all 30 tasks of .device/tasks-real (default family-stratified
#      split), d_I 4/16/64/250, found and random: shallow seed 0, deep seed 0, then both with seeds 0-1
#      (seed 0 is reused from the store); then the store is exported
# Files in $OUT (at most 8 come back): gpu_check.log env.txt agreement.json agreement.md RESULTS-gpu.md
# ipt-real.json store.tar.gz timings.tsv
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.." || exit 1
ROOT=$PWD
REHEARSE=${GPU_CHECK_REHEARSE:-0}
[[ "${1:-}" == "--rehearse" ]] && REHEARSE=1
BUDGET=${GPU_CHECK_BUDGET:-$(( REHEARSE ? 3600 : 500 ))}
SCALE=$(( REHEARSE ? 3 : 1 ))  # time boxes x3 on a loaded CPU
KIT=$ROOT/.device
export BB="encoder-sim:.device/minilm"
export PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 TOKENIZERS_PARALLELISM=false \
  TRANSFORMERS_VERBOSITY=error HF_HUB_DISABLE_PROGRESS_BARS=1 TQDM_MININTERVAL=15
if (( REHEARSE )); then
  export OUT=${OUT:-/tmp/gpu-rehearsal}
  export PY=${PYTHON:-python3}
  export DEV_B=cpu FWD_B=cpu-bf16
  export PYTHONPATH="$ROOT/bench/device/mimic:$ROOT"
  rm -rf "$OUT"
else
  : "${OUT:?OUT is not set (the device tool sets it); here run: bash bench/device/gpu_check.sh --rehearse}"
  export PY=${PYTHON:-python3}
  export DEV_B=cuda FWD_B=cuda
  export PYTHONPATH="$ROOT"
fi
W=${GPU_CHECK_WORK:-/tmp/gpu-check-work}
rm -rf "$W"; mkdir -p "$OUT" "$W"
exec > >(tee -a "$OUT/gpu_check.log") 2>&1
T0=$SECONDS
printf 'step\trc\tseconds\ttime_box\n' > "$OUT/timings.tsv"

left() { echo $(( BUDGET - (SECONDS - T0) )); }
# step NAME MAX_SECONDS COMMAND...: runs COMMAND under timeout min(MAX, what is left - 10 s)
step() {
  local name=$1 max=$(( $2 * SCALE )); shift 2
  local rem; rem=$(left)
  local t=$(( max < rem - 10 ? max : rem - 10 ))
  if (( t < 15 )); then
    echo "== $name: SKIPPED, no time left ($rem s)"; printf '%s\tskipped\t0\t0\n' "$name" >> "$OUT/timings.tsv"; return 124
  fi
  echo "== $name: time box $t s, $(date -u +%T), $rem s left"
  local s=$SECONDS
  timeout -k 10 "$t" "$@"; local rc=$?
  echo "== $name: rc=$rc in $((SECONDS - s)) s"
  printf '%s\t%s\t%s\t%s\n' "$name" "$rc" "$((SECONDS - s))" "$t" >> "$OUT/timings.tsv"
  return $rc
}

[[ -d "$KIT/minilm" && -d "$KIT/tasks-real" ]] || { echo "no .device kit: run python bench/device/prepare.py first"; exit 2; }

# the smoke suite: 4 real tasks of 4 families (links into the kit's copy)
export SMOKE=$W/smoke-suite
mkdir -p "$SMOKE"
for t in sms_spam cr trec tweeteval_hate; do ln -s "$KIT/tasks-real/$t" "$SMOKE/$t"; done
if (( REHEARSE )); then
  export S_STEPS=2 S_EVAL=1 S_DIMS=2 REAL=$SMOKE DIMS=2,4 IPT_BUDGET=smoke
  FWD_ROWS=8 FWD_TASKS=trec TP_ARGS="--device cpu --quick --runs 1,8"
else
  export S_STEPS=6 S_EVAL=3 S_DIMS=2,4 REAL=$KIT/tasks-real DIMS=4,16,64,250 IPT_BUDGET=paper
  FWD_ROWS=64 FWD_TASKS=sms_spam,cr,trec TP_ARGS="--device cuda --timeout 90"
fi

# ------------------------------------------------------------------ 0. env
{
  echo "date: $(date -u)  rehearse=$REHEARSE  budget=${BUDGET}s  load: $(cut -d' ' -f1-3 /proc/loadavg)"
  if command -v nvidia-smi >/dev/null; then nvidia-smi; nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv; else echo "nvidia-smi: none"; fi
  uname -a; echo "cores: $(nproc)"; free -g 2>/dev/null | head -2
  echo "git: $(git rev-parse --short HEAD 2>/dev/null) $(git status --short 2>/dev/null | wc -l) changed files"
  cat "$KIT/MANIFEST.json" 2>/dev/null | head -30
} > "$OUT/env.txt" 2>&1
cat "$OUT/env.txt"
step env 90 $PY bench/device/checks.py env --backbone "$BB" --device "$DEV_B" 2>&1 | tee -a "$OUT/env.txt"

# ------------------------------------------------------------------ 1. agreement
step forward 90 $PY bench/device/checks.py forward --backbone "$BB" --suite "$KIT/tasks-real" --tasks "$FWD_TASKS" \
  --rows "$FWD_ROWS" --a cpu --b "$FWD_B" --out "$W/forward.json"

# one side's tiny CLI commands: DEVICE STORE JSON_DIR [only-first]
smoke_chain() {
  local dev=$1 store=$2 dir=$3 first=${4:-}
  mkdir -p "$dir"
  local c="--suite $SMOKE --backbone $BB --device $dev --cache $store --json --steps $S_STEPS --eval-every $S_EVAL --batch-size 8"
  echo "-- $dev: tune shallow"
  $PY -m ipt_core tune $c --tasks sms_spam,cr,trec --prompt-kind shallow > "$dir/tune-shallow.json" || return
  [[ -n "$first" ]] && return 0
  echo "-- $dev: tune deep"
  $PY -m ipt_core tune $c --tasks sms_spam,cr,trec --prompt-kind deep > "$dir/tune-deep.json" || return
  echo "-- $dev: ipt deep (msf + ist, found and random)"
  $PY -m ipt_core ipt $c --train-tasks sms_spam,cr,trec --test-tasks tweeteval_hate --dims "$S_DIMS" --prompt-kind deep \
    --msf-steps "$S_STEPS" --ist-steps "$S_STEPS" > "$dir/ipt-deep.json" || return
  echo "-- $dev: compare zero-shot,probe,pt,ipt,attempt,vip (shallow)"
  $PY -m ipt_core compare $c --tasks tweeteval_hate --methods zero-shot,probe,pt,ipt,attempt,vip --d 2 \
    > "$dir/compare.json" || return
}
export -f smoke_chain
if (( REHEARSE )); then
  # one CPU: the two sides one after the other, the second with its first command only
  step smoke 200 bash -c "smoke_chain cpu $W/store-a $W/a > $W/side-a.log 2>&1 && smoke_chain $DEV_B $W/store-b $W/b first > $W/side-b.log 2>&1"
  ONLY=--only-common
else
  # the CPU side on 12 of the 16 cores while the CUDA side runs
  step smoke 200 bash -c "(OMP_NUM_THREADS=12 smoke_chain cpu $W/store-a $W/a > $W/side-a.log 2>&1) & pa=\$!; \
    (smoke_chain cuda $W/store-b $W/b > $W/side-b.log 2>&1); rb=\$?; wait \$pa; ra=\$?; exit \$(( ra || rb ))"
  ONLY=
fi
for s in a b; do echo "---- smoke side $s log (tail)"; tail -n 25 "$W/side-$s.log" 2>/dev/null; done
$PY bench/device/checks.py runs --a "$W/a" --b "$W/b" --label-a cpu --label-b "$DEV_B" --forward "$W/forward.json" $ONLY \
  --out "$OUT/agreement.json" --md "$OUT/agreement.md"
echo "== agreement: rc=$?"

# ------------------------------------------------------------------ 2. throughput
step throughput 200 $PY bench/throughput.py $TP_ARGS --backbone "$BB" --out "$OUT/RESULTS-gpu.md"

# ------------------------------------------------------------------ 3. ipt on the real suite
IPT_STORE=${IPT_STORE:-/tmp/ipt-store}
(( REHEARSE )) && rm -rf "$IPT_STORE"  # no results of an earlier rehearsal
mkdir -p "$IPT_STORE"
if [[ -f "$KIT/store-in.tar.gz" ]]; then  # an earlier call's export: resume from its entries
  tar -xzf "$KIT/store-in.tar.gz" -C "$IPT_STORE" && echo "resumed the store from .device/store-in.tar.gz"
fi
run_ipt() {  # KIND SEEDS: bench/ipt_real.py's 30-task split (a held-out family), found and random subspace
  $PY bench/ipt_real.py --suite "$KIT/tasks-real" --backbone "$BB" --device "$DEV_B" --cache "$IPT_STORE" \
    --prompt-kind "$1" --dims "$DIMS" --seeds "$2" --budget "$IPT_BUDGET" --runs-log "$OUT/ipt_real_runs.json" \
    > "$W/ipt-$1-seeds$2.json"
}
export -f run_ipt
export IPT_STORE W OUT KIT IPT_BUDGET
for ks in "shallow 1" "deep 1" "shallow 2" "deep 2"; do
  set -- $ks
  (( REHEARSE )) && [[ $2 == 2 ]] && continue  # the same code path as seeds 1: not worth this CPU's minutes
  step "ipt-$1-seeds$2" 600 bash -c "run_ipt $1 $2" || true
  tail -n 1 "$W/ipt-$1-seeds$2.json" 2>/dev/null | head -c 600; echo
done
# export runs even when the budget is spent (the tool's timeout_s leaves about a minute for it)
timeout -k 5 50 $PY bench/device/checks.py export --store "$IPT_STORE" --out "$OUT/ipt-real.json" --tar "$OUT/store.tar.gz"
echo "== export: rc=$?"

echo "== done in $((SECONDS - T0)) s; files in $OUT:"; ls -la "$OUT"
cat "$OUT/timings.tsv"
sleep 1  # let tee write the last lines before the tool collects $OUT
