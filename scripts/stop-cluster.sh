#!/usr/bin/env bash
# Stops the cluster scripts/start-cluster.sh started: SIGTERM to every node (each finishes in-flight requests,
# flushes and exits), then SIGKILL to any still running after the timeout. Data stays; pid files go.
# Environment:
#   CLUSTER_DIR             the cluster folder (default ./data/cluster)
#   CLUSTER_STOP_TIMEOUT_S  how long the nodes may take to exit after SIGTERM (s, default 40: longer than
#                                  the broker's own shutdownTimeoutMs of 30 s)
# Exit status: 0 when every node stopped on SIGTERM (or none ran), 1 when one had to be killed.
set -euo pipefail
cd "$(dirname "$0")/.."
DIR=${CLUSTER_DIR:-./data/cluster}
STOP_TIMEOUT_S=${CLUSTER_STOP_TIMEOUT_S:-40}

say() { echo "stop-cluster: $*" >&2; }

# The pid of a pid file when that process is still a takhin broker (a recycled pid is someone else's).
broker_pid() {
  local pid
  [ -f "$1" ] || return 1
  pid=$(cat "$1")
  [ -r "/proc/$pid/cmdline" ] && tr '\0' ' ' <"/proc/$pid/cmdline" | grep -q 'backend/src/main.ts' && echo "$pid"
}

declare -A running=()
for pid_file in "$DIR"/node*.pid; do
  [ -e "$pid_file" ] || continue
  name=$(basename "$pid_file" .pid)
  if pid=$(broker_pid "$pid_file"); then
    kill -TERM "$pid" 2>/dev/null && running[$name]=$pid && say "$name: SIGTERM to pid $pid"
  else
    rm -f "$pid_file"
  fi
done
[ ${#running[@]} -eq 0 ] && { say "no node running in $DIR"; exit 0; }

status=0
deadline=$((SECONDS + STOP_TIMEOUT_S))
while [ ${#running[@]} -gt 0 ]; do
  for name in "${!running[@]}"; do
    if ! kill -0 "${running[$name]}" 2>/dev/null; then
      say "$name stopped"
      rm -f "$DIR/$name.pid"
      unset "running[$name]"
    fi
  done
  [ ${#running[@]} -eq 0 ] && break
  if [ $SECONDS -ge $deadline ]; then
    for name in "${!running[@]}"; do
      say "$name still running after ${STOP_TIMEOUT_S} s: SIGKILL to pid ${running[$name]}"
      kill -KILL "${running[$name]}" 2>/dev/null || true
      rm -f "$DIR/$name.pid"
    done
    status=1
    break
  fi
  sleep 0.2
done
exit $status
