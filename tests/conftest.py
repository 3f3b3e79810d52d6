"""Fixtures every test layer may use: where test artefacts (logs, screenshots) go."""

from __future__ import annotations

from pathlib import Path

import pytest

PROJECT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def output_dir() -> Path:
    path = PROJECT / "test-output"
    path.mkdir(exist_ok=True)
    return path
