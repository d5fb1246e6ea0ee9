"""Generate docs/events.md (the event catalogue) and docs/configuration.md from the code.

`python -m tools.gendocs` writes them; `python -m tools.gendocs --check` fails when the
committed files differ from what the code says (run by the test suite).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from pydantic.fields import FieldInfo

from knotenpunkt.events import all_event_models
from knotenpunkt.settings import ENV_PREFIX

ROOT = Path(__file__).resolve().parents[1]


def _type_name(field: FieldInfo) -> str:
    annotation = field.annotation
    return getattr(annotation, "__name__", None) or str(annotation).replace("typing.", "")


def events_markdown() -> str:
    lines = [
        "# Event catalogue",
        "",
        "Generated from the models in `shared/src/knotenpunkt/events/` by `python -m tools.gendocs`;",
        "do not edit by hand. Every event travels as CloudEvents 1.0 in Kafka binary mode: headers",
        "`ce_id`, `ce_type`, `ce_source`, `ce_specversion`, `ce_time`, `ce_subject` (the client id),",
        "`correlation_id`, `causation_id`; the body is the JSON below; the Kafka key is `client_id`.",
        "",
    ]
    for event_type, model in sorted(all_event_models().items(), key=lambda item: (item[1].topic, item[0])):
        lines += [
            f"## {model.__name__}",
            "",
            (model.__doc__ or "").strip(),
            "",
            f"- type: `{event_type}`",
            f"- topic: `{model.topic}`",
            "",
            "| field | type | required | description |",
            "| --- | --- | --- | --- |",
        ]
        for name, field in model.model_fields.items():
            required = "yes" if field.is_required() else "no"
            lines.append(f"| `{name}` | {_type_name(field)} | {required} | {field.description or ''} |")
        lines.append("")
    return "\n".join(lines)


def configuration_markdown() -> str:
    from cases.settings import CasesSettings
    from intake.settings import IntakeSettings
    from referrals.settings import ReferralsSettings
    from stats.settings import StatsSettings

    lines = [
        "# Configuration",
        "",
        "Generated from the settings classes by `python -m tools.gendocs`; do not edit by hand.",
        f"Every service reads environment variables `{ENV_PREFIX}<FIELD>`; each has a default for local runs.",
        "",
    ]
    for settings in (IntakeSettings, CasesSettings, ReferralsSettings, StatsSettings):
        lines += [f"## {settings.__name__}", "", "| variable | default | description |", "| --- | --- | --- |"]
        for name, field in settings.model_fields.items():
            lines.append(f"| `{ENV_PREFIX}{name.upper()}` | `{field.default}` | {field.description or ''} |")
        lines.append("")
    return "\n".join(lines)


GENERATED = {
    ROOT / "docs" / "events.md": events_markdown,
    ROOT / "docs" / "configuration.md": configuration_markdown,
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--check", action="store_true", help="fail if a committed file is out of date")
    args = parser.parse_args()
    stale = []
    for path, render in GENERATED.items():
        text = render()
        if args.check:
            if not path.exists() or path.read_text() != text:
                stale.append(str(path.relative_to(ROOT)))
        else:
            path.write_text(text)
    if stale:
        print(f"out of date: {', '.join(stale)}; run `python -m tools.gendocs`", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
