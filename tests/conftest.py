import json
import os
from pathlib import Path

import pytest

from fivefold.testing import collect_reports

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def data_root() -> Path:
    """The real data folder: $FIVEFOLD_DATA, else ../shared/data beside the repository."""
    root = Path(os.environ.get("FIVEFOLD_DATA") or REPO.parent / "shared" / "data")
    if not (root / "planetoid").is_dir():
        pytest.skip(f"real data folder not found at {root}")
    return root


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--float-margins", metavar="FILE", default=None,
                     help="append each float check's worst error and tolerance to FILE (JSON lines)")


@pytest.fixture(autouse=True)
def _record_float_margins(request: pytest.FixtureRequest):
    """With --float-margins FILE, record every assert_equivariant / assert_close report a test makes
    (benchmarks/float_margins.py reads them to show how far each float32 check is from its tolerance under other CPU
    kernels)."""
    path = request.config.getoption("--float-margins")
    if not path:
        yield
        return
    with collect_reports() as reports:
        yield
    with open(path, "a") as out:
        for report in reports:
            out.write(json.dumps({"test": request.node.nodeid, "check": type(report).__name__,
                                  "dtype": str(report.dtype),
                                  "worst_error": report.worst_error, "tolerance": report.tolerance,
                                  "output_scale": report.output_scale}) + "\n")
