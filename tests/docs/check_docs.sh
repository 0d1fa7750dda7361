#!/usr/bin/env bash
# Checks the examples in a Markdown file against the real `mandate` binary, so documentation
# cannot drift from the product.
#
#   check_docs.sh MANDATE DOC.md
#
# Three kinds of blocks are used; every other block is left alone:
#  - a ```polar block right after a line `<!-- example: NAME -->` is a complete policy with test
#    blocks. It is saved as NAME.polar and `mandate test NAME.polar` must exit 0 with
#    "N passed, 0 failed", N > 0. Later console blocks may refer to NAME.polar.
#  - a fenced block of any language right after a line `<!-- file: NAME -->` is saved as NAME (a
#    facts file that console blocks use, say), and not run;
#  - a ```console block is a transcript: each line starting with `$ mandate` is a command (a line
#    ending in `\` continues on the next), and the lines up to the next `$ ` line are its exact
#    output (stdout then stderr; trailing spaces and trailing blank lines ignored).
# Commands run in a scratch directory holding a copy of the files next to DOC.md and the saved
# examples, so a README can name its own policy.polar and facts.jsonl.
set -u

[ $# -eq 2 ] || { echo "usage: check_docs.sh MANDATE DOC.md" >&2; exit 2; }
MANDATE=$1
doc=$2
[ -x "$MANDATE" ] || { echo "check_docs.sh: $MANDATE is not an executable" >&2; exit 2; }
MANDATE=$(cd "$(dirname "$MANDATE")" && pwd)/$(basename "$MANDATE")  # commands run elsewhere
[ -f "$doc" ] || { echo "check_docs.sh: no such file: $doc" >&2; exit 2; }

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
find "$(dirname "$doc")" -maxdepth 1 -type f -exec cp {} "$work/" \;
mkdir "$work/.blocks"

# Split the document into example policies and commands with their expected output. Writes
# .blocks/examples (NAME LINE per example), .blocks/NAME.polar, .blocks/files (saved files, one
# name a line) with the files themselves, and for command K: .blocks/cmd.K,
# .blocks/out.K and .blocks/line.K.
awk -v dir="$work/.blocks" '
  function start_cmd(text) {
    n++; cmd = dir "/cmd." n; out = dir "/out." n
    printf "" > out; close(out)
    print NR > (dir "/line." n); close(dir "/line." n)
    cont = sub(/\\$/, "", text)
    printf "%s", text > cmd
  }
  BEGIN { state = "text"; pending = ""; pending_file = ""; n = 0 }
  state == "text" && /^<!-- example: [A-Za-z0-9_.-]+ -->$/ { pending = $3; next }
  state == "text" && /^<!-- file: [A-Za-z0-9_.-]+ -->$/ { pending_file = $3; next }
  state == "text" && /^```/ && pending_file != "" {
    state = "save"; file = dir "/" pending_file; printf "" > file
    print pending_file >> (dir "/files"); pending_file = ""; next
  }
  state == "save" && /^```[ \t]*$/ { close(file); state = "text"; next }
  state == "save" { print > file; next }
  state == "text" && /^```polar[ \t]*$/ {
    if (pending != "") {
      state = "polar"; file = dir "/" pending ".polar"; printf "" > file
      print pending, NR >> (dir "/examples")
    } else state = "other"
    pending = ""; next
  }
  state == "text" && /^```console[ \t]*$/ { state = "console"; cont = 0; pending = ""; next }
  state == "text" && /^```/ { state = "other"; pending = ""; next }
  state == "text" && NF > 0 { pending = ""; pending_file = "" }
  state == "polar" && /^```[ \t]*$/ { close(file); state = "text"; next }
  state == "polar" { print > file; next }
  state == "console" && /^```[ \t]*$/ {
    if (n > 0) { close(cmd); close(out) }
    state = "text"; next
  }
  state == "console" && cont {
    line = $0; cont = sub(/\\$/, "", line)
    printf " %s", line > cmd; next
  }
  state == "console" && /^\$ mandate( |$)/ { close(cmd); line = substr($0, 3); start_cmd(line); next }
  state == "console" && /^\$ / { print "line " NR ": only `$ mandate` commands may appear in console blocks" > "/dev/stderr"; bad = 1; next }
  state == "console" && n > 0 { print >> out; next }
  state == "other" && /^```[ \t]*$/ { state = "text"; next }
  END { if (state != "text") { print "unclosed code block at end of file" > "/dev/stderr"; bad = 1 } exit bad }
' "$doc" || { echo "FAIL: $doc could not be split into examples"; exit 1; }

failed=0 examples=0 commands=0
if [ -f "$work/.blocks/files" ]; then
  while read -r name; do cp "$work/.blocks/$name" "$work/$name"; done <"$work/.blocks/files"
fi

if [ -f "$work/.blocks/examples" ]; then
  while read -r name line; do
    examples=$((examples + 1))
    cp "$work/.blocks/$name.polar" "$work/$name.polar"
    result=$(cd "$work" && "$MANDATE" test "$name.polar" 2>&1)
    status=$?
    summary=$(printf '%s\n' "$result" | grep -E '^[0-9]+ passed, [0-9]+ failed$' | tail -n 1)
    if [ "$status" -ne 0 ] || [ -z "$summary" ] || [ "${summary%%,*}" = "0 passed" ] \
        || [ "${summary#*, }" != "0 failed" ]; then
      echo "FAIL: $doc:$line: example $name (mandate test exit $status)"
      printf '%s\n' "$result" | sed 's/^/    /'
      failed=$((failed + 1))
    fi
  done <"$work/.blocks/examples"
fi

# Trailing spaces go here; trailing blank lines go with the $(...) that captures the result.
normalize() { sed -e 's/[[:space:]]*$//'; }

for cmdfile in "$work"/.blocks/cmd.*; do
  [ -e "$cmdfile" ] || break
  k=${cmdfile##*.}
  commands=$((commands + 1))
  command=$(cat "$cmdfile")
  line=$(cat "$work/.blocks/line.$k")
  actual=$(cd "$work" && MANDATE="$MANDATE" bash -c 'mandate() { "$MANDATE" "$@"; }; eval "$1"' _ "$command" 2>&1 | normalize)
  expected=$(normalize <"$work/.blocks/out.$k")
  if [ "$actual" != "$expected" ]; then
    echo "FAIL: $doc:$line: \$ $command"
    diff <(printf '%s\n' "$expected") <(printf '%s\n' "$actual") | sed 's/^/    /'
    failed=$((failed + 1))
  fi
done

echo "$doc: $examples examples, $commands commands, $failed failed"
[ "$failed" -eq 0 ]
