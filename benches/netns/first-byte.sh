#!/usr/bin/env bash
# Time to first byte, process start included, through tapscat, curl, Go's
# net.Dial and Python asyncio, run side by side in network namespaces where
# a dual-stack name's IPv6 address silently drops every packet.
#
#   global.test  2001:db8:77::1 (global, RFC 6724 precedence 40) + 10.77.0.1
#   ula.test     fd77::1 (ULA, precedence 3)                     + 10.77.0.1
#
# Both names come from the client namespace's hosts file, so every client
# knows both addresses at the same instant. The IPv6 addresses are made
# black with a permanent neighbour entry pointing at a MAC nobody has: SYNs
# leave and vanish, as on a network whose IPv6 is broken.
#
# tapscat runs three ways. "no RTT data": the namespace's kernel TCP
# metrics are flushed before each run, so the Connection Attempt Delay is
# HEv3's 250 ms. "tapscat": the kernel remembers the round trips of
# earlier connections to the server's IPv4 address over the same link, and
# the delay after the silent IPv6 attempt is that path's RTO, raised to the
# 100 ms Minimum (HEv3 §6). "--history, repeat": a history file that an
# earlier run to the same name filled. The other clients keep nothing
# between runs, so their repeat runs are their first runs.
#
# usage: benches/netns/first-byte.sh [--runs N] [--tapscat PATH] [--smoke]
#   --runs N       runs per client and network (default 5); min-max reported
#   --tapscat PATH the tapscat binary (default: a release build)
#   --smoke        one run each; fail unless every client got its reply
#                  (CI runs this: outcomes, not timings)
# Needs root (namespaces), curl, go and python3.
set -euo pipefail
cd "$(dirname "$0")/../.."
here=benches/netns

runs=5
smoke=0
tapscat=""
while [ $# -gt 0 ]; do
    case "$1" in
        --runs) runs="$2"; shift 2 ;;
        --tapscat) tapscat="$2"; shift 2 ;;
        --smoke) smoke=1; runs=1; shift ;;
        *) echo "first-byte.sh: unknown argument $1 (see the usage at the top of the script)" >&2; exit 2 ;;
    esac
done
for tool in ip curl go python3; do
    command -v "$tool" >/dev/null || { echo "first-byte.sh: needs $tool" >&2; exit 1; }
done
if [ -z "$tapscat" ]; then
    cargo build -q --release -p taps-tokio --bin tapscat
    tapscat=target/release/tapscat
fi
tapscat=$(realpath "$tapscat")

work=$(mktemp -d)
client=fbc$$
server=fbs$$
server_pid=""
cleanup() {
    [ -n "$server_pid" ] && kill "$server_pid" 2>/dev/null || true
    ip netns del "$client" 2>/dev/null || true
    ip netns del "$server" 2>/dev/null || true
    rm -rf "/etc/netns/$client" "$work"
}
trap cleanup EXIT

# The Go peer, built once (its build cache stays in the scratch directory).
GOCACHE="$work/gocache" GOPATH="$work/gopath" go build -o "$work/dial" "$here/dial.go"

ip netns add "$client"
ip netns add "$server"
ip -n "$client" link add v0 type veth peer name v1 netns "$server"
for a in 10.77.0.2/24 2001:db8:77::2/64 fd77::2/64; do ip -n "$client" addr add "$a" dev v0 nodad 2>/dev/null || ip -n "$client" addr add "$a" dev v0; done
for a in 10.77.0.1/24 2001:db8:77::1/64 fd77::1/64; do ip -n "$server" addr add "$a" dev v1 nodad 2>/dev/null || ip -n "$server" addr add "$a" dev v1; done
for ns in "$client" "$server"; do
    ip -n "$ns" link set lo up
done
ip -n "$client" link set v0 up
ip -n "$server" link set v1 up

mkdir -p "/etc/netns/$client"
cat >"/etc/netns/$client/hosts" <<'HOSTS'
127.0.0.1 localhost
2001:db8:77::1 global.test
10.77.0.1 global.test
fd77::1 ula.test
10.77.0.1 ula.test
HOSTS
# A resolver that answers nothing (the names are in the hosts file); a
# query to it is refused at once by an ICMP port unreachable.
printf 'nameserver 10.77.0.1\noptions timeout:1 attempts:1\n' >"/etc/netns/$client/resolv.conf"

