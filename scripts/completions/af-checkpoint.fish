complete -c af-checkpoint -s h -l help -d 'Print help'
complete -c af-checkpoint -s V -l version -d 'Print version'
