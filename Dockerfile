# Builds promgate and mock-exporter; each has its own small final stage.
#   docker build --target promgate -t promgate .
#   docker build --target mock-exporter -t mock-exporter .
FROM rust:1.91-bookworm AS build
WORKDIR /src
# The workspace: promgate at the root, mock-exporter as a member crate.
# benches/ is copied because Cargo.toml names benches/hot_path.rs (cargo
# refuses the manifest without it); examples/ is discovered, not named, so it
# stays out. tests/packaging.rs builds from exactly these paths.
COPY Cargo.toml Cargo.lock build.rs ./
COPY proto proto
COPY src src
COPY benches benches
COPY mock-exporter mock-exporter
RUN cargo build --release --locked --bin promgate --bin mock-exporter

# Debian slim (not distroless) so the compose health checks have a shell;
# the binaries need only glibc.
FROM debian:bookworm-slim AS runtime
RUN useradd --system --uid 10001 --no-create-home --shell /usr/sbin/nologin app
USER 10001

FROM runtime AS promgate
COPY --from=build /src/target/release/promgate /usr/local/bin/promgate
EXPOSE 9091
ENTRYPOINT ["/usr/local/bin/promgate"]

FROM runtime AS mock-exporter
COPY --from=build /src/target/release/mock-exporter /usr/local/bin/mock-exporter
EXPOSE 2112
ENTRYPOINT ["/usr/local/bin/mock-exporter"]
