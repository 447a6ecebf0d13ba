# syntax=docker/dockerfile:1
# The production image: web (gunicorn) and scheduler (cron) run it with different commands
# (scripts/entrypoint.sh). Wheels are built in a throwaway stage; the runtime stage installs them
# without a compiler, a pip cache or the wheels themselves ending up in a layer.

FROM python:3.11-slim AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1
WORKDIR /build
COPY requirements.txt .
RUN pip wheel --wheel-dir /wheels -r requirements.txt


FROM python:3.11-slim AS runtime
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHON=python \
    APP_USER=app \
    PORT=8000

# cron for the scheduler service. Its PAM session asks for the audit login uid, which a
# container may not set, and then refuses to run any job: drop that one module. The version is
# Debian's current one, security fixes included; a pinned version would vanish from the archive.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends cron \
    && rm -rf /var/lib/apt/lists/* \
    && sed -i '/pam_loginuid\.so/s/^/# /' /etc/pam.d/cron \
    && useradd --system --uid 10001 --user-group --create-home --shell /usr/sbin/nologin app

RUN --mount=type=bind,from=build,source=/wheels,target=/wheels \
    pip install --no-cache-dir --no-index /wheels/*.whl

WORKDIR /app
# The code belongs to root: the app user can run it, not change it.
COPY . .
# Static files for WhiteNoise (collectstatic signs nothing and opens no database, so it needs no
# SECRET_KEY). The metrics directory is created here, owned by app, so a named volume mounted
# on it starts with that owner.
RUN python manage.py collectstatic --noinput --verbosity 0 \
    && python -m compileall -q config ingestion prices runs \
    && install -d -o app -g app /var/lib/marketdata/metrics

# Counters of all processes in one container are summed from here (runs/metrics.py);
# docker compose mounts a volume here that web and scheduler share.
ENV PROMETHEUS_MULTIPROC_DIR=/var/lib/marketdata/metrics

# By number, so a platform can verify that the container does not run as root.
USER 10001:10001
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=10s --start-period=120s --retries=3 \
    CMD ["python", "scripts/healthcheck.py"]
ENTRYPOINT ["scripts/entrypoint.sh"]
CMD ["web"]
