"""The container setup agrees with the code: docker-compose.yml, the Dockerfiles and the PostgreSQL init script.

Static checks only (no Docker needed). The central one: every variable the compose file gives a
service is a field of that service's settings class (`KP_<FIELD>`), so a typo such as
KP_DATABSE_URL cannot silently leave a service on its default. Likewise every service is built
from the one Dockerfile at the root with a SERVICE argument naming a workspace member, so a typo
such as SERVICE: casess fails here and not only in `docker compose build`.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import tomllib
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import yaml
from pydantic import TypeAdapter, ValidationError
from web.settings import WebSettings

from cases.settings import CasesSettings
from intake.settings import IntakeSettings
from knotenpunkt.settings import ENV_PREFIX, ServiceSettings
from referrals.settings import ReferralsSettings
from stats.settings import StatsSettings

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = ROOT / "docker-compose.yml"
# The one Dockerfile of the four services; the build argument SERVICE picks the workspace member.
SERVICE_DOCKERFILE = ROOT / "Dockerfile"
INIT_DIR = "/docker-entrypoint-initdb.d"

APP_SERVICES: dict[str, type[ServiceSettings]] = {
    "intake": IntakeSettings,
    "cases": CasesSettings,
    "referrals": ReferralsSettings,
    "stats": StatsSettings,
    "web": WebSettings,
}
# The web app talks to the services' APIs only, never to Kafka.
WITHOUT_KAFKA = {"web"}
WEB_ASSET_MANIFESTS = {"services/web/package.json", "services/web/package-lock.json"}
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
    required = [name for name in REQUIRED_VARIABLES if not (settings_cls is WebSettings and "KAFKA" in name)]
    problems += [f"{name} is missing" for name in required if env.get(name) is None]
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


def build_args(service: dict[str, object]) -> dict[str, str | None]:
    """The build arguments of a compose service; like `environment`, a mapping or a list of "K=V"."""
    build = service.get("build")
    return env_mapping(build.get("args")) if isinstance(build, dict) else {}


def effective_port(service: dict[str, object], settings_cls: type[ServiceSettings]) -> int:
    """The port a service listens on in its container: compose's KP_HTTP_PORT, else the image's, else the default."""
    value = env_mapping(service.get("environment")).get("KP_HTTP_PORT") or build_args(service).get("HTTP_PORT")
    return int(value) if value is not None else int(settings_cls.model_fields["http_port"].default)


def normalized(name: str) -> str:
    """A distribution name as uv compares it (PEP 503)."""
    return re.sub(r"[-_.]+", "-", name).lower()


def workspace_members() -> dict[str, Path]:
    """Normalized distribution name -> directory, for every member of the uv workspace."""
    root = tomllib.loads((ROOT / "pyproject.toml").read_text())
    members: dict[str, Path] = {}
    for pattern in root["tool"]["uv"]["workspace"]["members"]:
        for directory in sorted(ROOT.glob(pattern)):
            if (directory / "pyproject.toml").is_file():
                project = tomllib.loads((directory / "pyproject.toml").read_text())["project"]
                members[normalized(project["name"])] = directory
    return members


def workspace_closure(name: str, members: dict[str, Path]) -> set[str]:
    """The member and the workspace members it depends on, directly or not: what `uv sync --package` installs of ours."""
    closure, pending = set(), [normalized(name)]
    while pending:
        current = pending.pop()
        if current in closure or current not in members:
            continue
        closure.add(current)
        project = tomllib.loads((members[current] / "pyproject.toml").read_text())["project"]
        for requirement in project.get("dependencies", []):
            pending.append(normalized(re.match(r"[A-Za-z0-9._-]+", requirement).group()))
    return closure


def build_problems(name: str, service: dict[str, object], members: dict[str, Path]) -> list[str]:
    """What is wrong with how a service is built: another Dockerfile or context, a SERVICE that is no member, a port."""
    build = service.get("build")
    if not isinstance(build, dict):
        return [f"build must be a mapping with context, dockerfile and args, not {build!r}"]
    problems = []
    context = (ROOT / str(build.get("context", "."))).resolve()
    if context != ROOT:
        problems.append(f"the build context is {context}, the Dockerfile needs the whole workspace ({ROOT})")
    dockerfile = build_dockerfile(service)
    if dockerfile is None or dockerfile.resolve() != SERVICE_DOCKERFILE:
        problems.append(f"built from {dockerfile}, not from the one Dockerfile {SERVICE_DOCKERFILE}")
    args = build_args(service)
    selected = args.get("SERVICE")
    if not selected:
        problems.append("the build argument SERVICE is missing")
    elif normalized(selected) not in members:
        problems.append(f"SERVICE={selected!r} is not a workspace member (members: {', '.join(sorted(members))})")
    elif selected != name:
        problems.append(f"SERVICE={selected!r} builds another service than {name!r}")
    elif not (members[normalized(selected)] / "src" / selected / "__main__.py").is_file():
        problems.append(f"SERVICE={selected!r} has no src/{selected}/__main__.py for `python -m {selected}`")
    port = env_mapping(service.get("environment")).get("KP_HTTP_PORT")
    if not (args.get("HTTP_PORT") or "").isdigit():
        problems.append(f"the build argument HTTP_PORT must be a port number, not {args.get('HTTP_PORT')!r}")
    elif port is not None and args["HTTP_PORT"] != port:
        problems.append(f"HTTP_PORT={args['HTTP_PORT']} but the service listens on KP_HTTP_PORT={port}")
    return problems


# Instructions whose arguments the builder itself expands ($VAR, ${VAR}). RUN leaves it to a shell that
# sees the ARG and ENV values at build time; CMD to one that sees only ENV, at run time.
_EXPANDED_BY_DOCKER = {"ADD", "COPY", "ENV", "EXPOSE", "FROM", "LABEL", "STOPSIGNAL", "USER", "VOLUME", "WORKDIR"}


def _expand(text: str, values: dict[str, str]) -> str:
    return re.sub(r"\$(?:\{(\w+)\}|(\w+))", lambda m: values.get(m.group(1) or m.group(2), m.group(0)), text)


def rendered_dockerfile(path: Path, args: dict[str, str]) -> list[tuple[str, str]]:
    """The instructions with the build arguments and the ENV values filled in where they are expanded.

    Enough of Docker's rules for these checks: an ARG is visible from its declaration to the end of
    its stage (one before the first FROM only in FROM lines, or in a stage that declares it again
    without a value) and takes the given value, else its default, else nothing; RUN also sees the
    stage's ENV; CMD and HEALTHCHECK see only ENV, as at run time. All stages are returned, each
    starting with its FROM.
    """
    instructions: list[tuple[str, str]] = []
    global_args: dict[str, str] = {}
    stage_args: dict[str, str] | None = None
    env: dict[str, str] = {}
    for keyword, arguments in dockerfile_instructions(path):
        if keyword == "FROM":
            stage_args, env = {}, {}
            instructions.append((keyword, _expand(arguments, global_args)))
            continue
        scope = global_args if stage_args is None else stage_args
        if keyword == "ARG":
            name, has_default, default = arguments.partition("=")
            if name in args:
                scope[name] = args[name]
            elif has_default:
                scope[name] = _expand(default, scope)
            elif scope is global_args:
                scope[name] = ""
            else:  # declared again in a stage: takes the value from before the first FROM
                scope[name] = global_args.get(name, "")
            continue
        visible = {**scope, **env}
        if keyword == "ENV":
            for assignment in shlex.split(arguments):
                variable, _, value = assignment.partition("=")
                env[variable] = _expand(value, visible)
            instructions.append((keyword, _expand(arguments, visible)))
        elif keyword in _EXPANDED_BY_DOCKER or keyword == "RUN":
            instructions.append((keyword, _expand(arguments, visible)))
        elif keyword in {"CMD", "ENTRYPOINT", "HEALTHCHECK"}:
            instructions.append((keyword, _expand(arguments, env)))
        else:
            instructions.append((keyword, arguments))
    return instructions


def final_stage(instructions: list[tuple[str, str]]) -> list[tuple[str, str]]:
    starts = [index for index, (keyword, _) in enumerate(instructions) if keyword == "FROM"]
    return instructions[starts[-1] :] if starts else instructions


def uv_syncs(instructions: list[tuple[str, str]]) -> list[list[str]]:
    """The options of every `uv sync` the Dockerfile runs."""
    syncs = []
    for keyword, arguments in instructions:
        if keyword != "RUN":
            continue
        tokens = shlex.split(arguments)
        for index in range(len(tokens) - 1):
            if tokens[index : index + 2] == ["uv", "sync"]:
                options = []
                for token in tokens[index + 2 :]:
                    if token in {"&&", "||", ";", "|"}:
                        break
                    options.append(token)
                syncs.append(options)
    return syncs


def copied_sources(instructions: list[tuple[str, str]]) -> list[str]:
    """The sources of every COPY/ADD from the build context (not from another stage), as relative paths."""
    sources = []
    for keyword, arguments in instructions:
        if keyword not in {"COPY", "ADD"}:
            continue
        words = shlex.split(arguments)
        if any(word.startswith("--from") for word in words) or arguments.lstrip().startswith("["):
            continue  # from another stage; the JSON form is not used here
        paths = [word for word in words if not word.startswith("--")]
        sources += [path.removeprefix("./").rstrip("/") or "." for path in paths[:-1]]
    return sources


def install_problems(name: str, instructions: list[tuple[str, str]], members: dict[str, Path]) -> list[str]:
    """What makes an image built for `name` hold more than that member (and what it needs) or miss the lock check."""
    problems = []
    syncs = uv_syncs(instructions)
    if not syncs:
        problems.append("the Dockerfile runs no `uv sync`")
    for options in syncs:
        line = "uv sync " + " ".join(options)
        packages = [options[i + 1] for i, option in enumerate(options[:-1]) if option == "--package"]
        if packages != [name]:
            problems.append(f"`{line}` does not install only --package {name}")
        if "--no-dev" not in options:
            problems.append(f"`{line}` installs the dev dependencies")
        if not {"--locked", "--frozen"} & set(options):
            problems.append(f"`{line}` does not install exactly what uv.lock says (--locked)")
        problems += [f"`{line}` uses {option}" for option in options if option in {"--all-packages", "--all-groups"}]
    needed = {members[member].relative_to(ROOT).as_posix() for member in workspace_closure(name, members)}
    for source in copied_sources(instructions):
        if source.endswith("pyproject.toml") or source == "uv.lock":
            continue
        if source in WEB_ASSET_MANIFESTS:  # the npm assets stage: the same small folder in every image
            continue
        if source in {".", "*"} or not any(source == d or source.startswith(d + "/") for d in needed):
            problems.append(f"copies {source!r} into the image of {name}, which needs only {sorted(needed)}")
    sources = copied_sources(instructions)
    for member, directory in members.items():
        pyproject = (directory / "pyproject.toml").relative_to(ROOT).as_posix()
        if pyproject not in sources:
            problems.append(f"does not copy {pyproject}, which `uv sync --locked` needs to check uv.lock ({member})")
    return problems


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
    for server in (env.get("KP_KAFKA_BOOTSTRAP") or "").split(",") if name not in WITHOUT_KAFKA else []:
        assert server.rsplit(":", 1)[0] in services, f"{name}: Kafka server {server!r} is not a compose service"
    assert env.get("KP_HTTP_HOST") == "0.0.0.0", f"{name} must listen on all interfaces inside its container"


@service_names
def test_service_publishes_its_http_port(name: str, services: dict[str, dict[str, object]]) -> None:
    settings_cls = APP_SERVICES[name]
    default_port = settings_cls.model_fields["http_port"].default
    port = effective_port(services[name], settings_cls)
    mappings = port_mappings(services[name].get("ports"))
    assert port in {container for _, container in mappings}, f"{name} listens on {port} but maps {mappings}"
    assert (default_port, port) in mappings, f"{name} should be on host port {default_port}: {mappings}"


@service_names
def test_service_waits_for_healthy_kafka_and_postgres(name: str, services: dict[str, dict[str, object]]) -> None:
    depends_on = services[name].get("depends_on")
    assert isinstance(depends_on, dict), f"{name}: depends_on must name conditions, not just services"
    for dependency in INFRASTRUCTURE:
        if dependency == "kafka" and name in WITHOUT_KAFKA:
            continue
        assert (depends_on.get(dependency) or {}).get("condition") == "service_healthy", (
            f"{name} must wait for {dependency} to be healthy"
        )


@service_names
def test_service_has_a_readiness_healthcheck(name: str, services: dict[str, dict[str, object]]) -> None:
    assert "/health/ready" in healthcheck_command(services[name].get("healthcheck"))


@service_names
def test_service_is_built_from_the_one_dockerfile(name: str, services: dict[str, dict[str, object]]) -> None:
    problems = build_problems(name, services[name], workspace_members())
    assert problems == [], f"{name}: " + "; ".join(problems)


def test_no_service_has_a_dockerfile_of_its_own() -> None:
    assert SERVICE_DOCKERFILE.is_file(), f"{SERVICE_DOCKERFILE} is missing"
    own = sorted(str(path.relative_to(ROOT)) for path in ROOT.glob("services/*/Dockerfile"))
    assert own == [], f"the services are built from {SERVICE_DOCKERFILE.name} with --build-arg SERVICE, not from {own}"


@service_names
def test_dockerfile_installs_only_the_selected_member(name: str, services: dict[str, dict[str, object]]) -> None:
    args = {key: value for key, value in build_args(services[name]).items() if value is not None}
    problems = install_problems(name, rendered_dockerfile(SERVICE_DOCKERFILE, args), workspace_members())
    assert problems == [], f"{name}: " + "; ".join(problems)


def test_dockerfile_requires_the_service_argument() -> None:
    declared = [arguments for keyword, arguments in dockerfile_instructions(SERVICE_DOCKERFILE) if keyword == "ARG"]
    assert "SERVICE" in declared, "ARG SERVICE without a default: a forgotten argument must not build some service"
    assert not any(argument.startswith("SERVICE=") for argument in declared)


@service_names
def test_dockerfile_exposes_the_port_and_has_a_healthcheck(name: str, services: dict[str, dict[str, object]]) -> None:
    args = {key: value for key, value in build_args(services[name]).items() if value is not None}
    instructions = final_stage(rendered_dockerfile(SERVICE_DOCKERFILE, args))
    port = effective_port(services[name], APP_SERVICES[name])
    exposed_args = " ".join(args for keyword, args in instructions if keyword == "EXPOSE")
    exposed = {int(word.split("/")[0]) for word in exposed_args.split() if word.split("/")[0].isdigit()}
    assert port in exposed, f"{name}'s image exposes {sorted(exposed)}, the service listens on {port}"
    healthchecks = [args for keyword, args in instructions if keyword == "HEALTHCHECK"]
    assert healthchecks, f"{name}'s image has no HEALTHCHECK"
    assert "/health/ready" in healthchecks[-1]
    commands = [args for keyword, args in instructions if keyword in {"CMD", "ENTRYPOINT"}]
    assert commands and runs_module(commands[-1], name), f"{name}'s image does not run python -m {name}: {commands}"
    users = [args for keyword, args in instructions if keyword == "USER"]
    assert users and users[-1] not in {"root", "0"}, f"{name}'s image must not run as root"


def runs_module(command: str, module: str) -> bool:
    """Whether a CMD (exec form, possibly `sh -c "..."`, or shell form) runs `python -m <module>`."""
    try:
        parts = json.loads(command)
        text = " ".join(parts) if isinstance(parts, list) else command
    except json.JSONDecodeError:
        text = command
    return re.search(rf"\bpython[\d.]*\s+-m\s+[\"']?{re.escape(module)}[\"']?(?![\w.])", text) is not None


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


def test_build_problems_reports_a_service_that_is_no_member() -> None:
    members = workspace_members()
    cases = {
        "build": {"context": ".", "dockerfile": "Dockerfile", "args": {"SERVICE": "cases", "HTTP_PORT": "8002"}},
        "environment": {"KP_HTTP_PORT": "8002"},
    }
    assert build_problems("cases", cases, members) == []
    typo = {**cases, "build": {**cases["build"], "args": ["SERVICE=casess", "HTTP_PORT=8002"]}}
    problems = build_problems("cases", typo, members)
    assert len(problems) == 1 and problems[0].startswith("SERVICE='casess' is not a workspace member"), problems
    swapped = {**cases, "build": {**cases["build"], "args": {"SERVICE": "intake", "HTTP_PORT": "8002"}}}
    assert build_problems("cases", swapped, members) == ["SERVICE='intake' builds another service than 'cases'"]


def test_build_problems_reports_another_dockerfile_and_a_port_mismatch() -> None:
    service = {
        "build": {"context": ".", "dockerfile": "services/cases/Dockerfile", "args": {"HTTP_PORT": "8003"}},
        "environment": {"KP_HTTP_PORT": "8002"},
    }
    problems = build_problems("cases", service, workspace_members())
    assert len(problems) == 3, problems
    assert problems[0].startswith("built from ") and problems[0].endswith(
        "services/cases/Dockerfile, not from the one Dockerfile " + str(SERVICE_DOCKERFILE)
    )
    assert problems[1:] == [
        "the build argument SERVICE is missing",
        "HTTP_PORT=8003 but the service listens on KP_HTTP_PORT=8002",
    ]


def test_install_problems_reports_a_second_member_and_dev_dependencies() -> None:
    members = workspace_members()
    instructions = [
        ("COPY", f"{(directory / 'pyproject.toml').relative_to(ROOT).as_posix()} x/") for directory in members.values()
    ]
    good = [*instructions, ("COPY", "shared/ shared/"), ("COPY", "services/stats/ services/stats/")]
    good.append(("RUN", "uv sync --locked --no-dev --package stats --no-editable"))
    assert install_problems("stats", good, members) == []
    bad = [*good, ("COPY", "services/ services/"), ("RUN", "uv sync --frozen --all-packages")]
    problems = install_problems("stats", bad, members)
    assert any("does not install only --package stats" in problem for problem in problems), problems
    assert any("installs the dev dependencies" in problem for problem in problems), problems
    assert any("uses --all-packages" in problem for problem in problems), problems
    assert any(problem.startswith("copies 'services'") for problem in problems), problems


def test_rendered_dockerfile_fills_in_the_build_arguments(tmp_path: Path) -> None:
    dockerfile = tmp_path / "Dockerfile"
    dockerfile.write_text(
        'ARG IMAGE=python:3.11-slim\nFROM ${IMAGE} AS build\nARG SERVICE\nRUN uv sync --package "${SERVICE}"\n'
        "FROM ${IMAGE}\nARG IMAGE\nARG SERVICE\nARG PORT=8000\nENV APP=${SERVICE} KP_HTTP_PORT=$PORT\nLABEL base=$IMAGE\n"
        "EXPOSE ${PORT}\n"
        'CMD ["sh", "-c", "exec python -m \\"${APP}\\" ${SERVICE}"]\n'
    )
    assert rendered_dockerfile(dockerfile, {"SERVICE": "cases"}) == [
        ("FROM", "python:3.11-slim AS build"),
        ("RUN", 'uv sync --package "cases"'),
        ("FROM", "python:3.11-slim"),
        ("ENV", "APP=cases KP_HTTP_PORT=8000"),
        ("LABEL", "base=python:3.11-slim"),
        ("EXPOSE", "8000"),
        # At run time only ENV exists: ${SERVICE} stays for the shell, which finds it empty.
        ("CMD", '["sh", "-c", "exec python -m \\"cases\\" ${SERVICE}"]'),
    ]
    assert runs_module('["sh", "-c", "exec python -m \\"cases\\""]', "cases")
    assert not runs_module('["sh", "-c", "exec python -m \\"casess\\""]', "cases")


def test_port_mappings_reads_short_and_long_syntax() -> None:
    assert port_mappings(["8001:8001", "127.0.0.1:9001:8001/tcp", 8002, {"target": 8003, "published": "18003"}]) == [
        (8001, 8001),
        (9001, 8001),
        (None, 8002),
        (18003, 8003),
    ]
