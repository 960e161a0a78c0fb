# netkit_mesh: the checks, the confirmation and the verification of one host, run with bash on the
# host by the role's action (action_plugins/netkit_mesh.py). No Jinja here: the action computes
# this host's part (which peers to ping, in which order) in Python and puts it, shell-quoted, in a
# few variables before this text, then one of the steps at the end:
#   NK_STEP       check | keep | verify
#   NK_ME         this host's name in the mesh
#   NK_SRC        this host's overlay address (the pings' source)
#   NK_WIREGUARD  1 for a WireGuard mesh (each pair's handshake started from one end), else 0
#   NK_SECONDS    how long the pings may take
#   NK_FIRST      overlay addresses of the peers this host pings first (it starts their handshakes)
#   NK_AWAITED    those that start theirs with this host (pinged once they have, or after 2 s)
#   check:  NK_COMMAND  the user's own check (netkit_check_command), run after the pings
#   keep:   NK_BIN, NK_PID (the waiter this run's apply started), NK_VERIFY (1: verify the host
#           after its confirmation), NK_DOCTOR (1: with "netkit doctor")
#   keep, verify: NK_PEERS ("ADDRESS NAME" per line: every peer), NK_CHECKED (how many of them
#           this host's check reached moments before: not pinged again)
# (The role's templates once built this per host; rendering them cost Ansible 0.3 s of CPU per
# host and task on a 50-host mesh.)

