"""The contract in the repository: docs/parameters.md is what the declarations say, and the contract names every algorithm."""

from __future__ import annotations

import os
import subprocess
import sys

from conftest import ROOT


def test_parameter_tables_are_generated_from_the_declarations():
    fresh = subprocess.run([sys.executable, "-c", "import sys; sys.path.insert(0, 'scripts'); import make_docs; "
                            "sys.stdout.write(make_docs.render())"], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    with open(os.path.join(ROOT, "docs", "parameters.md"), encoding="utf-8") as f:
        assert f.read() == fresh, "docs/parameters.md is out of date: run python3 scripts/make_docs.py"


def test_the_contract_names_every_algorithm_and_format():
    from unet_segmentation.unet_plugin import params
    from unet_segmentation.unet_plugin.core.chips import CHIPS_FORMAT as CHIPS
    from unet_segmentation.unet_plugin.ml.model.modelfile import MODEL_FORMAT as MODEL

    with open(os.path.join(ROOT, "docs", "contract.md"), encoding="utf-8") as f:
        text = f.read()
    for alg in params.ALGORITHMS:
        assert f"`unet:{alg}`" in text, alg
    assert f"`{CHIPS}`" in text and f"`{MODEL}`" in text
