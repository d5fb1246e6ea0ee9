"""The container setup agrees with the code: docker-compose.yml, the Dockerfiles and the PostgreSQL init script.

Static checks only (no Docker needed). The central one: every variable the compose file gives a
service is a field of that service's settings class (`KP_<FIELD>`), so a typo such as
KP_DATABSE_URL cannot silently leave a service on its default.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import yaml
from pydantic import TypeAdapter, ValidationError

from cases.settings import CasesSettings
from intake.settings import IntakeSettings
from knotenpunkt.settings import ENV_PREFIX, ServiceSettings
from referrals.settings import ReferralsSettings
from stats.settings import StatsSettings

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = ROOT / "docker-compose.yml"
INIT_DIR = "/docker-entrypoint-initdb.d"

APP_SERVICES: dict[str, type[ServiceSettings]] = {
    "intake": IntakeSettings,
    "cases": CasesSettings,
    "referrals": ReferralsSettings,
    "stats": StatsSettings,
}
INFRASTRUCTURE = ("kafka", "postgres")
PARTNER = "partner-jobcenter"
REQUIRED_VARIABLES = ("KP_DATABASE_URL", "KP_KAFKA_BOOTSTRAP")


# --- helpers ----------------------------------------------------------------------------------


def env_mapping(environment: dict[str, object] | list[str] | None) -> dict[str, str | None]:
    """A compose `environment` as a mapping; it may be given as a mapping or as a list of "K=V" (or bare "K")."""
    if environment is None:
        return {}
    if isinstance(environment, dict):
        return {str(name): None if value is None else _env_value(value) for name, value in environment.items()}
    mapping: dict[str, str | None] = {}
    for entry in environment:
        name, separator, value = str(entry).partition("=")
        mapping[name] = value if separator else None
    return mapping


def _env_value(value: object) -> str:
    if isinstance(value, bool):  # YAML true/false reaches the container as "true"/"false"
        return str(value).lower()
    return str(value)


def settings_variables(settings_cls: type[ServiceSettings]) -> dict[str, str]:
    """Environment variable name -> field name, for every field of the settings class."""
    return {ENV_PREFIX + name.upper(): name for name in settings_cls.model_fields}


def environment_problems(
    service_env: dict[str, object] | list[str] | None, settings_cls: type[ServiceSettings]
) -> list[str]:
    """What is wrong with the variables a service is given: unknown names, missing required ones, bad values."""
    env = env_mapping(service_env)
    known = settings_variables(settings_cls)
    problems = [
        f"{name} is not a setting of {settings_cls.__name__} (known: {', '.join(sorted(known))})"
        for name in sorted(env)
        if name not in known
    ]
    problems += [f"{name} is missing" for name in REQUIRED_VARIABLES if env.get(name) is None]
    for name, value in sorted(env.items()):
        if name not in known or value is None:
            continue
        field = settings_cls.model_fields[known[name]]
        try:
            TypeAdapter(field.annotation).validate_python(value)
        except ValidationError as error:
            problems.append(f"{name}={value!r} is not a valid {field.annotation}: {error.errors()[0]['msg']}")
    return problems


def port_mappings(ports: list[object] | None) -> list[tuple[int | None, int]]:
    """(published, container) for each entry of a compose `ports` list (short or long syntax)."""
    mappings: list[tuple[int | None, int]] = []
    for entry in ports or []:
        if isinstance(entry, dict):
            published = entry.get("published")
            mappings.append((int(published) if published is not None else None, int(entry["target"])))
            continue
        parts = str(entry).split("/")[0].split(":")
        container = int(parts[-1])
        published = int(parts[-2]) if len(parts) >= 2 and parts[-2] else None
        mappings.append((published, container))
    return mappings


def dockerfile_instructions(path: Path) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) of a Dockerfile, with line continuations joined and comments dropped."""
    logical: list[str] = []
    current = ""
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not current and (not line or line.startswith("#")):
            continue
        if line.startswith("#"):  # a comment inside a continued instruction
            continue
        if line.endswith("\\"):
            current += line[:-1] + " "
            continue
        logical.append(current + line)
        current = ""
    if current:
        logical.append(current)
    instructions = []
    for line in logical:
        keyword, _, arguments = line.partition(" ")
        instructions.append((keyword.upper(), arguments.strip()))
    return instructions


