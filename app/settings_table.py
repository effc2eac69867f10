"""The settings as the README's Markdown table, made from the fields of `Settings` themselves, so
that the README cannot drift from the code (tests/test_settings_table.py compares the two).

    python -m app.settings_table    # prints the table to paste between the README's markers
"""

from __future__ import annotations

from app.settings import Settings


def settings_table() -> str:
    rows = ["| setting | environment variable | default | what it does |", "|---|---|---|---|"]
    for name, field in Settings.model_fields.items():
        rows.append(f"| `{name}` | `NEWSQA_{name.upper()}` | {_default(field)} | {field.description} |")
    return "\n".join(rows)


def _default(field) -> str:
    """A factory's default as its field says it (it depends on the machine), else the value."""
    shown = (field.json_schema_extra or {}).get("shown_default")
    if shown is not None:
        return shown
    if field.default is None:
        return "unset"
    value = field.default
    return f"`{str(value).lower() if isinstance(value, bool) else value}`"


if __name__ == "__main__":
    print(settings_table())
