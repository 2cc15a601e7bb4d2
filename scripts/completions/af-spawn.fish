# Print an optspec for argparse to handle cmd's options that are independent of any subcommand.
function __fish_af_spawn_global_optspecs
    string join \n json pretty h/help V/version
end

function __fish_af_spawn_needs_command
    # Figure out if the current invocation already has a command.
    set -l cmd (commandline -opc)
    set -e cmd[1]
    argparse -s (__fish_af_spawn_global_optspecs) -- $cmd 2>/dev/null
    or return
    if set -q argv[1]
        # Also print the command, so this can be used to figure out what it is.
        echo $argv[1]
        return 1
    end
    return 0
end

function __fish_af_spawn_using_subcommand
    set -l cmd (__fish_af_spawn_needs_command)
    test -z "$cmd"
    and return 1
    contains -- $cmd[1] $argv
end

complete -c af-spawn -n "__fish_af_spawn_needs_command" -l json -d 'Print JSON (one document) instead of text'
complete -c af-spawn -n "__fish_af_spawn_needs_command" -l pretty -d 'Print JSON indented over several lines, for people (implies --json)'
complete -c af-spawn -n "__fish_af_spawn_needs_command" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c af-spawn -n "__fish_af_spawn_needs_command" -s V -l version -d 'Print version'
complete -c af-spawn -n "__fish_af_spawn_needs_command" -f -a "create" -d 'Create agents from AgentConfig JSON: one object, an array, or JSON lines'
complete -c af-spawn -n "__fish_af_spawn_needs_command" -f -a "start" -d 'Start agents in their tmux sessions; waits until each runs'
complete -c af-spawn -n "__fish_af_spawn_needs_command" -f -a "stop" -d 'Stop agents: SIGTERM to the process group, SIGKILL after the timeout'
complete -c af-spawn -n "__fish_af_spawn_needs_command" -f -a "pause" -d 'Pause an agent (SIGSTOP to its process group)'
complete -c af-spawn -n "__fish_af_spawn_needs_command" -f -a "resume" -d 'Resume a paused agent (SIGCONT)'
complete -c af-spawn -n "__fish_af_spawn_needs_command" -f -a "restart" -d 'Stop an agent if it runs, then start it again'
complete -c af-spawn -n "__fish_af_spawn_needs_command" -f -a "reset" -d 'Clear an agent\'s failure counts and af-health\'s verdict (`failed\' after the recovery ladder gave up), so that the ladder starts it again'
complete -c af-spawn -n "__fish_af_spawn_needs_command" -f -a "rm" -d 'Remove an agent and its records (and its worktree, refusing when that holds uncommitted or unpushed work)'
complete -c af-spawn -n "__fish_af_spawn_needs_command" -f -a "ls" -d 'List agents (with a SERVER column when any is on another tmux server than AF_TMUX_SOCKET\'s; `tmuxSocket` in --json)'
complete -c af-spawn -n "__fish_af_spawn_needs_command" -f -a "show" -d 'Show an agent\'s config, state and last heartbeat'
complete -c af-spawn -n "__fish_af_spawn_needs_command" -f -a "attach" -d 'Attach to an agent\'s tmux session, on the tmux server it runs on (inside tmux on that server: switch the client; elsewhere, also in a pane of another server: a client of its own)'
complete -c af-spawn -n "__fish_af_spawn_needs_command" -f -a "logs" -d 'Show what an agent printed (its tmux pane, captured), or its supervisor\'s log'
complete -c af-spawn -n "__fish_af_spawn_needs_command" -f -a "gc" -d 'Reconcile the whole spool with tmux and the processes: mark dead agents, kill stray sessions and orphans, remove leftovers of interrupted commands and what killed senders and listeners left in the bus (named pipes, undelivered message files, half-made subscriptions); and apply the logs\' retention: rotated generations of the event log, the programs\' logs and the agents\' output and af-wrap logs past the age or size are removed, oldest first, and the others compressed (gzip) once unwritten for 5 minutes'
complete -c af-spawn -n "__fish_af_spawn_needs_command" -f -a "script" -d 'Print a shell script that recreates an agent\'s tmux layout'
complete -c af-spawn -n "__fish_af_spawn_needs_command" -f -a "top" -d 'Show an agent\'s processes, CPU and memory, refreshed (the `monitor\' window)'
complete -c af-spawn -n "__fish_af_spawn_needs_command" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c af-spawn -n "__fish_af_spawn_using_subcommand create" -s c -l config -d 'The config file, or - for standard input (the default)' -r -F
complete -c af-spawn -n "__fish_af_spawn_using_subcommand create" -l start -d 'Start each agent once created, all or nothing: if any fails to start, every agent this create made is removed again (its id free, its files gone)'
complete -c af-spawn -n "__fish_af_spawn_using_subcommand create" -l keep-failed -d 'With --start, keep agents that fail to start (as `failed\', to look at) instead of removing them'
complete -c af-spawn -n "__fish_af_spawn_using_subcommand create" -l worktree -d 'Give each agent its own git worktree on branch af/<id> (as the config field `worktree: true` does), seeded with the untracked files `.worktreeinclude` lists'
complete -c af-spawn -n "__fish_af_spawn_using_subcommand create" -l json -d 'Print JSON (one document) instead of text'
complete -c af-spawn -n "__fish_af_spawn_using_subcommand create" -l pretty -d 'Print JSON indented over several lines, for people (implies --json)'
complete -c af-spawn -n "__fish_af_spawn_using_subcommand create" -s h -l help -d 'Print help'
complete -c af-spawn -n "__fish_af_spawn_using_subcommand start" -l timeout -d 'How long to wait for each agent to run, in seconds' -r
complete -c af-spawn -n "__fish_af_spawn_using_subcommand start" -l no-wait -d 'Return once tmux has the session, without waiting for af-wrap'
complete -c af-spawn -n "__fish_af_spawn_using_subcommand start" -l keep-going -d 'Start every agent that can be, past those that cannot: each failure is one line on stderr (a JSON error document with --json), the rest keep running, and the exit code is the first failure\'s. Without it a batch stops at its first failure'
complete -c af-spawn -n "__fish_af_spawn_using_subcommand start" -l json -d 'Print JSON (one document) instead of text'
complete -c af-spawn -n "__fish_af_spawn_using_subcommand start" -l pretty -d 'Print JSON indented over several lines, for people (implies --json)'
complete -c af-spawn -n "__fish_af_spawn_using_subcommand start" -s h -l help -d 'Print help'
complete -c af-spawn -n "__fish_af_spawn_using_subcommand stop" -l timeout -d 'Grace period between SIGTERM and SIGKILL, in seconds' -r
complete -c af-spawn -n "__fish_af_spawn_using_subcommand stop" -l force -d 'SIGKILL at once'
complete -c af-spawn -n "__fish_af_spawn_using_subcommand stop" -l json -d 'Print JSON (one document) instead of text'
complete -c af-spawn -n "__fish_af_spawn_using_subcommand stop" -l pretty -d 'Print JSON indented over several lines, for people (implies --json)'
complete -c af-spawn -n "__fish_af_spawn_using_subcommand stop" -s h -l help -d 'Print help'
complete -c af-spawn -n "__fish_af_spawn_using_subcommand pause" -l json -d 'Print JSON (one document) instead of text'
complete -c af-spawn -n "__fish_af_spawn_using_subcommand pause" -l pretty -d 'Print JSON indented over several lines, for people (implies --json)'
complete -c af-spawn -n "__fish_af_spawn_using_subcommand pause" -s h -l help -d 'Print help'
complete -c af-spawn -n "__fish_af_spawn_using_subcommand resume" -l json -d 'Print JSON (one document) instead of text'
complete -c af-spawn -n "__fish_af_spawn_using_subcommand resume" -l pretty -d 'Print JSON indented over several lines, for people (implies --json)'
complete -c af-spawn -n "__fish_af_spawn_using_subcommand resume" -s h -l help -d 'Print help'
complete -c af-spawn -n "__fish_af_spawn_using_subcommand restart" -l timeout -d 'Grace period of the stop, in seconds' -r
complete -c af-spawn -n "__fish_af_spawn_using_subcommand restart" -l json -d 'Print JSON (one document) instead of text'
complete -c af-spawn -n "__fish_af_spawn_using_subcommand restart" -l pretty -d 'Print JSON indented over several lines, for people (implies --json)'
complete -c af-spawn -n "__fish_af_spawn_using_subcommand restart" -s h -l help -d 'Print help'
complete -c af-spawn -n "__fish_af_spawn_using_subcommand reset" -l json -d 'Print JSON (one document) instead of text'
complete -c af-spawn -n "__fish_af_spawn_using_subcommand reset" -l pretty -d 'Print JSON indented over several lines, for people (implies --json)'
complete -c af-spawn -n "__fish_af_spawn_using_subcommand reset" -s h -l help -d 'Print help'
complete -c af-spawn -n "__fish_af_spawn_using_subcommand rm" -l force -d 'Stop it first if it runs (SIGKILL); remove a worktree holding work, after taking a checkpoint that keeps it (refs/agentflow/checkpoints/<id>/...)'
complete -c af-spawn -n "__fish_af_spawn_using_subcommand rm" -l json -d 'Print JSON (one document) instead of text'
complete -c af-spawn -n "__fish_af_spawn_using_subcommand rm" -l pretty -d 'Print JSON indented over several lines, for people (implies --json)'
complete -c af-spawn -n "__fish_af_spawn_using_subcommand rm" -s h -l help -d 'Print help'
complete -c af-spawn -n "__fish_af_spawn_using_subcommand ls" -s p -l project -d 'Only this project\'s agents' -r
complete -c af-spawn -n "__fish_af_spawn_using_subcommand ls" -l redis -d 'The Redis the hosts meet through: redis://[user:password@]host:port[/db], or rediss:// for TLS (checked against the system\'s roots, or the CA in the PEM file AF_REDIS_CA; AF_REDIS_CERT and AF_REDIS_KEY give a client certificate). This host\'s name is AF_HOST, else the hostname' -r
complete -c af-spawn -n "__fish_af_spawn_using_subcommand ls" -l summary -d 'One line of counts by status (for tmux status lines and cron mail)'
complete -c af-spawn -n "__fish_af_spawn_using_subcommand ls" -l cluster -d 'Every bridged host\'s agents, as their af-bus bridge last published them to Redis (AF_REDIS_URL), with a HOST column; a host whose heartbeat expired is marked unreachable (JSON: each record has host and hostReachable)'
complete -c af-spawn -n "__fish_af_spawn_using_subcommand ls" -l json -d 'Print JSON (one document) instead of text'
complete -c af-spawn -n "__fish_af_spawn_using_subcommand ls" -l pretty -d 'Print JSON indented over several lines, for people (implies --json)'
complete -c af-spawn -n "__fish_af_spawn_using_subcommand ls" -s h -l help -d 'Print help'
complete -c af-spawn -n "__fish_af_spawn_using_subcommand show" -l redis -d 'The Redis the hosts meet through: redis://[user:password@]host:port[/db], or rediss:// for TLS (checked against the system\'s roots, or the CA in the PEM file AF_REDIS_CA; AF_REDIS_CERT and AF_REDIS_KEY give a client certificate). This host\'s name is AF_HOST, else the hostname' -r
complete -c af-spawn -n "__fish_af_spawn_using_subcommand show" -l json -d 'Print JSON (one document) instead of text'
complete -c af-spawn -n "__fish_af_spawn_using_subcommand show" -l pretty -d 'Print JSON indented over several lines, for people (implies --json)'
complete -c af-spawn -n "__fish_af_spawn_using_subcommand show" -s h -l help -d 'Print help'
complete -c af-spawn -n "__fish_af_spawn_using_subcommand attach" -l json -d 'Print JSON (one document) instead of text'
complete -c af-spawn -n "__fish_af_spawn_using_subcommand attach" -l pretty -d 'Print JSON indented over several lines, for people (implies --json)'
complete -c af-spawn -n "__fish_af_spawn_using_subcommand attach" -s h -l help -d 'Print help'
complete -c af-spawn -n "__fish_af_spawn_using_subcommand logs" -s n -l lines -d 'How many lines from the end to start with (reaching into rotated, even compressed, generations when the live log holds fewer)' -r
complete -c af-spawn -n "__fish_af_spawn_using_subcommand logs" -s f -l follow -d 'Keep printing as it grows, until SIGINT or SIGTERM (exit 130)'
complete -c af-spawn -n "__fish_af_spawn_using_subcommand logs" -l supervisor -d 'af-wrap\'s log instead of the agent\'s output'
complete -c af-spawn -n "__fish_af_spawn_using_subcommand logs" -l json -d 'Print JSON (one document) instead of text'
complete -c af-spawn -n "__fish_af_spawn_using_subcommand logs" -l pretty -d 'Print JSON indented over several lines, for people (implies --json)'
complete -c af-spawn -n "__fish_af_spawn_using_subcommand logs" -s h -l help -d 'Print help'
complete -c af-spawn -n "__fish_af_spawn_using_subcommand gc" -l max-age -d 'Remove log generations last written longer ago than this (`0`: no age limit)' -r
complete -c af-spawn -n "__fish_af_spawn_using_subcommand gc" -l max-size -d 'The most one log may take, live file and generations together; the oldest generations beyond it are removed (`0`: no size limit)' -r
complete -c af-spawn -n "__fish_af_spawn_using_subcommand gc" -l dry-run -d 'Report what would be done, and change nothing'
complete -c af-spawn -n "__fish_af_spawn_using_subcommand gc" -l json -d 'Print JSON (one document) instead of text'
complete -c af-spawn -n "__fish_af_spawn_using_subcommand gc" -l pretty -d 'Print JSON indented over several lines, for people (implies --json)'
complete -c af-spawn -n "__fish_af_spawn_using_subcommand gc" -s h -l help -d 'Print help'
complete -c af-spawn -n "__fish_af_spawn_using_subcommand script" -l json -d 'Print JSON (one document) instead of text'
complete -c af-spawn -n "__fish_af_spawn_using_subcommand script" -l pretty -d 'Print JSON indented over several lines, for people (implies --json)'
complete -c af-spawn -n "__fish_af_spawn_using_subcommand script" -s h -l help -d 'Print help'
complete -c af-spawn -n "__fish_af_spawn_using_subcommand top" -l interval -d 'Refresh interval, in seconds' -r
complete -c af-spawn -n "__fish_af_spawn_using_subcommand top" -l once -d 'Print once and exit'
complete -c af-spawn -n "__fish_af_spawn_using_subcommand top" -l json -d 'Print JSON (one document) instead of text'
complete -c af-spawn -n "__fish_af_spawn_using_subcommand top" -l pretty -d 'Print JSON indented over several lines, for people (implies --json)'
complete -c af-spawn -n "__fish_af_spawn_using_subcommand top" -s h -l help -d 'Print help'
complete -c af-spawn -n "__fish_af_spawn_using_subcommand help; and not __fish_seen_subcommand_from create start stop pause resume restart reset rm ls show attach logs gc script top help" -f -a "create" -d 'Create agents from AgentConfig JSON: one object, an array, or JSON lines'
complete -c af-spawn -n "__fish_af_spawn_using_subcommand help; and not __fish_seen_subcommand_from create start stop pause resume restart reset rm ls show attach logs gc script top help" -f -a "start" -d 'Start agents in their tmux sessions; waits until each runs'
complete -c af-spawn -n "__fish_af_spawn_using_subcommand help; and not __fish_seen_subcommand_from create start stop pause resume restart reset rm ls show attach logs gc script top help" -f -a "stop" -d 'Stop agents: SIGTERM to the process group, SIGKILL after the timeout'
complete -c af-spawn -n "__fish_af_spawn_using_subcommand help; and not __fish_seen_subcommand_from create start stop pause resume restart reset rm ls show attach logs gc script top help" -f -a "pause" -d 'Pause an agent (SIGSTOP to its process group)'
complete -c af-spawn -n "__fish_af_spawn_using_subcommand help; and not __fish_seen_subcommand_from create start stop pause resume restart reset rm ls show attach logs gc script top help" -f -a "resume" -d 'Resume a paused agent (SIGCONT)'
complete -c af-spawn -n "__fish_af_spawn_using_subcommand help; and not __fish_seen_subcommand_from create start stop pause resume restart reset rm ls show attach logs gc script top help" -f -a "restart" -d 'Stop an agent if it runs, then start it again'
complete -c af-spawn -n "__fish_af_spawn_using_subcommand help; and not __fish_seen_subcommand_from create start stop pause resume restart reset rm ls show attach logs gc script top help" -f -a "reset" -d 'Clear an agent\'s failure counts and af-health\'s verdict (`failed\' after the recovery ladder gave up), so that the ladder starts it again'
complete -c af-spawn -n "__fish_af_spawn_using_subcommand help; and not __fish_seen_subcommand_from create start stop pause resume restart reset rm ls show attach logs gc script top help" -f -a "rm" -d 'Remove an agent and its records (and its worktree, refusing when that holds uncommitted or unpushed work)'
complete -c af-spawn -n "__fish_af_spawn_using_subcommand help; and not __fish_seen_subcommand_from create start stop pause resume restart reset rm ls show attach logs gc script top help" -f -a "ls" -d 'List agents (with a SERVER column when any is on another tmux server than AF_TMUX_SOCKET\'s; `tmuxSocket` in --json)'
complete -c af-spawn -n "__fish_af_spawn_using_subcommand help; and not __fish_seen_subcommand_from create start stop pause resume restart reset rm ls show attach logs gc script top help" -f -a "show" -d 'Show an agent\'s config, state and last heartbeat'
complete -c af-spawn -n "__fish_af_spawn_using_subcommand help; and not __fish_seen_subcommand_from create start stop pause resume restart reset rm ls show attach logs gc script top help" -f -a "attach" -d 'Attach to an agent\'s tmux session, on the tmux server it runs on (inside tmux on that server: switch the client; elsewhere, also in a pane of another server: a client of its own)'
complete -c af-spawn -n "__fish_af_spawn_using_subcommand help; and not __fish_seen_subcommand_from create start stop pause resume restart reset rm ls show attach logs gc script top help" -f -a "logs" -d 'Show what an agent printed (its tmux pane, captured), or its supervisor\'s log'
complete -c af-spawn -n "__fish_af_spawn_using_subcommand help; and not __fish_seen_subcommand_from create start stop pause resume restart reset rm ls show attach logs gc script top help" -f -a "gc" -d 'Reconcile the whole spool with tmux and the processes: mark dead agents, kill stray sessions and orphans, remove leftovers of interrupted commands and what killed senders and listeners left in the bus (named pipes, undelivered message files, half-made subscriptions); and apply the logs\' retention: rotated generations of the event log, the programs\' logs and the agents\' output and af-wrap logs past the age or size are removed, oldest first, and the others compressed (gzip) once unwritten for 5 minutes'
complete -c af-spawn -n "__fish_af_spawn_using_subcommand help; and not __fish_seen_subcommand_from create start stop pause resume restart reset rm ls show attach logs gc script top help" -f -a "script" -d 'Print a shell script that recreates an agent\'s tmux layout'
complete -c af-spawn -n "__fish_af_spawn_using_subcommand help; and not __fish_seen_subcommand_from create start stop pause resume restart reset rm ls show attach logs gc script top help" -f -a "top" -d 'Show an agent\'s processes, CPU and memory, refreshed (the `monitor\' window)'
complete -c af-spawn -n "__fish_af_spawn_using_subcommand help; and not __fish_seen_subcommand_from create start stop pause resume restart reset rm ls show attach logs gc script top help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c af-spawn -n "__fish_af_spawn_using_subcommand start" -f -a "(af-spawn complete agents 2>/dev/null)"
complete -c af-spawn -n "__fish_af_spawn_using_subcommand stop" -f -a "(af-spawn complete agents 2>/dev/null)"
complete -c af-spawn -n "__fish_af_spawn_using_subcommand pause" -f -a "(af-spawn complete agents 2>/dev/null)"
complete -c af-spawn -n "__fish_af_spawn_using_subcommand resume" -f -a "(af-spawn complete agents 2>/dev/null)"
complete -c af-spawn -n "__fish_af_spawn_using_subcommand restart" -f -a "(af-spawn complete agents 2>/dev/null)"
complete -c af-spawn -n "__fish_af_spawn_using_subcommand reset" -f -a "(af-spawn complete agents 2>/dev/null)"
complete -c af-spawn -n "__fish_af_spawn_using_subcommand rm" -f -a "(af-spawn complete agents 2>/dev/null)"
complete -c af-spawn -n "__fish_af_spawn_using_subcommand show" -f -a "(af-spawn complete agents 2>/dev/null)"
complete -c af-spawn -n "__fish_af_spawn_using_subcommand attach" -f -a "(af-spawn complete agents 2>/dev/null)"
complete -c af-spawn -n "__fish_af_spawn_using_subcommand logs" -f -a "(af-spawn complete agents 2>/dev/null)"
complete -c af-spawn -n "__fish_af_spawn_using_subcommand script" -f -a "(af-spawn complete agents 2>/dev/null)"
complete -c af-spawn -n "__fish_af_spawn_using_subcommand top" -f -a "(af-spawn complete agents 2>/dev/null)"
