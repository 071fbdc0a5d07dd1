#!/usr/bin/env bash
# install-deps.sh: install the Debian 12 packages evbus needs to build,
# test, lint and fuzz, and only those that are missing.
#
# Nothing missing: prints nothing and exits 0 without touching apt.
# Something missing, as root: one `apt-get update`, then one install.
# Something missing, not root: prints the command to run and exits 1.
# EVB_SKIP_DEPS=1 skips the check (a distribution other than Debian 12,
# where the same libraries come from elsewhere).
set -euo pipefail

# The one list. One package per line, with why we need it.
PACKAGES=(
	build-essential   # gcc, make and the C library headers
	cmake             # the build (>= 3.25; Debian 12 has 3.25.1)
	pkg-config        # finds lmdb, jansson and criterion
	libnng-dev        # nng 1.5.2: the broker's pub0/push0/req0 sockets
	liblmdb-dev       # LMDB 0.9.24: the write-ahead log
	libmsgpack-dev    # msgpack-c 4.0.0: the wire format
	libcriterion-dev  # criterion 2.4.1: the test framework
	libjansson-dev    # JSON for the CLI's encode/decode
	python3           # test helpers and scripts
	python3-msgpack   # tests that build MessagePack by hand
	nng-utils         # nngcat, to poke a running broker
	lmdb-utils        # mdb_stat and mdb_dump, to inspect a WAL
	clang             # the libFuzzer targets (make fuzz)
	clang-format      # make format and scripts/format-check.sh
	clang-tidy        # make lint (braces on every conditional)
	cppcheck          # make lint
	libclang-rt-14-dev # sanitizer and libFuzzer runtimes for clang
)

if [ "${EVB_SKIP_DEPS:-0}" = 1 ]; then
	exit 0
fi
if ! command -v dpkg-query >/dev/null 2>&1; then
	echo "install-deps: dpkg-query not found: this script knows Debian 12 only." >&2
	echo "install-deps: install the packages listed at the top of $0 by hand," >&2
	echo "install-deps: then run with EVB_SKIP_DEPS=1." >&2
	exit 1
fi

missing=()
for pkg in "${PACKAGES[@]}"; do
	status=$(dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null || true)
	# "install ok installed" and "hold ok installed" both count;
	# "half-installed" and "config-files" do not.
	case "$status" in
	*" ok installed") ;;
	*) missing+=("$pkg") ;;
	esac
done

if [ ${#missing[@]} -eq 0 ]; then
	exit 0
fi

if [ "$(id -u)" -ne 0 ]; then
	echo "install-deps: missing Debian packages: ${missing[*]}" >&2
	echo "install-deps: run this, then try again:" >&2
	echo "sudo apt-get install -y --no-install-recommends ${missing[*]}"
	exit 1
fi

echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update
apt-get install -y --no-install-recommends "${missing[@]}"
