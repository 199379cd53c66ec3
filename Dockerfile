# Build the same binary the tests exercise, then ship it alone.
FROM golang:1.26-bookworm AS build
# The patched toolchain go.mod names (go1.26.11), whatever 1.26 the image has.
ENV GOTOOLCHAIN=go1.26.11
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
# The build names itself (authz version, /healthz, authz_build_info):
#   docker build --build-arg VERSION=$(git describe --tags --always) --build-arg COMMIT=$(git rev-parse HEAD) .
ARG VERSION=dev
ARG COMMIT=unknown
ARG BUILD_DATE=unknown
RUN CGO_ENABLED=0 go build -trimpath \
    -ldflags="-s -w -X main.version=${VERSION} -X main.commit=${COMMIT} -X main.buildDate=${BUILD_DATE}" \
    -o /out/authz ./cmd/authz

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/authz /usr/local/bin/authz
EXPOSE 8080 8081
HEALTHCHECK --interval=10s --timeout=3s --retries=3 CMD ["/usr/local/bin/authz", "healthcheck"]
ENTRYPOINT ["/usr/local/bin/authz"]
CMD ["serve"]
