#!/usr/bin/env bash
# Serve the benchmark model with the official GPU image (gRPC :8500, REST :8501).
# Usage: benchmarks/tfserving/run_tfserving.sh [models_dir]   (default: benchmarks/tfserving/models)
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
models="$(cd "${1:-$here/models}" && pwd)"
cp "$here/models.config" "$models/models.config"
exec docker run --rm --gpus all -p 8500:8500 -p 8501:8501 \
  -v "$models:/models" \
  tensorflow/serving:latest-gpu \
  --model_config_file=/models/models.config \
  --rest_api_timeout_in_ms=120000
