# The orchestrator's image: the API by default, a worker with another command, e.g.
#   docker run … keelson node src/cli/worker.ts --queues tasks
# Node 22 runs the TypeScript sources directly (type stripping): no build step, no devDependencies.
# DATABASE_URL must be set (the embedded Postgres of `npm start` is for development).

FROM node:22-slim AS deps
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev && npm cache clean --force

FROM node:22-slim
# `node` is the project's own (the `node` dependency, in node_modules/.bin), as under npm.
ENV NODE_ENV=production \
    HOST=0.0.0.0 \
    PORT=8080 \
    PATH=/app/node_modules/.bin:$PATH
WORKDIR /app
# Owned by root, run as `node`: the code cannot be changed by the process that runs it.
COPY --from=deps /app/node_modules ./node_modules
COPY package.json package-lock.json ./
COPY src ./src
COPY sql ./sql
COPY workflows ./workflows
USER node
# Every node in the image without require() of ES modules (README, "Quick start"; src/config/node-flags.ts).
ENV NODE_OPTIONS=--no-experimental-require-module
EXPOSE 8080
# No curl in the slim image: node asks /api/health (503 while the database is unreachable).
HEALTHCHECK --interval=10s --timeout=5s --start-period=30s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:' + (process.env.PORT || 8080) + '/api/health', { signal: AbortSignal.timeout(4000) }).then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]
# SIGTERM lets running steps finish (SHUTDOWN_TIMEOUT_SECONDS) and hands the rest back.
STOPSIGNAL SIGTERM
CMD ["node", "src/cli/serve.ts"]
