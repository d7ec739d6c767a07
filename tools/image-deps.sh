#!/bin/sh
# The dependency venv of the pricecast image (Dockerfile.base, deps stage): the locked packages
# minus tools/image-exclude.txt, then trimmed of what nothing loads at run time.
#
#   sh tools/image-deps.sh DIR     # DIR holds requirements.lock and image-exclude.txt
#
# Needs binutils (strip, readelf): the deps stage installs them; the final image has neither.
# The next build step, tools/image-check.py, proves the result still works.
set -eu
dir=$1
venv=/opt/venv
site=$venv/lib/python3.11/site-packages

# ---- install: exact pins, no resolution, wheels where they exist (kfp ships a pure-Python sdist
# only, which builds without a compiler); names compare as pip does (case, - _ . alike).
awk -F'==' '
  function norm(s) { s = tolower(s); gsub(/[[:space:]]/, "", s); gsub(/[-_.]+/, "-", s); return s }
  { sub(/#.*/, "") }
  /^[[:space:]]*$/ { next }
  NR == FNR { skip[norm($1)] = 1; next }
  !(norm($1) in skip) { print }
' "$dir/image-exclude.txt" "$dir/requirements.lock" > /tmp/image.lock
"$venv/bin/pip" install --no-deps --no-compile --prefer-binary -r /tmp/image.lock
# Nothing installs anything in the running image; kfp's own commands (`kfp`, `dsl-compile`) are
# its client side, which is not here.
"$venv/bin/pip" uninstall -y -q pip setuptools
rm -f "$venv/bin/kfp" "$venv/bin/dsl-compile" "$venv/bin/dsl-compile-deprecated"

cd "$site"
# ---- never used at run time: test suites, type stubs, and what only building an extension
# needs (Cython sources and includes, the C/C++ sources Cython generated, C headers, static
# libraries: numpy.get_include() and friends).
find . -depth -type d -name tests -exec rm -rf {} +
find kfp -name '*_test.py' -delete
find . \( -name '*.pyi' -o -name '*.pyx' -o -name '*.pxd' -o -name '*.pxi' \
          -o -name '*.c' -o -name '*.cpp' -o -name '*.h' -o -name '*.hpp' -o -name '*.a' \) -type f -delete
rm -rf pyarrow/include pyarrow/includes pyarrow/src numpy/_core/include

# ---- pyarrow: Arrow Flight (an RPC framework) and pyarrow's own S3 filesystem are libraries
# that only their own modules load (readelf: nothing else NEEDs libarrow_flight or libarrow_s3).
# pricecast reaches S3 through fsspec/s3fs, and pandas falls back to fsspec for s3:// URLs when
# pyarrow has no S3. pyarrow.fs then lists S3FileSystem as not built, as in builds without S3.
rm -f pyarrow/flight.py pyarrow/_flight.*.so pyarrow/libarrow_flight.so.* pyarrow/libarrow_python_flight.so* \
      pyarrow/_s3fs.*.so pyarrow/libarrow_s3.so.* pyarrow/_pyarrow_cpp_tests.*.so
# Wheels cannot hold symlinks, so libfoo.so and libfoo.so.X.Y.Z are byte copies of the file the
# loader opens (the SONAME, libfoo.so.X): make them the symlinks they are in a normal install.
for f in pyarrow/lib*.so*; do
  [ -L "$f" ] && continue
  soname=$(readelf -d "$f" | sed -n 's/.*(SONAME).*\[\(.*\)\]/\1/p')
  if [ -n "$soname" ] && [ "$soname" != "${f##*/}" ] && cmp -s "$f" "pyarrow/$soname"; then
    ln -sf "$soname" "$f"
  fi
done

# ---- the same library grafted into two wheels (numpy's and SciPy's both carry OpenBLAS's
# libgfortran and libquadmath; auditwheel names them by content hash): link the second copy.
for f in *.libs/*; do
  [ -L "$f" ] && continue
  for g in *.libs/"${f##*/}"; do
    if [ "$g" != "$f" ] && [ ! -L "$g" ] && cmp -s "$f" "$g"; then ln -sf "../$f" "$g"; fi
  done
done

# ---- Pillow's AVIF codec (matplotlib writes PNG); PIL.AvifImagePlugin handles its absence.
rm -f PIL/_avif.*.so pillow.libs/libavif-*.so*

# ---- botocore's API models: s3fs talks to S3 only; the credential chain may call STS (assume
# role, web identity), SSO, SSO-OIDC and sign-in. The other ~430 services' models go.
for d in botocore/data/*/; do
  case ${d%/} in
    */s3 | */sts | */sso | */sso-oidc | */signin) ;;
    *) rm -rf "$d" ;;
  esac
done

# ---- matplotlib's example data (cbook.get_sample_data, for its gallery).
rm -rf matplotlib/mpl-data/sample_data

# ---- debug symbols: most wheels ship unstripped shared objects. Not the libraries auditwheel
# grafted into *.libs/: patchelf rewrote those, and strip turns them into files the loader
# refuses ("ELF load command address/offset not page-aligned", seen with numpy's OpenBLAS).
find . -type f \( -name '*.so' -o -name '*.so.*' \) ! -path './*.libs/*' -exec strip --strip-unneeded {} +

echo "image-deps: $(grep -c . /tmp/image.lock) packages, site-packages $(du -sm . | cut -f1) MB"
