#!/usr/bin/env bash
# Build the api and lambda images with podman and smoke-test both:
#   api     run it on a mounted model store, wait for /ready, POST /predict, check non-root
#   lambda  run the handler inside the image on an S3 event against a moto server on the
#           host, then check that a champion appeared in the bucket
# No container registry is reachable here, so unless CCML_BASE_IMAGE names a pullable base,
# a Debian bookworm base is built with debootstrap and imported (cached between runs).
# Prints build times and image sizes, and writes them to bench/results/image-test-*.json.
set -euo pipefail
cd "$(dirname "$0")/.."

VENV=${VENV:-.venv}
PY="$VENV/bin/python"
CCML="$VENV/bin/ccml"
BASE_IMAGE=${CCML_BASE_IMAGE:-localhost/ccml-base:bookworm-slim}
CERT=/etc/ssl/certs/ca-certificates.crt
WORK=$(mktemp -d)
API_NAME=ccml-api-smoke-$$
MOTO_PID=""
# crun fails on these machines (setrlimit, hybrid cgroups): runc with explicit ulimits works.
RUN=(podman run --runtime runc --ulimit nofile=1024:1024 --ulimit nproc=1024:1024 --network host)

cleanup() {
    podman rm -f -t 3 "$API_NAME" >/dev/null 2>&1 || true
    [ -n "$MOTO_PID" ] && kill "$MOTO_PID" 2>/dev/null || true
    rm -rf "$WORK"
}
trap cleanup EXIT