ip netns exec "$server" python3 "$here/server.py" 8080 &
server_pid=$!
# Wait for the service over IPv4 (this also settles the IPv4 neighbour).
for _ in $(seq 100); do
    if ip netns exec "$client" curl -s --max-time 1 http://10.77.0.1:8080/ >/dev/null; then break; fi
    sleep 0.1
done
ip netns exec "$client" curl -s --max-time 1 http://10.77.0.1:8080/ | grep -q ok \
    || { echo "first-byte.sh: the service never answered over IPv4" >&2; exit 1; }
for v6 in 2001:db8:77::1 fd77::1; do
    ip -n "$client" -6 neigh replace "$v6" lladdr 02:00:00:00:00:77 dev v0 nud permanent
done

history_supported=0
# Read the whole help first: `grep -q` would close the pipe early, and
# under pipefail tapscat's SIGPIPE would read as "no --history".
tapscat_help=$("$tapscat" --help 2>&1 || true)
[[ "$tapscat_help" == *--history* ]] && history_supported=1

# One timed run: prints milliseconds, or FAIL when the reply was not "ok".
timed() {
    local start end out
    start=$(date +%s%N)
    out=$(ip netns exec "$client" timeout 10 "$@" </dev/null 2>/dev/null || true)
    end=$(date +%s%N)
    if [[ "$out" == *ok* ]]; then
        echo $(((end - start) / 1000000))
    else
        echo FAIL
    fi
}

# min-max over $runs runs of one client, or FAIL with every run's result.
measure() {
    local results=() r
    for _ in $(seq "$runs"); do
        r=$(timed "$@")
        results+=("$r")
    done
    summarize "${results[@]}"
}

# min-max of the results given, or FAIL with all of them.
summarize() {
    local results=("$@")
    if printf '%s\n' "${results[@]}" | grep -q FAIL; then
        echo "FAIL (${results[*]})"
        return
    fi
    local sorted
    sorted=$(printf '%s\n' "${results[@]}" | sort -n)
    local lo hi
    lo=$(head -n1 <<<"$sorted")
    hi=$(tail -n1 <<<"$sorted")
    if [ "$lo" = "$hi" ]; then echo "$lo ms"; else echo "$lo–$hi ms"; fi
}

# measure, with the kernel's TCP metrics flushed before each run.
measure_cold() {
    local results=() r
    for _ in $(seq "$runs"); do
        ip -n "$client" tcp_metrics flush all 2>/dev/null || true
        r=$(timed "$tapscat" "$@")
        results+=("$r")
    done
    summarize "${results[@]}"
}

echo "| network | tapscat, no RTT data | tapscat | tapscat --history, repeat | curl | Go net.Dial | Python asyncio |"
echo "|---|---|---|---|---|---|---|"
failures=0
for name in global ula; do
    host="$name.test"
    t0=$(measure_cold --timeout 5 "$host:8080")
    # The kernel now remembers the IPv4 round trips of the runs above.
    ip netns exec "$client" curl -s --max-time 1 "http://10.77.0.1:8080/" >/dev/null || true
    t=$(measure "$tapscat" --timeout 5 "$host:8080")
    if [ "$history_supported" = 1 ]; then
        hist="$work/$name.history"
        timed "$tapscat" --history "$hist" --timeout 5 "$host:8080" >/dev/null
        th=$(measure "$tapscat" --history "$hist" --timeout 5 "$host:8080")
    else
        th="FAIL (this tapscat has no --history)"
    fi
    c=$(measure curl -s --max-time 5 "http://$host:8080/")
    g=$(measure "$work/dial" "$host:8080")
    p=$(measure python3 "$here/dial.py" "$host" 8080)
    label="IPv6 global (2001:db8::/32), blackholed"
    [ "$name" = ula ] && label="IPv6 ULA (fd00::/8), blackholed"
    echo "| $label | $t0 | $t | $th | $c | $g | $p |"
    for result in "$t0" "$t" "$th" "$c" "$g" "$p"; do
        [[ "$result" == FAIL* ]] && failures=$((failures + 1))
    done
done

if [ "$smoke" = 1 ] && [ "$failures" -gt 0 ]; then
    echo "first-byte.sh: $failures client(s) did not get the reply" >&2
    exit 1
fi