# netkit_pings SRC SECONDS ADDR...: pings every ADDR from SRC at once, once a second until it
# answers or SECONDS pass, and prints those that never answered. fping does it in one process; it
# gives up at once on an address with no route yet (an IPsec tunnel whose SA is still being
# negotiated), so those are asked again each second until the time is up. Without fping (a host set
# up before the role listed it), one ping process per address.
netkit_pings() {
  local src=$1 secs=$2 now end err out left lost addr
  shift 2
  if command -v fping >/dev/null 2>&1; then
    printf -v now '%(%s)T' -1
    end=$((now + secs))
    err=$(mktemp)
    while [ $# -gt 0 ]; do
      printf -v now '%(%s)T' -1
      left=$((end - now))
      [ "$left" -gt 0 ] || break
      out=$(fping -q -u -B 1 -t 1000 -r $((left - 1)) ${src:+-S "$src"} "$@" 2>"$err")
      # 0: every one answered, 1: some did not (listed); more: fping could not ping at all (no
      # such source address, ...), and then none counts as answered (what fping said: stderr).
      case $? in
        0 | 1) set -- $out ;;
        *) echo "fping: $(head -c 300 "$err")" >&2; break ;;
      esac
      [ $# -gt 0 ] && sleep 1
    done
    rm -f "$err"
    [ $# -gt 0 ] && printf ' %s' "$@"
    return 0
  fi
  lost=$(mktemp)
  for addr in "$@"; do
    (ping -c 1 -w "$secs" -q ${src:+-I "$src"} "$addr" >/dev/null 2>&1 || printf ' %s' "$addr" >>"$lost") &
  done
  wait
  cat "$lost"
  rm -f "$lost"
}

# netkit_reach SRC SECONDS "FIRST..." "AWAITED...": pings the peers FIRST, then the AWAITED ones,
# and prints those that never answered. WireGuard: when both ends of a pair start a handshake at
# the same moment, each takes the other's initiation as responder (replacing its own), both end up
# responders, neither may send first, and both retry 5 s later, often together again (checks
# waited 10 to 50 s that way). So each pair's handshake is started from one end: FIRST are the
# peers this host starts it with (the hosts after it in the play's order, which start later, and
# those that run no check), AWAITED the ones that start it with this host (the hosts before it).
# An AWAITED peer is pinged at once when their session is younger than 170 s: until 180 s only the
# end that made the session may start a new one (to renew its keys, wireguard-go's keepKeyFresh*),
# so two handshakes cannot cross. Else once the peer sent something since the start, or after 2 s:
# a peer that pinged this host before the start (as the one that started earlier usually has) made
# its handshake then; only one that starts after this host could be making one, and it would have
# been heard by then.
netkit_reach() {
  local src=$1 secs=$2 first=$3 awaited=$4 start now deadline left out= wireguard=$NK_WIREGUARD keys received waiting
  printf -v start '%(%s)T' -1
  if [ -n "$awaited" ] && [ "$wireguard" = 1 ] && command -v wg >/dev/null 2>&1; then
    keys=$(wg show all allowed-ips 2>/dev/null)
    received=$(wg show all transfer 2>/dev/null)
  else
    wireguard=0
  fi
  if [ -n "$first" ]; then out=$(netkit_pings "$src" "$secs" $first); fi
  if [ "$wireguard" = 1 ]; then
    waiting=$awaited
    deadline=$((start + (secs < 2 ? secs : 2)))
    printf -v now '%(%s)T' -1
    while [ -n "$waiting" ] && [ "$now" -lt $deadline ]; do
      # A few processes a round for all the peers (more per peer made 10,000 a second on a
      # 50-host mesh): each peer's key (allowed-ips, read once), its last handshake, the bytes
      # received from it at the start and now.
      waiting=$({ printf '%s\n--\n' "$keys"; wg show all latest-handshakes; echo --
                  printf '%s\n--\n' "$received"; wg show all transfer; } 2>/dev/null |
        awk -v want="$waiting" -v now="$now" '
          $0 == "--" { part++; next }
          part == 0 { for (i = 3; i <= NF; i++) key[$i] = $2; next }
          part == 1 { shook[$2] = $3; next }
          part == 2 { before[$2] = $3; next }
          { rx[$2] = $3 }
          END {
            n = split(want, w, " "); rest = ""
            for (j = 1; j <= n; j++) {
              k = key[w[j] "/32"]; t = shook[k] + 0
              if (k != "" && ((t > 0 && now - t < 170) || rx[k] + 0 > before[k] + 0)) continue
              rest = rest (rest == "" ? "" : " ") w[j]
            }
            print rest
          }')
      [ -z "$waiting" ] || sleep 0.5
      printf -v now '%(%s)T' -1
    done
  fi
  printf -v now '%(%s)T' -1
  left=$((start + secs - now))
  [ "$left" -ge 1 ] || left=1
  if [ -n "$awaited" ]; then out="$out$(netkit_pings "$src" "$left" $awaited)"; fi
  printf '%s' "$out"
}

# netkit_verify [REPORT RC]: "netkit doctor --json" (NK_DOCTOR) while every peer not reached by the
# check is pinged over the overlay (netkit_reach), then one line: what failed (the peers by name,
# the doctor's failed checks) or that all passed; returns 1 when something failed. REPORT (and its
# status RC): the doctor ran already, with the confirmation (keep): the waiter's report, or that of
# "netkit apply --confirm --doctor --json".
netkit_verify() {
  local doctor=${1:-} doctor_rc=${2:-0} doctor_pid= lost msg= names= a failed= total
  if [ "$NK_DOCTOR" = 1 ] && [ -z "$doctor" ]; then
    doctor=$(mktemp)
    "$NK_BIN" doctor --json >"$doctor" 2>/dev/null </dev/null &
    doctor_pid=$!
  fi
  lost=$(netkit_reach "$NK_SRC" "$NK_SECONDS" "$NK_FIRST" "$NK_AWAITED")
  if [ -n "$doctor_pid" ]; then wait "$doctor_pid" || doctor_rc=$?; fi
  if [ -n "$lost" ]; then
    # The peers' names, from their overlay addresses.
    names=$(printf '%s\n' "$NK_PEERS" | awk -v lost="$lost" '
      BEGIN { n = split(lost, l, " "); for (i = 1; i <= n; i++) want[l[i]] = 1 }
      ($1 in want) { out = out (out == "" ? "" : ", ") $2 }
      END { print out }')
    msg=" no answer over the overlay from $names."
  fi
  if [ "$NK_DOCTOR" = 1 ]; then
    # The doctor exits 1 when a check failed: only then are its failed checks read (with Python), from
    # "netkit doctor --json", "netkit apply --confirm --doctor --json" (its report under "doctor") or
    # the waiter's report (apply-doctor.json: under "result", or why the doctor could not run).
    if [ "$doctor_rc" -ne 0 ]; then
      failed=$(python3 -c 'import json, sys
try:
    d = json.load(open(sys.argv[1]))
    if "error" in d and "result" not in d:
        raise Exception(d["error"])
    r = d["result"]
    checks = r["doctor"]["checks"] if "doctor" in r else r["checks"]
    print(", ".join(c["id"] for c in checks if c.get("result") == "fail"))
except Exception as e:
    print("no report (%s)" % e)' "$doctor")
      [ -n "$failed" ] || failed="exit code $doctor_rc"
    fi
    if [ -n "$failed" ]; then msg="$msg netkit doctor failed: $failed."; fi
    [ -z "$doctor_pid" ] || rm -f "$doctor"
  fi
  if [ -n "$msg" ]; then echo "$NK_ME:$msg"; return 1; fi
  total=$(printf '%s\n' "$NK_PEERS" | grep -c .)
  printf '%s reaches its %s peers over the overlay' "$NK_ME" "$total"
  [ "${NK_CHECKED:-0}" -eq 0 ] || printf ' (%s of them in its check, before the confirmation)' "$NK_CHECKED"
  [ "$NK_DOCTOR" != 1 ] || printf '; netkit doctor passes'
  printf '\n'
}

# check: the overlay reaches the peers already rolled out, then the user's own check.
netkit_step_check() {
  local lost
  if [ -n "$NK_FIRST$NK_AWAITED" ]; then
    lost=$(netkit_reach "$NK_SRC" "$NK_SECONDS" "$NK_FIRST" "$NK_AWAITED")
    if [ -n "$lost" ]; then echo "no answer over the overlay from:$lost"; exit 1; fi
  fi
  # Its standard input is not the rest of this script (bash reads it from there).
  if [ -n "$NK_COMMAND" ]; then eval "$NK_COMMAND" </dev/null; fi
}

# netkit_tell_waiter WORDS REPORT: "netkit apply --confirm" (WORDS "confirm") or "--confirm --doctor"
# ("confirm doctor") without starting netkit: the answer given to the waiter NK_PID (the one this run's
# apply started) the way netkit gives it (src/lib/apply/pending.ts: the answer file, written by rename;
# the waiter keeps the change and records the outcome, with "doctor" checks the host as "netkit
# doctor" does and writes its report, then lets go of the host lock). On the change kept: 0, the
# doctor's report (when asked) in REPORT.
# Anything else (no such waiter pending, the change undone, no outcome or no report within 60 s each):
# 2, and netkit itself is asked, which says what became of the change (and checks the host itself).
netkit_tell_waiter() {
  local words=$1 report=$2 state=${NETKIT_STATE_DIR:-/run/netkit} pid=$NK_PID out= i
  [ -n "$pid" ] && [ -e "/proc/$pid" ] || return 2
  case $(cat "$state/apply-pending.json" 2>/dev/null) in "{\"pid\":$pid,"*) ;; *) return 2 ;; esac
  (umask 077 && printf '%s\n' "$words" >"$state/.apply-answer.$$" && mv -f "$state/.apply-answer.$$" "$state/apply-answer") || return 2
  for ((i = 0; i < 1200; i++)); do
    out=$(cat "$state/apply-outcome.json" 2>/dev/null)
    case $out in "{\"pid\":$pid,"*) break ;; esac
    out=
    [ -e "/proc/$pid" ] || break
    sleep 0.05
  done
  case $out in *'"outcome":"confirmed"'*) ;; *) return 2 ;; esac
  # Done, as for netkit: once the waiter has let go of the host lock too (or ended): its doctor's report
  # is written by then, and a netkit started right after is not refused as busy.
  for ((i = 0; i < 1200; i++)); do
    case $(cat "$state/netkit.lock" 2>/dev/null) in "{\"pid\":$pid,"*) ;; *) break ;; esac
    [ -e "/proc/$pid" ] || break
    sleep 0.05
  done
  if [ -n "$report" ]; then
    case $(cat "$state/apply-doctor.json" 2>/dev/null) in "{\"pid\":$pid,"*) cp "$state/apply-doctor.json" "$report" ;; *) return 2 ;; esac
  fi
  return 0
}

