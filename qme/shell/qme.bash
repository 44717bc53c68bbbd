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
__qme_hc='' __qme_hi='' __qme_blank=0

# Percent-encode what could end or break a mark: '%', ESC, BEL and ';'.
__qme_encode() {
    __qme_encoded=${1//%/%25}
    __qme_encoded=${__qme_encoded//$'\e'/%1B}
    __qme_encoded=${__qme_encoded//$'\a'/%07}
    __qme_encoded=${__qme_encoded//;/%3B}
}

# Runs in PS0's command substitution: a subshell, so it cannot change the shell.
# The line is in the history whatever HISTCONTROL and HISTIGNORE say (see
# __qme_history_rules); whether they would have kept it out is decided here and
# left in a file for __qme_precmd, which takes it out of the history.
__qme_preexec() {
    local line previous
    __qme_encode "$PWD"
    printf '\e]6973;qme;S;%s;%s;h;' "$$" "$__qme_encoded"
    HISTTIMEFORMAT='' builtin history 1
    printf '\a'
    [[ -n $__qme_hc$__qme_hi && -n ${QME_SESSION_DIR-} ]] || return 0
    local entry='^ *([0-9]+)\*?  (.*)$'
    line=$(HISTTIMEFORMAT='' builtin history 2) || return 0
    if [[ $line =~ ${entry%$}$'\n'${entry#^} ]]; then
        previous=${BASH_REMATCH[2]}
        __qme_drop_if "${BASH_REMATCH[3]}" "${BASH_REMATCH[4]}" "$previous"
    elif [[ $line =~ $entry ]]; then
        __qme_drop_if "${BASH_REMATCH[1]}" "${BASH_REMATCH[2]}" ""
    fi
}

# Would the user's HISTCONTROL and HISTIGNORE have kept history entry $1 (the
# line $2, after the line $3) out? Then say so to __qme_precmd.
__qme_drop_if() {
    local pattern patterns=$__qme_hi: drop=
    case ":$__qme_hc:" in
        *:ignorespace:* | *:ignoreboth:*) [[ $2 == [[:space:]]* ]] && drop=1 ;;
    esac
    case ":$__qme_hc:" in
        *:ignoredups:* | *:ignoreboth:*) [[ $2 == "$3" ]] && drop=1 ;;
    esac
    while [[ -z $drop && -n $patterns ]]; do
        pattern=${patterns%%:*}
        patterns=${patterns#*:}
        pattern=${pattern//&/"$3"}
        # shellcheck disable=SC2053 # a pattern, as bash matches HISTIGNORE
        [[ -n $pattern && $2 == $pattern ]] && drop=1
    done
    [[ -n $drop ]] && printf '%s' "$1" >|"$QME_SESSION_DIR/drop.$$"
}

__qme_precmd() {
    local status=$?
    printf '\e]6973;qme;E;%s;%s\a' "$$" "$status"
    __qme_history_rules
    [[ $PS0 == *"$__qme_ps0"* || $__qme_recording != 1 ]] || PS0=$PS0$__qme_ps0
    return "$status"
}

# Every line must reach the history for PS0 to read it: while a line is read,
# HISTCONTROL and HISTIGNORE are empty; the user's values come back in PS0 (in
# the shell itself, by parameter expansion) and are applied here.
__qme_history_rules() {
    local number
    if [[ -n ${QME_SESSION_DIR-} && -s $QME_SESSION_DIR/drop.$$ ]]; then
        IFS= read -r number <"$QME_SESSION_DIR/drop.$$"
        : >|"$QME_SESSION_DIR/drop.$$"
        [[ $number == +([0-9]) ]] && builtin history -d "$number" 2>/dev/null
    fi
    [[ $__qme_recording == 1 ]] || return 0
    if [[ $__qme_blank != 1 ]]; then # a command ran: what is there is the user's
        __qme_hc=${HISTCONTROL-} __qme_hi=${HISTIGNORE-}
    fi
    [[ -n $__qme_hc ]] && HISTCONTROL=
    [[ -n $__qme_hi ]] && HISTIGNORE=
    __qme_blank=1
}

# The user's history settings are back before the command runs (inside a mark:
# the expansions print their values).
# shellcheck disable=SC2016 # expanded by bash when it shows PS0, not here
__qme_ps0='$(__qme_preexec)\e]6973;qme;R;${__qme_hc:+${HISTCONTROL:=$__qme_hc}};${__qme_hi:+${HISTIGNORE:=$__qme_hi}};$((__qme_blank=0))\a'

# Ours goes last in PS0, so that what the user's own PS0 prints is not recorded.
__qme_set_recording() {
    __qme_recording=$1
    PS0=${PS0-}
    PS0=${PS0//"$__qme_ps0"/}
    if [[ $1 == 1 ]]; then
        PS0=$PS0$__qme_ps0
    elif [[ $__qme_blank == 1 ]]; then # the history settings as they were
        [[ -n $__qme_hc ]] && HISTCONTROL=$__qme_hc
        [[ -n $__qme_hi ]] && HISTIGNORE=$__qme_hi
        __qme_blank=0
    fi
}

qme() {
    # shellcheck disable=SC2319 # the status of the user's last command, for `qme on`
    local status=$?
    case ${1-} in
        on | off | status) __qme_switch "$1" "$status" ;;
        *) command qme "$@" ;;
    esac
}

__qme_switch() {
    if [[ -z ${QME_SESSION-} ]]; then
        case $1 in
            on) __qme_on "$2" ;;
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

# `qme on` in a live shell: the session shell gets this one's state (aliases,
# functions, variables, options, directory stack, umask, traps, history, $?)
# from a snapshot in a private folder, which qme reads and deletes at once.
__qme_on() {
    local dir
    if dir=$(command mktemp -d "${TMPDIR:-/tmp}/qme-state.XXXXXXXX" 2>/dev/null) &&
        __qme_snapshot "$1" >|"$dir/state" 2>/dev/null &&
        __qme_history_file "$dir/history"; then
        QME_STATE=$dir command qme session --shell "${BASH:-bash}"
    else
        echo "qme: could not save this shell's state; the session starts from your rc files" >&2
        QME_STATE='' command qme session --shell "${BASH:-bash}"
    fi
    [[ -z $dir || ! -e $dir ]] || command rm -rf -- "$dir"
}

# The state as commands, for the session shell to source (at top level).
__qme_snapshot() {
    local __qme_name __qme_letter __qme_names=() __qme_i
    builtin alias -p
    builtin declare -f
    for __qme_letter in {a..z} {A..Z} _; do
        eval "__qme_names+=(\"\${!${__qme_letter}@}\")"
    done
    printf '{\n'
    for __qme_name in "${__qme_names[@]}"; do
        case $__qme_name in
            __qme_* | BASH | BASHOPTS | BASHPID | BASH_ALIASES | BASH_ARG* | BASH_CMDS | \
                BASH_COMMAND | BASH_EXECUTION_STRING | BASH_LINENO | BASH_REMATCH | \
                BASH_SOURCE | BASH_SUBSHELL | BASH_VERSINFO | BASH_VERSION | COLUMNS | \
                COMP_CWORD | COMP_KEY | COMP_LINE | COMP_POINT | COMP_TYPE | COMP_WORDS | \
                DIRSTACK | EPOCHREALTIME | EPOCHSECONDS | EUID | FUNCNAME | GROUPS | HISTCMD | \
                LINENO | LINES | OPTARG | OPTIND | PIPESTATUS | PPID | PWD | RANDOM | SECONDS | \
                SHELLOPTS | SHLVL | SRANDOM | UID | _ | QME_SESSION* | QME_STATE | PS0 | \
                HISTCONTROL | HISTIGNORE) ;;
            *) builtin declare -p -- "$__qme_name" ;;
        esac
    done
    builtin shopt -p # login_shell cannot be set: its error goes with the others'
    builtin set +o
    printf '} 2>/dev/null\n'
    printf '__qme_hc=%q __qme_hi=%q\n' "${HISTCONTROL-}" "${HISTIGNORE-}"
    for __qme_name in HISTCONTROL HISTIGNORE; do # as the user has them (see __qme_ps0)
        if [[ -n ${!__qme_name+set} ]]; then
            printf '%s=%q\n' "$__qme_name" "${!__qme_name}"
        else
            printf 'unset %s\n' "$__qme_name"
        fi
    done
    printf 'PS0=%q\n' "${PS0-}"
    builtin umask -p
    builtin trap -p
    printf 'builtin cd -- %q\n' "$PWD"
    for ((__qme_i = ${#DIRSTACK[@]} - 1; __qme_i > 0; __qme_i--)); do
        printf 'builtin pushd -n -- %q >/dev/null\n' "${DIRSTACK[__qme_i]}"
    done
    printf '__qme_status=%q\n' "$1"
}

__qme_return() { return "$1"; }

# With times, so that an entry of several lines reads back as one (state.py).
__qme_history_file() {
    local HISTTIMEFORMAT='%s'
    builtin history -w "$1"
}

# In a session: PROMPT_COMMAND may be a string or (bash 5.1+) an array; ours goes
# first so that it sees the command's $?. Again after a snapshot is loaded.
__qme_install() {
    [[ -n ${QME_SESSION-} ]] || return 0
    if [[ -n ${PROMPT_COMMAND+set} && ${PROMPT_COMMAND@a} == *a* ]]; then
        [[ ${PROMPT_COMMAND[0]} == __qme_precmd ]] ||
            PROMPT_COMMAND=(__qme_precmd "${PROMPT_COMMAND[@]}")
    else
        # shellcheck disable=SC2128,SC2178 # the string form, as tested above
        [[ ${PROMPT_COMMAND-} == __qme_precmd* ]] ||
            PROMPT_COMMAND="__qme_precmd${PROMPT_COMMAND:+;$PROMPT_COMMAND}"
    fi
    __qme_set_recording "$__qme_recording"
}
__qme_install
