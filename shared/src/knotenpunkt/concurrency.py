"""Optimistic concurrency with HTTP preconditions, written once for every service.

A resource carries an integer `version` that grows with every change. GET answers with
`ETag: "<version>"`; a change sends it back as `If-Match`. When someone else changed the
resource in between, the versions differ and the second change gets a 409 with a message that
says what happened and what to do, instead of silently overwriting the first (a lost update).

Decisions (docs/decisions/0006-case-management.md):
- A changing request on the resource itself (e.g. closing a case) must send If-Match: without
  it the answer is 428 Precondition Required. A request that only adds something (recording a
  consultation) may send it and is then checked, but need not.
- The answer to a mismatch is 409 Conflict, not 412: the project answers every "the state does
  not allow this" with 409, and clients handle one status for it.
- ETags are strong; `W/"3"` and a bare `3` are accepted too, because some clients and proxies
  write them that way and the meaning is unambiguous. `*` matches any existing version.
"""

from __future__ import annotations

from dataclasses import dataclass

from knotenpunkt.errors import Conflict, Invalid, PreconditionRequired
from knotenpunkt.i18n import register_messages

IF_MATCH_HEADER = "If-Match"

register_messages(
    {
        "version_conflict": {
            "de": "{what} wurde inzwischen von jemand anderem geändert (jetzt Version {current}, Ihre Angabe "
            "{given}). Bitte neu laden und die Änderung erneut vornehmen.",
            "en": "{what} was changed by someone else in the meantime (now version {current}, you sent "
            "{given}). Please reload and make your change again.",
        },
        "if_match_required": {
            "de": "Bitte die Version, auf der Ihre Änderung beruht, im Header If-Match mitsenden (den ETag "
            "aus dem Abruf), damit keine fremde Änderung überschrieben wird.",
            "en": "Please send the version your change is based on in the If-Match header (the ETag from "
            "your GET), so that nobody else's change is overwritten.",
        },
        "if_match_invalid": {
            "de": 'Der Header If-Match muss einen ETag wie "3" enthalten.',
            "en": 'The If-Match header must contain an ETag such as "3".',
        },
    }
)


def etag(version: int) -> str:
    """The strong ETag of a version."""
    return f'"{version}"'


@dataclass(frozen=True)
class IfMatch:
    """A parsed If-Match header: `*` (any version) or the versions listed."""

    any: bool
    versions: frozenset[int]

    def matches(self, current: int) -> bool:
        return self.any or current in self.versions

    def describe(self) -> str:
        return "*" if self.any else ", ".join(str(v) for v in sorted(self.versions))


def parse_if_match(header: str | None) -> IfMatch | None:
    """None when the header is absent or empty; a 422 on the If-Match field when unreadable."""
    if header is None or not header.strip():
        return None
    if header.strip() == "*":
        return IfMatch(any=True, versions=frozenset())
    versions = set()
    for part in header.split(","):
        tag = part.strip()
        if tag.startswith("W/"):
            tag = tag[2:]
        if len(tag) >= 2 and tag[0] == tag[-1] == '"':
            tag = tag[1:-1]
        if not tag.isdigit() or len(tag) > 18:
            raise Invalid(IF_MATCH_HEADER, "if_match_invalid")
        versions.add(int(tag))
    return IfMatch(any=False, versions=frozenset(versions))


def check_version(
    header: str | None,
    current: int,
    *,
    required: bool,
    what: dict[str, str] | None = None,
) -> None:
    """Raise unless the If-Match header allows a change of a resource now at `current`.

    428 when required and absent, 422 when unreadable, 409 when the version differs. `what`
    names the resource in both languages for the message ({"de": "Der Fall", "en": "The case"}).
    """
    if_match = parse_if_match(header)
    if if_match is None:
        if required:
            raise PreconditionRequired("if_match_required")
        return
    if not if_match.matches(current):
        raise Conflict(
            "version_conflict",
            what=what or {"de": "Der Datensatz", "en": "The record"},
            current=current,
            given=if_match.describe(),
        )
