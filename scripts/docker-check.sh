#!/usr/bin/env bash
# Checks the Docker image's recipe without a Docker engine: runs the
# Dockerfile's build steps as plain shell in a temp dir (the files its COPY
# lines name, `npm ci --omit=dev`, the node-gyp step for better-sqlite3
# against this Node's headers), then runs the production tree the way the
# image does: `node src/cli.ts help`, and `node src/cli.ts start` on a small
# synthetic replay until the image's HEALTHCHECK command passes, then SIGTERM
# (must exit 0).
#
# On demand, not part of `npm test` (it installs packages from the registry, and compiles SQLite
# where better-sqlite3 has no prebuilt binary: about 2 minutes on a small machine):
#   scripts/docker-check.sh            # uses Redis at $REDIS_URL or 127.0.0.1:6379
#   KEEP=1 scripts/docker-check.sh     # keep the temp dir for a look
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
cd "$ROOT"
log() { printf '[docker-check %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
fail() { log "FAIL: $*"; exit 1; }

# shellcheck source=./use-node.sh
. scripts/use-node.sh >/dev/null 2>&1 || true
major=$(node -p 'process.versions.node.split(".")[0]')
[ "$major" -ge 22 ] || fail "needs Node >= 22 (the image uses node:24), found $(node --version)"
grep -q '^FROM node:24' Dockerfile || fail "the Dockerfile no longer builds on node:24"

WORK="$(mktemp -d "${TMPDIR:-/tmp}/skysift-docker-check-XXXXXX")"
APP="$WORK/app"
SERVER_PID=""
cleanup() {
  if [ -n "$SERVER_PID" ] && kill -0 "$SERVER_PID" 2>/dev/null; then kill -KILL "$SERVER_PID" 2>/dev/null || true; fi
  if [ "${KEEP:-0}" = 1 ]; then log "kept $WORK"; else rm -rf "$WORK"; fi
}
trap cleanup EXIT
mkdir -p "$APP"
t0=$(date +%s)

# -- build stage ---------------------------------------------------------------
# the COPY lines of the build stage (the stage before the second FROM), in order
build_copies=$(awk '/^FROM /{n++} n==1 && /^COPY / && !/--from/' Dockerfile)
[ -n "$build_copies" ] || fail "no COPY lines in the build stage"
while read -r _ rest; do
  # shellcheck disable=SC2206
  parts=($rest)
  dest="${parts[${#parts[@]}-1]}"
  unset 'parts[${#parts[@]}-1]'
  for src in "${parts[@]}"; do
    [ -e "$src" ] || fail "COPY source $src does not exist"
    if [ "$dest" = "./" ]; then cp -R "$src" "$APP/"; else mkdir -p "$APP/$dest" && cp -R "$src/." "$APP/$dest/"; fi
  done
done <<<"$build_copies"
# what .dockerignore keeps out of the build context must not be needed
if [ -d "$APP/node_modules" ]; then rm -rf "$APP/node_modules"; fi
log "copied the build context: $(ls "$APP" | tr '\n' ' ')"

cd "$APP"
# node-gyp builds against the headers of the Node that runs the app (the image sets npm_config_nodedir=/usr/local)
NODEDIR="${npm_config_nodedir:-$(dirname "$(dirname "$(command -v node)")")}"
[ -f "$NODEDIR/include/node/node.h" ] || fail "no Node headers under $NODEDIR/include/node (set npm_config_nodedir)"
export npm_config_nodedir="$NODEDIR"
log "npm ci --omit=dev"
if ! npm ci --omit=dev --no-audit --no-fund >"$WORK/npm.log" 2>&1; then
  # @NOTE the registry mirror some CI machines use lacks optional platform packages, so npm ci refuses
  # the lockfile there (see .ci/run); the image builds against the public registry, where it passes
  log "WARNING: npm ci refused the lockfile here (tail of the log below); trying npm install --omit=dev as .ci/run does"
  tail -5 "$WORK/npm.log" >&2
  npm install --omit=dev --no-audit --no-fund >>"$WORK/npm.log" 2>&1 || { tail -30 "$WORK/npm.log" >&2; fail "npm could not install the production dependencies"; }
fi
# (typescript may stay: valibot, under @bull-board/api, names it as an optional peer)
for dev in vitest @atproto/dev-env drizzle-kit autocannon playwright-core; do
  [ ! -e "node_modules/$dev" ] || fail "devDependency $dev ended up in the production tree"
done
log "node-gyp rebuild of better-sqlite3"
(cd node_modules/better-sqlite3 && npx --yes node-gyp rebuild --release >"$WORK/gyp.log" 2>&1) || { tail -30 "$WORK/gyp.log" >&2; fail "node-gyp rebuild failed"; }
# @NOTE better-sqlite3 ships N-API builds for linux x64/arm64; node-gyp compiles only where there is none
if [ -f node_modules/better-sqlite3/build/Release/better_sqlite3.node ]; then how="compiled from source"
else how="prebuilt N-API binary for $(node -p 'process.platform + "-" + process.arch') (node-gyp had nothing to do)"; fi
log "native addon: $how ($(( $(date +%s) - t0 )) s so far)"
node -e "const D=require('better-sqlite3'); const d=new D(':memory:'); if (d.prepare('select 1 as x').get().x !== 1) process.exit(1)" || fail "the rebuilt better-sqlite3 does not load"

# -- runtime stage: run the production tree as the image does -----------------------
export NODE_ENV=production
node src/cli.ts help >/dev/null || fail "node src/cli.ts help failed"
log "node src/cli.ts help: ok"

REDIS_URL="${REDIS_URL:-redis://127.0.0.1:6379}"
node -e "
const net=require('net');const u=new URL(process.argv[1]);
const s=net.connect(+u.port||6379,u.hostname,()=>{s.end();process.exit(0)});s.on('error',()=>process.exit(1));setTimeout(()=>process.exit(1),2000)" "$REDIS_URL" \
  || fail "Redis does not answer at $REDIS_URL (the image expects one, e.g. from compose.yaml)"
PORT=$(node -e "const s=require('net').createServer().listen(0,'127.0.0.1',()=>{console.log(s.address().port);s.close()})")
mkdir -p "$WORK/data"
node src/cli.ts generate "$WORK/events.jsonl" --events 5000 >/dev/null 2>&1 || fail "node src/cli.ts generate failed"
export SKYSIFT_DB_PATH="$WORK/data/skysift.db" SKYSIFT_PORT="$PORT" SKYSIFT_HOST=127.0.0.1 REDIS_URL \
  SKYSIFT_START_REDIS=never SKYSIFT_SOURCE="replay:$WORK/events.jsonl" SKYSIFT_QUEUE_PREFIX="docker-check-$$" SKYSIFT_LOG_LEVEL=warn
# the image's CMD
cmd=$(sed -n 's/^CMD \[\(.*\)\]$/\1/p' "$ROOT/Dockerfile" | tr -d '",')
[ "$cmd" = "node --max-semi-space-size=16 src/cli.ts start" ] || fail "unexpected CMD: $cmd"
$cmd >"$WORK/server.log" 2>&1 &
SERVER_PID=$!
# the image's HEALTHCHECK command, verbatim
health=$(sed -n 's/^ *CMD \(node -e .*\)$/\1/p' "$ROOT/Dockerfile")
[ -n "$health" ] || fail "no HEALTHCHECK command found"
ok=0
for _ in $(seq 1 120); do
  if eval "SKYSIFT_PORT=$PORT $health"; then ok=1; break; fi
  kill -0 "$SERVER_PID" 2>/dev/null || { tail -20 "$WORK/server.log" >&2; fail "the server exited during start-up"; }
  sleep 0.5
done
[ "$ok" = 1 ] || { tail -20 "$WORK/server.log" >&2; fail "the HEALTHCHECK never passed"; }
log "HEALTHCHECK passes: $(curl -s "http://127.0.0.1:$PORT/xrpc/_health" 2>/dev/null || true)"
# STOPSIGNAL SIGTERM: a graceful stop, exit code 0
kill -TERM "$SERVER_PID"
code=0
wait "$SERVER_PID" || code=$?
SERVER_PID=""
[ "$code" = 0 ] || { tail -20 "$WORK/server.log" >&2; fail "SIGTERM exit code $code"; }
# the run's queue keys
node -e "
const {Redis}=require('ioredis');const r=new Redis(process.argv[1]);(async()=>{let c='0';do{const [n,k]=await r.scan(c,'MATCH',process.argv[2]+':*','COUNT',1000);c=n;if(k.length)await r.del(...k)}while(c!=='0');r.disconnect()})()" "$REDIS_URL" "docker-check-$$" || true
log "OK in $(( $(date +%s) - t0 )) s: production install, native addon, help, start, health check, SIGTERM exit 0"
