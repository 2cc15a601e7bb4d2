# AgentFlow's shell helpers. Source it from ~/.bashrc or ~/.zshrc:
#
#   . /path/to/agentflow/scripts/agentflow.sh
#
# Each helper is a thin wrapper over the af-* programs, for the everyday operations.

# af_new TYPE ID [PROJECT] [-- COMMAND...]: create and start an agent of a type (the session
# templates: claude-code runs `claude`, worker runs COMMAND or takes tasks, monitor runs the health
# loop).
af_new() {
  local type=${1:?usage: af_new TYPE ID [PROJECT] [-- COMMAND...]} id=${2:?usage: af_new TYPE ID [PROJECT] [-- COMMAND...]}
  shift 2
  local project=default
  if [ $# -gt 0 ] && [ "$1" != -- ]; then project=$1; shift; fi
  [ "${1:-}" = -- ] && shift
  local cmd=""
  if [ $# -gt 0 ]; then
    cmd=$(python3 -c 'import json,sys; print(json.dumps(sys.argv[1:]))' "$@") || return 2
    cmd=",\"command\":$cmd"
  fi
  printf '{"id":"%s","type":"%s","projectId":"%s"%s}\n' "$id" "$type" "$project" "$cmd" | af-spawn create --start
}
af_new_claude()  { af_new claude-code "$@"; }
af_new_worker()  { af_new worker "$@"; }
af_new_monitor() { af_new monitor "$@"; }

af_ls()      { af-spawn ls "$@"; }
af_attach()  { af-spawn attach "${1:?usage: af_attach ID}"; }
af_logs()    { af-spawn logs --follow "${1:?usage: af_logs ID}"; }
af_restart() { af-spawn restart "${1:?usage: af_restart ID}"; }
af_stop()    { af-spawn stop "$@"; }
af_top()     { af-spawn top "${1:?usage: af_top ID}"; }
af_gc()      { af-spawn gc; }

# af_here: the id of the agent whose tmux session this shell is in (empty outside one).
af_here() {
  [ -n "${TMUX:-}" ] || return 1
  local s; s=$(tmux display-message -p '#{session_name}') || return 1
  case "$s" in agent-*) echo "${s#agent-}" ;; *) return 1 ;; esac
}