# keep: the change confirmed (its waiter told directly; with the doctor's checks when it verifies),
# then, in the last batch, the verification. The doctor fails the verification, not the confirmation:
# the change is kept either way.
netkit_step_keep() {
  local kept rc=0 words=confirm doctor= report= how
  kept=$(mktemp)
  if [ "$NK_VERIFY" = 1 ] && [ "$NK_DOCTOR" = 1 ]; then words="confirm doctor" doctor=--doctor report=$kept; fi
  if netkit_tell_waiter "$words" "$report"; then
    how="its waiter told, pid $NK_PID"
    [ -z "$doctor" ] || grep -q '"passed":true' "$kept" || rc=1
  else
    # netkit's JSON envelope says "ok": true on its second line (with --doctor a failed check exits 1 too).
    "$NK_BIN" apply --confirm --json $doctor >"$kept" 2>"$kept.err" </dev/null
    rc=$?
    case $(sed -n 2p "$kept") in
      *'"ok": true'*) ;;
      *) cat "$kept" "$kept.err"; rm -f "$kept" "$kept.err"; exit 1 ;;
    esac
    how="netkit apply --confirm"
  fi
  echo "$NK_ME: change confirmed ($how)"
  if [ "$NK_VERIFY" = 1 ]; then
    if netkit_verify "$kept" "$rc"; then echo "netkit: verified"; fi
  fi
  rm -f "$kept" "$kept.err"
}

netkit_step_verify() {
  netkit_verify || exit 1
}

"netkit_step_$NK_STEP"
