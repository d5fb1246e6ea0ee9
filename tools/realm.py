"""Writes the Keycloak realm `deploy/keycloak/knotenpunkt-realm.json` (committed; a test checks
it is up to date): `python -m tools.realm`.

The realm holds the roles of docs/operations.md ("Sign-in and roles"), demo staff for every role
and office (usernames are intake's staff ids), one demo user and one machine client per partner
agency, a confidential client per service for service-to-service calls and the web app's client.
Client secrets are `${ENV:default}` placeholders that Keycloak resolves at import: the defaults
are for local runs only, a city sets its own (docs/operations.md).
"""

from __future__ import annotations

import json
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
REALM_FILE = ROOT / "deploy" / "keycloak" / "knotenpunkt-realm.json"
REALM = "knotenpunkt"
AUDIENCE = "knotenpunkt-api"
DEMO_PASSWORD = "demo"

ROLES = {
    "intake_staff": "Registers and finds people and records consents at their office",
    "case_manager": "Persons and cases of their office; changes cases assigned to them or unassigned",
    "office_lead": "Everything of their office; assigns and transfers cases",
    "coordinator": "Anonymous figures and reports of all offices; never a name",
    "data_protection_officer": "The audit trail, the access export, erasure",
    "admin": "Reference data: offices, staff, agencies, topics, routing rules",
    "agency_staff": "Staff of one partner agency: the referrals addressed to it",
    "agency_system": "A partner agency's own software (client credentials)",
    "service": "A Knotenpunkt service calling another one",
}

OFFICES = {"rsc-hamborn": "Hamborn", "rsc-hochfeld": "Hochfeld", "rsc-rheinhausen": "Rheinhausen"}

# username (= staff id in intake's staff list), role, office, first name, last name
STAFF = [
    ("staff-hamborn-1", "case_manager", "rsc-hamborn", "Leyla", "Aydın"),
    ("staff-hamborn-2", "case_manager", "rsc-hamborn", "Jonas", "Becker"),
    ("staff-hochfeld-1", "case_manager", "rsc-hochfeld", "Mira", "Nowak"),
    ("staff-hochfeld-2", "case_manager", "rsc-hochfeld", "Samir", "Haddad"),
    ("staff-rheinhausen-1", "case_manager", "rsc-rheinhausen", "Anna", "Schulte"),
    ("intake-hamborn", "intake_staff", "rsc-hamborn", "Tobias", "Krämer"),
    ("intake-hochfeld", "intake_staff", "rsc-hochfeld", "Elif", "Demir"),
    ("intake-rheinhausen", "intake_staff", "rsc-rheinhausen", "Paul", "Wagner"),
    ("lead-hamborn", "office_lead", "rsc-hamborn", "Sabine", "Hoffmann"),
    ("lead-hochfeld", "office_lead", "rsc-hochfeld", "Kemal", "Yıldız"),
    ("lead-rheinhausen", "office_lead", "rsc-rheinhausen", "Ute", "Fischer"),
    ("coordinator", "coordinator", None, "Martina", "Lange"),
    ("dpo", "data_protection_officer", None, "Frank", "Richter"),
    ("admin", "admin", None, "Nadia", "Kaya"),
]

AGENCIES = [
    "jobcenter-duisburg",
    "auslaenderbehoerde-duisburg",
    "jugendamt-duisburg",
    "agentur-fuer-arbeit-duisburg",
    "sozialamt-duisburg",
    "schulamt-duisburg",
    "awo-campus-duisburg",
    "werkkiste-duisburg",
    "drk-duisburg",
    "caritas-duisburg",
    "diakoniewerk-duisburg",
    "ziuma-duisburg",
]

SERVICES = ["intake", "cases", "referrals", "stats", "web"]


def _attribute_mapper(attribute: str, claim: str, multivalued: bool = False) -> dict:
    return {
        "name": claim,
        "protocol": "openid-connect",
        "protocolMapper": "oidc-usermodel-attribute-mapper",
        "config": {
            "user.attribute": attribute,
            "claim.name": claim,
            "jsonType.label": "String",
            "multivalued": str(multivalued).lower(),
            "access.token.claim": "true",
            "id.token.claim": "true",
            "userinfo.token.claim": "true",
            "introspection.token.claim": "true",
        },
    }


def _audience_mapper() -> dict:
    return {
        "name": "audience",
        "protocol": "openid-connect",
        "protocolMapper": "oidc-audience-mapper",
        "config": {
            "included.custom.audience": AUDIENCE,
            "access.token.claim": "true",
            "id.token.claim": "false",
            "introspection.token.claim": "true",
        },
    }


def _hardcoded_claim(claim: str, value: str) -> dict:
    return {
        "name": claim,
        "protocol": "openid-connect",
        "protocolMapper": "oidc-hardcoded-claim-mapper",
        "config": {
            "claim.name": claim,
            "claim.value": value,
            "jsonType.label": "String",
            "access.token.claim": "true",
            "id.token.claim": "false",
            "userinfo.token.claim": "false",
            "introspection.token.claim": "true",
        },
    }


def _staff_mappers() -> list[dict]:
    return [
        _audience_mapper(),
        _attribute_mapper("staff_id", "staff_id"),
        _attribute_mapper("office_id", "offices", multivalued=True),
        _attribute_mapper("agency_id", "agency_id"),
    ]


