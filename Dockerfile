# Latchkey: multi-stage build on Node.js 24 LTS; runs as the unprivileged `node` user.
#
# Reproducible: the base image is pinned by digest (override with --build-arg NODE_IMAGE=…), dependencies
# come from package-lock.json only (`npm ci`), nothing is downloaded at run time, and file times can be
# clamped to the last commit:
#   docker buildx build --build-arg SOURCE_DATE_EPOCH=$(git log -1 --format=%ct) \
#     --output type=image,name=latchkey,rewrite-timestamp=true .
# node:24-bookworm-slim, Node.js 24.18.0 (linux/amd64 and linux/arm64 index digest).
ARG NODE_IMAGE=node:24-bookworm-slim@sha256:6f7b03f7c2c8e2e784dcf9295400527b9b1270fd37b7e9a7285cf83b6951452d

FROM ${NODE_IMAGE} AS build
ARG SOURCE_DATE_EPOCH
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund --cache /tmp/npm-cache && rm -rf /tmp/npm-cache
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
COPY migrations ./migrations
RUN npm run build && npm prune --omit=dev --no-audit --no-fund --cache /tmp/npm-cache && rm -rf /tmp/npm-cache

FROM ${NODE_IMAGE}
ARG SOURCE_DATE_EPOCH
ENV NODE_ENV=production \
    LATCHKEY_HOST=0.0.0.0 \
    LATCHKEY_PORT=3000 \
    LATCHKEY_DATA_DIR=/data
WORKDIR /app
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
COPY package.json ./
COPY config ./config
COPY views ./views
# Every page's strings (src/i18n.ts), and the phone app served at /app/ (src/push/app-files.ts).
COPY locales ./locales
COPY app ./app
# The common-password list is data read at run time (src/factors/password.ts), not compiled code.
COPY src/factors/common-passwords.txt ./src/factors/common-passwords.txt
RUN mkdir -p /data && chown node:node /data
USER node
VOLUME ["/data"]
EXPOSE 3000
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:'+(process.env.LATCHKEY_PORT||3000)+'/healthz').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"]
STOPSIGNAL SIGTERM
CMD ["node", "dist/src/main.js"]
