# The one image recipe for the five services (intake, cases, referrals, stats, web). The build argument
# SERVICE names the workspace member to install and run; HTTP_PORT is the port it listens on,
# exposes and health-checks. Build from the repository root (the build context is the whole workspace):
#   docker build --build-arg SERVICE=cases --build-arg HTTP_PORT=8002 -t knotenpunkt-cases .
# docker-compose.yml passes both arguments for every service. The example partner agency keeps its
# own Dockerfile (examples/partner_agency/): a partner builds its image itself, without this one.

# Both stages use the same interpreter: the virtual environment is copied from one to the other.
ARG PYTHON_IMAGE=python:3.11-slim

# --- build: resolve the workspace from uv.lock into /app/.venv ---------------------------------
FROM ${PYTHON_IMAGE} AS build

RUN pip install --no-cache-dir uv==0.13.8

ENV UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy \
    UV_PYTHON_DOWNLOADS=never \
    UV_PYTHON=/usr/local/bin/python3.11 \
    UV_PROJECT_ENVIRONMENT=/app/.venv

WORKDIR /app

# `--locked` checks uv.lock against the whole workspace, so uv needs the pyproject.toml of every
# workspace member (shared, services/*, examples/partner_agency), not only the selected service's.
# These layers do not depend on SERVICE, so the four images share them.
COPY pyproject.toml uv.lock ./
COPY shared/pyproject.toml shared/
COPY services/intake/pyproject.toml services/intake/
COPY services/cases/pyproject.toml services/cases/
COPY services/referrals/pyproject.toml services/referrals/
COPY services/stats/pyproject.toml services/stats/
COPY services/web/pyproject.toml services/web/
COPY examples/partner_agency/pyproject.toml examples/partner_agency/

# Declared only here: a build argument invalidates the cache of every RUN after its declaration.
ARG SERVICE
ARG HTTP_PORT
# Without this, a forgotten argument surfaces later as a puzzling uv error or an image that cannot start.
RUN test -n "${SERVICE}" && test -n "${HTTP_PORT}" \
    || { echo "build with --build-arg SERVICE=<intake|cases|referrals|stats> --build-arg HTTP_PORT=<port>" >&2; exit 1; }

# Third-party dependencies of this service only, before any source, so this layer is only rebuilt
# when the lock file changes. `--package` keeps the other services' dependencies out of the image.
RUN uv sync --locked --no-dev --package "${SERVICE}" --no-install-workspace

# Then the code: the shared package and this service, installed as wheels (with their SQL migrations).
COPY shared/ shared/
COPY services/${SERVICE}/ services/${SERVICE}/
RUN uv sync --locked --no-dev --package "${SERVICE}" --no-editable

# --- assets: the web app's CSS and scripts from npm (KERN UX, htmx), pinned by package-lock.json -
# Served by the web app itself (no CDN); in the other images they are an unused 10 MB folder.
FROM node:20-slim AS assets
WORKDIR /assets
COPY services/web/package.json services/web/package-lock.json ./
RUN npm ci --omit=dev --no-audit --no-fund

# --- runtime: only the virtual environment, run as an unprivileged user ------------------------
FROM ${PYTHON_IMAGE}

RUN useradd --system --uid 10001 --user-group --no-create-home --shell /usr/sbin/nologin knotenpunkt

COPY --from=build /app/.venv /app/.venv
COPY --from=assets /assets/node_modules /app/web-assets

# Build arguments end at FROM; the runtime stage declares the ones it uses again.
ARG SERVICE
ARG HTTP_PORT

# KNOTENPUNKT_SERVICE, not KP_...: KP_ is the prefix of the services' own settings.
ENV PATH="/app/.venv/bin:$PATH" \
    PYTHONUNBUFFERED=1 \
    KNOTENPUNKT_SERVICE=${SERVICE} \
    KP_HTTP_HOST=0.0.0.0 \
    KP_HTTP_PORT=${HTTP_PORT} \
    KP_ASSETS_DIR=/app/web-assets

WORKDIR /app
USER knotenpunkt

EXPOSE ${HTTP_PORT}

# Ready = database and Kafka reachable (503 otherwise, which urlopen raises as an error). Reads the
# port at run time, so it follows a KP_HTTP_PORT given to the container (as docker-compose.yml does).
HEALTHCHECK --interval=10s --timeout=5s --start-period=30s --retries=5 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:' + os.environ['KP_HTTP_PORT'] + '/health/ready', timeout=4)"]

# An exec-form CMD cannot expand a variable, so a shell does it; `exec` then replaces the shell,
# leaving python as PID 1 to receive the SIGTERM of `docker stop`.
CMD ["/bin/sh", "-c", "exec python -m \"${KNOTENPUNKT_SERVICE}\""]
