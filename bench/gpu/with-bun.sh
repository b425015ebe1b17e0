#!/usr/bin/env bash
# On the GPU machine: unpacks what bench/gpu/carry-bun.sh packed (Bun into /tmp/nanorag-bun, the
# runtime dependencies into node_modules/), then runs the given command with that Bun first on PATH.
# Usage: bash bench/gpu/with-bun.sh bun bench/quality.bench.ts --device cuda ...
set -euo pipefail
cd "$(dirname "$0")/../.."
[ -f .gpu/bun.xz ] || { echo "with-bun: .gpu/bun.xz missing: run bench/gpu/carry-bun.sh here and carry .gpu" >&2; exit 2; }
mkdir -p /tmp/nanorag-bun
xz -dc .gpu/bun.xz >/tmp/nanorag-bun/bun
chmod +x /tmp/nanorag-bun/bun
tar -xJf .gpu/node_modules.tar.xz
PATH=/tmp/nanorag-bun:$PATH exec "$@"
