# shellcheck shell=sh
# capo: the run record, written by the steps of a rollout or a pull run (sync, sync-rev,
# modules, apply). Not a script of its own: capo sends it after lib-step.sh in front of those
# steps (and only those: every byte of a step's text is sent to every host), and they source
# it from their own directory when run by hand or by pull mode.
#
# The run record: what every run that got as far as applying (or failed to sync or install
# modules) leaves on the host, written by the host-side steps themselves (push needs no
# extra round trip, and pull mode runs the same scripts): STATE_DIR/last_run.json, and a copy
# in STATE_DIR/runs/<UTC time>-<source>.json of which the newest RECORD_KEEP are kept. Its
# fields are in docs/run-record.md (schema capo.run/v1).

# How many records STATE_DIR/runs keeps.
RECORD_KEEP=20

# now: the time as the run record takes it, three words: milliseconds since the epoch (whole
# seconds times 1000 where date has no %N), RFC 3339 UTC, and the same compact
# (20261124T224501) for file names.
now() {
  n_t=$(LC_ALL=C date -u '+%s%3N %Y-%m-%dT%H:%M:%SZ %Y%m%dT%H%M%S' 2>/dev/null)
  case ${n_t%% *} in
    '' | *[!0-9]*) n_t=$(LC_ALL=C date -u '+%s000 %Y-%m-%dT%H:%M:%SZ %Y%m%dT%H%M%S') ;;
  esac
  printf '%s\n' "$n_t"
}

# json_object KEY TYPE VALUE...: prints a JSON object, one member a line, from triples.
# TYPE s: VALUE as a string, null when empty; n: VALUE as a whole number, null unless it is
# one. Strings are escaped as JSON wants (quote, backslash, every control character) and
# otherwise passed through byte for byte. The values reach awk as arguments (ARGV), which
# awk takes literally, unlike -v.
json_object() {
  LC_ALL=C awk 'BEGIN {
    for (i = 1; i < 32; i++) esc[sprintf("%c", i)] = sprintf("\\u%04x", i)
    esc["\n"] = "\\n"; esc["\t"] = "\\t"; esc["\r"] = "\\r"
    esc["\""] = "\\\""; esc["\\"] = "\\\\"
    printf "{"
    for (i = 1; i + 2 < ARGC; i += 3) {
      v = ARGV[i + 2]
      if (ARGV[i + 1] == "n") out = (v ~ /^(0|[1-9][0-9]*)$/) ? v : "null"
      else if (v == "") out = "null"
      else {
        out = "\""
        for (j = 1; j <= length(v); j++) { c = substr(v, j, 1); out = out ((c in esc) ? esc[c] : c) }
        out = out "\""
      }
      printf "%s\n  \"%s\": %s", (i > 1 ? "," : ""), ARGV[i], out
    }
    printf "\n}\n"
    exit
  }' "$@"
}

# summary_values FILE: from a Puppet last-run summary, one line: resources changed, failed,
# corrective_change and out_of_sync (each a number, or - when missing), then version.config
# (the rest of the line, unquoted; empty when missing).
summary_values() {
  LC_ALL=C awk '
    /^[^ ]/ { sec = $0; sub(/:.*/, "", sec); next }
    /^  [a-z_]+:/ {
      k = $0; sub(/^  /, "", k); sub(/:.*/, "", k)
      v = $0; sub(/^  [a-z_]+:[ ]*/, "", v); sub(/[ \r]+$/, "", v)
      if (sec == "resources") r[k] = v
      else if (sec == "version" && k == "config") {
        if (v ~ /^\047.*\047$/) { v = substr(v, 2, length(v) - 2); gsub(/\047\047/, "\047", v) }
        else if (v ~ /^".*"$/) { v = substr(v, 2, length(v) - 2); gsub(/\\"/, "\"", v); gsub(/\\\\/, "\\", v) }
        conf = v
      }
    }
    END {
      n = split("changed failed corrective_change out_of_sync", ks, " ")
      for (i = 1; i <= n; i++) printf "%s ", ((ks[i] in r) && r[ks[i]] ~ /^[0-9]+$/) ? r[ks[i]] : "-"
      printf "%s\n", conf
    }' "$1"
}

