#!/bin/bash
# A stand-in for `nvidia-smi --query-gpu=... --format=csv[,nounits][,noheader] [-lms N]` that replays
# real captures (test/fixtures/nvidia-smi/*.query-gpu.csv): header first (requested names with their
# units), then the requested columns of the capture rows, once or every N ms. Bash and awk, not Node,
# so that a restart costs milliseconds. Misbehaviour on demand, through the environment:
#   FAKE_SMI_FIXTURES    comma-separated capture files; their rows are replayed in turn, one per tick
#   FAKE_SMI_GPUS        GPUs per tick (the row repeated with index 0..N-1), default 1
#   FAKE_SMI_EXIT_AFTER  crash (exit 3) after printing that many data rows
#   FAKE_SMI_HANG_AFTER  stop printing (but stay alive) after that many data rows
#   FAKE_SMI_REJECT      comma-separated fields this "driver" does not know
#   FAKE_SMI_STARTS      a file that gets one line per start, with the arguments
set -u
[ -n "${FAKE_SMI_STARTS:-}" ] && echo "$*" >>"$FAKE_SMI_STARTS"

query='' format='csv' loop_ms=''
while [ $# -gt 0 ]; do
  case "$1" in
    --query-gpu=*) query="${1#--query-gpu=}" ;;
    --format=*) format="${1#--format=}" ;;
    -lms) loop_ms="$2"; shift ;;
  esac
  shift
done
if [ -z "$query" ]; then
  echo 'fake nvidia-smi: only --query-gpu is supported'
  exit 0
fi
reject="${FAKE_SMI_REJECT:-}"
for field in ${reject//,/ }; do
  case ",$query," in
    *",$field,"*) printf 'Field "%s" is not a valid field to query.\n\n' "$field"; exit 2 ;;
  esac
done

nounits=0; case "$format" in *nounits*) nounits=1 ;; esac
noheader=0; case "$format" in *noheader*) noheader=1 ;; esac
gpus="${FAKE_SMI_GPUS:-1}"

# Render the header and every (capture row x GPU) line once; the loop below only prints them.
rendered="$(awk -v fields="$query" -v nounits="$nounits" -v gpus="$gpus" '
  BEGIN { FS = ", "; count = split(fields, want, ",") }
  FNR == 1 {
    for (i = 1; i <= NF; i++) {
      name = tolower($i); sub(/ \[.*\]$/, "", name)
      column[name] = i
      unit[name] = match($i, / \[.*\]$/) ? substr($i, RSTART) : ""
    }
    if (!header) {
      for (w = 1; w <= count; w++) {
        key = tolower(want[w])
        if (key == "clocks_throttle_reasons.active") key = "clocks_event_reasons.active"
        if (!(key in column)) { print "Field \"" want[w] "\" is not a valid field to query."; exit 2 }
        source[w] = key
        header = header (w > 1 ? ", " : "") want[w] unit[key]
      }
      print header
    }
    next
  }
  NF > 1 {
    for (g = 0; g < gpus; g++) {
      line = ""
      for (w = 1; w <= count; w++) {
        value = $(column[source[w]])
        if (source[w] == "index") value = g
        if (nounits) sub(/ (%|MiB|W|MHz|us)$/, "", value)
        line = line (w > 1 ? ", " : "") value
      }
      print line
    }
  }
' ${FAKE_SMI_FIXTURES//,/ })"
status=$?
if [ $status -ne 0 ]; then
  echo "$rendered"
  exit 2
fi
mapfile -t lines <<<"$rendered"
[ $noheader -eq 1 ] || echo "${lines[0]}"
rows=("${lines[@]:1}")

if [ -z "$loop_ms" ]; then
  for ((g = 0; g < gpus; g++)); do echo "${rows[$g]}"; done
  exit 0
fi
seconds=$(printf '%d.%03d' $((loop_ms / 1000)) $((loop_ms % 1000)))
exit_after="${FAKE_SMI_EXIT_AFTER:-0}" hang_after="${FAKE_SMI_HANG_AFTER:-0}"
printed=0 next=0
while true; do
  for ((g = 0; g < gpus; g++)); do
    if [ "$hang_after" -gt 0 ] && [ $printed -ge "$hang_after" ]; then break; fi
    echo "${rows[$next]}"
    next=$(((next + 1) % ${#rows[@]}))
    printed=$((printed + 1))
    if [ "$exit_after" -gt 0 ] && [ $printed -ge "$exit_after" ]; then exit 3; fi
  done
  # sleep must not hold our stdout open, or a killed fake would keep the pipe alive.
  sleep "$seconds" >/dev/null
done
