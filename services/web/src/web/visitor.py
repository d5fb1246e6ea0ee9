"""Who is looking at a page: the signed-in person (from their verified access token), their
language and their session."""

from __future__ import annotations

from dataclasses import dataclass

from knotenpunkt.uow import Actor
from web.sessions import Session


class SignInRequired(Exception):
    """No session, or it ended: the visitor is sent to sign in and brought back to `next_path`."""

    def __init__(self, next_path: str = "/") -> None:
        super().__init__(next_path)
        self.next_path = next_path


@dataclass
class Visitor:
    session: Session
    actor: Actor
    name: str
    language: str
    path: str

    @property
    def access_token(self) -> str:
        return str(self.session.data["access_token"])

    @property
    def csrf_token(self) -> str:
        return self.session.csrf_token

    def has(self, *roles: str) -> bool:
        return bool(self.actor.roles & set(roles))
