# Caddy with mailgate, built the way CI checks it (build_test.go): the xcaddy
# pinned in tools/go.mod, this checkout as the module.
#
#   docker build -f xcaddy.Dockerfile -t caddy-mailgate .
ARG CADDY_VERSION=v2.11.9

FROM golang:1.26-bookworm AS build
ARG CADDY_VERSION
WORKDIR /src
COPY . .
# `off` instead of `direct` after the proxy, so the local module is used.
ENV CGO_ENABLED=0 GOPROXY=https://proxy.golang.org|off
RUN go tool -modfile=tools/go.mod xcaddy build ${CADDY_VERSION} \
		--with github.com/mailgate/caddy-mailgate=/src \
		--output /out/caddy \
	&& /out/caddy list-modules | grep -q '^http.handlers.mailgate$'

FROM debian:bookworm-slim
RUN apt-get update \
	&& apt-get install -y --no-install-recommends ca-certificates libcap2-bin \
	&& rm -rf /var/lib/apt/lists/* \
	&& useradd --system --home /var/lib/caddy --create-home caddy
COPY --from=build /out/caddy /usr/bin/caddy
# Ports 80 and 443 without running as root.
RUN setcap cap_net_bind_service=+ep /usr/bin/caddy
USER caddy
ENV XDG_CONFIG_HOME=/var/lib/caddy/config XDG_DATA_HOME=/var/lib/caddy/data
EXPOSE 80 443
ENTRYPOINT ["caddy"]
CMD ["run", "--config", "/etc/caddy/Caddyfile", "--adapter", "caddyfile"]
