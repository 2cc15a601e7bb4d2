complete -c af-api -s h -l help -d 'Print help'
complete -c af-api -s V -l version -d 'Print version'
