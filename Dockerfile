# syntax=docker/dockerfile:1
# Two images from one file:
#   api     `ccml serve` on port 8000 (ECS/Fargate)
#   lambda  the retraining handler as a Lambda container image (awslambdaric)
# The base is a build argument: any Debian-like image with python3 (>= 3.11) and venv.
ARG BASE_IMAGE=python:3.11-slim

FROM ${BASE_IMAGE} AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 PYTHONDONTWRITEBYTECODE=1
WORKDIR /src
RUN python3 -m venv /opt/venv
COPY requirements.lock ./
# A TLS-intercepting proxy's CA can be passed as the secret "pipcert"; it is never stored
# in a layer.
RUN --mount=type=secret,id=pipcert,required=false \
    if [ -f /run/secrets/pipcert ]; then export PIP_CERT=/run/secrets/pipcert; fi \
    && /opt/venv/bin/pip install --no-compile -r requirements.lock
COPY pyproject.toml README.md ./
COPY ccml ./ccml
COPY handlers ./handlers
RUN --mount=type=secret,id=pipcert,required=false \
    if [ -f /run/secrets/pipcert ]; then export PIP_CERT=/run/secrets/pipcert; fi \
    && /opt/venv/bin/pip install --no-compile --no-deps . \
    && find /opt/venv -name '__pycache__' -prune -exec rm -rf {} + \
    && rm -rf /opt/venv/lib/python3*/site-packages/pip /opt/venv/bin/pip*

FROM ${BASE_IMAGE} AS runtime
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    CCML_LOG_FORMAT=json
COPY --from=build /opt/venv /opt/venv
RUN useradd --uid 10001 --no-create-home --shell /usr/sbin/nologin ccml \
    && mkdir -p /data && chown ccml /data

FROM runtime AS api
ENV CCML_HOME=/data CCML_HOST=0.0.0.0 CCML_PORT=8000
USER 10001
EXPOSE 8000
HEALTHCHECK --interval=15s --timeout=3s --start-period=20s --retries=3 \
    CMD ["python3", "-c", "import os, urllib.request; urllib.request.urlopen(f\"http://127.0.0.1:{os.environ['CCML_PORT']}/health\", timeout=2)"]
ENTRYPOINT ["ccml", "serve"]

FROM runtime AS lambda
# Lambda runs the image as an arbitrary non-root user with a read-only file system but /tmp.
ENV CCML_HOME=/tmp/ccml HOME=/tmp
WORKDIR /tmp
USER 10001
ENTRYPOINT ["python3", "-m", "awslambdaric"]
CMD ["handlers.retrain.handler"]
