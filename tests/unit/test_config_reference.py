"""Every setting is documented, and docs/configuration.md shows the current table."""

from __future__ import annotations

import re
from pathlib import Path

from mediabeat.cli.config_cmd import markdown_reference, settings_reference
from mediabeat.settings import Settings, variables_of

DOC = Path(__file__).parents[2] / "docs" / "configuration.md"
README = Path(__file__).parents[2] / "README.md"


def test_every_setting_has_a_description() -> None:
    undocumented = [var for var, _, text in settings_reference() if not text]
    assert undocumented == []


def test_configuration_doc_is_current() -> None:
    assert markdown_reference() in DOC.read_text(), "run: mediabeat config --markdown, and paste it into the doc"


def test_every_variable_the_docs_name_is_a_setting() -> None:
    """README's and docs/configuration.md's MEDIABEAT_* names (bar the *_FILE form and a few read apart) exist."""
    known = {var for field in Settings.model_fields for var in variables_of(field)}
    known |= {"MEDIABEAT_DEBUG", "MEDIABEAT_TEST_POSTGRES_URL"}
    known |= {"MEDIABEAT_WORKER_METRICS_PORT", "MEDIABEAT_WORKER_METRICS_HOST"}  # options of `mediabeat worker`
    named = set()
    for doc in (README, DOC):
        named |= set(re.findall(r"\bMEDIABEAT_[A-Z_]*[A-Z]\b", doc.read_text()))
    unknown = {name for name in named if name not in known and name.removesuffix("_FILE") not in known}
    assert unknown == set()
