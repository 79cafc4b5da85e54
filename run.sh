#!/usr/bin/env bash
# Quick start: `./run.sh demo` runs the demo, `./run.sh test` runs the test suite.
# Each sets up .venv on first use (Python 3.10+, a CPU build of torch) and reuses it after.
set -euo pipefail
cd "$(dirname "$0")"

PYTHON=${PYTHON:-$(command -v python3.11 || command -v python3)}
VENV=.venv
STAMP=$VENV/.installed

setup() {
  local want
  want=$(cat pyproject.toml run.sh | sha256sum | cut -d' ' -f1)
  if [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$want" ]; then
    return
  fi
  [ -x "$VENV/bin/python" ] || "$PYTHON" -m venv "$VENV"
  "$VENV/bin/python" -m pip install -q --upgrade pip >/dev/null 2>&1 || true
  # The CPU build of torch: from a local wheel where pip is set up with one (find-links), else
  # from the index named by TORCH_INDEX_URL (e.g. PyTorch's CPU index) if given.
  if [ -n "${TORCH_INDEX_URL:-}" ]; then
    "$VENV/bin/python" -m pip install -q "torch==2.13.0" --index-url "$TORCH_INDEX_URL"
  else
    "$VENV/bin/python" -m pip install -q "torch==2.13.0"
  fi
  "$VENV/bin/python" -m pip install -q -e ".[test]"
  echo "$want" > "$STAMP"
}

case "${1:-}" in
  demo)
    setup
    shift
    exec "$VENV/bin/weightspace" demo "$@"
    ;;
  test)
    setup
    shift
    "$VENV/bin/ruff" check weightspace model_zoo tests scripts
    exec "$VENV/bin/python" -m pytest "$@"
    ;;
  *)
    echo "usage: ./run.sh demo|test [args]" >&2
    exit 2
    ;;
esac
