# qme shell integration for zsh.
#
#   eval "$(qme init zsh)"     in ~/.zshrc; then `qme on` records every command
#
# Outside a qme session this only defines the `qme` function below. Inside one
# (`qme on`), preexec and precmd hooks print invisible marks that qme's session
# proxy turns into one task per command. They start no process, leave $? and
# $pipestatus alone, and do nothing if qme is missing.

[[ -o interactive ]] || return 0
(( ${+__qme_loaded} )) && return 0
typeset -g __qme_loaded=1
typeset -g __qme_recording=${QME_SESSION_RECORD:-0}

# Percent-encode what could end or break a mark: '%', ESC, BEL and ';'.
__qme_encode() {
    REPLY=${1//\%/%25}
    REPLY=${REPLY//$'\e'/%1B}
    REPLY=${REPLY//$'\a'/%07}
    REPLY=${REPLY//;/%3B}
}

__qme_preexec() {
    [[ $__qme_recording == 1 ]] || return 0
    local cwd
    __qme_encode "$PWD"; cwd=$REPLY
    __qme_encode "$1"
    printf '\e]6973;qme;S;%s;%s;c;%s\a' "$$" "$cwd" "$REPLY"
}

__qme_precmd() {
    printf '\e]6973;qme;E;%s;%s\a' "$$" "$1"
}

qme() {
    case ${1-} in
        on|off|status) __qme_switch "$1" ;;
        *) command qme "$@" ;;
    esac
}

__qme_switch() {
    if [[ -z ${QME_SESSION-} ]]; then
        case $1 in
            on)
                # argv[0] is a path, or a name to find in PATH ("-zsh" for a login shell)
                local zsh=${ZSH_ARGZERO#-}
                if [[ $zsh == */* ]]; then zsh=${zsh:A}; else zsh=${commands[$zsh]:-zsh}; fi
                command qme session --shell "$zsh" ;;
            *) print -u2 "qme: not recording: this shell is not in a qme session ('qme on' starts one)" ;;
        esac
        return
    fi
    case $1 in
        on) __qme_recording=1; print -u2 "qme: recording this shell's commands" ;;
        off) __qme_recording=0; print -u2 "qme: recording paused ('qme on' resumes)" ;;
        status)
            if [[ $__qme_recording == 1 ]]; then
                print -u2 "qme: recording (session $QME_SESSION)"
            else
                print -u2 "qme: paused (session $QME_SESSION)"
            fi ;;
    esac
}

if [[ -n ${QME_SESSION-} ]]; then
    autoload -Uz add-zsh-hook
    add-zsh-hook preexec __qme_preexec
    # precmd functions run with $? still the command's; ours must see it first.
    precmd_functions=(__qme_precmd_status ${precmd_functions:#__qme_precmd_status})
    __qme_precmd_status() { __qme_precmd $?; }
fi
