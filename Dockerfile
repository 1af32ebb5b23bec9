# syntax=docker/dockerfile:1
# Two images from one file, each from its own lock (see `make lock`):
#   api     `ccml serve` on port 8000 (ECS/Fargate): the serving set only (ccml[serve],
#           requirements-serve.lock), so it serves ONNX versions without scikit-learn, scipy or pandas
#   lambda  the retraining handler as a Lambda container image (ccml[lambda],
#           requirements-lambda.lock: training, activity logs on DuckDB, awslambdaric)
# The base is a build argument: any Debian-like image with python3 (>= 3.11) and venv.
ARG BASE_IMAGE=python:3.11-slim

FROM ${BASE_IMAGE} AS venv
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 PYTHONDONTWRITEBYTECODE=1
WORKDIR /src
RUN python3 -m venv /opt/venv

# A TLS-intercepting proxy's CA can be passed as the secret "pipcert"; it is never stored in a
# layer. The locks come first so a source change does not reinstall the dependencies.
FROM venv AS build-api
COPY requirements-serve.lock ./
RUN --mount=type=secret,id=pipcert,required=false \
    if [ -f /run/secrets/pipcert ]; then export PIP_CERT=/run/secrets/pipcert; fi \
    && /opt/venv/bin/pip install --no-compile -r requirements-serve.lock
COPY pyproject.toml README.md ./
COPY ccml ./ccml
COPY handlers ./handlers
# Also dropped: the test suites packages ship, and ONNX Runtime's model-optimisation tools
# (transformers, quantization, tools: Python only, never imported to run a session).
RUN --mount=type=secret,id=pipcert,required=false \
    if [ -f /run/secrets/pipcert ]; then export PIP_CERT=/run/secrets/pipcert; fi \
    && /opt/venv/bin/pip install --no-compile --no-deps . \
    && site=$(echo /opt/venv/lib/python3*/site-packages) \
    && rm -rf "$site"/pip "$site"/onnxruntime/transformers "$site"/onnxruntime/quantization "$site"/onnxruntime/tools \
    && find /opt/venv \( -name '__pycache__' -o -name tests \) -type d -prune -exec rm -rf {} + \
    && rm -rf /opt/venv/bin/pip* \
    && /opt/venv/bin/python -m compileall -q -j 0 "$site"
# Compiled here: the api runs as a user that cannot write /opt/venv, so without these every start
# would compile FastAPI, pydantic and NumPy from source again (cold start).

FROM venv AS build-lambda
COPY requirements-lambda.lock ./
RUN --mount=type=secret,id=pipcert,required=false \
    if [ -f /run/secrets/pipcert ]; then export PIP_CERT=/run/secrets/pipcert; fi \
    && /opt/venv/bin/pip install --no-compile -r requirements-lambda.lock
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
RUN useradd --uid 10001 --no-create-home --shell /usr/sbin/nologin ccml \
    && mkdir -p /data && chown ccml /data

FROM runtime AS api
COPY --from=build-api /opt/venv /opt/venv
# The image has no scikit-learn: it serves the ONNX graph every version carries.
ENV CCML_HOME=/data CCML_HOST=0.0.0.0 CCML_PORT=8000 CCML_PREDICTOR=onnx
USER 10001
EXPOSE 8000
HEALTHCHECK --interval=15s --timeout=3s --start-period=20s --retries=3 \
    CMD ["python3", "-c", "import os, urllib.request; urllib.request.urlopen(f\"http://127.0.0.1:{os.environ['CCML_PORT']}/health\", timeout=2)"]
ENTRYPOINT ["ccml", "serve"]

FROM runtime AS lambda
COPY --from=build-lambda /opt/venv /opt/venv
# Lambda runs the image as an arbitrary non-root user with a read-only file system but /tmp.
ENV CCML_HOME=/tmp/ccml HOME=/tmp
WORKDIR /tmp
USER 10001
ENTRYPOINT ["python3", "-m", "awslambdaric"]
CMD ["handlers.retrain.handler"]
