# One Dockerfile, three runtime targets: `manager` (the operator), `ragserver` (the RAG server) and
# `fakeopenai` (the fake OpenAI-compatible model API used by the end-to-end tests).
#
#   docker build --target manager   -t ragops/ragops-operator:0.1.0 .
#   docker build --target ragserver -t ragops/ragserver:0.1.0 .
#
# Base images are build arguments with pinned public defaults. Where nothing can be pulled,
# `make base-images` builds local stand-ins and `make docker-build` passes them here.
# The runtime images start FROM scratch (RUNTIME_IMAGE) and receive a tiny root filesystem made in
# the builder: a passwd entry for the non-root user 65532, CA certificates, /tmp, and for ragserver
# the four glibc files that its binary loads (chroma-go's purego makes it dynamically linked) and
# poppler's pdftotext with its libraries (PDF text extraction, about 15 MB).
ARG BUILDER_IMAGE=golang:1.26.8-bookworm
ARG RUNTIME_IMAGE=scratch

FROM ${BUILDER_IMAGE} AS builder
WORKDIR /src
ENV CGO_ENABLED=0 GOFLAGS=-trimpath GOTOOLCHAIN=local
# pdftotext (Debian's poppler-utils) reads PDF documents for ragserver (package docformat). It goes
# into ragserver's root filesystem with the shared libraries it loads, resolved to their real files
# in the same library directory as glibc's (the loader's trusted path; the image has no ld.so.cache).
# First, so that no code or module change invalidates this layer.
RUN set -eux; \
    apt-get update; DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends poppler-utils; \
    rm -rf /var/lib/apt/lists/*; \
    lib=$(dirname "$(readlink -f /lib64/ld-linux-x86-64.so.2)"); mkdir -p /rootfs-glibc/usr/bin /rootfs-glibc$lib; \
    cp /usr/bin/pdftotext /rootfs-glibc/usr/bin/; \
    for so in $(ldd /usr/bin/pdftotext | awk '$3 ~ /^\// {print $3}'); do cp -L "$so" /rootfs-glibc$lib/; done; \
    mkdir -p /rootfs-glibc/usr/share/doc/poppler-utils; cp /usr/share/doc/poppler-utils/copyright /rootfs-glibc/usr/share/doc/poppler-utils/
# Modules first, then the dependencies compiled once (hack/docker/deps.txt lists the packages the
# binaries import, kept current by `make verify`): a code change neither downloads nor recompiles them.
COPY go.mod go.sum hack/docker/deps.txt ./
RUN go mod download && xargs go build < deps.txt
# The runtime root filesystems.
RUN set -eux; \
    for r in static glibc; do \
      d=/rootfs-$r; mkdir -p $d/etc/ssl/certs $d/tmp $d/home/nonroot; chmod 1777 $d/tmp; \
      printf 'root:x:0:0:root:/root:/sbin/nologin\nnonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n' > $d/etc/passwd; \
      printf 'root:x:0:\nnonroot:x:65532:\n' > $d/etc/group; \
      cp /etc/ssl/certs/ca-certificates.crt $d/etc/ssl/certs/; \
      chown 65532:65532 $d/home/nonroot; \
    done; \
    lib=$(dirname "$(readlink -f /lib64/ld-linux-x86-64.so.2)"); mkdir -p /rootfs-glibc/lib64 /rootfs-glibc$lib; \
    cp -L /lib64/ld-linux-x86-64.so.2 /rootfs-glibc/lib64/; \
    for so in libc.so.6 libdl.so.2 libpthread.so.0; do cp -L $lib/$so /rootfs-glibc$lib/; done
COPY api/ api/
COPY cmd/ cmd/
COPY internal/ internal/
# Declared here, not earlier: a new commit must not invalidate the module and dependency layers.
ARG VERSION=0.1.0
ARG COMMIT=unknown
RUN set -eux; \
    ldflags="-s -w -X github.com/ragops/ragops/internal/version.Version=${VERSION} -X github.com/ragops/ragops/internal/version.Commit=${COMMIT}"; \
    for b in manager ragserver fakeopenai; do go build -ldflags "$ldflags" -o /out/$b ./cmd/$b; done

FROM ${RUNTIME_IMAGE} AS manager
ARG VERSION=0.1.0
ARG COMMIT=unknown
LABEL org.opencontainers.image.title="ragops operator" \
      org.opencontainers.image.source="https://github.com/ragops/ragops" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${COMMIT}" \
      org.opencontainers.image.licenses="Apache-2.0"
COPY --from=builder /rootfs-static/ /
COPY --from=builder /out/manager /manager
USER 65532:65532
ENTRYPOINT ["/manager"]

FROM ${RUNTIME_IMAGE} AS fakeopenai
ARG VERSION=0.1.0
ARG COMMIT=unknown
LABEL org.opencontainers.image.title="ragops fake OpenAI-compatible API (tests only)" \
      org.opencontainers.image.source="https://github.com/ragops/ragops" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${COMMIT}"
COPY --from=builder /rootfs-static/ /
COPY --from=builder /out/fakeopenai /fakeopenai
USER 65532:65532
EXPOSE 8080
ENTRYPOINT ["/fakeopenai"]

# ragserver is last so that a plain `docker build .` gives the RAG server.
FROM ${RUNTIME_IMAGE} AS ragserver
ARG VERSION=0.1.0
ARG COMMIT=unknown
LABEL org.opencontainers.image.title="ragops RAG server" \
      org.opencontainers.image.source="https://github.com/ragops/ragops" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${COMMIT}" \
      org.opencontainers.image.licenses="Apache-2.0"
COPY --from=builder /rootfs-glibc/ /
COPY --from=builder /out/ragserver /usr/local/bin/ragserver
ENV PORT=8080 DATA_DIR=/tmp/ragserver
USER 65532:65532
EXPOSE 8080
HEALTHCHECK --interval=10s --timeout=3s --start-period=10s --retries=3 CMD ["/usr/local/bin/ragserver", "healthcheck"]
ENTRYPOINT ["/usr/local/bin/ragserver"]
