#!/usr/bin/env bash
# The seed's monitoring and recovery workflow: a monitor agent runs the health loop for its
# project; an agent of that project is killed; the loop notices and restarts it (the recovery
# ladder: restart, then rollback to the last checkpoint, then failed), with alerts on the way.
#
#   examples/monitoring-recovery.sh     (uses $AF_HOME and the af-* on PATH)
# AF_HEALTH_INTERVAL (seconds, default 1 here) sets the monitor's check cycle.
set -euo pipefail
interval=${AF_HEALTH_INTERVAL:-1}

# The service to watch, in a directory of its own, and a checkpoint of it (the ladder's rollback
# rung restores it).
workdir="${AF_HOME:-$HOME/.local/state/agentflow}/examples/api-server"
mkdir -p "$workdir"
printf '{"id":"api-server","type":"worker","projectId":"infrastructure","workdir":"%s","command":["sh","-c","while :; do sleep 1; done"]}\n' "$workdir" | af-spawn create >/dev/null
af-spawn start api-server >/dev/null
ckpt=$(af-checkpoint create api-server -m "known good")
echo "checkpoint $ckpt of api-server"

# The seed's system-monitor: a monitor agent runs `af-health watch` for its project.
printf '{"id":"system-monitor","type":"monitor","projectId":"infrastructure","capabilities":["health-monitoring","alerting"],"command":["af-health","watch","--project","infrastructure","--interval","%s"]}\n' "$interval" | af-spawn create >/dev/null
af-spawn start system-monitor >/dev/null

# orchestrator.on('agent:unhealthy', ...) is a subscription to the topic agent.unhealthy; once
# the agent is healthy again, its alerts close with a notice on agent.recovered.
af-bus subscribe on-unhealthy --topic agent.unhealthy >/dev/null
af-bus subscribe on-recovered --topic agent.recovered >/dev/null

before=$(af-spawn show api-server --json | sed -n 's/.*"pid": *\([0-9][0-9]*\).*/\1/p' | head -1)
echo "killing api-server (pid $before) with SIGKILL"
kill -9 "$before"

event=$(af-bus recv on-unhealthy --wait --timeout 30 --ack --json)
echo "agent:unhealthy -> $(printf '%s' "$event" | sed -n 's/.*"payload": *\({[^}]*}\).*/\1/p')"

for _ in $(seq 1 300); do
  now=$(af-spawn show api-server --json | sed -n 's/.*"pid": *\([0-9][0-9]*\).*/\1/p' | head -1)
  status=$(af-spawn show api-server --json | sed -n 's/.*"status": *"\([a-z]*\)".*/\1/p' | head -1)
  if [ "$status" = running ] && [ -n "$now" ] && [ "$now" != "$before" ]; then break; fi
  sleep 0.1
done
echo "api-server is $status again (pid $now), restarts: $(af-spawn show api-server --json | sed -n 's/.*"restarts": *\([0-9]*\).*/\1/p' | head -1)"
recovered=$(af-bus recv on-recovered --wait --timeout 30 --ack --json)
echo "agent:recovered -> $(printf '%s' "$recovered" | sed -n 's/.*"message": *"\([^"]*\)".*/\1/p')"
af-health alerts --all
echo "open alerts: $(af-health alerts --json)"
af-bus unsubscribe on-unhealthy >/dev/null
af-bus unsubscribe on-recovered >/dev/null
af-spawn stop system-monitor api-server >/dev/null
