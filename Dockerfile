# takhin-ts broker image: `node --import tsx backend/src/main.ts`, one broker per container.
#
# On a normal Docker host (registry reachable), dependencies are installed inside the build with `npm ci`:
#   docker build -t takhin-ts .
# On a machine that cannot pull images (these CI machines): scripts/install-docker.sh imports a local base image
# (scripts/docker-base-image.sh), and the host's node_modules (after `npm install`; Linux glibc, same CPU) goes in:
#   docker build --build-arg BASE_IMAGE=takhin-node-base:local --build-arg NPM_CI=false -t takhin-ts .
# Every RUN is exec-form and runs node only: the local base image has no shell and no npm; node:20 has both.
# docker-compose.yml passes the same two build arguments from the environment (BASE_IMAGE, NPM_CI).
ARG BASE_IMAGE=node:20-bookworm-slim

FROM ${BASE_IMAGE} AS deps
# true: `npm ci --omit=dev` in the build (needs the registry); false: the build context's node_modules.
ARG NPM_CI=true
WORKDIR /app
COPY package.json package-lock.json ./
# The host's node_modules, when the build context has one, lands in host-modules/ (its contents: COPY copies what
# a folder holds). On a fresh clone the pattern node_module[s] matches nothing, which COPY accepts because the
# script matches: the NPM_CI=true build then works without a host install.
COPY docker/install-deps.mjs node_module[s] /app/host-modules/
RUN ["node", "/app/host-modules/install-deps.mjs"]

FROM ${BASE_IMAGE}
WORKDIR /app
# The broker's data directory belongs to the unprivileged user the broker runs as (uid/gid 1000, "node").
RUN ["node", "-e", "const fs = require('node:fs'); fs.mkdirSync('/var/lib/takhin', { recursive: true }); fs.chownSync('/var/lib/takhin', 1000, 1000)"]
COPY --from=deps /app/node_modules/ node_modules/
COPY package.json package-lock.json tsconfig.json ./
COPY configs/ configs/
COPY backend/src/ backend/src/
# Settings a container needs whatever its config file says (environment beats the file, flags beat both):
# listen on every interface of the container, keep data in the volume-able directory, log JSON lines, and
# expose /healthz and /readyz for the health check below.
ENV NODE_ENV=production \
    TAKHIN_HOSTS=0.0.0.0 \
    TAKHIN_DATA_DIR=/var/lib/takhin \
    TAKHIN_LOG_FORMAT=json \
    TAKHIN_ADMIN_HOST=0.0.0.0 \
    TAKHIN_ADMIN_PORT=9644
USER 1000:1000
VOLUME ["/var/lib/takhin"]
EXPOSE 9092 9644
# Ready = serving clients (cluster mode: a Raft leader is known). No curl in the image: node's fetch.
HEALTHCHECK --interval=2s --timeout=3s --start-period=60s --retries=3 \
  CMD ["node", "-e", "fetch(`http://127.0.0.1:${process.env.TAKHIN_ADMIN_PORT}/readyz`, { signal: AbortSignal.timeout(2500) }).then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]
ENTRYPOINT ["node", "--import", "tsx", "backend/src/main.ts"]
CMD []
# Last, so only final images carry it: integration/cluster-compose.test.ts prunes the ones a rebuild left untagged.
LABEL org.opencontainers.image.title="takhin-ts"
