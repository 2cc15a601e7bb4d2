# Print an optspec for argparse to handle cmd's options that are independent of any subcommand.
function __fish_af_checkpoint_global_optspecs
    string join \n json pretty h/help V/version
end

function __fish_af_checkpoint_needs_command
    # Figure out if the current invocation already has a command.
    set -l cmd (commandline -opc)
    set -e cmd[1]
    argparse -s (__fish_af_checkpoint_global_optspecs) -- $cmd 2>/dev/null
    or return
    if set -q argv[1]
        # Also print the command, so this can be used to figure out what it is.
        echo $argv[1]
        return 1
    end
    return 0
end

function __fish_af_checkpoint_using_subcommand
    set -l cmd (__fish_af_checkpoint_needs_command)
    test -z "$cmd"
    and return 1
    contains -- $cmd[1] $argv
end

complete -c af-checkpoint -n "__fish_af_checkpoint_needs_command" -l json -d 'Print JSON (one document) instead of text'
complete -c af-checkpoint -n "__fish_af_checkpoint_needs_command" -l pretty -d 'Print JSON indented over several lines, for people (implies --json)'
complete -c af-checkpoint -n "__fish_af_checkpoint_needs_command" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c af-checkpoint -n "__fish_af_checkpoint_needs_command" -s V -l version -d 'Print version'
complete -c af-checkpoint -n "__fish_af_checkpoint_needs_command" -f -a "create" -d 'Take a checkpoint of an agent; prints its id'
complete -c af-checkpoint -n "__fish_af_checkpoint_needs_command" -f -a "ls" -d 'List an agent\'s checkpoints, oldest first'
complete -c af-checkpoint -n "__fish_af_checkpoint_needs_command" -f -a "show" -d 'Show one checkpoint'
complete -c af-checkpoint -n "__fish_af_checkpoint_needs_command" -f -a "diff" -d 'What changed in the agent\'s working tree since a checkpoint (A added, D deleted, M modified)'
complete -c af-checkpoint -n "__fish_af_checkpoint_needs_command" -f -a "rm" -d 'Remove a checkpoint'
complete -c af-checkpoint -n "__fish_af_checkpoint_needs_command" -f -a "prune" -d 'Remove all but the newest N checkpoints'
complete -c af-checkpoint -n "__fish_af_checkpoint_needs_command" -f -a "rollback" -d 'Roll an agent back to a checkpoint: stop it if it runs, restore, start it again'
complete -c af-checkpoint -n "__fish_af_checkpoint_needs_command" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c af-checkpoint -n "__fish_af_checkpoint_using_subcommand create" -s m -l message -d 'What this checkpoint is' -r
complete -c af-checkpoint -n "__fish_af_checkpoint_using_subcommand create" -l json -d 'Print JSON (one document) instead of text'
complete -c af-checkpoint -n "__fish_af_checkpoint_using_subcommand create" -l pretty -d 'Print JSON indented over several lines, for people (implies --json)'
complete -c af-checkpoint -n "__fish_af_checkpoint_using_subcommand create" -s h -l help -d 'Print help'
complete -c af-checkpoint -n "__fish_af_checkpoint_using_subcommand ls" -l json -d 'Print JSON (one document) instead of text'
complete -c af-checkpoint -n "__fish_af_checkpoint_using_subcommand ls" -l pretty -d 'Print JSON indented over several lines, for people (implies --json)'
complete -c af-checkpoint -n "__fish_af_checkpoint_using_subcommand ls" -s h -l help -d 'Print help'
complete -c af-checkpoint -n "__fish_af_checkpoint_using_subcommand show" -l json -d 'Print JSON (one document) instead of text'
complete -c af-checkpoint -n "__fish_af_checkpoint_using_subcommand show" -l pretty -d 'Print JSON indented over several lines, for people (implies --json)'
complete -c af-checkpoint -n "__fish_af_checkpoint_using_subcommand show" -s h -l help -d 'Print help'
complete -c af-checkpoint -n "__fish_af_checkpoint_using_subcommand diff" -s p -l patch -d 'Print the full patch (a unified diff)'
complete -c af-checkpoint -n "__fish_af_checkpoint_using_subcommand diff" -l json -d 'Print JSON (one document) instead of text'
complete -c af-checkpoint -n "__fish_af_checkpoint_using_subcommand diff" -l pretty -d 'Print JSON indented over several lines, for people (implies --json)'
complete -c af-checkpoint -n "__fish_af_checkpoint_using_subcommand diff" -s h -l help -d 'Print help'
complete -c af-checkpoint -n "__fish_af_checkpoint_using_subcommand rm" -l json -d 'Print JSON (one document) instead of text'
complete -c af-checkpoint -n "__fish_af_checkpoint_using_subcommand rm" -l pretty -d 'Print JSON indented over several lines, for people (implies --json)'
complete -c af-checkpoint -n "__fish_af_checkpoint_using_subcommand rm" -s h -l help -d 'Print help'
complete -c af-checkpoint -n "__fish_af_checkpoint_using_subcommand prune" -l keep -d 'How many to keep' -r
complete -c af-checkpoint -n "__fish_af_checkpoint_using_subcommand prune" -l json -d 'Print JSON (one document) instead of text'
complete -c af-checkpoint -n "__fish_af_checkpoint_using_subcommand prune" -l pretty -d 'Print JSON indented over several lines, for people (implies --json)'
complete -c af-checkpoint -n "__fish_af_checkpoint_using_subcommand prune" -s h -l help -d 'Print help'
complete -c af-checkpoint -n "__fish_af_checkpoint_using_subcommand rollback" -l no-restart -d 'Leave the agent stopped afterwards'
complete -c af-checkpoint -n "__fish_af_checkpoint_using_subcommand rollback" -l reset-index -d 'Also set the git index to the checkpoint\'s tree (by default the index is left alone)'
complete -c af-checkpoint -n "__fish_af_checkpoint_using_subcommand rollback" -l json -d 'Print JSON (one document) instead of text'
complete -c af-checkpoint -n "__fish_af_checkpoint_using_subcommand rollback" -l pretty -d 'Print JSON indented over several lines, for people (implies --json)'
complete -c af-checkpoint -n "__fish_af_checkpoint_using_subcommand rollback" -s h -l help -d 'Print help'
complete -c af-checkpoint -n "__fish_af_checkpoint_using_subcommand help; and not __fish_seen_subcommand_from create ls show diff rm prune rollback help" -f -a "create" -d 'Take a checkpoint of an agent; prints its id'
complete -c af-checkpoint -n "__fish_af_checkpoint_using_subcommand help; and not __fish_seen_subcommand_from create ls show diff rm prune rollback help" -f -a "ls" -d 'List an agent\'s checkpoints, oldest first'
complete -c af-checkpoint -n "__fish_af_checkpoint_using_subcommand help; and not __fish_seen_subcommand_from create ls show diff rm prune rollback help" -f -a "show" -d 'Show one checkpoint'
complete -c af-checkpoint -n "__fish_af_checkpoint_using_subcommand help; and not __fish_seen_subcommand_from create ls show diff rm prune rollback help" -f -a "diff" -d 'What changed in the agent\'s working tree since a checkpoint (A added, D deleted, M modified)'
complete -c af-checkpoint -n "__fish_af_checkpoint_using_subcommand help; and not __fish_seen_subcommand_from create ls show diff rm prune rollback help" -f -a "rm" -d 'Remove a checkpoint'
complete -c af-checkpoint -n "__fish_af_checkpoint_using_subcommand help; and not __fish_seen_subcommand_from create ls show diff rm prune rollback help" -f -a "prune" -d 'Remove all but the newest N checkpoints'
complete -c af-checkpoint -n "__fish_af_checkpoint_using_subcommand help; and not __fish_seen_subcommand_from create ls show diff rm prune rollback help" -f -a "rollback" -d 'Roll an agent back to a checkpoint: stop it if it runs, restore, start it again'
complete -c af-checkpoint -n "__fish_af_checkpoint_using_subcommand help; and not __fish_seen_subcommand_from create ls show diff rm prune rollback help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c af-checkpoint -n "__fish_af_checkpoint_using_subcommand create" -f -a "(af-checkpoint complete agents 2>/dev/null)"
complete -c af-checkpoint -n "__fish_af_checkpoint_using_subcommand ls" -f -a "(af-checkpoint complete agents 2>/dev/null)"
complete -c af-checkpoint -n "__fish_af_checkpoint_using_subcommand show" -f -a "(af-checkpoint complete agents 2>/dev/null)"
complete -c af-checkpoint -n "__fish_af_checkpoint_using_subcommand show" -f -a "(af-checkpoint complete checkpoints (commandline -opc)[3] 2>/dev/null)"
complete -c af-checkpoint -n "__fish_af_checkpoint_using_subcommand diff" -f -a "(af-checkpoint complete agents 2>/dev/null)"
complete -c af-checkpoint -n "__fish_af_checkpoint_using_subcommand diff" -f -a "(af-checkpoint complete checkpoints (commandline -opc)[3] 2>/dev/null)"
complete -c af-checkpoint -n "__fish_af_checkpoint_using_subcommand rm" -f -a "(af-checkpoint complete agents 2>/dev/null)"
complete -c af-checkpoint -n "__fish_af_checkpoint_using_subcommand rm" -f -a "(af-checkpoint complete checkpoints (commandline -opc)[3] 2>/dev/null)"
complete -c af-checkpoint -n "__fish_af_checkpoint_using_subcommand prune" -f -a "(af-checkpoint complete agents 2>/dev/null)"
complete -c af-checkpoint -n "__fish_af_checkpoint_using_subcommand rollback" -f -a "(af-checkpoint complete agents 2>/dev/null)"
complete -c af-checkpoint -n "__fish_af_checkpoint_using_subcommand rollback" -f -a "(af-checkpoint complete checkpoints (commandline -opc)[3] 2>/dev/null)"
