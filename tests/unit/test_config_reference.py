"""Every setting is documented, and docs/configuration.md shows the current table."""

from __future__ import annotations

from pathlib import Path

from mediabeat.cli.config_cmd import markdown_reference, settings_reference

DOC = Path(__file__).parents[2] / "docs" / "configuration.md"


def test_every_setting_has_a_description() -> None:
    undocumented = [var for var, _, text in settings_reference() if not text]
    assert undocumented == []


def test_configuration_doc_is_current() -> None:
    assert markdown_reference() in DOC.read_text(), "run: mediabeat config --markdown, and paste it into the doc"