def _machine_client(client_id: str, secret_env: str, name: str, mappers: list[dict]) -> dict:
    return {
        "clientId": client_id,
        "name": name,
        "enabled": True,
        "protocol": "openid-connect",
        "publicClient": False,
        "clientAuthenticatorType": "client-secret",
        "secret": "${" + secret_env + ":dev-secret-" + client_id + "}",
        "serviceAccountsEnabled": True,
        "standardFlowEnabled": False,
        "directAccessGrantsEnabled": False,
        "implicitFlowEnabled": False,
        "protocolMappers": mappers,
    }


def _user(username: str, first: str, last: str, roles: list[str], attributes: dict[str, list[str]]) -> dict:
    return {
        "username": username,
        "enabled": True,
        "emailVerified": True,
        "email": f"{username}@knotenpunkt.example",
        "firstName": first,
        "lastName": last,
        "attributes": attributes,
        "credentials": [{"type": "password", "value": DEMO_PASSWORD, "temporary": False}],
        "realmRoles": roles,
    }


def realm() -> dict:
    web = {
        "clientId": "knotenpunkt-web",
        "name": "Knotenpunkt web app",
        "enabled": True,
        "protocol": "openid-connect",
        "publicClient": False,
        "clientAuthenticatorType": "client-secret",
        "secret": "${KP_WEB_CLIENT_SECRET:dev-secret-knotenpunkt-web}",
        "standardFlowEnabled": True,
        # No password grant: people sign in on Keycloak's page only (authorization code + PKCE).
        "directAccessGrantsEnabled": False,
        "implicitFlowEnabled": False,
        "serviceAccountsEnabled": False,
        "redirectUris": ["http://127.0.0.1*", "http://localhost*", "${KP_WEB_REDIRECT_URI:http://localhost:8000/*}"],
        "webOrigins": ["+"],
        "attributes": {"pkce.code.challenge.method": "S256", "post.logout.redirect.uris": "+"},
        "protocolMappers": _staff_mappers(),
    }
    services = [
        _machine_client(
            f"knotenpunkt-{service}",
            f"KP_{service.upper()}_CLIENT_SECRET",
            f"Knotenpunkt {service} service",
            [_audience_mapper(), _hardcoded_claim("service", service)],
        )
        for service in SERVICES
        if service != "web"
    ]
    agencies = [
        _machine_client(
            f"agency-{agency}",
            f"KP_AGENCY_{agency.upper().replace('-', '_')}_SECRET",
            f"Partner agency software: {agency}",
            [_audience_mapper(), _hardcoded_claim("agency_id", agency)],
        )
        for agency in AGENCIES
    ]
    users = [
        _user(
            username,
            first,
            last,
            [role],
            {"staff_id": [username], **({"office_id": [office]} if office else {})},
        )
        for username, role, office, first, last in STAFF
    ]
    users += [
        _user(
            f"agency-{agency}",
            "Demo",
            agency.split("-")[0].capitalize(),
            ["agency_staff"],
            {"agency_id": [agency], "staff_id": [f"agency-{agency}"]},
        )
        for agency in AGENCIES
    ]
    users += [
        {
            "username": f"service-account-knotenpunkt-{service}",
            "enabled": True,
            "serviceAccountClientId": f"knotenpunkt-{service}",
            "realmRoles": ["service"],
        }
        for service in SERVICES
        if service != "web"
    ]
    users += [
        {
            "username": f"service-account-agency-{agency}",
            "enabled": True,
            "serviceAccountClientId": f"agency-{agency}",
            "realmRoles": ["agency_system"],
        }
        for agency in AGENCIES
    ]
    user_profile = {
        "attributes": [
            {"name": "username", "displayName": "${username}", "permissions": {"view": ["admin", "user"]}},
            {"name": "email", "displayName": "${email}", "permissions": {"view": ["admin", "user"]}},
            {"name": "firstName", "displayName": "${firstName}", "permissions": {"view": ["admin", "user"]}},
            {"name": "lastName", "displayName": "${lastName}", "permissions": {"view": ["admin", "user"]}},
            # Set by the city's administrators (or the directory it federates), never by the user.
            {"name": "staff_id", "displayName": "Staff id", "permissions": {"view": ["admin"], "edit": ["admin"]}},
            {
                "name": "office_id",
                "displayName": "Office",
                "multivalued": True,
                "permissions": {"view": ["admin"], "edit": ["admin"]},
            },
            {"name": "agency_id", "displayName": "Agency", "permissions": {"view": ["admin"], "edit": ["admin"]}},
        ],
        "groups": [],
    }
    return {
        "realm": REALM,
        "displayName": "Knotenpunkt",
        "enabled": True,
        "sslRequired": "external",
        "registrationAllowed": False,
        "resetPasswordAllowed": False,
        "bruteForceProtected": True,
        "accessTokenLifespan": 600,
        "ssoSessionIdleTimeout": 1800,
        "ssoSessionMaxLifespan": 36000,
        "internationalizationEnabled": True,
        "supportedLocales": ["de", "en"],
        "defaultLocale": "de",
        "roles": {"realm": [{"name": name, "description": text} for name, text in ROLES.items()]},
        "clients": [web, *services, *agencies],
        "users": users,
        "components": {
            "org.keycloak.userprofile.UserProfileProvider": [
                {
                    "providerId": "declarative-user-profile",
                    "subComponents": {},
                    "config": {"kc.user.profile.config": [json.dumps(user_profile)]},
                }
            ]
        },
    }


def render() -> str:
    return json.dumps(realm(), indent=2, ensure_ascii=False) + "\n"


def main() -> None:
    REALM_FILE.parent.mkdir(parents=True, exist_ok=True)
    REALM_FILE.write_text(render())
    print(f"wrote {REALM_FILE.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
