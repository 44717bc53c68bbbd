# qme shell integration for bash (4.4 or newer).
#
#   eval "$(qme init bash)"     in ~/.bashrc; then `qme on` records every command
#
# Outside a qme session this only defines the `qme` function below. Inside one
# (`qme on`), the hooks print invisible marks that qme's session proxy turns into
# one task per command: PS0 where a command begins, a DEBUG trap that runs once a
# line the line itself (from the history), PROMPT_COMMAND where it ends. They start
# no process (no subshell either), never touch $?, PIPESTATUS or $_, and if qme is
# missing they do nothing.
# shellcheck shell=bash

# Interactive shells only, and loaded once: sourced again (the session's rc file
# does, after the user's, which may have set PROMPT_COMMAND since), it only puts
# its hooks back in place.
[[ $- == *i* ]] || return 0
if [[ -n ${__qme_loaded-} ]]; then
    __qme_install
    return 0
fi
__qme_loaded=1

__qme_recording=${QME_SESSION_RECORD:-0}
__qme_hc='' __qme_hi='' __qme_blank=0 __qme_told='' __qme_prev='' __qme_xt=''
__qme_go=0 __qme_their='' __qme_restore='' __qme_rc=0 __qme_arg='' __qme_debug='' __qme_ran=0
__qme_fork=(1) # see __qme_ps0
declare -A __qme_void=()


