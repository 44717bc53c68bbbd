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
typeset -g __qme_line= # the recorded command's line, till its end

# Percent-encode what could end or break a mark: '%', ESC, BEL and ';'.
__qme_encode() {
    REPLY=${1//\%/%25}
    REPLY=${REPLY//$'\e'/%1B}
    REPLY=${REPLY//$'\a'/%07}
    REPLY=${REPLY//;/%3B}
}

__qme_preexec() {
    [[ $__qme_recording == 1 ]] || return 0
    local cwd=$PWD line=$1
    __qme_line=$1
    # Most need no encoding: a glob says so for less than the call would cost.
    [[ $cwd == *[%$'\e\a'\;]* ]] && { __qme_encode "$cwd"; cwd=$REPLY; }
    [[ $line == *[%$'\e\a'\;]* ]] && { __qme_encode "$line"; line=$REPLY; }
    printf '\e]6973;qme;S;%s;%s;c;%s\a' "$$" "$cwd" "$line"
}

# Runs first of the precmd functions, with $? still the command's.
__qme_precmd() {
    local last=$?
    if [[ -n $__qme_line ]]; then
        # Most lines use no alias or function: a look at their words says so
        # for a third of what the scan costs.
        local word
        for word in ${(z)__qme_line}; do
            if (( ${+aliases[$word]} || ${+functions[$word]} )); then
                __qme_uses "$__qme_line"
                break
            fi
        done
        __qme_line=
    fi
    printf '\e]6973;qme;E;%s;%s\a' "$$" "$last"
}

# A mark for each alias and function the line $1 uses (and those use in turn), as
# they are after it ran, so that a rerun of the command has them
# (qme/session/rerun.py).
__qme_uses() {
    local -a todo words
    local word name seen=' '
    todo=("$1")
    while (( $#todo )); do
        words=(${(z)todo[1]})
        shift todo
        for word in $words; do
            [[ $seen == *" $word "* || $word == (qme|__qme_*) ]] && continue
            seen+="$word "
            if (( ${+aliases[$word]} )); then
                __qme_mark_use a "$word" "$aliases[$word]"
                todo+=("$aliases[$word]")
            fi
            if (( ${+functions[$word]} )); then
                __qme_mark_use f "$word" "$functions[$word]"
                todo+=("$functions[$word]")
            fi
        done
    done
}

__qme_mark_use() {
    local name
    __qme_encode "$2"; name=$REPLY
    __qme_encode "$3"
    REPLY=${REPLY//$'\r'/%0D}
    printf '\e]6973;qme;D;%s;%s;%s;%s\a' "$$" "$1" "$name" "${REPLY//$'\n'/%0A}"
}

qme() {
    local last=$?
    case ${1-} in
        on|off) __qme_switch "$1" $last ;;
        status) if (( $# > 1 )); then # status --json: qme says it, told what the hooks know
            QME_HOOKS="zsh $__qme_recording" command qme "$@"
        else __qme_switch status $last; fi ;;
        doctor) QME_HOOKS="zsh $__qme_recording" command qme "$@" ;; # what qme doctor tells
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
                __qme_on "$2" "$zsh" ;;
            *) print -u2 "qme: not recording: this shell is not in a qme session ('qme on' starts one)" ;;
        esac
        return
    fi
    case $1 in
        on) __qme_recording=1; __qme_install; print -u2 "qme: recording this shell's commands" ;;
        off) __qme_recording=0; print -u2 "qme: recording paused ('qme on' resumes)" ;;
        status)
            if [[ $__qme_recording == 1 ]]; then
                print -u2 "qme: recording (session $QME_SESSION)"
            else
                print -u2 "qme: paused (session $QME_SESSION)"
            fi ;;
    esac
}

# `qme on` in a live shell: the session shell gets this one's state (aliases,
# functions, parameters, options, directory stack, umask, traps, history, $?)
# from a snapshot in a private folder, which qme reads and deletes at once.
__qme_on() {
    local dir
    if dir=$(command mktemp -d "${TMPDIR:-/tmp}/qme-state.XXXXXXXX" 2>/dev/null) &&
        __qme_snapshot "$1" >|"$dir/state" 2>/dev/null &&
        __qme_history_file "$dir/history"; then
        QME_STATE=$dir command qme session --shell "$2"
    else
        print -u2 "qme: could not save this shell's state; the session starts from your rc files"
        QME_STATE= command qme session --shell "$2"
    fi
    [[ -z $dir || ! -e $dir ]] || command rm -rf -- "$dir"
}

__qme_return() { return $1; }

# All of the history in memory (fc -W writes no more than SAVEHIST entries).
__qme_history_file() {
    local SAVEHIST=$HISTSIZE
    fc -W "$1" 2>/dev/null
}

# The state as commands, for the session shell to source.
__qme_snapshot() {
    zmodload zsh/parameter 2>/dev/null
    local name type
    local -a kept
    alias -L
    typeset -f
    print '{'
    for name in ${(k)parameters}; do
        type=${parameters[$name]}
        [[ $type == *(local|readonly)* || $name == (__qme_*|QME_SESSION*|QME_STATE) ]] && continue
        # of the special ones, those a user sets (the rest the shell keeps itself)
        [[ $type == *special* && $name != (PS[1-4]|RPS[12]|PROMPT*|RPROMPT*|SPROMPT|HIST*|SAVEHIST|\
            path|fpath|cdpath|manpath|module_path|mailpath|WORDCHARS|REPORT*|TIMEFMT|\
            KEYTIMEOUT|LISTMAX|MAILCHECK|TMOUT|histchars|IFS|NULLCMD|READNULLCMD|\
            DIRSTACKSIZE|LANG|LC_*) ]] && continue
        kept+=($name)
    done
    (( $#kept )) && typeset -p -- $kept  # one call for all of them
    for name in ${(k)options}; do
        [[ $name == (interactive|login|monitor|privileged|restricted|shinstdin|singlecommand|zle) ]] &&
            continue
        if [[ $options[$name] == on ]]; then print -r -- "setopt $name"; else print -r -- "unsetopt $name"; fi
    done
    print '} 2>/dev/null'
    print -r -- "umask $(umask)"
    trap
    print -r -- "builtin cd -q -- ${(q)PWD}"
    print -r -- "dirstack=(${(q)dirstack[@]})"
    print -r -- "__qme_status=$1"
}

# In a session: preexec and precmd hooks; again after a snapshot is loaded.
__qme_install() {
    [[ -n ${QME_SESSION-} ]] || return 0
    zmodload zsh/parameter 2>/dev/null # $functions here, $aliases for __qme_uses
    # The hooks run with zsh's own options and xtrace off, whatever the user has
    # set (`setopt xtrace`: their trace would be the command's output; `ksharrays`,
    # `errexit`, `nounset`): sticky emulation sets them as each is entered and
    # puts the user's back as it returns, with no redirection (a dozen system
    # calls) and no trace of its own.
    local name
    for name in __qme_encode __qme_preexec __qme_precmd __qme_uses __qme_mark_use; do
        emulate zsh -o noxtrace -c "$name() { ${functions[$name]} }"
    done
    autoload -Uz add-zsh-hook
    add-zsh-hook preexec __qme_preexec
    # precmd functions run with $? still the command's; ours must see it first.
    precmd_functions=(__qme_precmd ${precmd_functions:#__qme_precmd})
}
__qme_install
