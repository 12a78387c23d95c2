#!/usr/bin/env bash
# `make check-deploy` (part of `make test`): the deployment files are checked the way CI can
# check them without AWS or a hypervisor:
#   - shellcheck        every shell script in the repository (bin/, scripts/, deploy/, test/)
#   - systemd-analyze   verify deploy/systemd/*.service (the programs they start are installed
#                       by deploy/provision.sh, so here only "is not executable" for those
#                       paths is expected; test/deploy/provision.test.ts verifies the
#                       installed units with nothing left out)
#   - packer            validate packer/docker-worker.pkr.hcl with the package just built, and
#                       fmt -check (syntax) of packer/*.pkr.hcl
#   - vagrant           validate the Vagrantfile (--ignore-provider: no hypervisor here)
#   - tests             make package, then test/deploy/*.test.ts with that package: it runs a
#                       task unpacked outside the repository, and deploy/provision.sh installs
#                       it in a debootstrapped Debian container that runs a task
# The tools come from Debian (shellcheck, systemd, packer, vagrant, debootstrap).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
# shellcheck source=scripts/lib/apt.sh
source scripts/lib/apt.sh
failed=0
fail() { echo "check-deploy: $*" >&2; failed=1; }

missing=()
for tool in shellcheck:shellcheck systemd-analyze:systemd packer:packer vagrant:vagrant debootstrap:debootstrap; do
  command -v "${tool%%:*}" >/dev/null 2>&1 || missing+=("${tool#*:}")
done
if [ "${#missing[@]}" -gt 0 ]; then
  [ "$(id -u)" = 0 ] || { echo "check-deploy: needs ${missing[*]} (Debian packages): run as root, or install them" >&2; exit 1; }
  apt_install "${missing[@]}"
fi

echo "== shellcheck" >&2
mapfile -t scripts < <(git ls-files --cached --others --exclude-standard | while read -r f; do
  [ -f "$f" ] || continue
  case "$f" in .ci/*|node_modules/*|*.ts|*.js|*.json|*.md) continue ;; esac
  if [[ "$f" == *.sh ]] || head -c 64 "$f" | head -1 | grep -Eq '^#!.*(/|env )(ba)?sh\b'; then echo "$f"; fi
done)
shellcheck -x "${scripts[@]}" || fail "shellcheck found problems"
echo "checked ${#scripts[@]} scripts" >&2

echo "== systemd-analyze verify" >&2
installed='/opt/docker-worker/bin/worker|/usr/local/lib/docker-worker/instance-storage.sh|/usr/local/bin/start-worker'
out="$(systemd-analyze verify deploy/systemd/*.service 2>&1 || true)"
unexpected="$(grep -Ev "^[a-z-]+\.service: Command ($installed) is not executable: No such file or directory$" <<< "$out" || true)"
if [ -n "$unexpected" ]; then fail "systemd-analyze verify:"; echo "$unexpected" >&2; fi

echo "== make package" >&2
package="$(scripts/package.sh)"

echo "== packer validate" >&2
packer validate -var "package_path=$package" packer/docker-worker.pkr.hcl || fail "packer validate failed"
packer fmt -check packer/ >/dev/null || fail "packer fmt -check: run packer fmt packer/"
for kind in aws worker-runner; do
  packer validate -var "package_path=$package" -var "host_kind=$kind" packer/docker-worker.pkr.hcl >/dev/null || fail "packer validate (host_kind=$kind) failed"
done
if packer validate -var "package_path=$package" -var host_kind=somewhere packer/docker-worker.pkr.hcl >/dev/null 2>&1; then fail "packer validate accepted host_kind=somewhere"; fi

echo "== vagrant validate" >&2
vagrant validate --ignore-provider >&2 || fail "vagrant validate failed"

echo "== test/deploy" >&2
DOCKER_WORKER_PACKAGE="$package" node --test --test-concurrency=1 --test-timeout=900000 test/deploy/*.test.ts || fail "test/deploy failed"

[ "$failed" = 0 ] && echo "check-deploy: all passed" >&2
exit "$failed"
