# SMS Gateway Proxy: the gateway (and its SMSC simulator) with the Message Center built in.
# Build: docker build -t smsgw .   Run: see docker-compose.yml and docs/deployment.md.

# --- build: every dependency, the Message Center built, then the development ones dropped ---
FROM node:24-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json ./
COPY src ./src
COPY web ./web
COPY proto ./proto
COPY config ./config
RUN node web/build.ts && npm prune --omit=dev --no-audit --no-fund

# --- run: production dependencies, the sources (Node 24 runs TypeScript as it is), the built web app ---
FROM node:24-slim
ENV NODE_ENV=production
WORKDIR /app
COPY --from=build --chown=root:root /app/package.json /app/package-lock.json ./
COPY --from=build --chown=root:root /app/node_modules ./node_modules
COPY --from=build --chown=root:root /app/src ./src
COPY --from=build --chown=root:root /app/proto ./proto
COPY --from=build --chown=root:root /app/config ./config
COPY --from=build --chown=root:root /app/web/dist ./web/dist
# The process writes only under /data (SQLite, objects in the embedded mode); the code is read-only to it.
RUN mkdir -p /data && chown node:node /data
USER node
# HTTP (REST, Message Center, /metrics), gRPC, the cluster runner.
EXPOSE 8080 9090 2775 34431
# /healthz answers while the process serves; the port follows SMSGW_HTTP_PORT when it is set.
HEALTHCHECK --interval=10s --timeout=3s --start-period=30s --retries=3 \
  CMD ["node", "-e", "fetch(`http://127.0.0.1:${process.env.SMSGW_HTTP_PORT ?? 8080}/healthz`).then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]
# Node is PID 1 and handles SIGTERM itself: HTTP and gRPC stop taking requests, links unbind, buffered results are
# written, then it exits (docs/operations.md).
# A young generation of 2 × 32 MB instead of V8's 2 × 64: ~80 MB less resident at full rate for the same CPU
# (bench/RESULTS.md, issue 16's seventh round). The same flags as `npm start` (test/unit/launch-flags.test.ts).
ENTRYPOINT ["node", "--disable-warning=ExperimentalWarning", "--max-semi-space-size=32", "src/cli/main.ts"]
CMD ["serve", "--config", "/etc/smsgw/gateway.yaml"]
