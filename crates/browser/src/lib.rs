//! Nothing here: the portal's browser tests are in `tests/portal` (run by `.ci/run` after
//! `scripts/browser-stack.sh` installs Chromium, ChromeDriver and axe-core).
