import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { guardChildStdio } from './child-stdio.js';

describe('guardChildStdio', () => {
  it('keeps a failing pipe from ending the process: input written to a child that closed its input', async () => {
    // The child closes its stdin at once and lives on: our writes then fail (EPIPE or ECONNRESET).
    const child = guardChildStdio(spawn('sh', ['-c', 'exec 0<&- && echo closed && sleep 2'], { stdio: 'pipe' }));
    await once(child.stdout!, 'data');
    // (events.once would itself listen for 'error'.)
    const closed = new Promise((resolve) => child.stdin!.on('close', resolve));
    // Without a listener the failure would be an unhandled 'error' event (an uncaught exception).
    child.stdin!.write(Buffer.alloc(1 << 20));
    await closed;
    expect(child.stdin!.destroyed).toBe(true);
    child.kill();
  });

  it('leaves the output to whoever reads it', async () => {
    const child = guardChildStdio(spawn('echo', ['hello'], { stdio: 'pipe' }));
    let output = '';
    child.stdout!.on('data', (chunk: Buffer) => (output += chunk.toString()));
    await once(child, 'close');
    expect(output).toBe('hello\n');
  });
});
