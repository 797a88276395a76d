# fanoutd: build and test in one stage, run from a slim one.
#   docker build -t fanoutd .
#   docker run -p 8080:8080 -v fanout-cache:/var/cache/fanout \
#     -v $PWD/my.json:/etc/fanout/fanout.json:ro fanoutd

FROM debian:12 AS build
WORKDIR /src
COPY scripts/install-deps.sh scripts/install-deps.sh
RUN scripts/install-deps.sh
COPY . .
RUN cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release -DFANOUT_BUILD_BENCH=OFF \
 && cmake --build build \
 && cd build && ctest --output-on-failure -L "core|config|integration" -j "$(nproc)"

FROM debian:12-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends \
      libcpp-httplib0.11 libspdlog1.10 libfmt9 libssl3 ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --home /var/cache/fanout --shell /usr/sbin/nologin fanout \
 && mkdir -p /var/cache/fanout /etc/fanout \
 && chown fanout:fanout /var/cache/fanout
COPY --from=build /src/build/fanoutd /usr/local/bin/fanoutd
COPY config/fanout.json /etc/fanout/fanout.json
USER fanout
VOLUME /var/cache/fanout
EXPOSE 8080
ENTRYPOINT ["/usr/local/bin/fanoutd", "--config", "/etc/fanout/fanout.json"]
