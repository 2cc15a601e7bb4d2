complete -c af-bus -s h -l help -d 'Print help'
complete -c af-bus -s V -l version -d 'Print version'
