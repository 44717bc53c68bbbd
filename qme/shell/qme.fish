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
        switch "$argv[1]"
            case on off status
                __qme_switch $argv[1]
            case '*'
                command qme $argv
        end
    end

    function __qme_switch
        if not set -q QME_SESSION
            if test $argv[1] = on
                command qme session --shell (status fish-path)
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

    if set -q QME_SESSION
        function __qme_preexec --on-event fish_preexec
            test $__qme_recording = 1; or return 0
            # Percent-encoded (all but letters, digits and a few marks): nothing in
            # them can end or break the mark, and no pipe (a thread) is needed.
            printf '\e]6973;qme;S;%s;%s;c;%s\a' $fish_pid \
                (string escape --style=url -- $PWD) (string escape --style=url -- $argv[1])
        end

        function __qme_postexec --on-event fish_postexec
            set -l last $status
            printf '\e]6973;qme;E;%s;%s\a' $fish_pid $last
        end
    end
end
