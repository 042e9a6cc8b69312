/**
 * A list-then-watch loop over one collection of the API server, for the test cluster's own
 * controllers (./local-volumes.ts, ./pod-runner.ts): list, hand every item over (and then the whole
 * list, for what was deleted while not watching), watch from the list's
 * resourceVersion with bookmarks; when the watch ends (timeout, error, 410 Gone) list again.
 */
import { setTimeout as delay } from 'node:timers/promises';

import { type KubeConfig, Watch } from '@kubernetes/client-node';

import { KubeRest } from './kube-rest.js';

export interface WatchLoop {
  /** Resolves once the first list was handed over. */
  listed: Promise<void>;
  stop(): Promise<void>;
}

export function watchCollection<T>(
  kubeConfig: KubeConfig,
  collection: string,
  onObject: (type: 'ADDED' | 'MODIFIED' | 'DELETED', object: T) => void,
  log: (line: string) => void,
  onList?: (items: T[]) => void,
): WatchLoop {
  const rest = new KubeRest(kubeConfig);
  let stopped = false;
  let current: AbortController | null = null;
  let firstList: () => void = () => undefined;
  const listed = new Promise<void>((resolve) => (firstList = resolve));
  const loop = (async () => {
    while (!stopped) {
      try {
        const list = await rest.call<{ metadata: { resourceVersion: string }; items: T[] }>('GET', collection);
        for (const item of list.items) onObject('ADDED', item);
        onList?.(list.items);
        firstList();
        await new Promise<void>((resolve) => {
          new Watch(kubeConfig)
            .watch(
              collection,
              { resourceVersion: list.metadata.resourceVersion, allowWatchBookmarks: true },
              (type: string, object: unknown) => {
                if (type === 'ERROR') {
                  current?.abort();
                  resolve();
                } else if (type === 'ADDED' || type === 'MODIFIED' || type === 'DELETED') {
                  onObject(type, object as T);
                }
              },
              () => resolve(),
            )
            .then((controller) => {
              current = controller;
              if (stopped) controller.abort();
            })
            .catch(() => resolve());
        });
      } catch (error) {
        if (!stopped) log(`watch ${collection}: ${error instanceof Error ? error.message : String(error)}`);
      }
      if (!stopped) await delay(200);
    }
    firstList();
  })();
  return {
    listed,
    stop: async () => {
      stopped = true;
      current?.abort();
      await loop;
    },
  };
}
