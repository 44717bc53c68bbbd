# qme shell integration for fish.
#
#   qme init fish | source     in ~/.config/fish/config.fish; then `qme on`
#
# Outside a qme session this only defines the `qme` function below. Inside one
# (`qme on`), fish_preexec and fish_postexec handlers print invisible marks that
# qme's session proxy turns into one task per command. They start no process,
# leave $status and $pipestatus alone, and do nothing if qme is missing.

if status is-interactive; and not set -q __qme_loaded
    set -g __qme_loaded 1
    set -g __qme_recording (set -q QME_SESSION_RECORD; and echo $QME_SESSION_RECORD; or echo 0)

    function qme
        set -l last $status
        switch "$argv[1]"
            case on off
                __qme_switch $argv[1] $last
            case status # with --json: qme says it, told what the hooks know
                if test (count $argv) -gt 1
                    QME_HOOKS="fish $__qme_recording" command qme $argv
                else
                    __qme_switch status $last
                end
            case doctor # what qme doctor tells
                QME_HOOKS="fish $__qme_recording" command qme $argv
            case '*'
                command qme $argv
        end
    end

    function __qme_switch
        if not set -q QME_SESSION
            if test $argv[1] = on
                __qme_on $argv[2]
            else
                echo "qme: not recording: this shell is not in a qme session ('qme on' starts one)" >&2
            end
            return
        end
        switch $argv[1]
            case on
                set -g __qme_recording 1
                echo "qme: recording this shell's commands" >&2
            case off
                set -g __qme_recording 0
                echo "qme: recording paused ('qme on' resumes)" >&2
            case status
                if test $__qme_recording = 1
                    echo "qme: recording (session $QME_SESSION)" >&2
                else
                    echo "qme: paused (session $QME_SESSION)" >&2
                end
        end
    end

    # `qme on` in a live shell: the session shell gets this one's state (functions
    # and aliases, global variables, $status; universal ones and the history fish
    # shares by itself) from a snapshot in a private folder, which qme reads and
    # deletes at once.
    function __qme_on --argument-names last
        builtin history save # fish shares its history through its file: all of it, now
        set -l tmp /tmp
        set -q TMPDIR[1]; and set tmp $TMPDIR
        set -l dir (command mktemp -d $tmp/qme-state.XXXXXXXX 2>/dev/null)
        if test -n "$dir"; and __qme_snapshot $last $dir/variables >$dir/state 2>/dev/null
            QME_STATE=$dir command qme session --shell (status fish-path)
        else
            echo "qme: could not save this shell's state; the session starts from your config" >&2
            QME_STATE= command qme session --shell (status fish-path)
        end
        test -n "$dir"; and test -e $dir; and command rm -rf -- $dir
    end

    # Few builtins per name (fish spends ~50 us on each): the names are sorted out
    # with one regex each, and the definitions printed by one `functions` call.
    # The variables go to the file named by the second argument, each as a line
    # `<tab>-g NAME` (or -gx) and its elements escaped, one a line: qme makes the
    # `set` commands (qme/session/state.py), sparing fish a substitution each.
    function __qme_snapshot --argument-names last variables
        set -l names (string match -rv -- '^__qme_' (functions --all --names))
        # Autoloaded ones load again by themselves: only a name with a file in
        # $fish_function_path may be one, and is asked about.
        set -l files (string replace -r -- '^.*/(.*)\.fish$' '$1' $fish_function_path/*.fish)
        set -l mine $names
        set -l maybe
        if set -q files[1]
            # one pass of the long regex: the names with a file come out marked
            set -l any '^(?:'(string join '|' -- (string escape --style=regex -- $files))')$'
            set -l marked (string replace -r -- $any \t'$0' $names)
            set mine (string match -v -- \t'*' $marked)
            set -l filed (string replace -f -- \t '' $marked)
            # Asking about a name loads its file (tens of ms for fish's ~200): of
            # fish's own, only the prompt functions a user redefines by hand
            set -l stock (string replace -r -- '^.*/(.*)\.fish$' '$1' $__fish_data_dir/functions/*.fish)
            set -l prompts fish_prompt fish_right_prompt fish_greeting fish_title fish_mode_prompt
            set -l own '^(?:'(string join '|' -- (string escape --style=regex -- $stock))')$'
            set maybe (string match -rv -- $own $filed)
            set -a maybe (string match -r -- $own $filed | string match -r -- '^(?:'(string join '|' -- $prompts)')$')
        end
        if set -q maybe[1]
            set -l dirs '\t(?:'(string join '|' -- (string escape --style=regex -- $fish_function_path))')/[^/]*$'
            set -a mine (for name in $maybe; printf '%s\t' $name; functions --details -- $name; end |
                string match -rv -- $dirs | string replace -r -- '\t.*' '')
        end
        set -q mine[1]; and functions -- $mine
        set -l skip '^(?:__qme_|__fish_|_$|QME_SESSION|QME_STATE$|(?:PWD|SHLVL|status|pipestatus|'
        set skip $skip'fish_pid|hostname|version|FISH_VERSION|history|CMD_DURATION|COLUMNS|LINES|'
        set skip $skip'fish_kill_signal|last_pid|status_generation|fish_private_mode|EUID|umask|argv)$)'
        set -l globals (string match -rv -- $skip (set --names --global))
        set -l exported (set --names --export)
        if set -q exported[1]
            set -l any '^(?:'(string join '|' -- (string escape --style=regex -- $exported))')$'
            set exported (string match -r -- $any $globals)
            set globals (string match -rv -- $any $globals)
        end
        begin
            for name in $globals
                echo \t-g $name
                string escape -- $$name
            end
            for name in $exported
                echo \t-gx $name
                string escape -- $$name
            end
        end >$variables
        echo set -g __qme_status $last
    end

    function __qme_return
        return $argv[1]
    end

    function __qme_install
    end

    # The shell `qme on` was typed in has greeted the user already: the session's
    # fish_greeting says nothing, once.
    function __qme_no_greeting
        functions -q fish_greeting; and functions -c fish_greeting __qme_greeting
        function fish_greeting
            functions -e fish_greeting
            if functions -q __qme_greeting
                functions -c __qme_greeting fish_greeting
                functions -e __qme_greeting
            end
        end
    end

    if set -q QME_SESSION
        # A word of a line, in $words: a named group sets that variable itself, with
        # no command substitution (~50 us each in fish).
        set -g __qme_word '(?<words>[^\s|&;()<>{}"\'$=]+)'

        function __qme_preexec --on-event fish_preexec
            test $__qme_recording = 1; or return 0
            # Percent-encoded (all but letters, digits and a few marks): nothing in
            # them can end or break the mark, and no pipe (a thread) is needed. One
            # command substitution, a line each (~50 us apiece).
            printf '\e]6973;qme;S;%s;%s;c;%s\a' $fish_pid (string escape --style=url -- $PWD $argv[1])
        end

        # A mark for each function (an alias is one) the line uses, and those use in
        # turn, as they are after it ran, so that a rerun of the command has them
        # (qme/session/rerun.py); autoloaded ones load again by themselves.
        function __qme_uses --argument-names line
            set -l todo $line
            set -l seen qme
            while set -q todo[1]
                string match -qar -- $__qme_word $todo[1] # (sets $words: no substitution)
                set -e todo[1]
                for word in $words # most name no function: that is asked first
                    functions -q -- $word; or continue
                    contains -- $word $seen; and continue
                    set -a seen $word
                    string match -q -- '__qme_*' $word; and continue
                    set -l file (functions --details -- $word)
                    contains -- (string replace -r -- '/[^/]*$' '' $file) $fish_function_path
                    and continue
                    set -l text (functions -- $word | string collect)
                    printf '\e]6973;qme;D;%s;f;%s;%s\a' $fish_pid (string escape --style=url -- $word $text)
                    set -a todo $text
                end
            end
        end

        function __qme_postexec --on-event fish_postexec
            set -l last $status
            # fish says 0 of a job Ctrl-Z stopped: T tells the proxy it stopped
            if jobs -q
                set -l job (string split \t -- (jobs --last 2>/dev/null)[-1])
                if test "$job[4]" = stopped
                    and begin
                        test "$job[5]" = "$argv[1]"; or string match -qr '^\s*(fg|%)' -- $argv[1]
                    end
                    set last T
                end
            end
            if test $__qme_recording = 1
                # Most lines use no function: `functions -q` says how many of the
                # line's names are not functions (one at the end is none, so never
                # all of them are), and __qme_uses runs only if one is.
                string match -qar -- $__qme_word $argv[1]
                functions -q -- $words __qme_no_such_function
                set -q words[$status]; and __qme_uses $argv[1]
            end
            printf '\e]6973;qme;E;%s;%s\a' $fish_pid $last
        end
    end
end
