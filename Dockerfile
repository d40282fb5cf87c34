# syntax=docker/dockerfile:1
# Build stage: install production dependencies and the native SQLite addon. better-sqlite3 ships
# N-API builds for linux x64/arm64 (glibc and musl), so the node-gyp step below is a no-op there;
# on any other platform it compiles SQLite with python3, make and g++ (add --force_build=1 to
# compile from source everywhere).
FROM node:24-bookworm-slim AS build
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 make g++ \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /app
# node-gyp builds against the headers of the Node in this image
ENV npm_config_nodedir=/usr/local
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --no-audit --no-fund \
 && cd node_modules/better-sqlite3 && npx --yes node-gyp rebuild --release
COPY src ./src
COPY workers ./workers
COPY bin ./bin
COPY drizzle ./drizzle
COPY lexicons ./lexicons
COPY feeds.example.json ./

# Runtime stage: slim, non-root, the SQLite file on a volume.
FROM node:24-bookworm-slim
ENV NODE_ENV=production \
    SKYSIFT_DB_PATH=/data/skysift.db \
    SKYSIFT_PORT=3000
WORKDIR /app
COPY --from=build /app /app
RUN mkdir -p /data && chown node:node /data
USER node
VOLUME ["/data"]
EXPOSE 3000
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
  CMD node -e "fetch('http://127.0.0.1:'+(process.env.SKYSIFT_PORT||3000)+'/xrpc/_health').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"
STOPSIGNAL SIGTERM
CMD ["node", "--max-semi-space-size=16", "src/cli.ts", "start"]
