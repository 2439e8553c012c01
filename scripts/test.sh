#!/usr/bin/env bash
# Install (scripts/setup.sh), bring a Chromium for the browser tests, then run ruff, the unit tests, every
# notebook (nbmake) and the browser tests in fast mode (without arguments: in two processes side by side). Extra arguments go to pytest, e.g.
# `bash scripts/test.sh -k densities`, or `bash scripts/test.sh -m "not browser"` to leave the browser out.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
source "${VENV:-.venv}/bin/activate"
export SCORETUTOR_FAST=${SCORETUTOR_FAST:-1}
export MPLBACKEND=Agg

# The browser tests (tests/browser) drive a real Chromium: Debian's where apt-get exists, else Playwright's
# own build. Found (or installed) here, before any test runs, or the run stops now with the command to use.
find_chromium() {
  if [ -n "${SCORETUTOR_CHROMIUM:-}" ]; then
    [ -x "$SCORETUTOR_CHROMIUM" ] && return 0
    echo "[test] SCORETUTOR_CHROMIUM=$SCORETUTOR_CHROMIUM is not an executable file" >&2; return 1
  fi
  if [ -x /usr/bin/chromium ]; then export SCORETUTOR_CHROMIUM=/usr/bin/chromium; return 0; fi
  if command -v apt-get >/dev/null 2>&1; then
    echo "[test] installing Debian's chromium for the browser tests (apt-get)"
    local sudo=""; [ "$(id -u)" = 0 ] || sudo="sudo"
    if $sudo apt-get update -qq && $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null \
        && [ -x /usr/bin/chromium ]; then
      export SCORETUTOR_CHROMIUM=/usr/bin/chromium; return 0
    fi
  fi
  echo "[test] installing Playwright's Chromium for the browser tests"
  if python -m playwright install chromium >/dev/null 2>&1; then
    SCORETUTOR_CHROMIUM=$(python -c "from playwright.sync_api import sync_playwright as s; p = s().start(); \
print(p.chromium.executable_path); p.stop()")
    if [ -x "$SCORETUTOR_CHROMIUM" ]; then export SCORETUTOR_CHROMIUM; return 0; fi
  fi
  return 1
}
case " $* " in
  *"not browser"*) ;;
  *) if ! find_chromium; then
       echo "[test] error: no Chromium for the browser tests. Install one with 'sudo apt-get install -y chromium'" \
            "(Debian/Ubuntu) or '${VENV:-.venv}/bin/python -m playwright install chromium', or leave them out:" \
            "bash scripts/test.sh -m 'not browser'" >&2
       exit 2
     fi
     echo "[test] browser tests use $SCORETUTOR_CHROMIUM" ;;
esac

echo "[test] ruff"
ruff check .
if [ $# -gt 0 ]; then  # a selection: one pytest run, as asked
  echo "[test] pytest: unit tests + notebooks (SCORETUTOR_FAST=$SCORETUTOR_FAST)"
  exec python -m pytest tests notebooks --nbmake --nbmake-timeout=900 --durations=15 "$@"
fi
# Everything: two halves side by side, one CPU thread each (two torch processes with two threads each on two
# cores would fight over them), the second half's report printed when both are done.
# The lecture-deck browser test stays with the unit tests: it reuses the notebooks the screen checks execute.
echo "[test] pytest, two halves side by side (SCORETUTOR_FAST=$SCORETUTOR_FAST): unit tests and the deck |" \
     "notebooks and their explorers in the browser"
export OMP_NUM_THREADS=1 MKL_NUM_THREADS=1
live=(tests/browser/test_notebook_explorers.py tests/browser/test_explore_page.py)
second=$(mktemp)
python -m pytest notebooks "${live[@]}" --nbmake --nbmake-timeout=900 --durations=10 >"$second" 2>&1 &
pid=$!
status=0
python -m pytest tests "${live[@]/#/--ignore=}" --durations=10 || status=$?
wait "$pid" || status=$?
echo "[test] ---- notebooks (nbmake) and their explorers in the browser ----"
cat "$second"
rm -f "$second"
exit "$status"
