#!/usr/bin/env bash
# Fails with a clear message when a machine prerequisite of the local stack is missing.
set -u
problems=0
need() { echo "missing prerequisite: $1" >&2; problems=1; }

command -v "${PYTHON:-python3.11}" >/dev/null 2>&1 || need "Python 3.11 (python3.11 on PATH, or set PYTHON=...)"
if command -v java >/dev/null 2>&1; then
  java -version 2>&1 | grep -Eq 'version "(1[7-9]|2[0-9])' || need "Java 17 or newer (java -version)"
else
  need "Java 17 (the Pub/Sub and Firestore emulators run on the JVM)"
fi
if command -v gcloud >/dev/null 2>&1; then
  sdk=$(gcloud info --format='value(installation.sdk_root)' 2>/dev/null)
  for component in pubsub-emulator bigtable-emulator cloud-firestore-emulator; do
    [ -d "$sdk/platform/$component" ] || need "gcloud component $component (apt: google-cloud-cli-${component/cloud-/}, or: gcloud components install ${component/cloud-/})"
  done
else
  need "gcloud CLI (Google Cloud SDK) with the Pub/Sub, Bigtable and Firestore emulators"
fi
# The JavaScript tracker (tracker/): its tests run on Node's own test runner, its build on npm.
if command -v node >/dev/null 2>&1; then
  node -e 'process.exit(Number(process.versions.node.split(".")[0]) >= 18 ? 0 : 1)' \
    || need "Node.js 18 or newer (node --version), for the tracker"
else
  need "Node.js 18+ and npm (Debian: apt-get install nodejs npm), for the tracker's tests and build"
fi
command -v npm >/dev/null 2>&1 || need "npm, for the tracker's build tool and the browser tests' axe-core (npm ci in tracker/ and tests/browser/)"
# The back office's browser test drives Debian's headless Chromium through chromedriver
# (Selenium, from PyPI). Installed here when missing and apt-get is at hand as root.
if ! command -v chromium >/dev/null 2>&1 || ! command -v chromedriver >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "setup: installing chromium and chromium-driver (Debian packages) for the browser test"
    { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver; } >/dev/null 2>&1 \
      || need "chromium and chromium-driver (apt-get install chromium chromium-driver) failed to install"
  else
    need "chromium and chromium-driver (Debian: sudo apt-get install chromium chromium-driver), for the back office's browser test"
  fi
fi
exit $problems
