#!/bin/sh
# The Debian packages pip cannot install, when missing: a CJK font for the report's Chinese labels and, with
# --browser, Chromium for the browser tests (Playwright drives the system browser). One apt-get call for what is
# missing, without recommended packages (headless Chromium needs none of them: printer tools, GTK, avahi, samba).
#
#     sh scripts/system_packages.sh [--browser]
set -eu

missing=""
fc-list :lang=zh family 2>/dev/null | grep -q . || missing="fonts-noto-cjk"
if [ "${1:-}" = "--browser" ]; then
  found=""
  for name in chromium chromium-browser google-chrome google-chrome-stable; do
    command -v "$name" >/dev/null 2>&1 && found="$name" && break
  done
  [ -n "$found" ] || missing="$missing chromium"
fi
[ -n "$missing" ] || exit 0

if ! command -v apt-get >/dev/null 2>&1; then
  echo "missing:$missing; install them (a CJK font such as Noto Sans CJK for the report's labels; Chromium for" \
       "the browser tests)" >&2
  exit 1
fi
sudo=""
if [ "$(id -u)" != 0 ]; then
  sudo="sudo -n"  # never a password prompt that nobody sees (a test installing the browser)
  [ -t 0 ] && sudo="sudo"
fi
export DEBIAN_FRONTEND=noninteractive
echo "installing with apt-get:$missing"
$sudo apt-get update -qq
# shellcheck disable=SC2086  # the package names are words
$sudo apt-get install -y -qq --no-install-recommends -o DPkg::Lock::Timeout=300 $missing && exit 0
# an older release without fonts-noto-cjk: the smaller WenQuanYi font instead
case "$missing" in
  *fonts-noto-cjk*) $sudo apt-get install -y -qq --no-install-recommends -o DPkg::Lock::Timeout=300 \
                      $(echo "$missing" | sed 's/fonts-noto-cjk/fonts-wqy-microhei/') ;;
  *) exit 1 ;;
esac