def healthcheck_command(healthcheck: dict[str, object] | None) -> str:
    """The healthcheck's test as one string; empty if there is none or it is disabled."""
    if not healthcheck or healthcheck.get("disable") in (True, "true"):
        return ""
    test = healthcheck.get("test")
    if isinstance(test, list):
        if not test or test[0] == "NONE":
            return ""
        return " ".join(str(part) for part in test)
    return str(test or "")


def build_dockerfile(service: dict[str, object]) -> Path | None:
    build = service.get("build")
    if build is None:
        return None
    if isinstance(build, str):
        return ROOT / build / "Dockerfile"
    assert isinstance(build, dict)
    return ROOT / str(build.get("context", ".")) / str(build.get("dockerfile", "Dockerfile"))


def image_name(image: str) -> str:
    """Repository of an image reference without tag or digest, e.g. 'apache/kafka' for 'apache/kafka:4.1.1'."""
    name = image.split("@")[0]
    last = name.rsplit("/", 1)[-1]
    if ":" in last:
        name = name[: len(name) - len(last)] + last.split(":")[0]
    return name


def effective_port(env: dict[str, str | None], settings_cls: type[ServiceSettings]) -> int:
    value = env.get("KP_HTTP_PORT")
    return int(value) if value is not None else int(settings_cls.model_fields["http_port"].default)


# --- fixtures ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def compose() -> dict[str, object]:
    assert COMPOSE_FILE.is_file(), f"{COMPOSE_FILE} is missing"
    return yaml.safe_load(COMPOSE_FILE.read_text())


@pytest.fixture(scope="module")
def services(compose: dict[str, object]) -> dict[str, dict[str, object]]:
    services = compose.get("services")
    assert isinstance(services, dict), "docker-compose.yml has no services"
    return services


# --- the compose file -------------------------------------------------------------------------


def test_all_services_are_defined(services: dict[str, dict[str, object]]) -> None:
    expected = {*APP_SERVICES, *INFRASTRUCTURE, PARTNER}
    assert expected <= set(services), f"missing: {sorted(expected - set(services))}"


def test_kafka_is_the_apache_image_with_a_healthcheck(services: dict[str, dict[str, object]]) -> None:
    kafka = services["kafka"]
    assert image_name(str(kafka.get("image", ""))) in {"apache/kafka", "docker.io/apache/kafka"}
    assert "kafka-broker-api-versions" in healthcheck_command(kafka.get("healthcheck"))
    env = env_mapping(kafka.get("environment"))
    assert env.get("KAFKA_AUTO_CREATE_TOPICS_ENABLE") == "false", "the services create their topics themselves"
    assert "PLAINTEXT://kafka:9092" in (env.get("KAFKA_ADVERTISED_LISTENERS") or "")


def test_postgres_is_the_official_image_with_a_healthcheck(services: dict[str, dict[str, object]]) -> None:
    postgres = services["postgres"]
    assert image_name(str(postgres.get("image", ""))) in {"postgres", "library/postgres", "docker.io/library/postgres"}
    assert "pg_isready" in healthcheck_command(postgres.get("healthcheck"))
    assert env_mapping(postgres.get("environment")).get("POSTGRES_PASSWORD"), "the image needs POSTGRES_PASSWORD"


def postgres_init_script(services: dict[str, dict[str, object]]) -> Path:
    for volume in services["postgres"].get("volumes") or []:
        if isinstance(volume, dict):
            source, target = str(volume.get("source", "")), str(volume.get("target", ""))
        else:
            source, _, rest = str(volume).partition(":")
            target = rest.split(":")[0]
        if target.startswith(INIT_DIR) and source.startswith("."):
            return ROOT / source
    raise AssertionError(f"postgres mounts no init script into {INIT_DIR}/")


