#!/usr/bin/env bash
# Starts a real OpenAI-compatible engine, Ollama, on a free loopback port with a tiny
# random-weight model, and runs a command with OLLAMA_URL (its base URL, no /v1) and
# OLLAMA_MODEL set; stops Ollama when the command ends, whatever happens, and exits with
# the command's status.
#
#   bash scripts/ollama.sh go test -run Ollama ./cmd/sluice/
#   bash scripts/ollama.sh              # no command: print the variables and wait for ^C
#   bash scripts/ollama.sh --build-only # build (or find) the binary and print its path
#
# Ollama is built from its Go module (CPU only, pinned to OLLAMA_VERSION) into
# ${SLUICE_CACHE:-$HOME/.cache/sluice}/ollama-VERSION, once: the first build takes 4 to 7
# minutes of both cores, later runs find the binary there. The module's zip lacks
# llama.cpp's vendor folder; its three headers come from Debian (nlohmann-json3-dev,
# libstb-dev, installed when missing and we are root) and from the Go module
# gen2brain/malgo (miniaudio.h). The model is made by test/gguf, here, every run:
# nothing is downloaded but Go modules.
#
# Settings (environment):
#   OLLAMA_GGUF_ARGS     test/gguf's flags; default the 0.6 MB model. The 103 MB one of the
#                        benchmarks: "-dim 512 -layers 8 -ff 1376 -heads 8"
#   OLLAMA_NUM_PARALLEL  requests the model runs at once (default 2)
#   OLLAMA_MAX_QUEUE     requests waiting while the model loads before 503 (default 4)
#   OLLAMA_NUM_THREAD    threads of the model runner (default 1: with 2 on this 2-core
#                        machine, ggml's spinning threads collapse when anything else runs)
#   OLLAMA_MODEL         the name the model is served under (default tiny)
set -euo pipefail

OLLAMA_VERSION="${OLLAMA_VERSION:-v0.17.4}"
MALGO_VERSION="v0.11.24" # its miniaudio.h is the 0.11.x that llama.cpp's vendor folder holds
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
CACHE="${SLUICE_CACHE:-$HOME/.cache/sluice}/ollama-$OLLAMA_VERSION"
BIN="$CACHE/ollama"

export GOTOOLCHAIN="${GOTOOLCHAIN:-local}"

# moddir downloads a Go module and prints the folder it is in.
moddir() {
	(cd / && GOFLAGS= go mod download -json "$1") | sed -n 's/^\t"Dir": "\(.*\)",$/\1/p'
}

