# SPDX-License-Identifier: LGPL-2.1-or-later
#
# vhostctl-tap.sh - TAP helpers shared by test-vhostctl.sh (host) and
# vm-vhostctl.sh (in the test VM); sourced, not run.  The caller sets
# VHOSTCTL, out and err (files for a command's stdout and stderr), tmp (a
# scratch directory) and optionally VHOSTCTL_TIMEOUT (seconds, default 120).

n=0
failed=0

ok() { n=$((n + 1)); echo "ok $n vhostctl.$1"; }
not_ok() {
	n=$((n + 1))
	failed=$((failed + 1))
	echo "not ok $n vhostctl.$1"
	shift
	[ $# -gt 0 ] && printf '%s\n' "$*" | sed 's/^/# /'
	sed 's/^/#   stdout: /' "$out" | head -20
	sed 's/^/#   stderr: /' "$err" | head -20
}
skip() { n=$((n + 1)); echo "ok $n vhostctl.$1 # SKIP $2"; }

# expect NAME RC CMD...: run vhostctl with args, stdout/stderr to files.
expect() {
	local name=$1 want=$2 rc
	shift 2
	timeout "${VHOSTCTL_TIMEOUT:-120}" "$VHOSTCTL" "$@" >"$out" 2>"$err" \
		</dev/null
	rc=$?
	if [ "$rc" -ne "$want" ]; then
		not_ok "$name" "vhostctl $*: exit $rc, expected $want"
		return 1
	fi
	ok "$name"
}

# json NAME PYTHON: run PYTHON with `j` the parsed stdout; it must not raise.
json() {
	local name=$1 code=$2
	if python3 - "$out" "$code" <<'PY' >"$tmp/py" 2>&1; then
import json, os, sys
with open(sys.argv[1]) as f:
    j = json.load(f)
exec(sys.argv[2])
PY
		ok "$name"
	else
		cp "$tmp/py" "$err"
		not_ok "$name" "JSON check failed: $code"
	fi
}

# grep_out NAME PATTERN [FILE]: the output matches an extended regex.
grep_out() {
	if grep -Eq -- "$2" "${3:-$out}"; then
		ok "$1"
	else
		not_ok "$1" "no match for /$2/"
	fi
}