def test_postgres_init_script_creates_every_database(services: dict[str, dict[str, object]]) -> None:
    script = postgres_init_script(services)
    assert script.is_file(), f"{script} is missing"
    assert os.access(script, os.X_OK), f"{script} is not executable"
    words = set(re.findall(r"[A-Za-z_][A-Za-z0-9_]*", script.read_text()))
    for name in APP_SERVICES:
        dsn = urlsplit(env_mapping(services[name].get("environment")).get("KP_DATABASE_URL") or "")
        database, role = dsn.path.lstrip("/"), dsn.username
        assert database in words, f"the init script does not create {name}'s database {database!r}"
        assert role in words, f"the init script does not create {name}'s role {role!r}"


# --- the four services ------------------------------------------------------------------------


service_names = pytest.mark.parametrize("name", list(APP_SERVICES))


@service_names
def test_service_environment_is_known_to_its_settings(name: str, services: dict[str, dict[str, object]]) -> None:
    problems = environment_problems(services[name].get("environment"), APP_SERVICES[name])
    assert problems == [], f"{name}: " + "; ".join(problems)


@service_names
def test_service_reaches_kafka_and_postgres_by_their_compose_names(
    name: str, services: dict[str, dict[str, object]]
) -> None:
    env = env_mapping(services[name].get("environment"))
    database = urlsplit(env.get("KP_DATABASE_URL") or "")
    assert database.hostname in services, f"{name}: database host {database.hostname!r} is not a compose service"
    for server in (env.get("KP_KAFKA_BOOTSTRAP") or "").split(","):
        assert server.rsplit(":", 1)[0] in services, f"{name}: Kafka server {server!r} is not a compose service"
    assert env.get("KP_HTTP_HOST") == "0.0.0.0", f"{name} must listen on all interfaces inside its container"


@service_names
def test_service_publishes_its_http_port(name: str, services: dict[str, dict[str, object]]) -> None:
    settings_cls = APP_SERVICES[name]
    default_port = settings_cls.model_fields["http_port"].default
    port = effective_port(env_mapping(services[name].get("environment")), settings_cls)
    mappings = port_mappings(services[name].get("ports"))
    assert port in {container for _, container in mappings}, f"{name} listens on {port} but maps {mappings}"
    assert (default_port, port) in mappings, f"{name} should be on host port {default_port}: {mappings}"


@service_names
def test_service_waits_for_healthy_kafka_and_postgres(name: str, services: dict[str, dict[str, object]]) -> None:
    depends_on = services[name].get("depends_on")
    assert isinstance(depends_on, dict), f"{name}: depends_on must name conditions, not just services"
    for dependency in INFRASTRUCTURE:
        assert (depends_on.get(dependency) or {}).get("condition") == "service_healthy", (
            f"{name} must wait for {dependency} to be healthy"
        )


@service_names
def test_service_has_a_readiness_healthcheck(name: str, services: dict[str, dict[str, object]]) -> None:
    assert "/health/ready" in healthcheck_command(services[name].get("healthcheck"))


@service_names
def test_service_is_built_from_its_own_dockerfile(name: str, services: dict[str, dict[str, object]]) -> None:
    dockerfile = build_dockerfile(services[name])
    assert dockerfile is not None, f"{name} has no build"
    own = ROOT / "services" / name / "Dockerfile"
    assert dockerfile.resolve() == own.resolve(), f"{name} is built from {dockerfile}, not from {own}"
    assert dockerfile.is_file(), f"{dockerfile} is missing"


