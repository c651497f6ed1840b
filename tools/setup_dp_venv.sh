#!/usr/bin/env bash
# Adds Opacus to tools/.venv for tools/train_dp_opacus.py / tools/compare_dp.sh: first runs
# tools/setup_venv.sh (CPU torch 2.15.0 + numpy; unchanged), then pip-installs
# tools/requirements-dp.txt (opacus 1.6.0, opt-einsum 3.4.0, scipy 1.17.1) with --no-deps, so
# opacus's torch requirement never pulls the CUDA wheels. Finishes with a tiny make_private
# run (2 DP-SGD steps on random data) on the CPU. Idempotent: re-running on a ready venv only
# verifies it.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
req="$here/requirements-dp.txt"
py="$here/.venv/bin/python"

bash "$here/setup_venv.sh"

pins_ok() {
    "$py" - "$req" <<'PY'
import importlib.metadata as md, sys
for line in open(sys.argv[1]):
    line = line.strip()
    if line and not line.startswith("#"):
        name, want = line.split("==")
        have = md.version(name)
        assert have == want, (name, have, want)
import opacus, opt_einsum, scipy  # noqa: F401  (imports, not just metadata)
PY
}

if ! pins_ok >/dev/null 2>&1; then
    "$py" -m pip install --disable-pip-version-check -q --no-deps -r "$req"
    pins_ok
fi

"$py" - <<'PY'
import warnings
warnings.filterwarnings("ignore")
import opacus, torch
from opacus import PrivacyEngine
from torch import nn
from torch.utils.data import DataLoader, TensorDataset
torch.manual_seed(0)
model = nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 6 * 6, 3))
data = DataLoader(TensorDataset(torch.randn(16, 1, 8, 8), torch.randint(0, 3, (16,))), batch_size=8)
engine = PrivacyEngine(accountant="rdp")
model, opt, data = engine.make_private(module=model, optimizer=torch.optim.SGD(model.parameters(), lr=0.1),
                                       data_loader=data, noise_multiplier=1.1, max_grad_norm=1.0)
for x, y in data:
    opt.zero_grad()
    nn.functional.cross_entropy(model(x), y).backward()
    opt.step()
eps = engine.get_epsilon(1e-5)
assert eps > 0 and eps == eps, eps
print(f"opacus {opacus.__version__} on torch {torch.__version__}: make_private ok "
      f"({engine.accountant.history[-1][2]} steps, eps={eps:.3f})")
PY
