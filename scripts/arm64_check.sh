#!/usr/bin/env bash
# Check lettercnn's runtime on 64-bit ARM by emulation (issue 17 item 4; README, "Raspberry Pi").
#
# Builds a minimal Debian 12 "bookworm" arm64 tree with debootstrap, runs it under
# qemu-user-static, installs the runtime there with README's Raspberry Pi recipe as written
# (apt-get install python3-venv; python3 -m venv .venv && .venv/bin/pip install . &&
# .venv/bin/letters recognize samples/letters), then reads the samples (fp32 and --int8) and a
# video generated here (`letters camera --headless`) and compares every answer with the same
# commands run on this x86 host. Exit status 0 only if they agree.
#
# A maintainer's script, not run in CI: it needs root, binfmt_misc, the network (Debian's
# mirror and the Python package index) and time: 14 to 22 minutes on a 2-core x86 machine
# shared with a busier job. It lowers its own priority (nice 19). Emulated timings are not Pi timings.
#
# Usage: sudo scripts/arm64_check.sh [--tree DIR] [--keep] [--cpu cortex-a72|cortex-a76]
#                                    [--host-python PY] [--mirror URL]
#
# Needs on the host: debootstrap qemu-user-static binfmt-support (apt-get install -y ...), and
# a Python with lettercnn's runtime dependencies (--host-python; the checkout is put first on
# its PYTHONPATH, so the host runs this checkout's code).
set -euo pipefail

readonly SUITE=bookworm
readonly CPUS="cortex-a72 cortex-a76"  # Raspberry Pi 4 and Pi 5: the CPUs we have a cpuinfo for
readonly CONFIDENCE_TOLERANCE=1e-4     # fp32 on two ISAs agrees to ~1e-7; 1e-4 leaves room, no more
readonly CHECKOUT=/root/lettercnn      # where the repository goes inside the tree
readonly CHECKS=/root/check            # the outputs of both sides, and the video, inside the tree
readonly BINFMT=/proc/sys/fs/binfmt_misc/qemu-aarch64

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
TREE=/var/tmp/lettercnn-arm64
KEEP=0
CPU=cortex-a72
MIRROR=http://deb.debian.org/debian
HOST_PY=
STARTED=$SECONDS
declare -A TIMES=()  # stage -> seconds

