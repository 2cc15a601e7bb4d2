complete -c af-wrap -l heartbeat -d 'How often to write a heartbeat' -r
complete -c af-wrap -s h -l help -d 'Print help (see more with \'--help\')'
complete -c af-wrap -s V -l version -d 'Print version'
