complete -c af-wrap -l heartbeat -d 'How often to write a heartbeat while the agent is busy or watched' -r
complete -c af-wrap -l heartbeat-idle-max -d 'The longest interval between heartbeats while the agent idles: it doubles at each idle beat from --heartbeat up to this, and every beat says when the next is due' -r
complete -c af-wrap -l hook -d 'Handle one Claude Code hook event for the agent (JSON on stdin) instead of supervising: the settings file af-wrap gives a claude-code agent\'s CLI runs this. Plumbing, so hidden'
complete -c af-wrap -s h -l help -d 'Print help (see more with \'--help\')'
complete -c af-wrap -s V -l version -d 'Print version'
