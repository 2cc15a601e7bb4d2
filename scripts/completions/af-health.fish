# Print an optspec for argparse to handle cmd's options that are independent of any subcommand.
function __fish_af_health_global_optspecs
    string join \n json pretty h/help V/version
end

function __fish_af_health_needs_command
    # Figure out if the current invocation already has a command.
    set -l cmd (commandline -opc)
    set -e cmd[1]
    argparse -s (__fish_af_health_global_optspecs) -- $cmd 2>/dev/null
    or return
    if set -q argv[1]
        # Also print the command, so this can be used to figure out what it is.
        echo $argv[1]
        return 1
    end
    return 0
end

function __fish_af_health_using_subcommand
    set -l cmd (__fish_af_health_needs_command)
    test -z "$cmd"
    and return 1
    contains -- $cmd[1] $argv
end

complete -c af-health -n "__fish_af_health_needs_command" -l json -d 'Print JSON (one document) instead of text'
complete -c af-health -n "__fish_af_health_needs_command" -l pretty -d 'Print JSON indented over several lines, for people (implies --json)'
complete -c af-health -n "__fish_af_health_needs_command" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c af-health -n "__fish_af_health_needs_command" -s V -l version -d 'Print version'
complete -c af-health -n "__fish_af_health_needs_command" -f -a "check" -d 'One check pass (for cron and systemd timers); exit 1 when any agent is degraded or unhealthy, 111 when there were agents and none could be checked (a read-only spool)'
complete -c af-health -n "__fish_af_health_needs_command" -f -a "watch" -d 'Check and recover in a loop, also woken at once by every event in the spool (agent exits)'
complete -c af-health -n "__fish_af_health_needs_command" -f -a "history" -d 'An agent\'s check history, oldest first'
complete -c af-health -n "__fish_af_health_needs_command" -f -a "alerts" -d 'The open alerts (with --all, every alert in the log)'
complete -c af-health -n "__fish_af_health_needs_command" -f -a "ack" -d 'Acknowledge an open alert'
complete -c af-health -n "__fish_af_health_needs_command" -f -a "metrics" -d 'The spool\'s figures in the Prometheus text format: agents by status, health and type, each agent\'s memory, CPU, heartbeat age, restarts and spending, queue depths, open alerts. With --output, written to a file atomically (for node_exporter\'s textfile collector)'
complete -c af-health -n "__fish_af_health_needs_command" -f -a "rules" -d 'Alert rules ($AF_HOME/rules.json): thresholds per project, agent type or agent'
complete -c af-health -n "__fish_af_health_needs_command" -f -a "trends" -d 'Min, median and max of RSS, CPU and response time, and failure counts, over a window'
complete -c af-health -n "__fish_af_health_needs_command" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c af-health -n "__fish_af_health_using_subcommand check" -s p -l project -d 'Only this project\'s agents' -r
complete -c af-health -n "__fish_af_health_using_subcommand check" -l stale -d 'A heartbeat older than this is critical (half of it warns)' -r
complete -c af-health -n "__fish_af_health_using_subcommand check" -l ping-timeout -d 'How long to wait for a ping\'s answer' -r
complete -c af-health -n "__fish_af_health_using_subcommand check" -l escalate-after -d 'An open warning still failing after this long becomes critical' -r
complete -c af-health -n "__fish_af_health_using_subcommand check" -l settle -d 'How long an agent must have run before its alerts recover' -r
complete -c af-health -n "__fish_af_health_using_subcommand check" -l backoff -d 'The ladder\'s first delay before a restart (doubles each time)' -r
complete -c af-health -n "__fish_af_health_using_subcommand check" -l backoff-max -d 'The ladder\'s longest delay' -r
complete -c af-health -n "__fish_af_health_using_subcommand check" -l reset-after -d 'Healthy this long resets the failure count and the delay' -r
complete -c af-health -n "__fish_af_health_using_subcommand check" -l max-failures -d 'Consecutive failures before rollback (restarts happen below it; failed above it)' -r
complete -c af-health -n "__fish_af_health_using_subcommand check" -l max-restarts -d 'More restarts than this within --rate-window mark the agent failed' -r
complete -c af-health -n "__fish_af_health_using_subcommand check" -l rate-window -d 'The window of --max-restarts' -r
complete -c af-health -n "__fish_af_health_using_subcommand check" -l recover -d 'Climb the recovery ladder for failed agents (restart, rollback, mark failed)'
complete -c af-health -n "__fish_af_health_using_subcommand check" -l no-ping -d 'Skip the response check (no ping through the control pipe)'
complete -c af-health -n "__fish_af_health_using_subcommand check" -l json -d 'Print JSON (one document) instead of text'
complete -c af-health -n "__fish_af_health_using_subcommand check" -l pretty -d 'Print JSON indented over several lines, for people (implies --json)'
complete -c af-health -n "__fish_af_health_using_subcommand check" -s h -l help -d 'Print help'
complete -c af-health -n "__fish_af_health_using_subcommand watch" -l interval -d 'Seconds between passes' -r
complete -c af-health -n "__fish_af_health_using_subcommand watch" -s p -l project -d 'Only this project\'s agents' -r
complete -c af-health -n "__fish_af_health_using_subcommand watch" -l passes -d 'Stop after this many passes (default: never)' -r
complete -c af-health -n "__fish_af_health_using_subcommand watch" -l stale -d 'A heartbeat older than this is critical (half of it warns)' -r
complete -c af-health -n "__fish_af_health_using_subcommand watch" -l ping-timeout -d 'How long to wait for a ping\'s answer' -r
complete -c af-health -n "__fish_af_health_using_subcommand watch" -l escalate-after -d 'An open warning still failing after this long becomes critical' -r
complete -c af-health -n "__fish_af_health_using_subcommand watch" -l settle -d 'How long an agent must have run before its alerts recover' -r
complete -c af-health -n "__fish_af_health_using_subcommand watch" -l backoff -d 'The ladder\'s first delay before a restart (doubles each time)' -r
complete -c af-health -n "__fish_af_health_using_subcommand watch" -l backoff-max -d 'The ladder\'s longest delay' -r
complete -c af-health -n "__fish_af_health_using_subcommand watch" -l reset-after -d 'Healthy this long resets the failure count and the delay' -r
complete -c af-health -n "__fish_af_health_using_subcommand watch" -l max-failures -d 'Consecutive failures before rollback (restarts happen below it; failed above it)' -r
complete -c af-health -n "__fish_af_health_using_subcommand watch" -l max-restarts -d 'More restarts than this within --rate-window mark the agent failed' -r
complete -c af-health -n "__fish_af_health_using_subcommand watch" -l rate-window -d 'The window of --max-restarts' -r
complete -c af-health -n "__fish_af_health_using_subcommand watch" -l no-ping -d 'Skip the response check (no ping through the control pipe)'
complete -c af-health -n "__fish_af_health_using_subcommand watch" -l json -d 'Print JSON (one document) instead of text'
complete -c af-health -n "__fish_af_health_using_subcommand watch" -l pretty -d 'Print JSON indented over several lines, for people (implies --json)'
complete -c af-health -n "__fish_af_health_using_subcommand watch" -s h -l help -d 'Print help'
complete -c af-health -n "__fish_af_health_using_subcommand history" -l since -d 'Only entries newer than this: a duration ago ("10m") or an RFC 3339 time' -r
complete -c af-health -n "__fish_af_health_using_subcommand history" -l limit -d 'At most this many entries (the newest)' -r
complete -c af-health -n "__fish_af_health_using_subcommand history" -l json -d 'Print JSON (one document) instead of text'
complete -c af-health -n "__fish_af_health_using_subcommand history" -l pretty -d 'Print JSON indented over several lines, for people (implies --json)'
complete -c af-health -n "__fish_af_health_using_subcommand history" -s h -l help -d 'Print help'
complete -c af-health -n "__fish_af_health_using_subcommand alerts" -l all -d 'Every alert raised, escalated, recovered or acknowledged, oldest first'
complete -c af-health -n "__fish_af_health_using_subcommand alerts" -l json -d 'Print JSON (one document) instead of text'
complete -c af-health -n "__fish_af_health_using_subcommand alerts" -l pretty -d 'Print JSON indented over several lines, for people (implies --json)'
complete -c af-health -n "__fish_af_health_using_subcommand alerts" -s h -l help -d 'Print help'
complete -c af-health -n "__fish_af_health_using_subcommand ack" -l json -d 'Print JSON (one document) instead of text'
complete -c af-health -n "__fish_af_health_using_subcommand ack" -l pretty -d 'Print JSON indented over several lines, for people (implies --json)'
complete -c af-health -n "__fish_af_health_using_subcommand ack" -s h -l help -d 'Print help'
complete -c af-health -n "__fish_af_health_using_subcommand metrics" -s o -l output -d 'Write them to this file (replaced atomically), not to stdout' -r -F
complete -c af-health -n "__fish_af_health_using_subcommand metrics" -l json -d 'Print JSON (one document) instead of text'
complete -c af-health -n "__fish_af_health_using_subcommand metrics" -l pretty -d 'Print JSON indented over several lines, for people (implies --json)'
complete -c af-health -n "__fish_af_health_using_subcommand metrics" -s h -l help -d 'Print help'
complete -c af-health -n "__fish_af_health_using_subcommand rules; and not __fish_seen_subcommand_from check help" -l json -d 'Print JSON (one document) instead of text'
complete -c af-health -n "__fish_af_health_using_subcommand rules; and not __fish_seen_subcommand_from check help" -l pretty -d 'Print JSON indented over several lines, for people (implies --json)'
complete -c af-health -n "__fish_af_health_using_subcommand rules; and not __fish_seen_subcommand_from check help" -s h -l help -d 'Print help'
complete -c af-health -n "__fish_af_health_using_subcommand rules; and not __fish_seen_subcommand_from check help" -f -a "check" -d 'Validate a rules file (default: $AF_HOME/rules.json): exit 0 with a summary, or exit 2 naming the bad field by its path (e.g. agents.w1.memory.warning); with --json, stdout says {"ok": false, "path", "message"} too'
complete -c af-health -n "__fish_af_health_using_subcommand rules; and not __fish_seen_subcommand_from check help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c af-health -n "__fish_af_health_using_subcommand rules; and __fish_seen_subcommand_from check" -l json -d 'Print JSON (one document) instead of text'
complete -c af-health -n "__fish_af_health_using_subcommand rules; and __fish_seen_subcommand_from check" -l pretty -d 'Print JSON indented over several lines, for people (implies --json)'
complete -c af-health -n "__fish_af_health_using_subcommand rules; and __fish_seen_subcommand_from check" -s h -l help -d 'Print help'
complete -c af-health -n "__fish_af_health_using_subcommand rules; and __fish_seen_subcommand_from help" -f -a "check" -d 'Validate a rules file (default: $AF_HOME/rules.json): exit 0 with a summary, or exit 2 naming the bad field by its path (e.g. agents.w1.memory.warning); with --json, stdout says {"ok": false, "path", "message"} too'
complete -c af-health -n "__fish_af_health_using_subcommand rules; and __fish_seen_subcommand_from help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c af-health -n "__fish_af_health_using_subcommand trends" -l window -d 'The window: a duration back from now' -r
complete -c af-health -n "__fish_af_health_using_subcommand trends" -l json -d 'Print JSON (one document) instead of text'
complete -c af-health -n "__fish_af_health_using_subcommand trends" -l pretty -d 'Print JSON indented over several lines, for people (implies --json)'
complete -c af-health -n "__fish_af_health_using_subcommand trends" -s h -l help -d 'Print help'
complete -c af-health -n "__fish_af_health_using_subcommand help; and not __fish_seen_subcommand_from check watch history alerts ack metrics rules trends help" -f -a "check" -d 'One check pass (for cron and systemd timers); exit 1 when any agent is degraded or unhealthy, 111 when there were agents and none could be checked (a read-only spool)'
complete -c af-health -n "__fish_af_health_using_subcommand help; and not __fish_seen_subcommand_from check watch history alerts ack metrics rules trends help" -f -a "watch" -d 'Check and recover in a loop, also woken at once by every event in the spool (agent exits)'
complete -c af-health -n "__fish_af_health_using_subcommand help; and not __fish_seen_subcommand_from check watch history alerts ack metrics rules trends help" -f -a "history" -d 'An agent\'s check history, oldest first'
complete -c af-health -n "__fish_af_health_using_subcommand help; and not __fish_seen_subcommand_from check watch history alerts ack metrics rules trends help" -f -a "alerts" -d 'The open alerts (with --all, every alert in the log)'
complete -c af-health -n "__fish_af_health_using_subcommand help; and not __fish_seen_subcommand_from check watch history alerts ack metrics rules trends help" -f -a "ack" -d 'Acknowledge an open alert'
complete -c af-health -n "__fish_af_health_using_subcommand help; and not __fish_seen_subcommand_from check watch history alerts ack metrics rules trends help" -f -a "metrics" -d 'The spool\'s figures in the Prometheus text format: agents by status, health and type, each agent\'s memory, CPU, heartbeat age, restarts and spending, queue depths, open alerts. With --output, written to a file atomically (for node_exporter\'s textfile collector)'
complete -c af-health -n "__fish_af_health_using_subcommand help; and not __fish_seen_subcommand_from check watch history alerts ack metrics rules trends help" -f -a "rules" -d 'Alert rules ($AF_HOME/rules.json): thresholds per project, agent type or agent'
complete -c af-health -n "__fish_af_health_using_subcommand help; and not __fish_seen_subcommand_from check watch history alerts ack metrics rules trends help" -f -a "trends" -d 'Min, median and max of RSS, CPU and response time, and failure counts, over a window'
complete -c af-health -n "__fish_af_health_using_subcommand help; and not __fish_seen_subcommand_from check watch history alerts ack metrics rules trends help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c af-health -n "__fish_af_health_using_subcommand help; and __fish_seen_subcommand_from rules" -f -a "check" -d 'Validate a rules file (default: $AF_HOME/rules.json): exit 0 with a summary, or exit 2 naming the bad field by its path (e.g. agents.w1.memory.warning); with --json, stdout says {"ok": false, "path", "message"} too'
