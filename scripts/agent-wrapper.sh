#!/usr/bin/env bash
# The seed's agent wrapper, kept as a shim so its usage goes on working:
#
#   bash scripts/agent-wrapper.sh claude-001 claude-code
#   bash scripts/agent-wrapper.sh worker-001 worker
#   bash scripts/agent-wrapper.sh monitor-001 monitor
#
# It creates the agent (project "default", workdir the current directory) if the spool does not
# have it yet, then runs af-wrap for it in the foreground: af-wrap is the supervisor now.
set -euo pipefail
usage() { echo "usage: agent-wrapper.sh AGENT_ID TYPE   (TYPE: claude-code, worker or monitor)" >&2; exit 2; }
[ $# -eq 2 ] || usage
id=$1 type=$2
case "$type" in claude-code|worker|monitor) ;; *) echo "agent-wrapper.sh: unknown agent type '$type'" >&2; usage ;; esac

# Prefer the programs on PATH, else the ones built in this checkout (under CARGO_TARGET_DIR if set).
here=$(cd "$(dirname "$0")/.." && pwd)
built=${CARGO_TARGET_DIR:-$here/target}
for dir in "$built/release" "$built/debug"; do
  if ! command -v af-wrap >/dev/null 2>&1 && [ -x "$dir/af-wrap" ]; then PATH="$dir:$PATH"; fi
done

# Exit 3 is "no such agent": create it; any other failure is af-spawn's to tell.
status=0
shown=$(af-spawn show "$id" --json 2>&1) || status=$?
case "$status:$shown" in
  0:*"\"type\":\"$type\""*) ;;
  0:*) echo "agent-wrapper.sh: agent '$id' exists with another type (see: af-spawn show $id)" >&2; exit 4 ;;
  3:*) printf '{"id":"%s","type":"%s"}\n' "$id" "$type" | af-spawn create >/dev/null ;;
  *) echo "$shown" >&2; exit "$status" ;;
esac
exec af-wrap "$id"
