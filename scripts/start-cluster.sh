#!/usr/bin/env bash
# Starts a three-node takhin-ts cluster on this machine from configs/cluster/node{1,2,3}.json (Kafka on
# 127.0.0.1:9092-9094, Raft on 8001-8003, admin endpoints on 9644-9646 unless the files say otherwise), waits until
# every node answers GET /readyz with 200, and prints the bootstrap string. Stop it with scripts/stop-cluster.sh.
#
# Everything of one cluster lives in one folder: nodeN/ (data), nodeN.log (stdout + stderr), nodeN.pid.
# Environment:
#   CLUSTER_DIR          that folder (default ./data/cluster, relative to the repo root)
#   CLUSTER_CONFIGS      folder holding node1.json node2.json node3.json (default configs/cluster, same rule)
#   CLUSTER_START_TIMEOUT_S  how long all nodes may take to become ready (s, default 60)
# Exit status: 0 when all three are ready; 1 otherwise (the nodes that did start are left running: see their logs,
# then run stop-cluster.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
DIR=${CLUSTER_DIR:-./data/cluster}
CONFIGS=${CLUSTER_CONFIGS:-configs/cluster}
START_TIMEOUT_S=${CLUSTER_START_TIMEOUT_S:-60}
NODES=(1 2 3)
# Admin port of node N when its file leaves the endpoint disabled: the scripts need /readyz.
ADMIN_PORT_BASE=9643

say() { echo "start-cluster: $*" >&2; }
die() { say "$*"; exit 1; }

mkdir -p "$DIR"
DIR=$(cd "$DIR" && pwd)

is_running() {
  local pid_file=$1 pid
  [ -f "$pid_file" ] || return 1
  pid=$(cat "$pid_file")
  # A recycled pid is not ours: the command line must be a takhin broker.
  [ -r "/proc/$pid/cmdline" ] && tr '\0' ' ' <"/proc/$pid/cmdline" | grep -q 'backend/src/main.ts'
}

for n in "${NODES[@]}"; do
  [ -f "$CONFIGS/node$n.json" ] || die "missing $CONFIGS/node$n.json"
  if is_running "$DIR/node$n.pid"; then die "node$n is already running (pid $(cat "$DIR/node$n.pid")); stop-cluster.sh first"; fi
done

# The effective settings of each node, computed by the broker's own loader (file, then TAKHIN_* env, then the
# flags this script adds): "<advertised host>:<advertised port> <admin port>" per line.
node_addresses() {
  node --import tsx --input-type=module -e '
    const { loadConfig } = await import("./backend/src/config/load.ts");
    const { parseClusterMembers } = await import("./backend/src/config/cluster-members.ts");
    const [configs, base, ...nodes] = process.argv.slice(1);
    for (const n of nodes) {
      const c = loadConfig({ argv: ["--config", `${configs}/node${n}.json`], env: process.env });
      // Cluster mode advertises the Kafka address of each member; direct mode the advertised or listen address.
      const member = c.mode === "raft" ? parseClusterMembers(c.initialMembers).find((m) => m.nodeId === c.nodeId) : undefined;
      const host = member?.kafkaHost ?? (c.advertisedHost !== "" ? c.advertisedHost : c.hosts[0] === "0.0.0.0" ? "127.0.0.1" : c.hosts[0]);
      const port = member?.kafkaPort ?? (c.advertisedPort !== 0 ? c.advertisedPort : c.port);
      const admin = c.adminPort > 0 ? c.adminPort : Number(base) + Number(n);
      console.log(`${host.includes(":") ? `[${host}]` : host}:${port} ${admin}`);
    }' "$CONFIGS" "$ADMIN_PORT_BASE" "${NODES[@]}"
}
addresses=$(node_addresses) || die "a config file in $CONFIGS is invalid (message above)"
mapfile -t lines <<<"$addresses"

declare -a KAFKA ADMIN
for i in "${!NODES[@]}"; do
  KAFKA[$i]=${lines[$i]% *}
  ADMIN[$i]=${lines[$i]#* }
done

for i in "${!NODES[@]}"; do
  n=${NODES[$i]}
  mkdir -p "$DIR/node$n"
  echo "==== start-cluster.sh $(date -u +%Y-%m-%dT%H:%M:%SZ)" >>"$DIR/node$n.log"
  # nohup + no stdin: the nodes outlive this script and the terminal that ran it.
  nohup node --import tsx "$ROOT/backend/src/main.ts" --config "$CONFIGS/node$n.json" \
    --data-dir "$DIR/node$n" --admin-port "${ADMIN[$i]}" --log-format json \
    >>"$DIR/node$n.log" 2>&1 </dev/null &
  echo $! >"$DIR/node$n.pid"
  say "node$n: pid $!, kafka ${KAFKA[$i]}, admin 127.0.0.1:${ADMIN[$i]}, log $DIR/node$n.log"
done

ready() {
  node -e 'fetch(process.argv[1], { signal: AbortSignal.timeout(1000) }).then((r) => process.exit(r.status === 200 ? 0 : 1), () => process.exit(1))' \
    "http://127.0.0.1:$1/readyz"
}

deadline=$((SECONDS + START_TIMEOUT_S))
pending=("${!NODES[@]}")
while [ ${#pending[@]} -gt 0 ]; do
  still=()
  for i in "${pending[@]}"; do
    n=${NODES[$i]}
    if ! is_running "$DIR/node$n.pid"; then
      tail -n 20 "$DIR/node$n.log" >&2 || true
      die "node$n exited during startup (log: $DIR/node$n.log)"
    fi
    ready "${ADMIN[$i]}" || still+=("$i")
  done
  pending=("${still[@]+"${still[@]}"}")
  [ ${#pending[@]} -eq 0 ] && break
  if [ $SECONDS -ge $deadline ]; then
    die "not ready after ${START_TIMEOUT_S} s: $(for i in "${pending[@]}"; do printf 'node%s ' "${NODES[$i]}"; done)(logs in $DIR)"
  fi
  sleep 0.5
done

bootstrap=$(IFS=,; echo "${KAFKA[*]}")
say "cluster ready"
echo "$bootstrap"
