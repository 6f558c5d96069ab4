import { spawnSync } from 'node:child_process';
import * as path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { describe, expect, it } from 'vitest';

const packageDir = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

describe('msgpackr decoder', () => {
  it('is the JavaScript one once the codec is loaded, as a server or client process loads it', () => {
    // A process of its own: msgpackr decides when it first loads, once per process. The built
    // codec, as the server and the CLI import it.
    const codec = pathToFileURL(path.join(packageDir, 'dist', 'codec.js')).href;
    const script = `await import(${JSON.stringify(codec)}); const m = await import('msgpackr'); console.log(String(m.isNativeAccelerationEnabled));`;
    const env = { ...process.env };
    delete env.MSGPACKR_NATIVE_ACCELERATION_DISABLED;
    const result = spawnSync(process.execPath, ['--input-type=module', '-e', script], { cwd: packageDir, env, encoding: 'utf8' });
    expect(result.stderr).toBe('');
    expect(result.stdout.trim()).toBe('false');
  });
});
