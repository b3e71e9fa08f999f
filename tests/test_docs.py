"""The README's settings table and the settings table in code say the same thing."""

from __future__ import annotations

import re
from pathlib import Path

from conformance import config

README = Path(__file__).resolve().parents[1] / "README.md"


def settings_section() -> str:
    text = README.read_text(encoding="utf-8")
    return text[text.index("### Settings"):text.index("### Under plain pytest")]


def test_every_setting_has_its_option_and_variable_in_the_readme():
    section = settings_section()
    missing = [spec.option for spec in config.SETTINGS
               if f"`{spec.option}`" not in section or (spec.env and f"`{spec.env}`" not in section)]
    assert not missing, f"README's settings table lacks {missing}"


def test_the_readme_names_no_setting_the_suite_does_not_have():
    documented = set(re.findall(r"`(--[a-z-]+)`", settings_section()))
    known = {spec.option for spec in config.SETTINGS} | {"--config"}
    assert documented <= known, documented - known
