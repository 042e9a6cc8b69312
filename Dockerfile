# DevPocket Server image for RUNTIME=kubernetes (deploy/kubernetes/), built from the sources with an
# image registry at hand: `podman build -t registry.example.com/devpocket/devpocket-server:0.1.0 .`
# (or docker build). Without a registry, images/server/build.sh makes the same image from a built
# working tree, FROM a Debian base made with debootstrap (docs/deployment.md, "Building the image").
# The local runtime is not meant to run inside this image: it has no tmux and runs as an
# unprivileged user.
FROM node:24-bookworm-slim AS build
WORKDIR /app
# node-gyp's toolchain, for native modules without a prebuilt binary for Linux (node-pty).
RUN apt-get update && apt-get install -y --no-install-recommends python3 make g++ && rm -rf /var/lib/apt/lists/*
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY . .
RUN npm run build && npm prune --omit=dev \
 && find node_modules -mindepth 3 -type d -path '*/prebuilds/*' -prune ! -name 'linux-x64*' -exec rm -rf {} +

FROM node:24-bookworm-slim
ENV NODE_ENV=production
# A fixed mmap threshold: glibc returns large blocks (argon2's 19 MiB per hash) to the system
# when they are freed (docs/deployment.md, "Memory"); npm run start:prod sets the same.
ENV GLIBC_TUNABLES=glibc.malloc.mmap_threshold=1048576
WORKDIR /app
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
COPY --from=build /app/templates ./templates
COPY package.json ./
USER 10001:10001
EXPOSE 8000
CMD ["node", "--max-semi-space-size=8", "dist/main.js"]
