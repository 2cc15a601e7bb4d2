# Print an optspec for argparse to handle cmd's options that are independent of any subcommand.
function __fish_af_bus_global_optspecs
    string join \n json no-fsync pretty h/help V/version
end

function __fish_af_bus_needs_command
    # Figure out if the current invocation already has a command.
    set -l cmd (commandline -opc)
    set -e cmd[1]
    argparse -s (__fish_af_bus_global_optspecs) -- $cmd 2>/dev/null
    or return
    if set -q argv[1]
        # Also print the command, so this can be used to figure out what it is.
        echo $argv[1]
        return 1
    end
    return 0
end

function __fish_af_bus_using_subcommand
    set -l cmd (__fish_af_bus_needs_command)
    test -z "$cmd"
    and return 1
    contains -- $cmd[1] $argv
end

complete -c af-bus -n "__fish_af_bus_needs_command" -l json -d 'Print JSON (one document, or JSON lines for several messages) instead of text'
complete -c af-bus -n "__fish_af_bus_needs_command" -l no-fsync -d 'Do not fsync deliveries: faster, still safe against any process being killed, not against a power cut'
complete -c af-bus -n "__fish_af_bus_needs_command" -l pretty -d 'Print JSON indented over several lines, for people (implies --json)'
complete -c af-bus -n "__fish_af_bus_needs_command" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c af-bus -n "__fish_af_bus_needs_command" -s V -l version -d 'Print version'
complete -c af-bus -n "__fish_af_bus_needs_command" -f -a "send" -d 'Send a message to a queue (an agent id, pool:PROJECT, or a subscription); prints its id'
complete -c af-bus -n "__fish_af_bus_needs_command" -f -a "broadcast" -d 'Send a message to every agent\'s inbox (or every agent of a project)'
complete -c af-bus -n "__fish_af_bus_needs_command" -f -a "publish" -d 'Publish an event on a topic, to every subscription whose pattern matches (none is fine)'
complete -c af-bus -n "__fish_af_bus_needs_command" -f -a "subscribe" -d 'Make a durable subscription: a queue that gets every message published on a matching topic'
complete -c af-bus -n "__fish_af_bus_needs_command" -f -a "unsubscribe" -d 'Remove a subscription and its queue'
complete -c af-bus -n "__fish_af_bus_needs_command" -f -a "recv" -d 'Take the next message(s) of a queue, by priority then age; exit 1 when there is none'
complete -c af-bus -n "__fish_af_bus_needs_command" -f -a "ack" -d 'Acknowledge received messages: they move to the history'
complete -c af-bus -n "__fish_af_bus_needs_command" -f -a "nack" -d 'Give a received message back (its attempts raised), at once or after a delay'
complete -c af-bus -n "__fish_af_bus_needs_command" -f -a "request" -d 'Send a request and wait for its correlated response; prints the response\'s payload, and exits 1 when the answer says `"ok": false`'
complete -c af-bus -n "__fish_af_bus_needs_command" -f -a "reply" -d 'Answer a request: a response with its correlation id, sent to its reply-to queue'
complete -c af-bus -n "__fish_af_bus_needs_command" -f -a "history" -d 'What a queue received and acked, oldest first'
complete -c af-bus -n "__fish_af_bus_needs_command" -f -a "clear" -d 'Remove every waiting, claimed, dead and acked message of a queue'
complete -c af-bus -n "__fish_af_bus_needs_command" -f -a "stats" -d 'Depths per queue and priority, in flight, dead letters, acked and ack rates'
complete -c af-bus -n "__fish_af_bus_needs_command" -f -a "tail" -d 'Print messages published on matching topics as JSON lines, as they arrive, until SIGINT or SIGTERM (exit 130)'
complete -c af-bus -n "__fish_af_bus_needs_command" -f -a "dead" -d 'List a queue\'s dead letters, with the reason each died'
complete -c af-bus -n "__fish_af_bus_needs_command" -f -a "interrupt" -d 'Interrupt the running turn of a claude-code agent (its task is answered `interrupted`); exit 1 when no turn runs'
complete -c af-bus -n "__fish_af_bus_needs_command" -f -a "bridge" -d 'Link this host\'s spool to other hosts\' through Redis Streams, until SIGTERM or SIGINT (exit 0): messages of the outbox (bridge:out, sent to QUEUE@HOST) go to their host\'s stream and are acked here once Redis has them; entries of this host\'s stream (af:host:HOST:in, consumer group af-bridge) are delivered once each into their local queues, then acked in Redis. Bad entries go to the dead letters of bridge:in. Reconnects with a capped backoff'
complete -c af-bus -n "__fish_af_bus_needs_command" -f -a "retry" -d 'Put a dead letter back into its queue, attempts reset'
complete -c af-bus -n "__fish_af_bus_needs_command" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c af-bus -n "__fish_af_bus_using_subcommand send" -l to -d 'The queue: an agent id, pool:PROJECT, a subscription name; QUEUE@HOST for a queue on another host (through `af-bus bridge`)' -r
complete -c af-bus -n "__fish_af_bus_using_subcommand send" -s p -l priority -d 'critical, high, normal or low' -r
complete -c af-bus -n "__fish_af_bus_using_subcommand send" -l ttl -d 'Drop the message to the dead letters if nobody took it within SECS' -r
complete -c af-bus -n "__fish_af_bus_using_subcommand send" -s k -l kind -d 'task, request or event' -r
complete -c af-bus -n "__fish_af_bus_using_subcommand send" -l reply-to -d 'Where responses go (a queue, as for --to)' -r
complete -c af-bus -n "__fish_af_bus_using_subcommand send" -l batch -d 'Read JSON lines on stdin, one message each: with --to, each line is a payload; without, each is {"to", "payload", "priority"?, "kind"?, "replyTo"?, "ttl"?}. Nothing is sent if a line is invalid. Prints one id per line'
complete -c af-bus -n "__fish_af_bus_using_subcommand send" -l queue-only -d 'Say nothing when a task or request goes to an agent that is not running (it waits in the agent\'s inbox either way)'
complete -c af-bus -n "__fish_af_bus_using_subcommand send" -l json -d 'Print JSON (one document, or JSON lines for several messages) instead of text'
complete -c af-bus -n "__fish_af_bus_using_subcommand send" -l no-fsync -d 'Do not fsync deliveries: faster, still safe against any process being killed, not against a power cut'
complete -c af-bus -n "__fish_af_bus_using_subcommand send" -l pretty -d 'Print JSON indented over several lines, for people (implies --json)'
complete -c af-bus -n "__fish_af_bus_using_subcommand send" -s h -l help -d 'Print help'
complete -c af-bus -n "__fish_af_bus_using_subcommand broadcast" -l project -d 'Only the agents of this project' -r
complete -c af-bus -n "__fish_af_bus_using_subcommand broadcast" -s p -l priority -d 'critical, high, normal or low' -r
complete -c af-bus -n "__fish_af_bus_using_subcommand broadcast" -l ttl -d 'Drop the message to the dead letters if nobody took it within SECS' -r
complete -c af-bus -n "__fish_af_bus_using_subcommand broadcast" -l json -d 'Print JSON (one document, or JSON lines for several messages) instead of text'
complete -c af-bus -n "__fish_af_bus_using_subcommand broadcast" -l no-fsync -d 'Do not fsync deliveries: faster, still safe against any process being killed, not against a power cut'
complete -c af-bus -n "__fish_af_bus_using_subcommand broadcast" -l pretty -d 'Print JSON indented over several lines, for people (implies --json)'
complete -c af-bus -n "__fish_af_bus_using_subcommand broadcast" -s h -l help -d 'Print help'
complete -c af-bus -n "__fish_af_bus_using_subcommand publish" -s t -l topic -d 'The topic, e.g. tasks.results' -r
complete -c af-bus -n "__fish_af_bus_using_subcommand publish" -s p -l priority -d 'critical, high, normal or low' -r
complete -c af-bus -n "__fish_af_bus_using_subcommand publish" -l ttl -d 'Drop the message to the dead letters if nobody took it within SECS' -r
complete -c af-bus -n "__fish_af_bus_using_subcommand publish" -l json -d 'Print JSON (one document, or JSON lines for several messages) instead of text'
complete -c af-bus -n "__fish_af_bus_using_subcommand publish" -l no-fsync -d 'Do not fsync deliveries: faster, still safe against any process being killed, not against a power cut'
complete -c af-bus -n "__fish_af_bus_using_subcommand publish" -l pretty -d 'Print JSON indented over several lines, for people (implies --json)'
complete -c af-bus -n "__fish_af_bus_using_subcommand publish" -s h -l help -d 'Print help'
complete -c af-bus -n "__fish_af_bus_using_subcommand subscribe" -s t -l topic -d 'The topic pattern: `*` matches any run of characters (health, tasks.*, *)' -r
complete -c af-bus -n "__fish_af_bus_using_subcommand subscribe" -l json -d 'Print JSON (one document, or JSON lines for several messages) instead of text'
complete -c af-bus -n "__fish_af_bus_using_subcommand subscribe" -l no-fsync -d 'Do not fsync deliveries: faster, still safe against any process being killed, not against a power cut'
complete -c af-bus -n "__fish_af_bus_using_subcommand subscribe" -l pretty -d 'Print JSON indented over several lines, for people (implies --json)'
complete -c af-bus -n "__fish_af_bus_using_subcommand subscribe" -s h -l help -d 'Print help'
complete -c af-bus -n "__fish_af_bus_using_subcommand unsubscribe" -l json -d 'Print JSON (one document, or JSON lines for several messages) instead of text'
complete -c af-bus -n "__fish_af_bus_using_subcommand unsubscribe" -l no-fsync -d 'Do not fsync deliveries: faster, still safe against any process being killed, not against a power cut'
complete -c af-bus -n "__fish_af_bus_using_subcommand unsubscribe" -l pretty -d 'Print JSON indented over several lines, for people (implies --json)'
complete -c af-bus -n "__fish_af_bus_using_subcommand unsubscribe" -s h -l help -d 'Print help'
complete -c af-bus -n "__fish_af_bus_using_subcommand recv" -l timeout -d 'With --wait, give up after SECS (exit 5)' -r
complete -c af-bus -n "__fish_af_bus_using_subcommand recv" -s n -l max -d 'Take up to N messages (JSON lines with --json)' -r
complete -c af-bus -n "__fish_af_bus_using_subcommand recv" -l visibility -d 'Unless acked within SECS, the message returns to the queue' -r
complete -c af-bus -n "__fish_af_bus_using_subcommand recv" -s w -l wait -d 'Wait for a message (woken by the queue\'s named pipe); SIGINT or SIGTERM ends it (exit 130)'
complete -c af-bus -n "__fish_af_bus_using_subcommand recv" -l ack -d 'Ack at once (at most once delivery)'
complete -c af-bus -n "__fish_af_bus_using_subcommand recv" -l json -d 'Print JSON (one document, or JSON lines for several messages) instead of text'
complete -c af-bus -n "__fish_af_bus_using_subcommand recv" -l no-fsync -d 'Do not fsync deliveries: faster, still safe against any process being killed, not against a power cut'
complete -c af-bus -n "__fish_af_bus_using_subcommand recv" -l pretty -d 'Print JSON indented over several lines, for people (implies --json)'
complete -c af-bus -n "__fish_af_bus_using_subcommand recv" -s h -l help -d 'Print help'
complete -c af-bus -n "__fish_af_bus_using_subcommand ack" -l json -d 'Print JSON (one document, or JSON lines for several messages) instead of text'
complete -c af-bus -n "__fish_af_bus_using_subcommand ack" -l no-fsync -d 'Do not fsync deliveries: faster, still safe against any process being killed, not against a power cut'
complete -c af-bus -n "__fish_af_bus_using_subcommand ack" -l pretty -d 'Print JSON indented over several lines, for people (implies --json)'
complete -c af-bus -n "__fish_af_bus_using_subcommand ack" -s h -l help -d 'Print help'
complete -c af-bus -n "__fish_af_bus_using_subcommand nack" -l delay -d 'Make it visible again only after SECS' -r
complete -c af-bus -n "__fish_af_bus_using_subcommand nack" -l json -d 'Print JSON (one document, or JSON lines for several messages) instead of text'
complete -c af-bus -n "__fish_af_bus_using_subcommand nack" -l no-fsync -d 'Do not fsync deliveries: faster, still safe against any process being killed, not against a power cut'
complete -c af-bus -n "__fish_af_bus_using_subcommand nack" -l pretty -d 'Print JSON indented over several lines, for people (implies --json)'
complete -c af-bus -n "__fish_af_bus_using_subcommand nack" -s h -l help -d 'Print help'
complete -c af-bus -n "__fish_af_bus_using_subcommand request" -l to -d 'The queue: an agent id, pool:PROJECT, a subscription; QUEUE@HOST for a queue on another host (the response comes back through the bridges)' -r
complete -c af-bus -n "__fish_af_bus_using_subcommand request" -l timeout -d 'Give up after SECS (exit 5)' -r
complete -c af-bus -n "__fish_af_bus_using_subcommand request" -s p -l priority -d 'critical, high, normal or low' -r
complete -c af-bus -n "__fish_af_bus_using_subcommand request" -l ttl -d 'Drop the message to the dead letters if nobody took it within SECS' -r
complete -c af-bus -n "__fish_af_bus_using_subcommand request" -l no-fail -d 'Exit 0 on any answer, `"ok": false` too'
complete -c af-bus -n "__fish_af_bus_using_subcommand request" -l queue-only -d 'Say nothing when the agent asked is not running (the request waits in its inbox)'
complete -c af-bus -n "__fish_af_bus_using_subcommand request" -l json -d 'Print JSON (one document, or JSON lines for several messages) instead of text'
complete -c af-bus -n "__fish_af_bus_using_subcommand request" -l no-fsync -d 'Do not fsync deliveries: faster, still safe against any process being killed, not against a power cut'
complete -c af-bus -n "__fish_af_bus_using_subcommand request" -l pretty -d 'Print JSON indented over several lines, for people (implies --json)'
complete -c af-bus -n "__fish_af_bus_using_subcommand request" -s h -l help -d 'Print help'
complete -c af-bus -n "__fish_af_bus_using_subcommand reply" -l json -d 'Print JSON (one document, or JSON lines for several messages) instead of text'
complete -c af-bus -n "__fish_af_bus_using_subcommand reply" -l no-fsync -d 'Do not fsync deliveries: faster, still safe against any process being killed, not against a power cut'
complete -c af-bus -n "__fish_af_bus_using_subcommand reply" -l pretty -d 'Print JSON indented over several lines, for people (implies --json)'
complete -c af-bus -n "__fish_af_bus_using_subcommand reply" -s h -l help -d 'Print help'
complete -c af-bus -n "__fish_af_bus_using_subcommand history" -l limit -d 'At most this many (the latest)' -r
complete -c af-bus -n "__fish_af_bus_using_subcommand history" -l json -d 'Print JSON (one document, or JSON lines for several messages) instead of text'
complete -c af-bus -n "__fish_af_bus_using_subcommand history" -l no-fsync -d 'Do not fsync deliveries: faster, still safe against any process being killed, not against a power cut'
complete -c af-bus -n "__fish_af_bus_using_subcommand history" -l pretty -d 'Print JSON indented over several lines, for people (implies --json)'
complete -c af-bus -n "__fish_af_bus_using_subcommand history" -s h -l help -d 'Print help'
complete -c af-bus -n "__fish_af_bus_using_subcommand clear" -l json -d 'Print JSON (one document, or JSON lines for several messages) instead of text'
complete -c af-bus -n "__fish_af_bus_using_subcommand clear" -l no-fsync -d 'Do not fsync deliveries: faster, still safe against any process being killed, not against a power cut'
complete -c af-bus -n "__fish_af_bus_using_subcommand clear" -l pretty -d 'Print JSON indented over several lines, for people (implies --json)'
complete -c af-bus -n "__fish_af_bus_using_subcommand clear" -s h -l help -d 'Print help'
complete -c af-bus -n "__fish_af_bus_using_subcommand stats" -l redis -d 'The Redis the hosts meet through: redis://[user:password@]host:port[/db], or rediss:// for TLS (checked against the system\'s roots, or the CA in the PEM file AF_REDIS_CA; AF_REDIS_CERT and AF_REDIS_KEY give a client certificate). This host\'s name is AF_HOST, else the hostname' -r
complete -c af-bus -n "__fish_af_bus_using_subcommand stats" -l cluster -d 'Also the cluster-wide pools, read from Redis (AF_REDIS_URL): per project and lane (priority), the tasks waiting in its stream, those a host\'s bridge took and has not acked yet (by host), and how long the oldest has waited (JSON: clusterPools)'
complete -c af-bus -n "__fish_af_bus_using_subcommand stats" -l json -d 'Print JSON (one document, or JSON lines for several messages) instead of text'
complete -c af-bus -n "__fish_af_bus_using_subcommand stats" -l no-fsync -d 'Do not fsync deliveries: faster, still safe against any process being killed, not against a power cut'
complete -c af-bus -n "__fish_af_bus_using_subcommand stats" -l pretty -d 'Print JSON indented over several lines, for people (implies --json)'
complete -c af-bus -n "__fish_af_bus_using_subcommand stats" -s h -l help -d 'Print help'
complete -c af-bus -n "__fish_af_bus_using_subcommand tail" -s t -l topic -d 'The topic pattern' -r
complete -c af-bus -n "__fish_af_bus_using_subcommand tail" -l json -d 'Print JSON (one document, or JSON lines for several messages) instead of text'
complete -c af-bus -n "__fish_af_bus_using_subcommand tail" -l no-fsync -d 'Do not fsync deliveries: faster, still safe against any process being killed, not against a power cut'
complete -c af-bus -n "__fish_af_bus_using_subcommand tail" -l pretty -d 'Print JSON indented over several lines, for people (implies --json)'
complete -c af-bus -n "__fish_af_bus_using_subcommand tail" -s h -l help -d 'Print help'
complete -c af-bus -n "__fish_af_bus_using_subcommand dead" -l json -d 'Print JSON (one document, or JSON lines for several messages) instead of text'
complete -c af-bus -n "__fish_af_bus_using_subcommand dead" -l no-fsync -d 'Do not fsync deliveries: faster, still safe against any process being killed, not against a power cut'
complete -c af-bus -n "__fish_af_bus_using_subcommand dead" -l pretty -d 'Print JSON indented over several lines, for people (implies --json)'
complete -c af-bus -n "__fish_af_bus_using_subcommand dead" -s h -l help -d 'Print help'
complete -c af-bus -n "__fish_af_bus_using_subcommand interrupt" -l timeout -d 'Give up when its af-wrap has not answered after SECS (exit 5)' -r
complete -c af-bus -n "__fish_af_bus_using_subcommand interrupt" -l json -d 'Print JSON (one document, or JSON lines for several messages) instead of text'
complete -c af-bus -n "__fish_af_bus_using_subcommand interrupt" -l no-fsync -d 'Do not fsync deliveries: faster, still safe against any process being killed, not against a power cut'
complete -c af-bus -n "__fish_af_bus_using_subcommand interrupt" -l pretty -d 'Print JSON indented over several lines, for people (implies --json)'
complete -c af-bus -n "__fish_af_bus_using_subcommand interrupt" -s h -l help -d 'Print help'
complete -c af-bus -n "__fish_af_bus_using_subcommand bridge" -l redis -d 'The Redis the hosts meet through: redis://[user:password@]host:port[/db], or rediss:// for TLS (checked against the system\'s roots, or the CA in the PEM file AF_REDIS_CA; AF_REDIS_CERT and AF_REDIS_KEY give a client certificate). This host\'s name is AF_HOST, else the hostname' -r
complete -c af-bus -n "__fish_af_bus_using_subcommand bridge" -l allow-control -d 'Run the control requests of other hosts (af-spawn stop|start|restart|pause|resume ID@THISHOST, af-checkpoint create|rollback ID@THISHOST, af-health ack ALERT@THISHOST); without it they are refused (the caller exits 4, error conflict)'
complete -c af-bus -n "__fish_af_bus_using_subcommand bridge" -l leave -d 'Leave the cluster instead, and exit: this host is taken out of the Redis set af:hosts with its heartbeat and published agents, so that the other hosts stop mirroring topics and broadcasts to it and raise no host.unreachable about it; publish and broadcast stop copying into the outbox (the copies in it go to its dead letters). Stop this host\'s bridge first (exit 4 while one runs); running it again joins again'
complete -c af-bus -n "__fish_af_bus_using_subcommand bridge" -l json -d 'Print JSON (one document, or JSON lines for several messages) instead of text'
complete -c af-bus -n "__fish_af_bus_using_subcommand bridge" -l no-fsync -d 'Do not fsync deliveries: faster, still safe against any process being killed, not against a power cut'
complete -c af-bus -n "__fish_af_bus_using_subcommand bridge" -l pretty -d 'Print JSON indented over several lines, for people (implies --json)'
complete -c af-bus -n "__fish_af_bus_using_subcommand bridge" -s h -l help -d 'Print help'
complete -c af-bus -n "__fish_af_bus_using_subcommand retry" -l json -d 'Print JSON (one document, or JSON lines for several messages) instead of text'
complete -c af-bus -n "__fish_af_bus_using_subcommand retry" -l no-fsync -d 'Do not fsync deliveries: faster, still safe against any process being killed, not against a power cut'
complete -c af-bus -n "__fish_af_bus_using_subcommand retry" -l pretty -d 'Print JSON indented over several lines, for people (implies --json)'
complete -c af-bus -n "__fish_af_bus_using_subcommand retry" -s h -l help -d 'Print help'
complete -c af-bus -n "__fish_af_bus_using_subcommand help; and not __fish_seen_subcommand_from send broadcast publish subscribe unsubscribe recv ack nack request reply history clear stats tail dead interrupt bridge retry help" -f -a "send" -d 'Send a message to a queue (an agent id, pool:PROJECT, or a subscription); prints its id'
complete -c af-bus -n "__fish_af_bus_using_subcommand help; and not __fish_seen_subcommand_from send broadcast publish subscribe unsubscribe recv ack nack request reply history clear stats tail dead interrupt bridge retry help" -f -a "broadcast" -d 'Send a message to every agent\'s inbox (or every agent of a project)'
complete -c af-bus -n "__fish_af_bus_using_subcommand help; and not __fish_seen_subcommand_from send broadcast publish subscribe unsubscribe recv ack nack request reply history clear stats tail dead interrupt bridge retry help" -f -a "publish" -d 'Publish an event on a topic, to every subscription whose pattern matches (none is fine)'
complete -c af-bus -n "__fish_af_bus_using_subcommand help; and not __fish_seen_subcommand_from send broadcast publish subscribe unsubscribe recv ack nack request reply history clear stats tail dead interrupt bridge retry help" -f -a "subscribe" -d 'Make a durable subscription: a queue that gets every message published on a matching topic'
complete -c af-bus -n "__fish_af_bus_using_subcommand help; and not __fish_seen_subcommand_from send broadcast publish subscribe unsubscribe recv ack nack request reply history clear stats tail dead interrupt bridge retry help" -f -a "unsubscribe" -d 'Remove a subscription and its queue'
complete -c af-bus -n "__fish_af_bus_using_subcommand help; and not __fish_seen_subcommand_from send broadcast publish subscribe unsubscribe recv ack nack request reply history clear stats tail dead interrupt bridge retry help" -f -a "recv" -d 'Take the next message(s) of a queue, by priority then age; exit 1 when there is none'
complete -c af-bus -n "__fish_af_bus_using_subcommand help; and not __fish_seen_subcommand_from send broadcast publish subscribe unsubscribe recv ack nack request reply history clear stats tail dead interrupt bridge retry help" -f -a "ack" -d 'Acknowledge received messages: they move to the history'
complete -c af-bus -n "__fish_af_bus_using_subcommand help; and not __fish_seen_subcommand_from send broadcast publish subscribe unsubscribe recv ack nack request reply history clear stats tail dead interrupt bridge retry help" -f -a "nack" -d 'Give a received message back (its attempts raised), at once or after a delay'
complete -c af-bus -n "__fish_af_bus_using_subcommand help; and not __fish_seen_subcommand_from send broadcast publish subscribe unsubscribe recv ack nack request reply history clear stats tail dead interrupt bridge retry help" -f -a "request" -d 'Send a request and wait for its correlated response; prints the response\'s payload, and exits 1 when the answer says `"ok": false`'
complete -c af-bus -n "__fish_af_bus_using_subcommand help; and not __fish_seen_subcommand_from send broadcast publish subscribe unsubscribe recv ack nack request reply history clear stats tail dead interrupt bridge retry help" -f -a "reply" -d 'Answer a request: a response with its correlation id, sent to its reply-to queue'
complete -c af-bus -n "__fish_af_bus_using_subcommand help; and not __fish_seen_subcommand_from send broadcast publish subscribe unsubscribe recv ack nack request reply history clear stats tail dead interrupt bridge retry help" -f -a "history" -d 'What a queue received and acked, oldest first'
complete -c af-bus -n "__fish_af_bus_using_subcommand help; and not __fish_seen_subcommand_from send broadcast publish subscribe unsubscribe recv ack nack request reply history clear stats tail dead interrupt bridge retry help" -f -a "clear" -d 'Remove every waiting, claimed, dead and acked message of a queue'
complete -c af-bus -n "__fish_af_bus_using_subcommand help; and not __fish_seen_subcommand_from send broadcast publish subscribe unsubscribe recv ack nack request reply history clear stats tail dead interrupt bridge retry help" -f -a "stats" -d 'Depths per queue and priority, in flight, dead letters, acked and ack rates'
complete -c af-bus -n "__fish_af_bus_using_subcommand help; and not __fish_seen_subcommand_from send broadcast publish subscribe unsubscribe recv ack nack request reply history clear stats tail dead interrupt bridge retry help" -f -a "tail" -d 'Print messages published on matching topics as JSON lines, as they arrive, until SIGINT or SIGTERM (exit 130)'
complete -c af-bus -n "__fish_af_bus_using_subcommand help; and not __fish_seen_subcommand_from send broadcast publish subscribe unsubscribe recv ack nack request reply history clear stats tail dead interrupt bridge retry help" -f -a "dead" -d 'List a queue\'s dead letters, with the reason each died'
complete -c af-bus -n "__fish_af_bus_using_subcommand help; and not __fish_seen_subcommand_from send broadcast publish subscribe unsubscribe recv ack nack request reply history clear stats tail dead interrupt bridge retry help" -f -a "interrupt" -d 'Interrupt the running turn of a claude-code agent (its task is answered `interrupted`); exit 1 when no turn runs'
complete -c af-bus -n "__fish_af_bus_using_subcommand help; and not __fish_seen_subcommand_from send broadcast publish subscribe unsubscribe recv ack nack request reply history clear stats tail dead interrupt bridge retry help" -f -a "bridge" -d 'Link this host\'s spool to other hosts\' through Redis Streams, until SIGTERM or SIGINT (exit 0): messages of the outbox (bridge:out, sent to QUEUE@HOST) go to their host\'s stream and are acked here once Redis has them; entries of this host\'s stream (af:host:HOST:in, consumer group af-bridge) are delivered once each into their local queues, then acked in Redis. Bad entries go to the dead letters of bridge:in. Reconnects with a capped backoff'
complete -c af-bus -n "__fish_af_bus_using_subcommand help; and not __fish_seen_subcommand_from send broadcast publish subscribe unsubscribe recv ack nack request reply history clear stats tail dead interrupt bridge retry help" -f -a "retry" -d 'Put a dead letter back into its queue, attempts reset'
complete -c af-bus -n "__fish_af_bus_using_subcommand help; and not __fish_seen_subcommand_from send broadcast publish subscribe unsubscribe recv ack nack request reply history clear stats tail dead interrupt bridge retry help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c af-bus -n "__fish_af_bus_using_subcommand send" -f -l to -r -a "(af-bus complete queues 2>/dev/null)"
complete -c af-bus -n "__fish_af_bus_using_subcommand send" -f -l reply-to -r -a "(af-bus complete queues 2>/dev/null)"
complete -c af-bus -n "__fish_af_bus_using_subcommand publish" -f -l topic -s t -r -a "(af-bus complete topics 2>/dev/null)"
complete -c af-bus -n "__fish_af_bus_using_subcommand subscribe" -f -l topic -s t -r -a "(af-bus complete topics 2>/dev/null)"
complete -c af-bus -n "__fish_af_bus_using_subcommand recv" -f -a "(af-bus complete queues 2>/dev/null)"
complete -c af-bus -n "__fish_af_bus_using_subcommand ack" -f -a "(af-bus complete queues 2>/dev/null)"
complete -c af-bus -n "__fish_af_bus_using_subcommand nack" -f -a "(af-bus complete queues 2>/dev/null)"
complete -c af-bus -n "__fish_af_bus_using_subcommand request" -f -l to -r -a "(af-bus complete queues 2>/dev/null)"
complete -c af-bus -n "__fish_af_bus_using_subcommand history" -f -a "(af-bus complete queues 2>/dev/null)"
complete -c af-bus -n "__fish_af_bus_using_subcommand clear" -f -a "(af-bus complete queues 2>/dev/null)"
complete -c af-bus -n "__fish_af_bus_using_subcommand tail" -f -l topic -s t -r -a "(af-bus complete topics 2>/dev/null)"
complete -c af-bus -n "__fish_af_bus_using_subcommand dead" -f -a "(af-bus complete queues 2>/dev/null)"
complete -c af-bus -n "__fish_af_bus_using_subcommand retry" -f -a "(af-bus complete queues 2>/dev/null)"
