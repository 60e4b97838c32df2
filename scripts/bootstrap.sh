# Sourced by scripts/serve and scripts/test: make .venv and install the project.
# Usage: BOOTSTRAP_EXTRA=test . scripts/bootstrap.sh   (an extras_require name, or nothing)
# (Not a positional argument: a sourced script sees its caller's arguments.)
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
VENV="$ROOT/.venv"
extra=${BOOTSTRAP_EXTRA:-}

pick_python() {
    for candidate in python3.13 python3.12 python3.11 python3; do
        if command -v "$candidate" >/dev/null 2>&1 &&
            "$candidate" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
            echo "$candidate"
            return
        fi
    done
    echo "huimages needs Python 3.11 or newer; install it (e.g. apt-get install python3) and retry" >&2
    exit 1
}

if [ ! -x "$VENV/bin/python" ]; then
    echo "creating $VENV" >&2
    "$(pick_python)" -m venv "$VENV"
    "$VENV/bin/python" -m pip install --quiet --upgrade pip
fi

stamp="$VENV/.installed${extra:+-$extra}"
if [ ! -f "$stamp" ] || [ "$ROOT/setup.cfg" -nt "$stamp" ] || [ "$ROOT/pyproject.toml" -nt "$stamp" ]; then
    echo "installing huimages${extra:+[$extra]} into $VENV" >&2
    log="$VENV/pip-install.log"
    if ! "$VENV/bin/python" -m pip install --disable-pip-version-check -e "$ROOT${extra:+[$extra]}" >"$log" 2>&1; then
        tail -n 40 "$log" >&2
        echo "pip install failed; the whole log is in $log" >&2
        exit 1
    fi
    touch "$stamp"
fi
export PATH="$VENV/bin:$PATH"
