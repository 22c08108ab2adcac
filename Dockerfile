# casterpak: multi-stage build mirroring the README's install and build steps.
FROM rust:1-bookworm AS build
WORKDIR /src
COPY Cargo.toml Cargo.lock build.rs ./
COPY src ./src
COPY examples ./examples
COPY benches ./benches
COPY tests ./tests
RUN cargo build --release --locked --bin casterpak

FROM node:20-bookworm-slim AS player
WORKDIR /player
COPY player/package.json player/package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY player/ ./

FROM node:20-bookworm-slim AS dashboard
WORKDIR /dashboard
COPY dashboard/package.json dashboard/package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY dashboard/ ./

FROM debian:bookworm-slim
# ffmpeg and ffprobe: the media library probes and transcodes uploads with them.
RUN apt-get update && apt-get install -y --no-install-recommends ffmpeg && rm -rf /var/lib/apt/lists/*
RUN useradd --system --home /data casterpak && mkdir -p /data /srv/casterpak && chown casterpak /data
COPY --from=build /src/target/release/casterpak /usr/local/bin/casterpak
COPY --from=player /player /srv/casterpak/player
COPY --from=dashboard /dashboard /srv/casterpak/dashboard
# The media root is writable: the library publishes its rungs under media/assets/.
COPY --chown=casterpak samples /srv/casterpak/media
USER casterpak
WORKDIR /srv/casterpak
ENV CASTERPAK_INGEST_ADDR=0.0.0.0:5000 \
    CASTERPAK_EGRESS_ADDR=0.0.0.0:5001 \
    CASTERPAK_DATA_DIR=/data \
    CASTERPAK_PLAYER_DIR=/srv/casterpak/player \
    CASTERPAK_DASHBOARD_DIR=/srv/casterpak/dashboard \
    CASTERPAK_MEDIA_ROOT=/srv/casterpak/media
VOLUME /data
EXPOSE 5000 5001
ENTRYPOINT ["casterpak"]
CMD ["serve"]
