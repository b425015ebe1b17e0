#!/usr/bin/env bash
# Packs what the TypeScript side needs on a GPU machine that has no Bun and no network (the device
# tool's machines): the pinned Bun binary (xz, about 38 MB) and the runtime dependencies, into .gpu/
# (git-ignored). Carry `.gpu` and `native/build` along; there, `bench/gpu/with-bun.sh CMD...` runs CMD
# with them in place.
set -euo pipefail
cd "$(dirname "$0")/../.."
bun=node_modules/.bin/bun
[ -x "$bun" ] || { echo "carry-bun: $bun missing: run npm ci first" >&2; exit 2; }
deps=$(node -e 'console.log(Object.keys(require("./package.json").dependencies).join(" "))')
mkdir -p .gpu
xz -T0 -6 -c "$(readlink -f "$bun")" >.gpu/bun.xz.tmp && mv .gpu/bun.xz.tmp .gpu/bun.xz
# a dependency's platform package (sqlite-vec-linux-x64) travels with it
tar -cJf .gpu/node_modules.tar.xz.tmp $(for d in $deps; do ls -d node_modules/$d node_modules/$d-linux-x64 2>/dev/null; done)
mv .gpu/node_modules.tar.xz.tmp .gpu/node_modules.tar.xz
du -sh .gpu
