#!/bin/sh
# Install the system packages drconsole's tests use, without recommends, only those missing:
# Debian's prometheus (with promtool) and prometheus-alertmanager, haproxy (the load balancer of
# deploy/haproxy/haproxy.cfg), the shells whose completion scripts the tests load (zsh, fish),
# and OpenSSH's server (the off-site SFTP repositories' tests start their own sshd on a loopback port).
# Used by `make system-deps` (every `make test`), tests/promstack.py and tests/haproxy_support.py.
# Silent when everything is there.
#
# The packages' postinst would start the daemons (Prometheus on 9090, Alertmanager on 9093, HAProxy
# on its packaged config); the tests start their own on free ports, and a stray daemon would go on
# scraping, alerting or holding a port. A policy-rc.d that answers 101 ("action forbidden") stops
# invoke-rc.d and deb-systemd-invoke from starting them; we add one for the install only, unless
# the machine has its own (containers usually do).
set -eu
# sshd lives in /usr/sbin, which an unprivileged PATH often lacks.
PATH="$PATH:/usr/local/sbin:/usr/sbin:/sbin"

# One "binary:package" per line: the package is installed when the binary is missing.
NEEDS="
promtool:prometheus
prometheus:prometheus
prometheus-alertmanager:prometheus-alertmanager
haproxy:haproxy
zsh:zsh
fish:fish
sshd:openssh-server
"
PACKAGES=""
for need in $NEEDS; do
    binary=${need%%:*}
    package=${need#*:}
    if ! command -v "$binary" >/dev/null 2>&1; then
        case " $PACKAGES " in *" $package "*) ;; *) PACKAGES="$PACKAGES $package" ;; esac
    fi
done
PACKAGES=${PACKAGES# }
[ -n "$PACKAGES" ] || exit 0

POLICY=/usr/sbin/policy-rc.d

if [ "$(id -u)" -ne 0 ]; then
    echo "install-system-deps: need root to apt-get install $PACKAGES (run as root, or install them)" >&2
    exit 1
fi

added_policy=""
if [ ! -e "$POLICY" ]; then
    printf '#!/bin/sh\n# drconsole install-system-deps: start no service during the install\nexit 101\n' > "$POLICY"
    chmod 755 "$POLICY"
    added_policy=1
fi
cleanup() { if [ -n "$added_policy" ]; then rm -f "$POLICY"; fi; }
trap cleanup EXIT

export DEBIAN_FRONTEND=noninteractive
install() { apt-get install -y -q --no-install-recommends $PACKAGES; }
# A fresh machine has no package lists yet: update only when the first try fails.
if ! install >/tmp/drconsole-apt.log 2>&1; then
    apt-get update -q >>/tmp/drconsole-apt.log 2>&1 || true
    if ! install >>/tmp/drconsole-apt.log 2>&1; then
        tail -n 30 /tmp/drconsole-apt.log >&2
        echo "install-system-deps: apt-get install $PACKAGES failed (log: /tmp/drconsole-apt.log)" >&2
        exit 1
    fi
fi

# If a service was started anyway (a policy-rc.d that allows it), stop and disable it; only those of
# packages installed just now (a machine's own sshd, say, is none of our business).
for pair in prometheus:prometheus prometheus-alertmanager:prometheus-alertmanager haproxy:haproxy ssh:openssh-server; do
    service=${pair%%:*}
    case " $PACKAGES " in *" ${pair#*:} "*) ;; *) continue ;; esac
    if command -v systemctl >/dev/null 2>&1 && systemctl is-active --quiet "$service" 2>/dev/null; then
        systemctl disable --now "$service" >/dev/null 2>&1 || true
    elif command -v service >/dev/null 2>&1; then
        service "$service" stop >/dev/null 2>&1 || true
    fi
done

for need in $NEEDS; do
    command -v "${need%%:*}" >/dev/null || { echo "install-system-deps: ${need%%:*} still missing" >&2; exit 1; }
done
echo "install-system-deps: installed $PACKAGES"
