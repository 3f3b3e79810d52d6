"""Where SQL, HTML or JavaScript must repeat a rule defined once in Python, they repeat it exactly."""

from __future__ import annotations

import re
from pathlib import Path

from engine.api.paths import API, TOKEN_PATH
from engine.domain.os_types import OS_TYPES
from shared_schema.nic import DEVICE_NAME_PATTERN, MODELS

PROJECT = Path(__file__).resolve().parents[2]
SCHEMA = PROJECT / "sql" / "0001_initial.sql"
STATIC = PROJECT / "engine" / "api" / "static"


def test_the_sql_check_on_nic_models_lists_the_models() -> None:
    check = re.search(r"model\s+text NOT NULL CHECK \(model IN \(([^)]*)\)\)", SCHEMA.read_text())
    assert check is not None
    assert re.findall(r"'([^']+)'", check.group(1)) == list(MODELS)


def test_the_sql_check_on_bridges_is_the_device_name_pattern() -> None:
    assert f"bridge ~ '^{DEVICE_NAME_PATTERN}$'" in SCHEMA.read_text()


def test_the_page_offers_the_models() -> None:
    html = (STATIC / "index.html").read_text()
    select = re.search(r'<select id="nic-model"[^>]*>(.*?)</select>', html, re.S)
    assert select is not None
    assert re.findall(r'<option value="([^"]+)"', select.group(1)) == list(MODELS)


def test_every_os_allows_only_known_models() -> None:
    assert all(os.nic_models <= set(MODELS) for os in OS_TYPES.values())


def test_the_page_calls_the_engine_where_it_serves() -> None:
    script = (STATIC / "app.js").read_text()
    assert f'const API = "{API}";' in script
    assert f'const TOKEN_URL = "{TOKEN_PATH}";' in script
