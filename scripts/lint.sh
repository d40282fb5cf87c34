#!/usr/bin/env bash
# npm run lint: Biome (format and lint), who may import whom (dependency-cruiser) and no SQL outside
# src/store/. Every check runs and the first failure does not hide the others. dependency-cruiser needs
# Node >= 22: on an older Node this first puts Node 24 on PATH through scripts/use-node.sh, as CI does.
cd "$(dirname "$0")/.." || exit 1
# shellcheck source=use-node.sh
. scripts/use-node.sh >&2
failed=0
for check in lint:code lint:deps lint:sql; do
  npm run -s "$check" || failed=1
done
exit $failed
