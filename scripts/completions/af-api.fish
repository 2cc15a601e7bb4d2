# Print an optspec for argparse to handle cmd's options that are independent of any subcommand.
function __fish_af_api_global_optspecs
    string join \n listen= token-file= allow-host= rate-limit= burst= workers= metrics-public json pretty h/help V/version
end

function __fish_af_api_needs_command
    # Figure out if the current invocation already has a command.
    set -l cmd (commandline -opc)
    set -e cmd[1]
    argparse -s (__fish_af_api_global_optspecs) -- $cmd 2>/dev/null
    or return
    if set -q argv[1]
        # Also print the command, so this can be used to figure out what it is.
        echo $argv[1]
        return 1
    end
    return 0
end

function __fish_af_api_using_subcommand
    set -l cmd (__fish_af_api_needs_command)
    test -z "$cmd"
    and return 1
    contains -- $cmd[1] $argv
end

complete -c af-api -n "__fish_af_api_needs_command" -l listen -d 'The address to listen on, ADDR:PORT (port 0 picks a free port; the bound address is printed). Anything but loopback needs --token-file' -r
complete -c af-api -n "__fish_af_api_needs_command" -l token-file -d 'The bearer token file (its first line is the token, at least 16 characters). Default: $AF_HOME/api/token, created on first start' -r -F
complete -c af-api -n "__fish_af_api_needs_command" -l allow-host -d 'Another Host header name to accept (repeatable), besides localhost, 127.0.0.1, [::1] and the listen address: every other Host is refused (403) against DNS rebinding' -r
complete -c af-api -n "__fish_af_api_needs_command" -l rate-limit -d 'Requests per second allowed per client address (token bucket); 0 turns rate limiting off' -r
complete -c af-api -n "__fish_af_api_needs_command" -l burst -d 'How many requests a client may make at once before the rate applies (bucket size)' -r
complete -c af-api -n "__fish_af_api_needs_command" -l workers -d 'Worker threads answering requests (slow requests hold one each)' -r
complete -c af-api -n "__fish_af_api_needs_command" -l metrics-public -d 'Serve /metrics without the token to every client (by default only loopback clients, a Prometheus on this host, get it without one)'
complete -c af-api -n "__fish_af_api_needs_command" -l json -d 'Print the startup line as JSON ({"url", "listen", "tokenFile"}; the url holds the token only on a terminal)'
complete -c af-api -n "__fish_af_api_needs_command" -l pretty -d 'Print JSON indented over several lines, for people (implies --json)'
complete -c af-api -n "__fish_af_api_needs_command" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c af-api -n "__fish_af_api_needs_command" -s V -l version -d 'Print version'
complete -c af-api -n "__fish_af_api_needs_command" -f -a "token" -d 'Print the bearer token file\'s path (made as on first start if missing): `Bearer $(cat PATH)`; with --show, the token itself. --json: {"tokenFile"} or {"tokenFile", "token"}'
complete -c af-api -n "__fish_af_api_needs_command" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c af-api -n "__fish_af_api_using_subcommand token" -l show -d 'Print the token itself instead of its file\'s path'
complete -c af-api -n "__fish_af_api_using_subcommand token" -l json -d 'Print the startup line as JSON ({"url", "listen", "tokenFile"}; the url holds the token only on a terminal)'
complete -c af-api -n "__fish_af_api_using_subcommand token" -l pretty -d 'Print JSON indented over several lines, for people (implies --json)'
complete -c af-api -n "__fish_af_api_using_subcommand token" -s h -l help -d 'Print help'
complete -c af-api -n "__fish_af_api_using_subcommand help; and not __fish_seen_subcommand_from token help" -f -a "token" -d 'Print the bearer token file\'s path (made as on first start if missing): `Bearer $(cat PATH)`; with --show, the token itself. --json: {"tokenFile"} or {"tokenFile", "token"}'
complete -c af-api -n "__fish_af_api_using_subcommand help; and not __fish_seen_subcommand_from token help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
