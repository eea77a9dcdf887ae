#!/usr/bin/env bash
# Runs every test: Go formatting and vet, the Go tests, the Python tests.
# Expects the package installed first: pip install ".[test]"
set -euo pipefail
cd "$(dirname "$0")/.."

unformatted=$(gofmt -l $(git ls-files '*.go' 2>/dev/null || find . -name '*.go'))
if [ -n "$unformatted" ]; then
  echo "gofmt would change:"; echo "$unformatted"; exit 1
fi
go vet ./...
go test ./...
# The pure-Go stand-ins of every assembly kernel (what non-amd64 machines
# run), in the packages that have assembly.
go test -tags purego ./goreweight/ ./goreweight/trainer/nn/... ./goreweight/trainer/optim
# The same layer and model tests (finite-difference gradients, PyTorch parity
# fixture) on the optimised backend pip installs, scipy-openblas32; the plain
# run above covers the pure-Go gonum fallback.
sob_lib=$(python3 -c 'import scipy_openblas32 as s; print(s.get_lib_dir())')
sob_inc=$(python3 -c 'import scipy_openblas32 as s; print(s.get_include_dir())')
CGO_ENABLED=1 CGO_CFLAGS="-O2 -g -I$sob_inc" CGO_LDFLAGS="-L$sob_lib -Wl,-rpath,$sob_lib" \
  go test -tags scipyopenblas ./goreweight/trainer/nn ./goreweight/trainer/gpt
# the Python package's types
MYPYPATH=python python3 -m mypy python/goreweight python/tests/typecheck_weights.py --ignore-missing-imports --disallow-untyped-defs --no-implicit-optional --warn-unused-ignores
if [ -d python/tests ]; then
  # from the repository root, where no regular package shadows the
  # installed goreweight (with its built library)
  python3 -m pytest -q python/tests
fi
