# qme shell integration for bash (4.4 or newer).
#
#   eval "$(qme init bash)"     in ~/.bashrc; then `qme on` records every command
#
# Outside a qme session this only defines the `qme` function below. Inside one
# (`qme on`), the hooks print invisible marks that qme's session proxy turns into
# one task per command: PS0 prints where a command starts (one subshell, to read
# the line from history), PROMPT_COMMAND where it ends (builtins only). They
# never touch $? or PIPESTATUS, and if qme is missing they do nothing.
# shellcheck shell=bash

# Interactive shells only, and only once.
[[ $- == *i* ]] || return 0
[[ -n ${__qme_loaded-} ]] && return 0
__qme_loaded=1

__qme_recording=${QME_SESSION_RECORD:-0}

# Percent-encode what could end or break a mark: '%', ESC, BEL and ';'.
__qme_encode() {
    __qme_encoded=${1//%/%25}
    __qme_encoded=${__qme_encoded//$'\e'/%1B}
    __qme_encoded=${__qme_encoded//$'\a'/%07}
    __qme_encoded=${__qme_encoded//;/%3B}
}

# Runs in PS0's command substitution: a subshell, so it cannot change the shell.
__qme_preexec() {
    __qme_encode "$PWD"
    printf '\e]6973;qme;S;%s;%s;h;' "$$" "$__qme_encoded"
    HISTTIMEFORMAT='' builtin history 1
    printf '\a'
}

__qme_precmd() {
    local status=$?
    printf '\e]6973;qme;E;%s;%s\a' "$$" "$status"
    return "$status"
}

# shellcheck disable=SC2016 # expanded by bash when it shows PS0, not here
__qme_ps0='$(__qme_preexec)'

# Ours goes last in PS0, so that what the user's own PS0 prints is not recorded.
__qme_set_recording() {
    __qme_recording=$1
    PS0=${PS0-}
    PS0=${PS0//"$__qme_ps0"/}
    if [[ $1 == 1 ]]; then
        PS0=$PS0$__qme_ps0
    fi
}

qme() {
    case ${1-} in
        on | off | status) __qme_switch "$1" ;;
        *) command qme "$@" ;;
    esac
}

__qme_switch() {
    if [[ -z ${QME_SESSION-} ]]; then
        case $1 in
            on) command qme session --shell "${BASH:-bash}" ;;
            *) echo "qme: not recording: this shell is not in a qme session ('qme on' starts one)" >&2 ;;
        esac
        return
    fi
    case $1 in
        on) __qme_set_recording 1; echo "qme: recording this shell's commands" >&2 ;;
        off) __qme_set_recording 0; echo "qme: recording paused ('qme on' resumes)" >&2 ;;
        status)
            if [[ $__qme_recording == 1 ]]; then
                echo "qme: recording (session $QME_SESSION)" >&2
            else
                echo "qme: paused (session $QME_SESSION)" >&2
            fi
            ;;
    esac
}

if [[ -n ${QME_SESSION-} ]]; then
    # PROMPT_COMMAND may be a string or (bash 5.1+) an array; ours goes first so
    # that it sees the command's $?.
    if [[ -n ${PROMPT_COMMAND+set} && ${PROMPT_COMMAND@a} == *a* ]]; then
        PROMPT_COMMAND=(__qme_precmd "${PROMPT_COMMAND[@]}")
    else
        # shellcheck disable=SC2128,SC2178 # the string form, as tested above
        PROMPT_COMMAND="__qme_precmd${PROMPT_COMMAND:+;$PROMPT_COMMAND}"
    fi
    __qme_set_recording "$__qme_recording"
fi
