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
# the Python package's types (integrations/hf.py excluded until its mixin declares the Trainer attributes it uses)
MYPYPATH=python python3 -m mypy python/goreweight python/tests/typecheck_weights.py --ignore-missing-imports --disallow-untyped-defs --no-implicit-optional --warn-unused-ignores --exclude 'integrations/hf\.py$'
if [ -d python/tests ]; then
  # from the repository root, where no regular package shadows the
  # installed goreweight (with its built library)
  python3 -m pytest -q python/tests
fi
