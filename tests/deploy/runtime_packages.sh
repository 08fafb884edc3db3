#!/usr/bin/env bash
# The runtime stage of deploy/Dockerfile installs exactly the Debian packages its binaries need,
# proven without a container engine: every shared library the binaries load (ldd, here on Debian
# 12, the image's distribution) is mapped to the package that owns it (dpkg -S), and that set of
# packages, less those debian:12-slim already has, must equal the stage's `apt-get install` list
# less the packages installed for something other than a library. Nothing missing, nothing unused.
#
#   runtime_packages.sh DOCKERFILE BINARY...
set -euo pipefail

if (($# < 2)); then
  echo "usage: $0 DOCKERFILE BINARY..." >&2
  exit 2
fi
dockerfile=$1
shift

# In debian:12-slim already, so the runtime stage does not install them:
#   libc6       Priority: required (libc, libm, the dynamic loader)
#   zlib1g      Priority: required (dpkg links it)
#   libgcc-s1   apt links it (through libstdc++6)
#   libstdc++6  apt links it
readonly BASE_PACKAGES=(libc6 libgcc-s1 libstdc++6 zlib1g)
readonly BASE_IMAGE=debian:12-slim
# Installed for files the binaries read rather than libraries they load:
#   ca-certificates  the trust store (/etc/ssl/certs) that verifies the upstream API's TLS
readonly NON_LIBRARY_PACKAGES=(ca-certificates)

fail() {
  echo "FAIL: $*" >&2
  exit 1
}

# The runtime stage: from the last FROM to the end, continuation lines joined.
stage=$(awk 'toupper($1) == "FROM" { text = "" } { text = text $0 "\n" } END { printf "%s", text }' \
  "$dockerfile" | sed -e ':a' -e '/\\$/N; s/\\\n/ /; ta')
from=$(printf '%s\n' "$stage" | awk 'toupper($1) == "FROM" { print $2; exit }')
[[ $from == "$BASE_IMAGE" ]] ||
  fail "the runtime stage is FROM '$from'; the base packages listed here are those of $BASE_IMAGE"

# Its `apt-get install` arguments, options left out, up to the end of that command.
mapfile -t installs < <(printf '%s\n' "$stage" | grep -o 'apt-get install[^&;|]*' || true)
((${#installs[@]} == 1)) ||
  fail "expected one 'apt-get install' in the runtime stage of $dockerfile, found ${#installs[@]}"
declared=()
for word in ${installs[0]#apt-get install}; do
  [[ $word == -* ]] || declared+=("$word")
done
((${#declared[@]} > 0)) || fail "the runtime stage's apt-get install names no package"

# Every library each binary loads.
declare -A libs_of=()
for binary in "$@"; do
  [[ -x $binary ]] || fail "$binary is not an executable"
  out=$(ldd "$binary") || fail "ldd $binary failed"
  if grep -q 'not found' <<<"$out"; then
    fail "$binary: libraries not found here: $(grep 'not found' <<<"$out" | tr -s ' \t' ' ')"
  fi
  libs_of[$binary]=$(awk '$2 == "=>" && $3 ~ /^\// { print $3 } $1 ~ /^\// { print $1 }' <<<"$out")
done

# Debian 12 merges /lib into /usr/lib and dpkg knows each file under the path its package ships:
# each library is looked up as ldd names it, resolved, and with or without /usr, all in one
# dpkg -S call (one per path is slow).
candidates() {
  local real
  real=$(readlink -f "$1")
  printf '%s\n' "$1" "$real" "/usr$1" "/usr$real" "${1#/usr}" "${real#/usr}"
}
declare -A owners=()
while IFS= read -r line; do
  # "pkg:arch: /path", or "pkg1, pkg2: /path" when several packages ship it.
  [[ $line == diversion\ by* || $line != *": /"* ]] && continue
  path=${line#*: }
  owners[$path]=$(sed -e 's/: \/.*//' <<<"$line" | tr ',' '\n' | sed -e 's/^ *//; s/:.*//' | tr '\n' ' ')
done < <(for binary in "$@"; do
  while read -r lib; do candidates "$lib"; done <<<"${libs_of[$binary]}"
done | sort -u | xargs dpkg -S 2>/dev/null || true)

declare -A needed_by=()
for binary in "$@"; do
  while read -r lib; do
    pkgs=""
    while read -r candidate; do
      pkgs=${owners[$candidate]:-}
      [[ -n $pkgs ]] && break
    done < <(candidates "$lib")
    [[ -n $pkgs ]] || fail "no Debian package owns $lib (loaded by $binary)"
    for pkg in $pkgs; do
      needed_by[$pkg]+="$(basename "$binary"):$(basename "$lib") "
    done
  done <<<"${libs_of[$binary]}"
done

contains() {
  local item=$1
  shift
  local x
  for x in "$@"; do [[ $x == "$item" ]] && return 0; done
  return 1
}

problems=0
for pkg in "${!needed_by[@]}"; do
  contains "$pkg" "${BASE_PACKAGES[@]}" && continue
  if ! contains "$pkg" "${declared[@]}"; then
    echo "missing from the runtime stage: $pkg (for ${needed_by[$pkg]% })" >&2
    problems=$((problems + 1))
  fi
done
for pkg in "${declared[@]}"; do
  if contains "$pkg" "${BASE_PACKAGES[@]}"; then
    echo "installed but already in $BASE_IMAGE: $pkg" >&2
    problems=$((problems + 1))
  elif contains "$pkg" "${NON_LIBRARY_PACKAGES[@]}"; then
    continue
  elif [[ -z ${needed_by[$pkg]:-} ]]; then
    echo "installed but no binary loads a library of it: $pkg" >&2
    problems=$((problems + 1))
  fi
done
for pkg in "${NON_LIBRARY_PACKAGES[@]}"; do
  contains "$pkg" "${declared[@]}" || {
    echo "missing from the runtime stage: $pkg (not a library; see NON_LIBRARY_PACKAGES)" >&2
    problems=$((problems + 1))
  }
done
# The other promises of the stage that a reader of the Dockerfile relies on.
grep -qx 'ENTRYPOINT \["herald"\]' <<<"$stage" || {
  echo 'the runtime stage has no ENTRYPOINT ["herald"]' >&2
  problems=$((problems + 1))
}
grep -qiE '^USER +[1-9][0-9]*(:[1-9][0-9]*)?$' <<<"$stage" || {
  echo "the runtime stage does not switch to a numeric non-root USER" >&2
  problems=$((problems + 1))
}
if grep -qi '^HEALTHCHECK' "$dockerfile"; then
  echo "the image has a HEALTHCHECK; Kubernetes probes the admin port instead" >&2
  problems=$((problems + 1))
fi

((problems == 0)) || fail "$problems problem(s) with the runtime stage of $dockerfile"
echo "runtime stage of $dockerfile: ${#declared[@]} packages, each needed, none missing, for $*"
