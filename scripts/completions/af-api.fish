complete -c af-api -l listen -d 'The address to listen on, ADDR:PORT (port 0 picks a free port; the bound address is printed). Anything but loopback needs --token-file' -r
complete -c af-api -l token-file -d 'The bearer token file (its first line is the token, at least 16 characters). Default: $AF_HOME/api/token, created on first start' -r -F
complete -c af-api -l allow-host -d 'Another Host header name to accept (repeatable), besides localhost, 127.0.0.1, [::1] and the listen address: every other Host is refused (403) against DNS rebinding' -r
complete -c af-api -l rate-limit -d 'Requests per second allowed per client address (token bucket); 0 turns rate limiting off' -r
complete -c af-api -l burst -d 'How many requests a client may make at once before the rate applies (bucket size)' -r
complete -c af-api -l workers -d 'Worker threads answering requests (slow requests hold one each)' -r
complete -c af-api -l metrics-public -d 'Serve /metrics without the token to every client (by default only loopback clients, a Prometheus on this host, get it without one)'
complete -c af-api -l json -d 'Print the startup line as JSON ({"url", "listen", "tokenFile"}; the url holds the token only on a terminal)'
complete -c af-api -s h -l help -d 'Print help (see more with \'--help\')'
complete -c af-api -s V -l version -d 'Print version'