build() {
	local headers=()
	[[ -f /usr/include/nlohmann/json.hpp ]] || headers+=(nlohmann-json3-dev)
	[[ -f /usr/include/stb/stb_image.h ]] || headers+=(libstb-dev)
	if [[ ${#headers[@]} -gt 0 ]]; then
		if [[ "$(id -u)" != 0 ]]; then
			echo "ollama.sh: missing ${headers[*]}; install them (Debian: apt-get install ${headers[*]})" >&2
			exit 1
		fi
		echo "ollama.sh: installing ${headers[*]}..." >&2
		apt-get update -qq >&2
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${headers[@]}" >/dev/null
	fi
	command -v g++ >/dev/null || { echo "ollama.sh: a C++ compiler (g++) is needed to build Ollama" >&2; exit 1; }

	local src malgo work
	src="$(moddir "github.com/ollama/ollama@$OLLAMA_VERSION")"
	malgo="$(moddir "github.com/gen2brain/malgo@$MALGO_VERSION")"
	[[ -d "$src" && -f "$malgo/miniaudio.h" ]] || { echo "ollama.sh: could not download the Ollama module" >&2; exit 1; }
	work="$(mktemp -d "${TMPDIR:-/tmp}/sluice-ollama-build.XXXXXX")"
	# The module cache is read-only, and the build writes nothing but its output, but
	# cgo wants the include folder next to the sources it compiles.
	mkdir -p "$work/include/miniaudio"
	cp "$malgo/miniaudio.h" "$work/include/miniaudio/"
	echo "ollama.sh: building Ollama $OLLAMA_VERSION into $CACHE (a few minutes, once)..." >&2
	# x86-64-v3 (AVX2, FMA, F16C): ggml's CPU kernels built for plain x86-64 run the
	# model some 2.3 times slower. nice: others share the machine. The C++ compiler's
	# many warnings go to a log, shown only when the build fails.
	if ! (cd "$src" && CGO_ENABLED=1 CGO_CPPFLAGS="-I$work/include" \
		CGO_CFLAGS="-O3 -march=x86-64-v3" CGO_CXXFLAGS="-O3 -march=x86-64-v3" \
		nice -n 10 go build -trimpath -buildvcs=false \
		-ldflags "-X github.com/ollama/ollama/version.Version=${OLLAMA_VERSION#v}" \
		-o "$work/ollama" .) >"$work/build.log" 2>&1; then
		tail -n 100 "$work/build.log" >&2
		echo "ollama.sh: the build of Ollama failed (the log's end is above)" >&2
		rm -rf "$work"
		exit 1
	fi
	mkdir -p "$CACHE"
	mv "$work/ollama" "$BIN.tmp" && mv "$BIN.tmp" "$BIN" # whole or not at all
	rm -rf "$work"
}

if [[ ! -x "$BIN" ]]; then
	mkdir -p "$(dirname "$CACHE")"
	# One build at a time; a second run waits for the first and then finds the binary.
	exec 9>"$CACHE.lock"
	flock 9
	[[ -x "$BIN" ]] || build
	exec 9>&-
fi
if [[ "${1:-}" == "--build-only" ]]; then
	echo "$BIN"
	exit 0
fi

TMP="$(mktemp -d "${TMPDIR:-/tmp}/sluice-ollama.XXXXXX")"
OLLAMA_PID=""

stop() {
	if [[ -n "$OLLAMA_PID" ]] && kill -0 "$OLLAMA_PID" 2>/dev/null; then
		# Ollama runs its model runner as a child; a TERM makes it stop the runner too.
		kill -TERM "$OLLAMA_PID" 2>/dev/null || true
		for _ in $(seq 1 40); do
			kill -0 "$OLLAMA_PID" 2>/dev/null || break
			sleep 0.25
		done
		# It started its own process group: whatever is left of it goes.
		kill -KILL -- "-$OLLAMA_PID" 2>/dev/null || true
		wait "$OLLAMA_PID" 2>/dev/null || true
	fi
	rm -rf "$TMP"
}
trap stop EXIT
trap 'exit 130' INT TERM

# The model: random weights, a byte-fallback vocabulary and a ChatML template. Its text
# is gibberish, but it is run by llama.cpp inside Ollama, and usage is real.
# shellcheck disable=SC2086 # OLLAMA_GGUF_ARGS is a list of flags
(cd "$ROOT" && go run ./test/gguf -o "$TMP/model.gguf" ${OLLAMA_GGUF_ARGS:-}) >"$TMP/gguf.log" 2>&1 || {
	echo "ollama.sh: test/gguf failed" >&2
	cat "$TMP/gguf.log" >&2
	exit 1
}
cat >"$TMP/Modelfile" <<EOF
FROM $TMP/model.gguf
PARAMETER num_thread ${OLLAMA_NUM_THREAD:-1}
PARAMETER num_ctx 2048
EOF

free_port() {
	local port
	for _ in $(seq 1 50); do
		port=$((20000 + RANDOM % 40000))
		if ! (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
			echo "$port"
			return 0
		fi
	done
	return 1
}

# A private home and model folder, so nothing of the user's Ollama is seen or touched;
# no cloud models; the model stays loaded until the end. The home is Ollama's alone:
# the command keeps its own, and with it Go's build and module caches.
mkdir -p "$TMP/models" "$TMP/home"
export OLLAMA_MODELS="$TMP/models" OLLAMA_NO_CLOUD=1 OLLAMA_NOPRUNE=1 \
	OLLAMA_KEEP_ALIVE=-1 OLLAMA_NUM_PARALLEL="${OLLAMA_NUM_PARALLEL:-2}" \
	OLLAMA_MAX_QUEUE="${OLLAMA_MAX_QUEUE:-4}" OLLAMA_MAX_LOADED_MODELS=1

PORT=""
for _ in 1 2 3 4 5; do
	try="$(free_port)"
	HOME="$TMP/home" OLLAMA_HOST="127.0.0.1:$try" setsid "$BIN" serve >"$TMP/serve.log" 2>&1 &
	OLLAMA_PID=$!
	for _ in $(seq 1 100); do
		if curl -sf "http://127.0.0.1:$try/" >/dev/null 2>&1; then
			PORT="$try"
			break 2
		fi
		kill -0 "$OLLAMA_PID" 2>/dev/null || break
		sleep 0.1
	done
	kill -KILL "$OLLAMA_PID" 2>/dev/null || true
	wait "$OLLAMA_PID" 2>/dev/null || true
	OLLAMA_PID=""
done
if [[ -z "$PORT" ]]; then
	echo "ollama.sh: Ollama did not start" >&2
	cat "$TMP/serve.log" >&2 || true
	exit 1
fi
export OLLAMA_HOST="127.0.0.1:$PORT"
export OLLAMA_URL="http://$OLLAMA_HOST" OLLAMA_MODEL="${OLLAMA_MODEL:-tiny}"

if ! (cd "$TMP" && HOME="$TMP/home" "$BIN" create "$OLLAMA_MODEL" -f "$TMP/Modelfile") >"$TMP/create.log" 2>&1; then
	echo "ollama.sh: ollama create failed" >&2
	cat "$TMP/create.log" "$TMP/serve.log" >&2 || true
	exit 1
fi
# Load it now: while a model loads, requests past 1 + OLLAMA_MAX_QUEUE get 503 at once.
if ! curl -sf "$OLLAMA_URL/api/generate" -d "{\"model\":\"$OLLAMA_MODEL\"}" >/dev/null; then
	echo "ollama.sh: the model did not load" >&2
	cat "$TMP/serve.log" >&2 || true
	exit 1
fi

if [[ $# -eq 0 ]]; then
	echo "Ollama $OLLAMA_VERSION is serving $OLLAMA_MODEL on $OLLAMA_URL (/v1/chat/completions); ^C stops it."
	echo "export OLLAMA_URL='$OLLAMA_URL' OLLAMA_MODEL='$OLLAMA_MODEL'"
	wait "$OLLAMA_PID"
	exit $?
fi

status=0
"$@" || status=$?
exit "$status"
