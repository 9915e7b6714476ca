#!/bin/sh
# Install (or remove) RunMonitor's desktop entry, AppStream metainfo and icons for one user,
# so it appears in the application menu with its icon. The program itself is installed apart:
# `pip install .` (the runmonitor and runmonitor-gui commands) or the PyInstaller bundle.
#
#   packaging/install-linux.sh                    # into ${XDG_DATA_HOME:-~/.local/share}
#   packaging/install-linux.sh --exec /opt/runmonitor/runmonitor-gui
#   packaging/install-linux.sh --data-dir DIR     # another data directory (e.g. a package root)
#   packaging/install-linux.sh --uninstall
#
# --exec sets the command the menu entry starts. Without it the entry runs `runmonitor-gui`
# when that is on PATH; otherwise the runmonitor-gui found beside this checkout's .venv or the
# Python running `python3 -m pip` is written in with its full path.
set -eu

APP_ID="io.github.runmonitor.RunMonitor"
HERE="$(cd "$(dirname "$0")" && pwd)"
ROOT="$(dirname "$HERE")"
DATA_DIR="${XDG_DATA_HOME:-$HOME/.local/share}"
EXEC=""
UNINSTALL=0
REFRESH=1

usage() { sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//'; }

while [ $# -gt 0 ]; do
  case "$1" in
    --exec) EXEC="${2:?--exec needs a command}"; shift 2 ;;
    --exec=*) EXEC="${1#--exec=}"; shift ;;
    --data-dir) DATA_DIR="${2:?--data-dir needs a directory}"; shift 2 ;;
    --data-dir=*) DATA_DIR="${1#--data-dir=}"; shift ;;
    --uninstall) UNINSTALL=1; shift ;;
    --no-refresh) REFRESH=0; shift ;;
    -h|--help) usage; exit 0 ;;
    *) echo "install-linux.sh: unknown option $1" >&2; usage >&2; exit 2 ;;
  esac
done

ICON_SRC="$ROOT/resources/icons/hicolor"
APPS="$DATA_DIR/applications"
METAINFO="$DATA_DIR/metainfo"
ICONS="$DATA_DIR/icons/hicolor"
DESKTOP="$APPS/$APP_ID.desktop"

# The icon files, relative to hicolor/ (the PNG sizes, scalable and symbolic).
icon_files() {
  (cd "$ICON_SRC" && find . -type f \( -name "$APP_ID.png" -o -name "$APP_ID.svg" -o -name "$APP_ID-symbolic.svg" \) | sed 's|^\./||' | sort)
}

refresh() {
  [ "$REFRESH" = 1 ] || return 0
  if command -v update-desktop-database >/dev/null 2>&1; then
    update-desktop-database -q "$APPS" 2>/dev/null || true
  fi
  # -t: a user's hicolor folder has no index.theme of its own.
  if command -v gtk-update-icon-cache >/dev/null 2>&1 && [ -d "$ICONS" ]; then
    gtk-update-icon-cache -q -t -f "$ICONS" 2>/dev/null || true
  fi
}

if [ "$UNINSTALL" = 1 ]; then
  rm -f "$DESKTOP" "$METAINFO/$APP_ID.metainfo.xml"
  for f in $(icon_files); do rm -f "$ICONS/$f"; done
  refresh
  echo "RunMonitor's menu entry, metainfo and icons removed from $DATA_DIR"
  exit 0
fi

if [ -z "$EXEC" ]; then
  if command -v runmonitor-gui >/dev/null 2>&1; then
    EXEC="runmonitor-gui"
  elif [ -x "$ROOT/.venv/bin/runmonitor-gui" ]; then
    EXEC="$ROOT/.venv/bin/runmonitor-gui"
  elif command -v python3 >/dev/null 2>&1 \
    && scripts="$(python3 -c 'import sysconfig; print(sysconfig.get_path("scripts"))' 2>/dev/null)" \
    && [ -x "$scripts/runmonitor-gui" ]; then
    EXEC="$scripts/runmonitor-gui"
  else
    echo "install-linux.sh: runmonitor-gui not found; install RunMonitor first (pip install .)" >&2
    echo "  or name the command with --exec" >&2
    exit 1
  fi
fi
case "$EXEC" in
  *" "*|*'"'*|*"'"*|*'\'*|*'$'*|*'`'*|*'%'*)
    echo "install-linux.sh: --exec must be a path without spaces, quotes or % (got: $EXEC)" >&2
    exit 2 ;;
esac

mkdir -p "$APPS" "$METAINFO" "$ICONS"
tmp="$DESKTOP.tmp.$$"
sed -e "s|^Exec=runmonitor-gui|Exec=$EXEC|" -e "s|^TryExec=runmonitor-gui\$|TryExec=$EXEC|" \
  "$HERE/linux/$APP_ID.desktop" >"$tmp"
chmod 644 "$tmp"
mv -f "$tmp" "$DESKTOP"
install -m 644 "$HERE/linux/$APP_ID.metainfo.xml" "$METAINFO/$APP_ID.metainfo.xml"
for f in $(icon_files); do
  mkdir -p "$ICONS/$(dirname "$f")"
  install -m 644 "$ICON_SRC/$f" "$ICONS/$f"
done
refresh
echo "RunMonitor installed in the menu ($DESKTOP, Exec=$EXEC)"
