#!/usr/bin/env bash
# The browser test stack, for `.ci/run` and for developers: Debian's Chromium and its ChromeDriver
# (/usr/bin/chromium, /usr/bin/chromedriver, the same version), which the portal's browser tests
# drive over WebDriver, headless, and axe-core (scripts/browser, from its lock file), which they
# inject into each page to check its accessibility. Installing needs root (apt-get).
set -euo pipefail

cd "$(dirname "$0")/.."

packages=(chromium chromium-driver)
missing=()
for p in "${packages[@]}"; do
  # `dpkg -s` also succeeds for a package that is only unpacked or removed: ask for "installed"
  [ "$(dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null)" = installed ] || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
  echo "installing: ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

npm ci --prefix scripts/browser --no-audit --no-fund

chromium --version
chromedriver --version
