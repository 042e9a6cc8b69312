#!/usr/bin/env bash
# Builds the environment images of the shipped templates: images/<template>/Containerfile, each FROM
# its template's upstream image (the build file's BASE default) with tmux, git and the template's
# tools installed and its user (uid/gid 1000) made, so that nothing needs root when an environment
# starts. See docs/kubernetes.md ("Environment images").
#
#   images/build.sh [--registry PREFIX] [--tag TAG] [--base IMAGE] [--engine ENGINE] [--push]
#                   [TEMPLATE...] [-- BUILD-OPTION...]
#
#   TEMPLATE       a folder of images/ (debian, ubuntu, python, nodejs, golang, rust, coding-agent);
#                  default: all of them
#   --registry     the images' name prefix (default devpocket): PREFIX/env-<template>:TAG
#   --tag          default 1; bump it when a build file changes what environments can rely on
#   --base         FROM this image for every template instead of each build file's default
#                  (the test cluster builds FROM a Debian base of its own, images/debian-base.sh)
#   --engine       podman (default when installed), docker or buildah
#   --push         push each image once built
#   BUILD-OPTION   passed to the engine's build command as is (e.g. --network=host)
#
# Prints each image's name on stdout as it is built; the engines' output goes to stderr.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
registry=devpocket
tag=1
base=
push=false
engine=
templates=()
build_options=()

while [ $# -gt 0 ]; do
  case $1 in
    --registry) registry=${2:?--registry needs a value}; shift 2 ;;
    --tag) tag=${2:?--tag needs a value}; shift 2 ;;
    --base) base=${2:?--base needs a value}; shift 2 ;;
    --engine) engine=${2:?--engine needs a value}; shift 2 ;;
    --push) push=true; shift ;;
    --) shift; build_options=("$@"); break ;;
    -*) echo "build.sh: unknown option $1" >&2; exit 2 ;;
    *) templates+=("$1"); shift ;;
  esac
done

if [ -z "$engine" ]; then
  if command -v podman >/dev/null 2>&1; then engine=podman; elif command -v docker >/dev/null 2>&1; then engine=docker; else
    echo "build.sh: neither podman nor docker is installed (or pass --engine buildah)" >&2
    exit 1
  fi
fi
case $engine in
  podman | docker) build=("$engine" build) ;;
  buildah) build=(buildah build) ;;
  *) echo "build.sh: unknown engine $engine (podman, docker or buildah)" >&2; exit 2 ;;
esac

if [ ${#templates[@]} -eq 0 ]; then
  for file in "$here"/*/Containerfile; do templates+=("$(basename "$(dirname "$file")")"); done
fi

for template in "${templates[@]}"; do
  file="$here/$template/Containerfile"
  [ -f "$file" ] || { echo "build.sh: no build file $file" >&2; exit 2; }
  image="${registry%/}/env-$template:$tag"
  args=(--file "$file" --tag "$image" --label "io.devpocket.template=$template")
  [ -z "$base" ] || args+=(--build-arg "BASE=$base")
  echo "build.sh: $image FROM ${base:-its default base}" >&2
  # The context is images/ itself: the build files bind-mount prepare.sh from it.
  "${build[@]}" "${args[@]}" ${build_options[@]+"${build_options[@]}"} "$here" >&2
  if [ "$push" = true ]; then "$engine" push "$image" >&2; fi
  echo "$image"
done