# record_run STATE_DIR SOURCE RUN_ID BY STARTED REV_BEFORE REV_AFTER STATUS STEP SUMMARY
# [KEEP]: writes the run record (see above) of a run that ends now. STARTED: what `now`
# printed when the run began; SUMMARY: the run's own Puppet summary file (empty or missing:
# Puppet did not run, and the counts are null); KEEP: how many records runs/ keeps (default
# RECORD_KEEP). Each file is written to a temporary file in its own directory, then renamed.
# It never fails the step: it prints record=ok, or record=failed + record-why=REASON.
# Empty STATE_DIR: no record, no marker.
record_run() {
  [ -n "$1" ] || return 0
  rr_dir=$1 rr_source=$2 rr_run=$3 rr_by=$4 rr_before=$6 rr_after=$7 rr_status=$8
  rr_step=$9 rr_summary=${10} rr_keep=${11:-$RECORD_KEEP}
  rr_end=$(now)
  rr_end_ms=${rr_end%% *} rr_rest=${rr_end#* }
  rr_time=${rr_rest%% *} rr_stamp=${rr_rest#* }
  rr_start_ms=${5%% *} rr_started=${5#* }
  rr_started=${rr_started%% *}
  rr_ms=''
  case $rr_start_ms:$rr_end_ms in
    *[!0-9:]* | :* | *:) ;;
    *) rr_ms=$((rr_end_ms - rr_start_ms)) ;;
  esac
  rr_vals='- - - - '
  if [ -n "$rr_summary" ] && [ -f "$rr_summary" ]; then
    rr_vals=$(summary_values "$rr_summary")
  fi
  rr_changed=${rr_vals%% *} rr_vals=${rr_vals#* }
  rr_failed=${rr_vals%% *} rr_vals=${rr_vals#* }
  rr_corrective=${rr_vals%% *} rr_vals=${rr_vals#* }
  rr_oos=${rr_vals%% *} rr_config=${rr_vals#* }
  rr_name=$rr_stamp.$(printf '%03d' $((rr_end_ms % 1000)))Z-$rr_source.json
  if ! rr_err=$(LC_ALL=C mkdir -p -- "$rr_dir/runs" 2>&1); then
    record_failed "$rr_err"
    return 0
  fi
  if ! rr_err=$(json_object schema s capo.run/v1 time s "$rr_time" started s "$rr_started" \
    source s "$rr_source" by s "$rr_by" run_id s "$rr_run" rev_before s "$rr_before" \
    rev_after s "$rr_after" status s "$rr_status" step s "$rr_step" \
    changed n "$rr_changed" failed n "$rr_failed" corrective n "$rr_corrective" \
    out_of_sync n "$rr_oos" config_version s "$rr_config" duration_ms n "$rr_ms" \
    2>&1 >"$rr_dir/runs/.$rr_name.tmp") ||
    ! rr_err=$(LC_ALL=C mv -f -- "$rr_dir/runs/.$rr_name.tmp" "$rr_dir/runs/$rr_name" 2>&1) ||
    ! rr_err=$(LC_ALL=C cp -- "$rr_dir/runs/$rr_name" "$rr_dir/.last_run.json.tmp" 2>&1) ||
    ! rr_err=$(LC_ALL=C mv -f -- "$rr_dir/.last_run.json.tmp" "$rr_dir/last_run.json" 2>&1); then
    rm -f -- "$rr_dir/runs/.$rr_name.tmp" "$rr_dir/.last_run.json.tmp" 2>/dev/null
    record_failed "$rr_err"
    return 0
  fi
  # The oldest go first: the names sort by time.
  rr_n=0
  for rr_f in "$rr_dir"/runs/*.json; do [ -e "$rr_f" ] && rr_n=$((rr_n + 1)); done
  for rr_f in "$rr_dir"/runs/*.json; do
    [ "$rr_n" -gt "$rr_keep" ] || break
    rm -f -- "$rr_f"
    rr_n=$((rr_n - 1))
  done
  echo '::capo:record=ok'
}

# record_failed ERROR: says that the run record could not be written to rr_dir, as whom, and
# the command's error (its last line).
record_failed() {
  rr_why=$(printf '%s\n' "$1" | sed -n '$p')
  echo '::capo:record=failed'
  echo "::capo:record-why=cannot write $rr_dir as $(id -un 2>/dev/null || id -u): ${rr_why:-no error shown}"
}

# record_start STEP STATE_DIR SOURCE RUN_ID BY [STARTED [REV_BEFORE]]: makes this step write
# the run record when it exits (record_exit, an EXIT trap) and sets what the record names:
# rec_before is REV_BEFORE (a step that learns it later sets it), rec_after and rec_summary
# are set by the step as it learns them. Without STARTED the run begins now, and the step
# says when (started=MS TIME TIMESTAMP, for the steps after it). A step ended by TERM records
# too (status 143: failed). Empty STATE_DIR: no record.
record_start() {
  rec_step=$1 rec_dir=$2 rec_source=$3 rec_run=$4 rec_by=$5 rec_started=${6-} rec_before=${7-}
  rec_after='' rec_summary=''
  [ -n "$rec_dir" ] || return 0
  if [ -z "$rec_started" ]; then
    rec_started=$(now)
    echo "::capo:started=$rec_started"
  fi
  trap 'record_exit $?' EXIT
  # Stopped at the deadline or by Ctrl-C (capo-wrap and capo-kill TERM the whole step): the
  # shell ends once its child has, and records a failure first (bash as sh skips the EXIT
  # trap when a signal trap exits, so this one writes the record itself).
  trap 'trap - EXIT; record_exit 143; exit 143' TERM
}

# record_exit STATUS: the EXIT trap of record_start. The apply step records how Puppet's
# exit STATUS reads (0 unchanged, 2 changed, anything else failed); the other steps record
# only a failure (a sync or modules step that succeeds leaves the record to apply).
record_exit() {
  case $rec_step:$1 in
    apply:0) rec_status=unchanged rec_failed_step='' ;;
    apply:2) rec_status=changed rec_failed_step='' ;;
    *:0) return 0 ;;
    *) rec_status=failed rec_failed_step=$rec_step ;;
  esac
  record_run "$rec_dir" "$rec_source" "$rec_run" "$rec_by" "$rec_started" "$rec_before" \
    "$rec_after" "$rec_status" "$rec_failed_step" "$rec_summary"
}

# pin_set STATE_DIR REV COMMIT BY: a push rollout to an exact REV (`capo rollout --rev`)
# leaves the host pinned there, so that pull mode keeps applying COMMIT instead of moving on
# to the branch head, until a rollout without --rev (pin_clear) or `capo pull unpin`.
# STATE_DIR/pin holds rev=, commit=, by=, since= lines, written atomically. Says pin=set,
# or pin=failed + pin-why=ERROR (which changes nothing else).
pin_set() {
  pt=$1/.pin.$$
  if e=$({ mkdir -p -- "$1" &&
    printf 'rev=%s\ncommit=%s\nby=%s\nsince=%s\n' "$2" "$3" "$4" \
      "$(date -u +%Y-%m-%dT%H:%M:%SZ)" >"$pt" && mv -f -- "$pt" "$1/pin"; } 2>&1); then
    echo '::capo:pin=set'
  else
    rm -f -- "$pt"
    echo '::capo:pin=failed'
    echo "::capo:pin-why=$(printf '%s' "$e" | tail -n 1)"
  fi
}

# pin_clear STATE_DIR: a push rollout that followed the branch ends a pin. Says pin=cleared
# when there was one.
pin_clear() {
  [ -f "$1/pin" ] || return 0
  if rm -f -- "$1/pin"; then echo '::capo:pin=cleared'; else echo '::capo:pin=failed'; fi
}
