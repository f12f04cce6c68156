#!/usr/bin/env bash
# Three Linux routers share a LAN's gateway with GLBP, in network namespaces on this machine.
#
#   sudo examples/glbp/netns-demo.sh            (from the checkout, after `make install`)
#
# Builds a LAN (a bridge), routers r1 r2 r3 (eth0 on the LAN, eth1 to a "wan" namespace with
# 198.51.100.1 behind it) and hosts h1 h2 h3 whose default gateway is the virtual IP
# 192.168.0.254; runs `pbxgate glbp run` on each router; shows `show glbp brief`, which vMAC
# each host got and which router its pings went through; then kills the router of h1 and shows
# the forwarder moving. Everything it made is removed when it ends (also on Ctrl-C).
set -euo pipefail
cd "$(dirname "$0")/../.."
PBXGATE=${PBXGATE:-$PWD/.venv/bin/pbxgate}
[ "$(id -u)" = 0 ] || { echo "run as root: namespaces, veths and macvlans need it" >&2; exit 1; }
[ -x "$PBXGATE" ] || { echo "no $PBXGATE: run 'make install' first (or set PBXGATE)" >&2; exit 1; }

P=gd$$-          # namespace prefix: this run's own
WORK=$(mktemp -d /tmp/glbp-demo.XXXXXX)
NODES=(sw wan r1 r2 r3 h1 h2 h3)
ns() { ip netns exec "$P$1" "${@:2}"; }

cleanup() {
  for r in r1 r2 r3; do
    if [ -f "$WORK/$r.pid" ]; then kill "$(cat "$WORK/$r.pid")" 2>/dev/null || true; fi
  done
  sleep 0.5
  ip netns pids "${P}h1" 2>/dev/null | xargs -r kill 2>/dev/null || true
  for n in "${NODES[@]}"; do ip netns del "$P$n" 2>/dev/null || true; done
  rm -rf "$WORK"
}
trap cleanup EXIT

echo "== building the LAN: bridge, 3 routers, 3 hosts, a wan with 198.51.100.1"
for n in "${NODES[@]}"; do
  ip netns add "$P$n"; ns "$n" ip link set lo up
  ns "$n" sysctl -qw net.ipv6.conf.all.disable_ipv6=1
done
ns sw ip link add br0 type bridge stp_state 0; ns sw ip link set br0 up
ns wan ip addr add 198.51.100.1/32 dev lo
i=0
for n in r1 r2 r3 h1 h2 h3; do
  ip -n "$P$n" link add eth0 type veth peer name "l-$n" netns "${P}sw"
  ns sw ip link set "l-$n" master br0 up; ns "$n" ip link set eth0 up
done
for i in 1 2 3; do
  r=r$i
  ns "$r" ip addr add "192.168.0.$i/24" dev eth0
  ns "$r" sysctl -qw net.ipv4.ip_forward=1
  ip -n "$P$r" link add eth1 type veth peer name "u-$r" netns "${P}wan"
  ns "$r" ip addr add "10.0.$i.2/30" dev eth1; ns "$r" ip link set eth1 up
  ns wan ip addr add "10.0.$i.1/30" dev "u-$r"; ns wan ip link set "u-$r" up
  ns "$r" ip route add default via "10.0.$i.1"
  ns wan ip route add 192.168.0.0/24 via "10.0.$i.2" metric "$i"
  h=h$i
  ns "$h" ip addr add "192.168.0.1$i/24" dev eth0
  ns "$h" ip route add default via 192.168.0.254
  # The routers' IOS configuration: the article's group 1, with sub-second timers for the demo.
  cat > "$WORK/$r.cfg" <<CFG
hostname R$i
track 1 interface eth1 line-protocol
interface eth0
 glbp 1 ip 192.168.0.254
 glbp 1 priority $((110 - i))
 glbp 1 preempt
 glbp 1 timers msec 300 msec 1000
 glbp 1 weighting 100 lower 80 upper 95
 glbp 1 weighting track 1 decrement 30
CFG
done

echo "== starting pbxgate glbp run on r1 r2 r3 (logs in $WORK)"
for r in r1 r2 r3; do   # not through ns(): $! must be the daemon itself
  ip netns exec "$P$r" "$PBXGATE" glbp run "$WORK/$r.cfg" --control "$WORK/$r.sock" \
    --ledger "$WORK/$r.ledger" > "$WORK/$r.log" 2>&1 &
  echo $! > "$WORK/$r.pid"
done
show() { ns "$1" "$PBXGATE" glbp show brief --control "$WORK/$1.sock" 2>/dev/null; }
for _ in $(seq 60); do   # until an AVG, a standby and three forwarders are up
  show r1 | grep -q "Active   192.168.0.254   local           192.168.0" \
    && [ "$(ns r1 ip -br link | grep -c '^glbp') $(ns r2 ip -br link | grep -c '^glbp')" = "1 1" ] \
    && break
  sleep 0.25
done
echo; echo "R1#show glbp brief"; show r1

echo; echo "== each host asks for its gateway and pings 198.51.100.1 five times"
for h in h1 h2 h3; do
  ns "$h" ping -c5 -i0.1 -W1 198.51.100.1 > /dev/null || true
  mac=$(ns "$h" ip neigh show 192.168.0.254 dev eth0 | awk '{print $3}')
  via=$(for r in r1 r2 r3; do if ns "$r" ip -br link | grep -qi "$mac"; then echo "$r"; fi; done)
  echo "  $h: gateway 192.168.0.254 is at $mac -> forwarded by $via"
done

mac1=$(ns h1 ip neigh show 192.168.0.254 dev eth0 | awk '{print $3}')
victim=$(for r in r1 r2 r3; do if ns "$r" ip -br link | grep -qi "$mac1"; then echo "$r"; fi; done)
echo; echo "== $victim (h1's forwarder) loses power: its daemon is killed, its LAN port goes dark"
ip netns exec "${P}h1" ping -i0.02 -D -O 198.51.100.1 > "$WORK/ping.log" 2>&1 &
PING=$!
sleep 1
dead=$(cat "$WORK/$victim.pid"); rm "$WORK/$victim.pid"
kill -9 "$dead"; wait "$dead" 2>/dev/null || true
ns sw ip link set "l-$victim" down
ns wan ip route del 192.168.0.0/24 via "10.0.${victim#r}.2" 2>/dev/null || true
sleep 3
kill "$PING"; wait "$PING" 2>/dev/null || true  # (a background job ignores SIGINT)
lost=$(grep -c "no answer yet" "$WORK/ping.log" || true)
sent=$(( lost + $(grep -c "bytes from" "$WORK/ping.log" || true) ))
now=$(ns h1 ip neigh show 192.168.0.254 dev eth0 | awk '{print $3}')
if [ "$now" = "$mac1" ]; then arp="its ARP entry for the gateway is still $mac1"
else arp="its ARP entry for the gateway changed from $mac1 to ${now:-nothing}"; fi
echo "  h1 pinged every 20 ms: $lost of $sent pings lost (hold time 1 s); $arp"
survivor=$(for r in r1 r2 r3; do if [ "$r" != "$victim" ]; then echo "$r"; break; fi; done)
echo; echo "$survivor#show glbp brief"; show "$survivor"
echo; echo "== log lines of $survivor"; grep -E "%GLBP|%TRACK" "$WORK/$survivor.log" | tail -4