usage() {
    cat <<'EOF'
Usage: sudo scripts/arm64_check.sh [--tree DIR] [--keep] [--cpu CPU] [--host-python PY] [--mirror URL]
  --tree DIR         where the arm64 tree is built [default: /var/tmp/lettercnn-arm64]
  --keep             reuse a tree a previous --keep run finished, and keep it afterwards
                     (without it, the tree is built afresh and removed at the end)
  --cpu CPU          the CPU QEMU emulates and /proc/cpuinfo shows: cortex-a72 (Pi 4) or
                     cortex-a76 (Pi 5) [default: cortex-a72]
  --host-python PY   the x86 Python that gives the reference answers [default: the
                     checkout's .venv/bin/python, else python3]
  --mirror URL       Debian mirror [default: http://deb.debian.org/debian]
EOF
}

log() { printf '[arm64 %3ds] %s\n' "$((SECONDS - STARTED))" "$*"; }
die() {
    printf 'Error: %s\n' "$*" >&2
    exit 1
}

parse_args() {
    while (($#)); do
        case $1 in
            --tree) TREE=${2:?--tree needs a folder}; shift ;;
            --keep) KEEP=1 ;;
            --cpu) CPU=${2:?--cpu needs a CPU}; shift ;;
            --host-python) HOST_PY=${2:?--host-python needs a path}; shift ;;
            --mirror) MIRROR=${2:?--mirror needs a URL}; shift ;;
            -h | --help) usage; exit 0 ;;
            *) usage >&2; die "unknown argument '$1'" ;;
        esac
        shift
    done
    [[ " $CPUS " == *" $CPU "* ]] || die "--cpu '$CPU' is not one of: $CPUS"
    [[ $TREE == /* && $TREE != / && $TREE != *[[:space:]]* ]] ||
        die "--tree '$TREE' must be an absolute path other than / without spaces"
    if [[ -z $HOST_PY ]]; then
        HOST_PY=python3
        [[ -x $REPO/.venv/bin/python ]] && HOST_PY=$REPO/.venv/bin/python
    fi
}

# --- the host --------------------------------------------------------------------------------

check_host() {
    ((EUID == 0)) || die "run as root (debootstrap, chroot and mount need it)"
    local tool
    for tool in debootstrap qemu-aarch64-static chroot mount git; do
        command -v "$tool" >/dev/null ||
            die "'$tool' not found: apt-get install -y debootstrap qemu-user-static binfmt-support"
    done
    PYTHONPATH=$REPO "$HOST_PY" -c 'import cv2, onnxruntime, lettercnn' 2>/dev/null ||
        die "'$HOST_PY' cannot import cv2, onnxruntime and lettercnn: give --host-python a Python with the runtime"
    if [[ -n $(git -C "$REPO" status --porcelain -- lettercnn samples pyproject.toml) ]]; then
        log "warning: uncommitted changes in lettercnn/, samples/ or pyproject.toml: the tree gets HEAD, the host the working tree"
    fi
}

# The kernel must run aarch64 ELF files through QEMU (binfmt_misc). Calling qemu-aarch64-static
# by hand is not enough: apt starts dpkg, dpkg starts maintainer scripts, pip starts Python,
# and QEMU's user mode hands every exec back to the kernel.
ensure_binfmt() {
    if [[ ! -e $BINFMT ]]; then
        log "registering qemu-aarch64 with binfmt_misc"
        [[ -e /proc/sys/fs/binfmt_misc/register ]] ||
            mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc 2>/dev/null || true
        update-binfmts --enable qemu-aarch64 2>/dev/null || true
    fi
    grep -qsx enabled "$BINFMT" ||
        die "qemu-aarch64 is not registered with binfmt_misc and cannot be here (a container without it?): run this on a host or VM where 'update-binfmts --enable qemu-aarch64' works"
}

# Without binfmt's F flag the kernel looks the interpreter up inside the chroot at each exec,
# so it must be there, under the name binfmt gives (Debian's aarch64-binfmt-P).
install_interpreter() {
    local interpreter
    interpreter=$(sed -n 's/^interpreter //p' "$BINFMT")
    install -D -m 755 "$(command -v qemu-aarch64-static)" "$TREE/usr/bin/qemu-aarch64-static"
    if ! grep -q '^flags:.*F' "$BINFMT"; then
        install -D -m 755 "$(command -v qemu-aarch64-static)" "$TREE$interpreter"
    fi
}

# --- mounts ------------------------------------------------------------------------------------

mounts_under_tree() {  # deepest first
    awk -v tree="$TREE" '$2 == tree || index($2, tree "/") == 1 { print $2 }' /proc/self/mounts | sort -r
}

unmount_tree() {
    local point
    for point in $(mounts_under_tree); do
        umount "$point" 2>/dev/null || umount -l "$point"
    done
}

cleanup() {
    local status=$?
    unmount_tree
    if ((!KEEP)) && [[ -d $TREE ]]; then
        if [[ -n $(mounts_under_tree) ]]; then
            echo "Error: mounts remain under $TREE; not removing it" >&2
        else
            rm -rf --one-file-system "$TREE"
        fi
    fi
    exit "$status"
}

# /proc/cpuinfo as a Raspberry Pi shows it. QEMU 7.2 shows ARM programs the host's x86
# cpuinfo, and with /sys mounted onnxruntime's CPU detection then segfaults on import (seen
# with onnxruntime 1.32.0, with and without QEMU_CPU; without /sys it only warns). A real Pi
# never does this.
write_cpuinfo() {
    local part variant revision features cpu count
    case $CPU in
        cortex-a72) part=0xd08 variant=0x0 revision=3 features="fp asimd evtstrm crc32 cpuid" ;;
        cortex-a76) part=0xd0b variant=0x4 revision=1
            features="fp asimd evtstrm aes pmull sha1 sha2 crc32 atomics fphp asimdhp cpuid asimdrdm lrcpc dcpop asimddp" ;;
    esac
    count=$(nproc)  # as many as /sys shows, so the two agree
    for ((cpu = 0; cpu < count; cpu++)); do
        printf 'processor\t: %d\nBogoMIPS\t: 108.00\nFeatures\t: %s\nCPU implementer\t: 0x41\n' "$cpu" "$features"
        printf 'CPU architecture: 8\nCPU variant\t: %s\nCPU part\t: %s\nCPU revision\t: %s\n\n' "$variant" "$part" "$revision"
    done
}

mount_tree() {
    mount -t proc proc "$TREE/proc"
    write_cpuinfo >"$TREE$CHECKS/cpuinfo"
    mount --bind "$TREE$CHECKS/cpuinfo" "$TREE/proc/cpuinfo"
    mount -t sysfs sysfs "$TREE/sys"
    mount --bind /dev "$TREE/dev"
    mount --bind /dev/pts "$TREE/dev/pts"
}

# --- the tree ----------------------------------------------------------------------------------

# Runs a command in the tree, under the chosen CPU, with a clean environment plus what reaches
# the package index from here (PIP_*, proxies).
in_tree() {
    local -a env=(HOME=/root PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
        LANG=C.UTF-8 DEBIAN_FRONTEND=noninteractive QEMU_CPU="$CPU")
    local name
    while IFS= read -r name; do
        # not a path of this host's that the tree lacks (PIP_FIND_LINKS=/opt/wheels, say)
        [[ ${!name} == /* && ! -e $TREE${!name} ]] || env+=("$name=${!name}")
    done < <(compgen -e | grep -E '^(PIP_[A-Z_]+|https?_proxy|no_proxy|HTTPS?_PROXY|NO_PROXY)$' || true)
    QEMU_CPU=$CPU chroot "$TREE" /usr/bin/env -i "${env[@]}" "$@"
}

build_tree() {
    local stamp=$TREE/.lettercnn-arm64-built
    if ((KEEP)) && [[ -e $stamp ]]; then
        log "reusing the tree in $TREE (--keep)"
        install_interpreter
        return
    fi
    unmount_tree
    rm -rf --one-file-system "$TREE"
    log "debootstrap $SUITE arm64 (minbase) into $TREE, first stage"
    local start=$SECONDS
    debootstrap --arch=arm64 --variant=minbase --foreign "$SUITE" "$TREE" "$MIRROR"
    install_interpreter
    log "debootstrap, second stage (emulated)"
    QEMU_CPU=$CPU chroot "$TREE" /debootstrap/debootstrap --second-stage
    unmount_tree  # the second stage may leave its /proc mounted
    TIMES[debootstrap]=$((SECONDS - start))
    touch "$stamp"
}

# What the tree needs from the host to reach the network: for apt, DNS and apt's proxy if any;
# for pip, the certificate bundle and pip's system config (where a proxy re-signs TLS, its CA
# is there).
copy_apt_config() {
    cp -L /etc/resolv.conf "$TREE/etc/resolv.conf"
    apt-config dump | grep -i '^Acquire::[a-z]*::Proxy ' >"$TREE/etc/apt/apt.conf.d/90host-proxy" || true
}

copy_pip_config() {
    install -D -m 644 /etc/ssl/certs/ca-certificates.crt "$TREE/etc/ssl/certs/ca-certificates.crt"
    [[ -f /etc/pip.conf ]] && cp /etc/pip.conf "$TREE/etc/pip.conf"
    if [[ -d /etc/xdg/pip ]]; then
        mkdir -p "$TREE/etc/xdg"
        cp -r /etc/xdg/pip "$TREE/etc/xdg/"
    fi
}

# README, "Raspberry Pi", as written: sudo apt install -y python3-venv, then
# python3 -m venv .venv && .venv/bin/pip install . && .venv/bin/letters recognize samples/letters
install_runtime() {
    local start=$SECONDS
    log "apt-get install python3-venv (README's recipe)"
    copy_apt_config
    in_tree apt-get update -q
    in_tree apt-get install -y -q python3-venv
    copy_pip_config  # after apt: a ca-certificates package would rewrite the bundle
    TIMES[apt]=$((SECONDS - start))

    log "copying HEAD of $REPO into the tree ($CHECKOUT)"
    find "$TREE$CHECKOUT" -mindepth 1 -maxdepth 1 ! -name .venv -exec rm -rf {} + 2>/dev/null || true
    mkdir -p "$TREE$CHECKOUT"
    git -C "$REPO" archive HEAD | tar -x -C "$TREE$CHECKOUT"

    start=$SECONDS
    log "python3 -m venv .venv && .venv/bin/pip install . && .venv/bin/letters recognize samples/letters"
    in_tree sh -c "cd $CHECKOUT && python3 -m venv .venv && .venv/bin/pip install . && .venv/bin/letters recognize samples/letters"
    TIMES[pip]=$((SECONDS - start))
}

# --- the checks --------------------------------------------------------------------------------

# A 640x480 MJPG video of a few samples, each held for 8 frames on its own background colour.
make_video() {
    "$HOST_PY" - "$REPO/samples/letters" "$TREE$CHECKS/letters.avi" <<'EOF'
import sys
from pathlib import Path

import cv2
import numpy as np

SAMPLES = ["A_paper.png", "B_marker.png", "K_dark_board.png", "S_blue_ink.png", "Z_screen.png"]
FRAMES_EACH, WIDTH, HEIGHT, SIDE = 8, 640, 480, 400
folder, out = Path(sys.argv[1]), sys.argv[2]
writer = cv2.VideoWriter(out, cv2.VideoWriter_fourcc(*"MJPG"), 10, (WIDTH, HEIGHT))
for name in SAMPLES:
    image = cv2.imread(str(folder / name))
    scale = SIDE / max(image.shape[:2])
    image = cv2.resize(image, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    border = np.concatenate([image[0], image[-1], image[:, 0], image[:, -1]])
    frame = np.empty((HEIGHT, WIDTH, 3), np.uint8)
    frame[:] = np.median(border, axis=0)
    top, left = (HEIGHT - image.shape[0]) // 2, (WIDTH - image.shape[1]) // 2
    frame[top : top + image.shape[0], left : left + image.shape[1]] = image
    for _ in range(FRAMES_EACH):
        writer.write(frame)
writer.release()
EOF
}

# The same letters commands on both sides; outputs as CHECKS/{arm,x86}-{name}.jsonl.
readonly -a RUNS=(
    "fp32|recognize samples/letters --json"
    "int8|recognize samples/letters --json --int8"
    "camera|camera --source $CHECKS/letters.avi --headless --json"
)

run_arm() {
    local run name args start=$SECONDS
    for run in "${RUNS[@]}"; do
        name=${run%%|*} args=${run#*|}
        log "arm64: letters $args"
        # shellcheck disable=SC2086  # args is a list of words
        in_tree sh -c "cd $CHECKOUT && .venv/bin/letters $args" >"$TREE$CHECKS/arm-$name.jsonl"
    done
    TIMES[arm_runs]=$((SECONDS - start))
}

# Speed under emulation, one onnxruntime thread: wall clock, and CPU time (user + sys of the
# process and its children), which a busy host does not inflate. Cold start is one image from
# process start to answer; per image is (all samples - one sample) / (samples - 1).
measure_speed() {
    local TIMEFORMAT='%R %U %S' one all count
    count=$(wc -l <"$TREE$CHECKS/arm-fp32.jsonl")
    log "arm64: timing letters recognize --threads 1 on one sample, then on all $count"
    one=$({ time in_tree sh -c "cd $CHECKOUT && .venv/bin/letters recognize samples/letters/A_paper.png --threads 1" >/dev/null 2>&1; } 2>&1)
    all=$({ time in_tree sh -c "cd $CHECKOUT && .venv/bin/letters recognize samples/letters --threads 1" >/dev/null 2>&1; } 2>&1)
    SPEED=$(awk -v one="$one" -v all="$all" -v n="$count" 'BEGIN {
        split(one, a, " "); split(all, b, " "); cpu1 = a[2] + a[3]; cpun = b[2] + b[3]
        printf "  emulated arm64, --threads 1: cold start %.1f s CPU (%.1f s wall); per image %.0f ms CPU (%.0f ms wall)\n",
            cpu1, a[1], (cpun - cpu1) * 1000 / (n - 1), (b[1] - a[1]) * 1000 / (n - 1) }')
}

run_x86() {
    local run name args
    for run in "${RUNS[@]}"; do
        name=${run%%|*} args=${run#*|}
        args=${args//$CHECKS/$TREE$CHECKS}
        log "x86: letters $args"
        # shellcheck disable=SC2086
        (cd "$REPO" && PYTHONPATH=$REPO "$HOST_PY" -m lettercnn $args) >"$TREE$CHECKS/x86-$name.jsonl"
    done
}

# Compares arm-*.jsonl with x86-*.jsonl: the same files (or frames) in the same order, the same
# letter, confidence within the tolerance. Prints one line per run and the timings.
compare() {
    local versions
    versions=$(in_tree "$CHECKOUT/.venv/bin/python" -c '
import platform, cv2, numpy, onnxruntime
print(f"Python {platform.python_version()} {platform.machine()}, onnxruntime {onnxruntime.__version__}, "
      f"numpy {numpy.__version__}, OpenCV {cv2.__version__}")')
    "$HOST_PY" - "$TREE$CHECKS" "$CONFIDENCE_TOLERANCE" "$versions" <<'EOF'
import json
import statistics
import sys
from pathlib import Path

folder, tolerance, versions = Path(sys.argv[1]), float(sys.argv[2]), sys.argv[3]
KEYS = {"fp32": "path", "int8": "path", "camera": "frame"}
ok = True
for name, key in KEYS.items():
    arm = [json.loads(line) for line in (folder / f"arm-{name}.jsonl").read_text().splitlines()]
    x86 = [json.loads(line) for line in (folder / f"x86-{name}.jsonl").read_text().splitlines()]
    differ = [
        f"{a.get(key)}: arm64 {a.get('letter')} {a.get('confidence')}, x86 {b.get('letter')} {b.get('confidence')}"
        for a, b in zip(arm, x86)
        if a.get(key) != b.get(key) or a["letter"] != b["letter"] or abs(a["confidence"] - b["confidence"]) > tolerance
    ]
    if len(arm) != len(x86) or not arm:
        differ.append(f"{len(arm)} answers on arm64, {len(x86)} on x86")
    delta = max((abs(a["confidence"] - b["confidence"]) for a, b in zip(arm, x86)), default=0.0)
    what = "frames where the answer changes" if name == "camera" else "files"
    letters = "".join(a["letter"] for a in arm)
    print(f"  {name:6} {len(arm) - len(differ)}/{len(x86)} {what} agree ({letters}), max |d confidence| {delta:.1e}")
    for line in differ:
        print(f"         DIFFERS {line}")
    ok = ok and not differ
ms = [a["ms"] for a in map(json.loads, (folder / "arm-fp32.jsonl").read_text().splitlines())]
x86_ms = [a["ms"] for a in map(json.loads, (folder / "x86-fp32.jsonl").read_text().splitlines())]
print(f"  arm64: {versions}")
print(f"  per image, wall (recognize fp32, all threads, median 'ms' of {len(ms)}): emulated arm64 "
      f"{statistics.median(ms):.0f} ms, x86 host {statistics.median(x86_ms):.1f} ms")
sys.exit(0 if ok else 1)
EOF
}

summary() {
    local status=$1 total=$((SECONDS - STARTED))
    printf '%s\n' "$SPEED"
    printf '  venv on arm64: %s\n' "$(du -sh "$TREE$CHECKOUT/.venv" | cut -f1)"
    printf '  stages: debootstrap %ss, apt %ss, pip install %ss, arm64 runs %ss\n' \
        "${TIMES[debootstrap]:-reused}" "${TIMES[apt]}" "${TIMES[pip]}" "${TIMES[arm_runs]}"
    printf '  whole script: %dm%02ds. Emulated timings are not Raspberry Pi timings.\n' $((total / 60)) $((total % 60))
    if ((status == 0)); then
        echo "arm64 check: PASS (Debian 12 arm64 under QEMU $(qemu-aarch64-static --version | sed -n '1s/.*version \([^ ]*\).*/\1/p'), $CPU)"
    else
        echo "arm64 check: FAIL"
    fi
}

main() {
    parse_args "$@"
    renice -n 19 -p $$ >/dev/null  # a background check: every child inherits the low priority
    check_host
    ensure_binfmt
    exec 9>"$TREE.lock"  # two runs on one tree would unmount and remove each other's
    flock -n 9 || die "another run is using $TREE ($TREE.lock)"
    trap cleanup EXIT
    trap 'exit 130' INT TERM
    build_tree
    mkdir -p "$TREE$CHECKS"
    mount_tree
    install_runtime
    make_video
    run_arm
    measure_speed
    run_x86
    log "comparing arm64 with x86 (tolerance $CONFIDENCE_TOLERANCE on confidence)"
    echo "arm64 check summary:"
    local status=0
    compare || status=$?
    summary "$status"
    return "$status"
}

main "$@"
