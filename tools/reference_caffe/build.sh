#!/usr/bin/env bash
# Build the reference Caffe that tests/caffe_ref.py runs: pycaffe from the brocolli-caffe sdist
# (BVLC Caffe + SSD, BN, Upsample, ReLU6, ...), CPU only, for Debian's /usr/bin/python3.
# Idempotent: with the build present it does nothing. See README.md beside this file.
set -euo pipefail

VERSION=9.0.2
SHA256=c6410cc60bdd6db685d441b66be7df05410f8850ac88d6b75d48ef9b2315c08a
HOME_DIR="${PROTOSEG_CAFFE_HOME:-$HOME/.cache/protoseg/reference-caffe}"
SRC="$HOME_DIR/brocolli-caffe-$VERSION"
BUILD="$HOME_DIR/build"
LOG="$HOME_DIR/build.log"
DONE="$HOME_DIR/BUILT"          # written last; holds the folder to put on PYTHONPATH
PY=/usr/bin/python3             # Debian's: its numpy 1.24 is the one _caffe.so is compiled against
JOBS="${PROTOSEG_CAFFE_JOBS:-$(nproc)}"
PACKAGES="build-essential cmake libboost-system-dev libboost-thread-dev libboost-filesystem-dev
libboost-python-dev libboost-regex-dev libgoogle-glog-dev libgflags-dev libprotobuf-dev
protobuf-compiler libhdf5-dev libopenblas-dev liblmdb-dev libleveldb-dev libsnappy-dev
python3-dev python3-numpy python3-protobuf python3-venv"

STEP=start
trap 'echo "reference Caffe build FAILED at step: $STEP (log: $LOG)" >&2' ERR
step() { STEP="$1"; echo "reference Caffe: $1"; }
# Run a command with its output in the log; on failure show the log's tail.
logged() { "$@" >>"$LOG" 2>&1 || { tail -n 40 "$LOG" >&2; return 1; }; }
# Replace text in a file with sed and check that the edit took (the sdist is fixed, so a miss
# means the wrong source).
edit() {
    local file="$1" expr="$2" check="$3"
    sed -i -e "$expr" "$SRC/$file"
    grep -q -e "$check" "$SRC/$file" || { echo "edit of $file did not apply: $expr" >&2; return 1; }
}

if [[ -f "$DONE" ]] && PYTHONPATH="$(cat "$DONE")" "$PY" -c "import caffe" 2>/dev/null; then
    echo "reference Caffe already built in $HOME_DIR (delete that folder to rebuild)"
    exit 0
fi
mkdir -p "$HOME_DIR"
rm -rf "$DONE" "$SRC" "$BUILD" "$LOG" "$HOME_DIR/brocolli-caffe-$VERSION.tar.gz"    # an earlier try

step "Debian packages"
missing=""
for p in $PACKAGES; do
    dpkg-query -W -f '${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing="$missing $p"
done
if [[ -n "$missing" ]]; then
    [[ $(id -u) == 0 ]] || { echo "missing Debian packages (install them as root): $missing" >&2; false; }
    logged apt-get update -q
    # shellcheck disable=SC2086
    logged env DEBIAN_FRONTEND=noninteractive apt-get install -y -q $missing
fi

step "download the brocolli-caffe $VERSION sdist"
logged python3 -m pip download -q --no-deps --no-binary :all: "brocolli-caffe==$VERSION" -d "$HOME_DIR"
echo "$SHA256  $HOME_DIR/brocolli-caffe-$VERSION.tar.gz" | sha256sum -c --quiet -
tar -xzf "$HOME_DIR/brocolli-caffe-$VERSION.tar.gz" -C "$HOME_DIR"

step "apply the fixes"
PYMINOR=$("$PY" -c 'import sys; print(f"{sys.version_info[0]}{sys.version_info[1]}")')
# Debian names Boost.Python after the Python version (libboost_python311.so).
edit python/CMakeLists.txt "s/-lboost_python /-lboost_python$PYMINOR /" "-lboost_python$PYMINOR "
# The BN layer (PSPNet/SegNet's) is compiled but was never put in the layer registry.
edit src/caffe/layers/bn_layer.cpp 's/^INSTANTIATE_CLASS(BNLayer);$/&\nREGISTER_LAYER_CLASS(BN);/' \
    '^REGISTER_LAYER_CLASS(BN);$'
# io.py imports scikit-image and scipy at the top, for image helpers the nets never use: import
# them where they are used.
edit python/caffe/io.py '/^import skimage.io$/d; /^from scipy.ndimage import zoom$/d' '^import numpy'
edit python/caffe/io.py 's/^    img = skimage.img_as_float(/    import skimage.io\n&/' '^    import skimage.io$'
edit python/caffe/io.py 's/^        resized_im = zoom(/        from scipy.ndimage import zoom\n&/' \
    '^        from scipy.ndimage import zoom$'

step "configure (cmake)"
MULTIARCH=$(gcc -print-multiarch)
NUMPY_INCLUDE=$("$PY" -c 'import numpy; print(numpy.get_include())')
PY_INCLUDE=$("$PY" -c 'import sysconfig; print(sysconfig.get_paths()["include"])')
# src/caffe/net.cpp includes a test header that needs gtest/gtest.h: the sdist bundles it in src/.
# Debian's HDF5 lives in a serial/ subfolder of the include and library folders.
mkdir -p "$BUILD"
logged cmake -S "$SRC" -B "$BUILD" -DCMAKE_BUILD_TYPE=Release \
    -DCPU_ONLY=ON -DUSE_OPENCV=OFF -DBLAS=Open -DBUILD_python=ON \
    -DPYTHON_INCLUDE_DIRS="$PY_INCLUDE" -DNUMPY_INCLUDE_DIR="$NUMPY_INCLUDE" \
    -DCMAKE_CXX_FLAGS="-I$SRC/src -I/usr/include/hdf5/serial" \
    -DCMAKE_SHARED_LINKER_FLAGS="-L/usr/lib/$MULTIARCH/hdf5/serial"

step "compile pycaffe (make -j$JOBS, about 5 minutes on 2 cores)"
logged make -C "$BUILD" -j"$JOBS" pycaffe

step "check that Debian's python3 imports it"
logged env PYTHONPATH="$SRC/python" "$PY" -c "import caffe; print('caffe', caffe.__version__)"
echo "$SRC/python" >"$DONE"
echo "reference Caffe built: PYTHONPATH=$SRC/python $PY -c 'import caffe'"
