import { createReadStream, FSWatcher, statSync, watch } from 'node:fs';
import { appendFile, open, stat } from 'node:fs/promises';
import { createInterface } from 'node:readline';
import { clip, LineSplitter, LogPager } from '../log-lines.js';
import type { LogPage, LogQuery, Unsubscribe } from '../runtime.provider.js';

/**
 * Appends lines to an environment's log, each prefixed with an ISO timestamp. Appends are
 * serialised per file so lines from concurrent sources never interleave mid-line. A log whose
 * directory has gone (the environment was destroyed) swallows further lines: it is never
 * re-created.
 */
export class EnvironmentLog {
  private tail: Promise<void> = Promise.resolve();

  constructor(
    readonly path: string,
    private readonly now: () => Date,
  ) {}

  append(...lines: string[]): Promise<void> {
    if (lines.length === 0) return this.tail;
    const at = this.now().toISOString();
    const text = lines.map((line) => `${at} ${clip(line.replace(/\r$/, ''))}\n`).join('');
    this.tail = this.tail.then(() => appendFile(this.path, text, { mode: 0o600 }).catch(() => undefined));
    return this.tail;
  }

  /** Resolves once every line appended so far is in the file. */
  flushed(): Promise<void> {
    return this.tail;
  }
}

/**
 * The newest `query.lines` lines of a log file (optionally only those written at or after
 * `query.since`), reading the file as a stream so memory stays bounded by the page size. A line
 * without a timestamp belongs to the time of the line before it.
 */
export async function readLogPage(path: string, query: LogQuery, end?: number): Promise<LogPage> {
  let input: ReturnType<typeof createReadStream>;
  try {
    await stat(path);
    if (end === 0) return { lines: [], total: 0 };
    input = createReadStream(path, { encoding: 'utf8', ...(end === undefined ? {} : { end: end - 1 }) });
  } catch {
    return { lines: [], total: 0 };
  }
  const pager = new LogPager(query);
  const reader = createInterface({ input, crlfDelay: Infinity });
  try {
    for await (const line of reader) pager.add(line);
  } catch {
    // The file went away while reading (destroyed): what was read is the answer.
  } finally {
    reader.close();
    input.destroy();
  }
  return pager.page();
}

/** The offset just after the last newline before `end` (within 64 KiB), or `end` itself. */
async function lineStart(path: string, end: number): Promise<number> {
  const handle = await open(path, 'r');
  try {
    const length = Math.min(end, 64 * 1024);
    const buffer = Buffer.alloc(length);
    const { bytesRead } = await handle.read(buffer, 0, length, end - length);
    const newline = buffer.subarray(0, bytesRead).lastIndexOf(0x0a);
    if (newline === -1) return length === end ? 0 : end;
    return end - length + newline + 1;
  } finally {
    await handle.close();
  }
}

/** How often followLog() looks at the file when no change notification arrives. */
export const FOLLOW_POLL_MS = 1000;

/**
 * Calls `onLine` with the newest `backlog` complete lines already in `path`, then with every
 * complete line appended after them, until unsubscribed: both come from the same byte offset, so
 * no line is sent twice and none is skipped.
 * Change notifications come from fs.watch (inotify) when it works, and a slow poll catches what
 * it misses (file created later, replaced, or on file systems without notifications). A file that
 * shrinks (truncated or re-created) is read again from its start.
 */
export function followLog(path: string, onLine: (line: string) => void, backlog = 0): Unsubscribe {
  let offset = 0;
  let inode: number | null = null;
  try {
    const initial = statSync(path);
    offset = initial.size;
    inode = initial.ino;
  } catch {
    // Not there yet: read it from the start once it appears.
  }
  let closed = false;
  let reading = false;
  let again = false;
  let watcher: FSWatcher | null = null;
  const splitter = new LineSplitter((line) => {
    if (!closed) onLine(line);
  });

  const arm = (): void => {
    watcher?.close();
    watcher = null;
    try {
      watcher = watch(path, { persistent: false }, () => void check());
      watcher.on('error', () => {
        watcher?.close();
        watcher = null;
      });
    } catch {
      watcher = null;
    }
  };

  const readMore = async (): Promise<void> => {
    let info;
    try {
      info = await stat(path);
    } catch {
      return;
    }
    if (inode !== info.ino || info.size < offset) {
      if (inode !== null && inode !== info.ino) offset = 0;
      if (info.size < offset) offset = 0;
      inode = info.ino;
      arm();
    }
    if (info.size <= offset) return;
    const handle = await open(path, 'r');
    try {
      const buffer = Buffer.alloc(64 * 1024);
      while (!closed && offset < info.size) {
        const { bytesRead } = await handle.read(buffer, 0, Math.min(buffer.length, info.size - offset), offset);
        if (bytesRead === 0) break;
        offset += bytesRead;
        splitter.write(buffer.subarray(0, bytesRead));
      }
    } finally {
      await handle.close();
    }
  };

  const check = async (): Promise<void> => {
    if (closed) return;
    if (reading) {
      again = true;
      return;
    }
    reading = true;
    try {
      do {
        again = false;
        await readMore().catch(() => undefined);
      } while (again && !closed);
    } finally {
      reading = false;
    }
  };

  const sendBacklog = async (): Promise<void> => {
    // Only whole lines before the offset: a line still being written is sent whole by the follow.
    offset = await lineStart(path, offset);
    const page = await readLogPage(path, { lines: backlog }, offset);
    for (const line of page.lines) if (!closed) onLine(line);
  };

  if (inode !== null) arm();
  if (backlog > 0 && offset > 0) {
    reading = true;
    void sendBacklog()
      .catch(() => undefined)
      .finally(() => {
        reading = false;
        void check();
      });
  }
  const poll = setInterval(() => void check(), FOLLOW_POLL_MS);
  poll.unref();
  return () => {
    closed = true;
    clearInterval(poll);
    watcher?.close();
    watcher = null;
  };
}