@service_names
def test_dockerfile_exposes_the_port_and_has_a_healthcheck(name: str, services: dict[str, dict[str, object]]) -> None:
    instructions = dockerfile_instructions(ROOT / "services" / name / "Dockerfile")
    port = effective_port(env_mapping(services[name].get("environment")), APP_SERVICES[name])
    exposed_args = " ".join(args for keyword, args in instructions if keyword == "EXPOSE")
    exposed = {int(word.split("/")[0]) for word in exposed_args.split()}
    assert port in exposed, f"{name}'s Dockerfile exposes {sorted(exposed)}, the service listens on {port}"
    healthchecks = [args for keyword, args in instructions if keyword == "HEALTHCHECK"]
    assert healthchecks, f"{name}'s Dockerfile has no HEALTHCHECK"
    assert "/health/ready" in healthchecks[-1]
    commands = [args for keyword, args in instructions if keyword == "CMD"]
    assert commands and f'"-m", "{name}"' in commands[-1], f"{name}'s Dockerfile does not run python -m {name}"
    users = [args for keyword, args in instructions if keyword == "USER"]
    assert users and users[-1] not in {"root", "0"}, f"{name}'s image must not run as root"


# --- the partner agency -----------------------------------------------------------------------


def test_partner_agency_starts_after_referrals(services: dict[str, dict[str, object]]) -> None:
    partner = services[PARTNER]
    dockerfile = build_dockerfile(partner)
    assert dockerfile is not None and dockerfile.is_file(), f"{PARTNER} needs a Dockerfile that exists: {dockerfile}"
    depends_on = partner.get("depends_on")
    assert isinstance(depends_on, dict)
    assert depends_on.get("referrals", {}).get("condition") == "service_healthy"
    env = env_mapping(partner.get("environment"))
    assert env.get("PARTNER_AGENCY_ID") == "jobcenter-duisburg"
    assert (env.get("PARTNER_KAFKA_BOOTSTRAP") or "").rsplit(":", 1)[0] in services


# --- the checks themselves can fail -----------------------------------------------------------


def test_environment_problems_reports_an_unknown_variable() -> None:
    env = {"KP_DATABSE_URL": "postgresql://intake:intake@postgres:5432/intake", "KP_KAFKA_BOOTSTRAP": "kafka:9092"}
    problems = environment_problems(env, IntakeSettings)
    assert any(problem.startswith("KP_DATABSE_URL is not a setting") for problem in problems), problems
    assert "KP_DATABASE_URL is missing" in problems


def test_environment_problems_reads_the_list_form() -> None:
    good = ["KP_DATABASE_URL=postgresql://cases:cases@postgres:5432/cases", "KP_KAFKA_BOOTSTRAP=kafka:9092"]
    assert environment_problems(good, CasesSettings) == []
    problems = environment_problems([*good, "KP_HTTP_PROT=8002"], CasesSettings)
    assert len(problems) == 1 and problems[0].startswith("KP_HTTP_PROT is not a setting"), problems


def test_environment_problems_reports_an_invalid_value() -> None:
    env = {
        "KP_DATABASE_URL": "postgresql://stats:stats@postgres:5432/stats",
        "KP_KAFKA_BOOTSTRAP": "kafka:9092",
        "KP_HTTP_PORT": "eight-thousand",
    }
    problems = environment_problems(env, StatsSettings)
    assert len(problems) == 1 and problems[0].startswith("KP_HTTP_PORT="), problems


def test_env_mapping_treats_both_forms_alike() -> None:
    as_list = env_mapping(["KP_HTTP_PORT=8003", "KP_LOG_JSON=true", "KP_LOG_LEVEL"])
    as_mapping = env_mapping({"KP_HTTP_PORT": 8003, "KP_LOG_JSON": True, "KP_LOG_LEVEL": None})
    assert as_list == as_mapping == {"KP_HTTP_PORT": "8003", "KP_LOG_JSON": "true", "KP_LOG_LEVEL": None}


def test_port_mappings_reads_short_and_long_syntax() -> None:
    assert port_mappings(["8001:8001", "127.0.0.1:9001:8001/tcp", 8002, {"target": 8003, "published": "18003"}]) == [
        (8001, 8001),
        (9001, 8001),
        (None, 8002),
        (18003, 8003),
    ]
