complete -c af-health -s h -l help -d 'Print help'
complete -c af-health -s V -l version -d 'Print version'