log() { printf '[image-test] %s\n' "$*" >&2; }
free_port() { "$PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
wait_http() {  # url, seconds
    local deadline=$((SECONDS + $2))
    until curl -sf "$1" >/dev/null 2>&1; do
        [ $SECONDS -lt $deadline ] || { log "timed out waiting for $1"; return 1; }
        sleep 0.1
    done
}

log "podman may still print 'level=error ... systemd' or cgroup warnings on machines without systemd: they are podman's, harmless here, and the checks below decide"
if ! command -v podman >/dev/null || ! command -v debootstrap >/dev/null; then
    log "installing podman, runc, debootstrap"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq podman buildah runc debootstrap uidmap fuse-overlayfs curl >/dev/null
fi

if ! podman image exists "$BASE_IMAGE"; then
    if [ "$BASE_IMAGE" = localhost/ccml-base:bookworm-slim ]; then
        log "building the local base image with debootstrap"
        debootstrap --variant=minbase --include=python3,python3-venv,ca-certificates bookworm "$WORK/rootfs" >/dev/null
        # As python:3.11-slim does: no documentation, manual pages or message translations (about
        # 50 MB of the 176 MB minbase), no package caches.
        rm -rf "$WORK"/rootfs/var/cache/apt/* "$WORK"/rootfs/var/lib/apt/lists/* "$WORK"/rootfs/usr/share/doc/* \
            "$WORK"/rootfs/usr/share/man/* "$WORK"/rootfs/usr/share/locale/* "$WORK"/rootfs/usr/share/info/*
        tar -C "$WORK/rootfs" -c . | podman import - "$BASE_IMAGE" >/dev/null
        rm -rf "$WORK/rootfs"
    else
        podman pull "$BASE_IMAGE"
    fi
fi

declare -A SECONDS_TO_BUILD SIZE
secret=()
[ -f "$CERT" ] && secret=(--secret "id=pipcert,src=$CERT")
for target in api lambda; do
    log "building target $target on $BASE_IMAGE"
    started=$SECONDS
    podman build --format docker --isolation chroot --network host "${secret[@]}" \
        --build-arg "BASE_IMAGE=$BASE_IMAGE" --target "$target" -t "localhost/ccml-$target:test" . >"$WORK/build-$target.log" 2>&1 \
        || { tail -30 "$WORK/build-$target.log"; exit 1; }
    SECONDS_TO_BUILD[$target]=$((SECONDS - started))
    SIZE[$target]=$(podman image inspect --format '{{.Size}}' "localhost/ccml-$target:test")
    log "built $target in ${SECONDS_TO_BUILD[$target]} s, $((SIZE[$target] / 1000000)) MB"
done

# -- api ----------------------------------------------------------------------------------
log "api: training a model into a store to mount"
export CCML_LOG_LEVEL=warning
CCML_HOME="$WORK/home" "$CCML" data sample --rows 1500 --seed 11 --out "$WORK/sample.csv" 2>/dev/null
CCML_HOME="$WORK/home" "$CCML" train --data "$WORK/sample.csv" --json >"$WORK/train.json"
chmod -R a+rX "$WORK"
PORT=$(free_port)
api_started=$(date +%s.%N)
# --health-interval disable: podman schedules a HEALTHCHECK with a systemd timer, and on a
# machine without systemd that logs "level=error ... systemd" lines. The check stays defined
# and is run by hand below.
"${RUN[@]}" -d --health-interval disable --name "$API_NAME" -e "CCML_PORT=$PORT" -e CCML_PREDICTOR=onnx \
    -v "$WORK/home:/data:ro" localhost/ccml-api:test >/dev/null
wait_http "http://127.0.0.1:$PORT/ready" 120 || { podman logs "$API_NAME" | tail -20; exit 1; }
API_READY_S=$(awk -v a="$api_started" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')
log "api container ready after $API_READY_S s (podman run to /ready answering, polled every 0.1 s)"
answer=$(curl -sf -X POST "http://127.0.0.1:$PORT/predict" -H 'content-type: application/json' \
    -d "$("$PY" -c 'import json; from ccml.core.schema import load_schema; print(json.dumps(load_schema().example_record()))')")
log "api answered: $answer"
"$PY" - "$answer" "$WORK/train.json" <<'PYCODE'
import json, sys
answer, trained = json.loads(sys.argv[1]), json.load(open(sys.argv[2]))
assert answer["prediction"] in ("Completed", "Not Completed"), answer
assert 0 <= answer["probability"] <= 1, answer
assert answer["model_version"] == trained["version"], (answer, trained["version"])
PYCODE
# The docs pages work offline: their assets ship inside the package (package-data).
for asset in swagger-ui/swagger-ui-bundle.js swagger-ui/swagger-ui.css redoc/redoc.standalone.js; do
    curl -sf -o /dev/null "http://127.0.0.1:$PORT/docs/assets/$asset" || { log "docs asset $asset is missing"; exit 1; }
done
curl -sf "http://127.0.0.1:$PORT/docs" | grep -q "/docs/assets/swagger-ui/swagger-ui-bundle.js" \
    || { log "/docs does not load the packaged Swagger UI"; exit 1; }
log "docs assets served from the image"
# The image's HEALTHCHECK command itself, run by hand (its timer is disabled above).
podman healthcheck run "$API_NAME" || { log "the HEALTHCHECK command failed"; exit 1; }
log "HEALTHCHECK passed"
# The api image is the serving set only: none of the training stack is installed in it.
podman exec "$API_NAME" python3 -c '
import importlib.util, sys
training = ["sklearn", "scipy", "pandas", "skl2onnx", "onnx", "skops", "joblib", "duckdb", "matplotlib", "awslambdaric"]
present = [name for name in training if importlib.util.find_spec(name) is not None]
sys.exit(f"the api image carries {present}" if present else 0)
' || { log "the api image carries training packages"; exit 1; }
log "api image has none of the training stack (scikit-learn, scipy, pandas, converters, duckdb, matplotlib)"
uid=$(podman exec "$API_NAME" id -u)
[ "$uid" != 0 ] || { log "the api container runs as root"; exit 1; }
log "api runs as uid $uid"
podman rm -f -t 3 "$API_NAME" >/dev/null

# -- lambda -------------------------------------------------------------------------------
MOTO_PORT=$(free_port)
"$VENV/bin/moto_server" -H 127.0.0.1 -p "$MOTO_PORT" >"$WORK/moto.log" 2>&1 &
MOTO_PID=$!
wait_http "http://127.0.0.1:$MOTO_PORT/moto-api/" 30
export AWS_ENDPOINT_URL="http://127.0.0.1:$MOTO_PORT" AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing \
    AWS_DEFAULT_REGION=us-east-1 CCML_STORAGE=s3 CCML_S3_BUCKET=ccml-image-test
"$PY" - "$WORK/sample.csv" "$WORK/event.json" <<'PYCODE'
import json, sys
from urllib.parse import quote_plus
import boto3
s3 = boto3.client("s3")
s3.create_bucket(Bucket="ccml-image-test")
key = "incoming/smoke data+1 é.csv"
etag = s3.put_object(Bucket="ccml-image-test", Key=key, Body=open(sys.argv[1], "rb").read())["ETag"]
record = {"eventName": "ObjectCreated:Put", "s3": {"bucket": {"name": "ccml-image-test"},
          "object": {"key": quote_plus(key), "eTag": etag.strip('"')}}}
json.dump({"Records": [record]}, open(sys.argv[2], "w"))
PYCODE
chmod a+r "$WORK/event.json"
log "lambda: the activity-log drop's engine is in the image (DuckDB runs a query)"
"${RUN[@]}" --rm --entrypoint python3 localhost/ccml-lambda:test -c '
import duckdb, matplotlib, ccml.activity.event_logs  # what a logs batch under incoming/logs/ needs
assert duckdb.sql("select 41 + 1").fetchall() == [(42,)]
' || { log "the lambda image cannot run the activity-log drop"; exit 1; }
log "lambda: invoking the handler inside the image"
"${RUN[@]}" --rm -e AWS_ENDPOINT_URL -e AWS_ACCESS_KEY_ID -e AWS_SECRET_ACCESS_KEY -e AWS_DEFAULT_REGION \
    -e CCML_STORAGE -e CCML_S3_BUCKET -v "$WORK/event.json:/event.json:ro" --entrypoint python3 \
    localhost/ccml-lambda:test -c '
import json, awslambdaric  # the runtime interface client the image starts in Lambda
from handlers.retrain import handler
class Context:
    aws_request_id = "image-test"
    def get_remaining_time_in_millis(self): return 900_000
print(json.dumps(handler(json.load(open("/event.json")), Context())))
' >"$WORK/lambda.json"
log "lambda returned: $(cut -c1-200 "$WORK/lambda.json")"
"$CCML" models list --json >"$WORK/models.json"
"$PY" - "$WORK/lambda.json" "$WORK/models.json" <<'PYCODE'
import json, sys
result = json.loads(open(sys.argv[1]).read().strip().splitlines()[-1])["results"][0]
models = json.load(open(sys.argv[2]))
assert result["status"] == "trained" and result["promoted"], result
assert [m["version"] for m in models if "champion" in m["aliases"]] == [result["version"]], models
PYCODE
log "lambda trained and promoted a champion in the bucket"
# The report is drawn inside the image (matplotlib; in Lambda its cache goes to HOME=/tmp).
"$CCML" models report champion --out "$WORK/report" >/dev/null \
    || { log "the lambda image saved no evaluation report with the version"; exit 1; }
log "lambda wrote the version's evaluation report: $(du -k "$WORK"/report/*.html | cut -f1) KB"

stamp=$(date -u +%Y%m%dT%H%M%SZ)
mkdir -p bench/results
cat >"bench/results/image-test-$stamp.json" <<JSON
{"benchmark": "image-test", "base_image": "$BASE_IMAGE",
 "build_seconds": {"api": ${SECONDS_TO_BUILD[api]}, "lambda": ${SECONDS_TO_BUILD[lambda]}},
 "size_bytes": {"api": ${SIZE[api]}, "lambda": ${SIZE[lambda]}}, "api_ready_seconds": $API_READY_S}
JSON
echo "image-test: passed (api ${SECONDS_TO_BUILD[api]} s, $((SIZE[api] / 1000000)) MB; lambda ${SECONDS_TO_BUILD[lambda]} s, $((SIZE[lambda] / 1000000)) MB)"
