#!/usr/bin/env bash
# The whole test suite from a fresh clone: system packages, npm packages, build, tests.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup-system.sh
# Compiled output is rebuilt from scratch, so a test file that was moved or removed never runs.
rm -rf dist
if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  npm ci --no-audit --no-fund
else
  npm run build --silent
fi
# The original-destination addon (transparent mode); npm ci builds it, a reused node_modules may not.
[ -f native/build/Release/original_dst.node ] || node scripts/build-native.mjs
# Unit and integration tests in parallel files; e2e (network namespaces) one file at a time.
dirs=(); for d in dist/test/unit dist/test/integration; do [ -d "$d" ] && dirs+=("$d"); done
node --test --test-concurrency=2 --test-timeout=120000 "${dirs[@]}"
if [ -d dist/test/e2e ]; then node --test --test-concurrency=1 --test-timeout=300000 dist/test/e2e; fi
# Lint (typescript-eslint, type-aware) and format check (Prettier), after the tests so a style
# finding never hides a test result; a finding still fails the run.
npm run lint --silent
