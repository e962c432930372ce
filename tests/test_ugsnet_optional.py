"""gbaugs without torch: nothing outside gbaugs.ugsnet imports it, and the UGSNet commands
say how to install it."""

from __future__ import annotations

import subprocess
import sys

BLOCK = "import sys; sys.modules['torch'] = None; "


def _python(code: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", BLOCK + code], capture_output=True,
                          text=True, timeout=120)


def test_pipeline_and_cli_import_without_torch():
    r = _python("import gbaugs.cli, gbaugs.pipeline as p; p.registered_stages(); "
                "import gbaugs.ugsnet.cli, gbaugs.ugsnet.config; print('ok')")
    assert r.returncode == 0 and r.stdout.strip() == "ok", r.stderr


def test_ugsnet_command_without_torch_explains():
    r = _python("import sys; sys.argv = ['gbaugs', 'ugsnet', 'evaluate', '.', "
                "'--checkpoint', 'x.pt']; from gbaugs.cli import main; main()")
    assert r.returncode == 2
    assert "needs PyTorch" in r.stderr and "gbaugs[dl]" in r.stderr
