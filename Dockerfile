# airgapd in a container, for hosts that run containers rather than RPMs.
# See packaging/README.md for the `docker run` line (host network, caps).

FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=dev
RUN CGO_ENABLED=0 go build -trimpath -ldflags "-s -w -X main.version=${VERSION}" -o /out/airgapd ./cmd/airgapd

# Not distroless: airgapd must run as root (ports 53/80/123, iptables, the
# clock), and the gateway shells out to the iptables binary (coreos/go-iptables),
# which distroless lacks. Debian 12's iptables is the nf_tables variant, as on
# Rocky 9. ca-certificates: HTTPS to upstream repos and registries.
FROM debian:12-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends iptables ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && mkdir -p /etc/airgapd /var/lib/airgapd /run/airgapd \
 && chmod 0750 /var/lib/airgapd
COPY --from=build /out/airgapd /usr/bin/airgapd
# The safe first-start config; mount your own /etc/airgapd over it.
COPY packaging/airgapd.yaml /etc/airgapd/airgapd.yaml
VOLUME /var/lib/airgapd
EXPOSE 53/udp 53/tcp 123/udp 80/tcp 5000/tcp 8443/tcp
ENTRYPOINT ["/usr/bin/airgapd"]
CMD ["serve", "--config", "/etc/airgapd/airgapd.yaml"]
