/**
 * Where DevPocket's own environment images come from (docs/kubernetes.md, "Environment images").
 * Templates name them `devpocket/env-<template>:<tag>`, which a container runtime reads as Docker
 * Hub's; an installation that publishes them elsewhere (images/build.sh --registry PREFIX) sets
 * KUBERNETES_IMAGE_REGISTRY=PREFIX, and the runtime replaces the `devpocket` of those names when it
 * builds a pod: `devpocket/env-python:1` → `registry.example.com/devpocket/env-python:1`.
 */

/** The names templates give DevPocket's own images, without a registry. */
export const OWN_IMAGE_PREFIX = 'devpocket/env-';

/** The image a pod runs for a template's `image`: DevPocket's own under `registry` when one is set, any other as it is. */
export function environmentImage(image: string, registry: string | null): string {
  if (registry === null || !image.startsWith(OWN_IMAGE_PREFIX)) return image;
  return `${registry}/${image.slice('devpocket/'.length)}`;
}
