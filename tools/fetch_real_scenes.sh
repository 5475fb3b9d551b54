#!/usr/bin/env bash
# Real data beyond the Motorcycle scene scikit-image ships, from OpenCV's sample data in Debian's opencv-doc
# package (about 96 MB to download, 1.5 MB kept) into data/real/opencv_samples: Middlebury 2006 "Aloe"
# (aloeL.jpg, aloeR.jpg, aloeGT.png: a stereo pair with ground truth), a real stereo rig's 13 chessboard pairs
# (left01.jpg ... right14.jpg, which OpenCV's stereo calibration sample calibrates) and two calibrations OpenCV's
# own tools wrote (left_intrinsics.yml, intrinsics.yml: FileStorage YAML). Quick when the files are there.
# Exit 0 with a note where no apt is or the download does not match its checksums (the checks on them then skip,
# saying so): a changed package never fails the build, and a file that does not match is never installed.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
dest="$root/data/real/opencv_samples"
files="aloeL.jpg aloeR.jpg aloeGT.png left_intrinsics.yml intrinsics.yml $(for n in 01 02 03 04 05 06 07 08 09 11 12 13 14; do echo left$n.jpg right$n.jpg; done)"
src=usr/share/doc/opencv-doc/examples/data
check() { (cd "$1" && sha256sum --quiet -c "$root/tools/opencv_samples.sha256") >/dev/null 2>&1; }
if [ -d "$dest" ] && check "$dest"; then exit 0; fi
if [ -d "/$src" ] && check "/$src"; then
  echo "fetch_real_scenes: using the installed opencv-doc (/$src)" >&2; exit 0
fi
command -v apt-get >/dev/null 2>&1 || { echo "fetch_real_scenes: no apt-get here: OpenCV's samples not fetched" >&2; exit 0; }
note() { echo "fetch_real_scenes: $*: OpenCV's samples not installed" >&2; exit 0; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
get() { (cd "$tmp" && apt-get download -q opencv-doc >"$tmp/apt.log" 2>&1); }
if ! get; then
  # package lists may be missing on a fresh machine; only root may refresh them
  if [ "$(id -u)" = 0 ] && apt-get update -qq >>"$tmp/apt.log" 2>&1 && get; then :; else
    note "apt-get download opencv-doc failed ($(tail -n 1 "$tmp/apt.log" 2>/dev/null))"
  fi
fi
shopt -s nullglob
debs=("$tmp"/opencv-doc_*.deb)
[ "${#debs[@]}" -eq 1 ] || note "apt-get download left no opencv-doc .deb"
deb=${debs[0]}
mkdir -p "$tmp/x"
# shellcheck disable=SC2046  # one path per file name
dpkg-deb --fsys-tarfile "$deb" | tar -x -C "$tmp/x" $(for f in $files; do echo "./$src/$f"; done) \
  || note "$(basename "$deb") lacks some of: $files"
check "$tmp/x/$src" || note "the files in $(basename "$deb") do not match tools/opencv_samples.sha256"
mkdir -p "$(dirname "$dest")" || note "cannot make $(dirname "$dest")"
rm -rf "$dest.new" "$dest.old"
mv "$tmp/x/$src" "$dest.new" || note "cannot write $dest.new"
# the good copy is replaced only once the new one is in place beside it, and put back if the swap fails
if [ -e "$dest" ]; then mv "$dest" "$dest.old" || { rm -rf "$dest.new"; note "cannot move the old $dest aside"; }; fi
if ! mv "$dest.new" "$dest"; then
  [ -e "$dest.old" ] && mv "$dest.old" "$dest"
  rm -rf "$dest.new"
  note "cannot move the new files into $dest"
fi
rm -rf "$dest.old"
echo "fetch_real_scenes: OpenCV's samples in $dest" >&2
