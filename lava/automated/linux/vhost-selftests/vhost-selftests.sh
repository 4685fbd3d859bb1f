#!/bin/sh
# SPDX-License-Identifier: GPL-2.0-or-later
#
# vhost-selftests.sh - run the installed vhost kselftests and write one
# LAVA result line per test case into output/result.txt, in the format of
# Linaro test-definitions' helpers (automated/utils/send-to-lava.sh):
#   <test-case-id> <pass|fail|skip>
# Test case ids follow automated/linux/kselftest's: the program's line
# "selftests: vhost: vhost_core_test" gives vhost_vhost_core_test, and each
# of its cases ("ok 3 kdev.net.owner_and_features") the id
# vhost_vhost_core_test_kdev_net_owner_and_features.  A program that
# crashes or times out without a case failing fails on its own line.
#
# Installs nothing, needs only a POSIX shell, awk, sed and what
# run_kselftest.sh needs.  It mounts configfs if it is there unmounted;
# the programs load their modules themselves (modprobe, when there is one).
# The raw TAP goes to output/kselftest-vhost.txt.
#
# Usage: vhost-selftests.sh [-d KSELFTEST_PATH] [-t TIMEOUT] [-s SKIP_INSTALL]
# Exit status: 0 when the tests ran (their results are in result.txt), 1
# when they could not be run at all.

OUTPUT="$(pwd)/output"
RESULT_FILE="${OUTPUT}/result.txt"
LOGFILE="${OUTPUT}/kselftest-vhost.txt"
KSELFTEST_PATH=/opt/kselftests/default-in-kernel
TIMEOUT=

usage() {
	echo "Usage: $0 [-d KSELFTEST_PATH] [-t TIMEOUT] [-s true|false]" >&2
	exit 1
}

while getopts "d:t:s:h" opt; do
	case "${opt}" in
	d) KSELFTEST_PATH="${OPTARG}" ;;
	t) TIMEOUT="${OPTARG}" ;;
	s) ;; # SKIP_INSTALL: there is nothing to install
	*) usage ;;
	esac
done

case "${TIMEOUT}" in
'') ;;
*[!0-9]* | 0) echo "ERROR: bad timeout '${TIMEOUT}'" >&2; exit 1 ;;
esac
if [ ! -x "${KSELFTEST_PATH}/run_kselftest.sh" ] ||
	! grep -q '^vhost:' "${KSELFTEST_PATH}/kselftest-list.txt" 2>/dev/null; then
	echo "ERROR: no vhost kselftests installed in ${KSELFTEST_PATH}" >&2
	exit 1
fi

[ -d "${OUTPUT}" ] && mv "${OUTPUT}" "${OUTPUT}_$(date +%Y%m%d%H%M%S)"
mkdir -p "${OUTPUT}" || exit 1
: >"${RESULT_FILE}"

# No modprobe here: each program loads the modules it needs (a lab image
# boots with none of them loaded) and skips only if its device is still
# missing.
# vhost-scsi's LIO target lives in configfs, which a bare image may not
# have mounted (vhost_scsi_test mounts it too)
if grep -qw configfs /proc/filesystems 2>/dev/null &&
	! grep -q ' /sys/kernel/config configfs ' /proc/mounts 2>/dev/null; then
	mount -t configfs configfs /sys/kernel/config 2>/dev/null ||
		echo "mount configfs on /sys/kernel/config: failed"
fi

set -- -c vhost
[ -n "${TIMEOUT}" ] && set -- "$@" -o "${TIMEOUT}"
# (cd in a subshell: run_kselftest.sh finds its files from $0)
(cd "${KSELFTEST_PATH}" && ./run_kselftest.sh "$@") 2>&1 | tee "${LOGFILE}"

# The runner prints each program's own TAP with one "# " in front: its
# case lines are "# ok N name" and "# not ok N name"; deeper lines are
# diagnostics.  The program's verdict follows as "ok N selftests: vhost:
# NAME" (with "# SKIP" when it skipped as a whole).
awk '
function slug(s) {
	gsub(/[^A-Za-z0-9_-]+/, "_", s)
	sub(/^_+/, "", s)
	sub(/_+$/, "", s)
	return s
}
function verdict(line, notok) {
	if (notok)
		return "fail"
	if (line ~ /#[ \t]*[Ss][Kk][Ii][Pp]/)
		return "skip"
	return "pass"	# XFAIL is an expected failure: a pass
}
/^# selftests: [^ ]+: [^ ]+/ {
	prog = slug($3 " " $4)
	next
}
/^# (not )?ok [0-9]+ / {
	notok = ($2 == "not")
	name = $0
	sub(/^# (not )?ok [0-9]+ /, "", name)
	sub(/[ \t]*#.*$/, "", name)
	if (prog != "" && name != "")
		print prog "_" slug(name), verdict($0, notok)
	next
}
/^(not )?ok [0-9]+ selftests: [^ ]+: [^ ]+/ {
	notok = ($1 == "not")
	i = notok ? 4 : 3
	print slug($(i + 1) " " $(i + 2)), verdict($0, notok)
}' "${LOGFILE}" >"${RESULT_FILE}"

echo "${RESULT_FILE}:"
cat "${RESULT_FILE}"
if [ ! -s "${RESULT_FILE}" ]; then
	echo "ERROR: run_kselftest.sh reported nothing" >&2
	exit 1
fi
exit 0
