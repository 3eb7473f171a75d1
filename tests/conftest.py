import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def data_root() -> Path:
    """The real data folder: $FIVEFOLD_DATA, else ../shared/data beside the repository."""
    root = Path(os.environ.get("FIVEFOLD_DATA") or REPO.parent / "shared" / "data")
    if not (root / "planetoid").is_dir():
        pytest.skip(f"real data folder not found at {root}")
    return root
