# syntax=docker/dockerfile:1
# nanofaas control plane image: a static Go binary on distroless, running as non-root.
#   docker build --build-arg VERSION=v0.17.0 -t ghcr.io/miciav/nanofaas/control-plane:v0.17.0 .
# The tag of the builder must match the go directive of go.mod (checked by deploy/deploytest).

FROM golang:1.26 AS build
WORKDIR /src
# Dependencies first, so source edits reuse the module download layer.
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=dev
RUN CGO_ENABLED=0 go build -trimpath -ldflags "-s -w -X main.version=${VERSION}" \
      -o /out/control-plane ./cmd/control-plane

FROM gcr.io/distroless/static:nonroot
COPY --from=build /out/control-plane /control-plane
# 65532 is distroless' "nonroot"; numeric so that runAsNonRoot can verify it.
USER 65532:65532
# 8080: API (server.port); 8081: actuator health and metrics (management.server.port).
EXPOSE 8080 8081
ENTRYPOINT ["/control-plane"]
