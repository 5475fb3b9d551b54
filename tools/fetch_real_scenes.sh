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
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
( cd "$tmp" && { apt-get download -q opencv-doc >/dev/null 2>&1 || { apt-get update -qq >/dev/null 2>&1 && apt-get download -q opencv-doc >/dev/null 2>&1; }; } ) \
  || { echo "fetch_real_scenes: apt-get download opencv-doc failed: OpenCV's samples not fetched" >&2; exit 0; }
deb=$(ls "$tmp"/opencv-doc_*.deb)
mkdir -p "$tmp/x"
# shellcheck disable=SC2046  # one path per file name
dpkg-deb --fsys-tarfile "$deb" | tar -x -C "$tmp/x" $(for f in $files; do echo "./$src/$f"; done) \
  || { echo "fetch_real_scenes: $(basename "$deb") lacks some of: $files: OpenCV's samples not installed" >&2; exit 0; }
check "$tmp/x/$src" || { echo "fetch_real_scenes: the files in $(basename "$deb") do not match tools/opencv_samples.sha256: OpenCV's samples not installed" >&2; exit 0; }
mkdir -p "$(dirname "$dest")"
rm -rf "$dest.new" && mv "$tmp/x/$src" "$dest.new"
[ -d "$dest" ] && mv "$dest" "$dest.old"
mv "$dest.new" "$dest" && rm -rf "$dest.old"
echo "fetch_real_scenes: OpenCV's samples in $dest" >&2