# Percent-encode what could end or break a mark: '%', ESC, BEL and ';'.
__qme_encode() {
    __qme_encoded=${1//%/%25}
    __qme_encoded=${__qme_encoded//$'\e'/%1B}
    __qme_encoded=${__qme_encoded//$'\a'/%07}
    __qme_encoded=${__qme_encoded//;/%3B}
}

# How the line is told: PS0 arms (__qme_go) the DEBUG trap the prompt hook put in
# place (__qme_arm). It runs before the line's first command in this shell, gives
# the DEBUG trap back to the user's own (if any), so that the rest of the line
# runs without it, and tells the line. A line with no command in this shell
# (`( make )`) is told before the prompt hook, which the trap also precedes; the
# proxy keeps the output that came before. The trap's own status is 0 (under
# extdebug, another skips the command) and it leaves $_ as it was. Both run
# outside any function: in one, bash hides the DEBUG trap and puts it back on
# return. What qme runs from the trap and the prompt hook is called as `… && :`,
# so that under `set -e` nothing in it can end the shell (bash ignores errexit
# there, down into the functions it calls).
# shellcheck disable=SC2016 # expanded when the trap runs
__qme_on_debug='if ((__qme_go && !BASH_SUBSHELL)); then __qme_arg=$_; eval "$__qme_restore" && :; __qme_tell && :; : "$__qme_arg"; fi'
# (__qme_capture's two lines are written out here: in it, a function, bash would
# hide the trap.)
# shellcheck disable=SC2016 # run by the prompt hook (see __qme_pc)
__qme_arm='if [[ $__qme_recording == 1 ]] &&
    { builtin trap -p DEBUG; printf "\0"; } 3<>"$QME_SESSION_DIR/capture.$$" >&3 &&
    IFS= read -rd "" __qme_captured <"$QME_SESSION_DIR/capture.$$" &&
    [[ $__qme_captured != *__qme_go* ]]; then # (else ours is there still: no line ran)
    __qme_their="" __qme_restore="builtin trap - DEBUG"
    if [[ -n $__qme_captured ]]; then
        eval "__qme_keep_trap ${__qme_captured#trap }"
        __qme_restore="builtin $__qme_captured"
    fi
    __qme_debug=$__qme_on_debug
    [[ -z $__qme_xt ]] || __qme_debug="{ $__qme_debug; } 2>/dev/null"
    builtin trap -- "$__qme_debug${__qme_their:+; $__qme_their}" DEBUG
fi
__qme_return "$__qme_rc"'

# `trap -p DEBUG` prints `trap -- 'ACTION' DEBUG`: this is called with its words.
__qme_keep_trap() { __qme_their=$2; }

# The start mark with the line straight from the history, in __qme_told (kept for
# __qme_after). Every line is in the history whatever HISTCONTROL and HISTIGNORE
# say (see __qme_history_rules), unless the history is off (`set +o history`):
# then the line cannot be known, and the command is not recorded. When
# __qme_drop_if needs the entry before, a mark the proxy ignores holds the last
# two.
__qme_line_marks() {
    __qme_go=0
    [[ -o history ]] || return 1
    __qme_capture builtin history 1 || return 1 # (the session's folder is gone)
    __qme_encode "$PWD"
    __qme_told=$'\e]6973;qme;S;'"$$;$__qme_encoded;h;$__qme_captured"$'\a'
    if [[ -n $__qme_prev ]]; then
        __qme_capture builtin history 2
        __qme_told+=$'\e]6973;qme;P;'"$__qme_captured"$'\a'
    fi
}

# To /dev/tty: the command's own redirections (`{ make; } >log`) may be in place.
__qme_tell() {
    __qme_line_marks && printf '%s' "$__qme_told" 2>/dev/null >/dev/tty
    return 0
}

# After a recorded command ($1: the marks __qme_tell printed), in the shell
# itself: a mark for each alias and function its line used, as they are now that
# it ran; then the user's HISTCONTROL and HISTIGNORE applied to its history entry.
__qme_after() {
    local entry=${1#*;h;} # (the cwd before it is encoded: no ';')
    entry=${entry%%$'\a'*}
    __qme_uses "${entry#*[0-9][* ] }" 3>&1 >/dev/null # the line, after "  42* "
    [[ -n $__qme_hc$__qme_hi ]] && __qme_drop_if "$entry" "$1"
}

# The number and line of a history entry as `history` prints it ("   42* line"),
# in __qme_number and __qme_line.
__qme_entry() {
    __qme_line=${1%$'\n'}
    __qme_line=${__qme_line#"${__qme_line%%[! ]*}"}
    __qme_number=${__qme_line%%[!0-9]*}
    __qme_line=${__qme_line#"$__qme_number"}
    __qme_line=${__qme_line#\*}
    __qme_line=${__qme_line#  }
}

# A mark for each alias and function the line $1 uses (and those use in turn), so
# that a rerun of the command has them (qme/session/rerun.py); on fd 3, as stdout
# is /dev/null for `declare -F`.
__qme_uses() {
    local - IFS=$' \t\n;&|()<>{}`"\'$=' todo=("$1") word text seen=' '
    set -f # (`local -`: for this function only)
    while ((${#todo[@]})); do
        text=${todo[0]}
        todo=("${todo[@]:1}")
        for word in $text; do
            [[ -z $word || $seen == *" $word "* || $word == *[][*@\\]* || $word == qme ||
                $word == __qme_* ]] && continue
            seen+="$word "
            if [[ -n ${BASH_ALIASES[$word]+set} ]]; then
                __qme_mark_use a "$word" "${BASH_ALIASES[$word]}"
                todo+=("${BASH_ALIASES[$word]}")
            fi
            if builtin declare -F -- "$word"; then
                __qme_capture builtin declare -f -- "$word"
                text=$__qme_captured
                __qme_mark_use f "$word" "$text"
                todo+=("$text")
            fi
        done
    done
}

# What a command prints, in __qme_captured, through a file in the session's private
# folder: a $(...) would be a subshell (~0.5 ms of CPU). The file is never truncated (ext4
# writes a file truncated and written again out at once, ~2 ms): a NUL ends it.
# (Opened on 3, then 1: `declare -f`, so a snapshot, prints `1<>` as `<>`, stdin.)
__qme_capture() {
    { HISTTIMEFORMAT='' "$@"; printf '\0'; } 3<>"$QME_SESSION_DIR/capture.$$" >&3
    IFS= read -rd '' __qme_captured <"$QME_SESSION_DIR/capture.$$"
}

__qme_mark_use() {
    local name
    __qme_encode "$2"
    name=$__qme_encoded
    __qme_encode "$3"
    __qme_encoded=${__qme_encoded//$'\r'/%0D}
    printf '\e]6973;qme;D;%s;%s;%s;%s\a' "$$" "$1" "$name" "${__qme_encoded//$'\n'/%0A}" >&3
}

# Do the user's ignoredups or HISTIGNORE's `&` compare a line with the one before?
__qme_needs_previous() {
    [[ ":$__qme_hc:" == *:ignoredups:* || ":$__qme_hc:" == *:ignoreboth:* || $__qme_hi == *\&* ]]
}

# Would the user's HISTCONTROL and HISTIGNORE have kept the last history entry
# ($1 as printed; $2 the marks) out? Then it goes.
__qme_drop_if() {
    __qme_entry "$1"
    local number=$__qme_number line=$__qme_line previous='' pattern patterns=$__qme_hi: drop=''
    if [[ $2 == *$'\a\e]6973;qme;P;'* ]]; then # the last two entries
        previous=${2#*$'\a\e]6973;qme;P;'}
        previous=${previous%$'\a'}
        __qme_entry "${previous%"$1"}"
        previous=$__qme_line
    fi
    case ":$__qme_hc:" in
        *:ignorespace:* | *:ignoreboth:*) [[ $line == [[:space:]]* ]] && drop=1 ;;
    esac
    case ":$__qme_hc:" in
        *:ignoredups:* | *:ignoreboth:*) [[ $line == "$previous" ]] && drop=1 ;;
    esac
    while [[ -z $drop && -n $patterns ]]; do
        pattern=${patterns%%:*}
        patterns=${patterns#*:}
        pattern=${pattern//&/"$previous"}
        # shellcheck disable=SC2053 # a pattern, as bash matches HISTIGNORE
        [[ -n $pattern && $line == $pattern ]] && drop=1
    done
    [[ -z $drop ]] || builtin history -d "$number" 2>/dev/null
}

__qme_precmd() {
    local status=$?
    __qme_ran=1
    __qme_xt=${-//[!x]/} # the DEBUG trap runs with stderr on /dev/null only under `set -x`
    ((__qme_go)) && __qme_tell # another DEBUG trap took the place of ours
    __qme_history_rules
    if [[ -n $__qme_told ]]; then # a command's line was told
        __qme_after "$__qme_told"
        __qme_told=''
    fi
    printf '\e]6973;qme;E;%s;%s\a' "$$" "$status"
    [[ $PS0 == *__qme_void* || $__qme_recording != 1 ]] || PS0=$PS0$__qme_ps0
    __qme_rc=$status # for __qme_arm, which runs next
    return "$status"
}

# Every line must reach the history for PS0 to read it: while a line is read,
# HISTCONTROL and HISTIGNORE are empty; the user's values come back in PS0 (in
# the shell itself, by parameter expansion) and __qme_after applies them.
__qme_history_rules() {
    [[ $__qme_recording == 1 ]] || return 0
    if [[ $__qme_blank != 1 ]]; then # a command ran: what is there is the user's
        __qme_hc=${HISTCONTROL-} __qme_hi=${HISTIGNORE-} __qme_prev=''
        [[ -n $__qme_hc$__qme_hi ]] && __qme_needs_previous && __qme_prev=1
    fi
    [[ -n $__qme_hc ]] && HISTCONTROL=
    [[ -n $__qme_hi ]] && HISTIGNORE=
    __qme_blank=1
}

# PS0 prints the begin mark, arms the DEBUG trap and puts the user's history
# settings back before the command runs, without a subshell: the expansions that
# do it are the key of an element of __qme_void, which is never set, so that they
# print nothing. If the prompt hook did not run since the last line (something
# replaced PROMPT_COMMAND), nothing put the trap in place: then, and only then,
# PS0 prints the line from a subshell, as it did before the trap (__qme_fork has
# an element at 0 only), and the command is recorded, without its exit status.
# shellcheck disable=SC2016 # expanded by bash when it shows PS0, not here
__qme_ps0='\e]6973;qme;B;$$\a${__qme_fork[__qme_ran]:+$({ __qme_line_marks && printf %s "$__qme_told"; } 2>/dev/null)}${__qme_void[x${__qme_hc:+${HISTCONTROL:=$__qme_hc}}${__qme_hi:+${HISTIGNORE:=$__qme_hi}}$((__qme_blank=0,__qme_go=__qme_ran,__qme_ran=0))]-}'

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
    local __qme_last=$? __qme_traps='' # (__qme_ names: the snapshot leaves those out)
    case ${1-} in
        on | off)
            # The DEBUG and RETURN traps, which bash shows only to a function with
            # the trace attribute (this one), for the snapshot.
            [[ $1 == off || -n ${QME_SESSION-} ]] || __qme_traps=$(builtin trap -p DEBUG RETURN)
            __qme_switch "$1" "$__qme_last"
            ;;
        status) if (($# > 1)); then # status --json: qme says it, told what the hooks know
            QME_HOOKS="bash $__qme_recording" command qme "$@"
        else __qme_switch status "$__qme_last"; fi ;;
        doctor) QME_HOOKS="bash $__qme_recording" command qme "$@" ;; # what qme doctor tells
        *) command qme "$@" ;;
    esac
}

declare -ft qme

__qme_switch() {
    if [[ -z ${QME_SESSION-} ]]; then
        case $1 in
            on) __qme_on "$2" ;;
            *) echo "qme: not recording: this shell is not in a qme session ('qme on' starts one)" >&2 ;;
        esac
        return
    fi
    case $1 in
        on) # the hooks back in place too, if something replaced PROMPT_COMMAND
            __qme_recording=1
            __qme_install
            echo "qme: recording this shell's commands" >&2
            ;;
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
    local __qme_dir
    if __qme_dir=$(command mktemp -d "${TMPDIR:-/tmp}/qme-state.XXXXXXXX" 2>/dev/null) &&
        __qme_snapshot "$1" >|"$__qme_dir/state" 2>/dev/null &&
        __qme_history_file "$__qme_dir/history"; then
        QME_STATE=$__qme_dir command qme session --shell "${BASH:-bash}"
    else
        echo "qme: could not save this shell's state; the session starts from your rc files" >&2
        QME_STATE='' command qme session --shell "${BASH:-bash}"
    fi
    [[ -z $__qme_dir || ! -e $__qme_dir ]] || command rm -rf -- "$__qme_dir"
}

# The state as commands, for the session shell to source (at top level).
__qme_snapshot() {
    local __qme_name __qme_letter __qme_names=() __qme_kept=() __qme_i
    builtin alias -p
    builtin declare -f
    # The names in one go (a subshell, once); ${!a@} for each letter sorts them all each time.
    builtin mapfile -t __qme_names < <(builtin compgen -v 2>/dev/null)
    if ((${#__qme_names[@]} == 0)); then # a bash without programmable completion
        for __qme_letter in {a..z} {A..Z} _; do
            eval "__qme_names+=(\"\${!${__qme_letter}@}\")"
        done
    fi
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
            *) __qme_kept+=("$__qme_name") ;;
        esac
    done
    ((${#__qme_kept[@]} == 0)) || builtin declare -p -- "${__qme_kept[@]}"
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
    [[ -z $__qme_traps ]] || printf '%s\n' "$__qme_traps"
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
# first so that it sees the command's $?. Again after a snapshot is loaded. Its
# stderr is /dev/null: under `set -x`, the trace of the hook is not the command's
# output (and the DEBUG trap's likewise, see __qme_arm).
# shellcheck disable=SC2016 # expanded when the prompt hook runs
__qme_pc='{ __qme_precmd && :; eval "$__qme_arm" && :; } 2>/dev/null'
__qme_install() {
    [[ -n ${QME_SESSION-} ]] || return 0
    if [[ -n ${PROMPT_COMMAND+set} && ${PROMPT_COMMAND@a} == *a* ]]; then
        [[ ${PROMPT_COMMAND[0]} == "$__qme_pc" ]] ||
            PROMPT_COMMAND=("$__qme_pc" "${PROMPT_COMMAND[@]}")
    else
        # shellcheck disable=SC2128,SC2178 # the string form, as tested above
        [[ ${PROMPT_COMMAND-} == "$__qme_pc"* ]] ||
            PROMPT_COMMAND="$__qme_pc${PROMPT_COMMAND:+;$PROMPT_COMMAND}"
    fi
    __qme_set_recording "$__qme_recording"
}
__qme_install
