# syntax=docker/dockerfile:1
# ferrite serve in a container: a release build, then a slim runtime running as a non-root user.
#   docker build -t ferrite:0.1.0 .
#   docker run --rm -p 8000:8000 -v "$PWD/models:/models:ro" ferrite:0.1.0
# /models/serve.toml names the models (docs/SERVING.md); paths in it are relative to /models.

FROM rust:1.89-slim-bookworm AS build
WORKDIR /src
COPY . .
# No debug info in the shipped binary; the workspace's own release profile keeps it for profiling.
ENV CARGO_PROFILE_RELEASE_DEBUG=0 \
    CARGO_INCREMENTAL=0
RUN cargo build --release --locked -p ferrite-cli \
    && install -m 0755 target/release/ferrite /usr/local/bin/ferrite

FROM debian:bookworm-slim AS runtime
# A fixed high uid/gid, so Kubernetes' runAsNonRoot and file ownership agree.
RUN groupadd --system --gid 10001 ferrite \
    && useradd --system --uid 10001 --gid 10001 --no-create-home --shell /usr/sbin/nologin ferrite
COPY --from=build /usr/local/bin/ferrite /usr/local/bin/ferrite
USER 10001:10001
WORKDIR /models
EXPOSE 8000
# The readiness route over bash's /dev/tcp: the slim image has no curl, and needs none.
HEALTHCHECK --interval=15s --timeout=3s --start-period=60s --retries=3 \
    CMD ["bash", "-c", "exec 3<>/dev/tcp/127.0.0.1/8000 && printf 'GET /v2/health/ready HTTP/1.0\\r\\n\\r\\n' >&3 && head -1 <&3 | grep -q ' 200 '"]
ENTRYPOINT ["ferrite", "serve"]
CMD ["--host", "0.0.0.0", "--port", "8000", "--config", "/models/serve.toml"]
