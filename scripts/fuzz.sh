#!/usr/bin/env bash
# Runs every Go fuzz target of nines for FUZZTIME each (default 1m) and
# prints, per target, the executions and whether it found a crash. A
# crash leaves its input under the package's testdata/fuzz/<Target>/,
# where go test then runs it as a regression seed.
#
#   FUZZTIME=30s scripts/fuzz.sh            # every target
#   scripts/fuzz.sh FuzzParseStatus         # the targets named
set -uo pipefail
cd "$(dirname "$0")/.."
export PATH="$PATH:/usr/local/go/bin"
fuzztime=${FUZZTIME:-1m}

# package dir and target name of every func FuzzXxx(f *testing.F)
mapfile -t targets < <(grep -rn --include='*_test.go' -E '^func Fuzz[A-Za-z0-9_]*\(f \*testing\.F\)' . |
	sed -E 's|^\./(.*)/[^/]+_test\.go:[0-9]+:func (Fuzz[A-Za-z0-9_]*)\(.*|\1 \2|' | sort)
if [ ${#targets[@]} -eq 0 ]; then
	echo "fuzz: no targets found" >&2
	exit 1
fi

failed=0
summary=()
for t in "${targets[@]}"; do
	pkg=${t% *} name=${t#* }
	if [ $# -gt 0 ] && ! printf '%s\n' "$@" | grep -qx "$name"; then
		continue
	fi
	echo "== $name ($pkg, $fuzztime)"
	log=$(mktemp)
	go test -run '^$' -fuzz "^${name}\$" -fuzztime "$fuzztime" "./$pkg" 2>&1 | tee "$log" | grep -v 'gathering baseline\|^fuzz: elapsed: [0-9]*s, execs' || true
	execs=$(grep -oE 'execs: [0-9]+' "$log" | tail -1 | awk '{print $2}')
	if grep -q '^--- FAIL\|^FAIL' "$log"; then
		summary+=("$(printf '%-28s %-22s %12s execs  CRASH (see above; input saved under %s/testdata/fuzz/%s)' "$name" "$pkg" "${execs:-0}" "$pkg" "$name")")
		failed=1
	else
		summary+=("$(printf '%-28s %-22s %12s execs  ok' "$name" "$pkg" "${execs:-0}")")
	fi
	rm -f "$log"
done
echo
echo "fuzz summary ($fuzztime per target):"
printf '%s\n' "${summary[@]}"
exit $failed
