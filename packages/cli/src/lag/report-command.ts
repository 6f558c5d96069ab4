/** Placeholder until recordings can be reported on. */
import { usageError } from '../cli-error.js';
import type { CliIo } from '../io.js';

export async function runReport(_file: string, _options: { html: string | undefined; json: boolean }, _io: CliIo): Promise<number> {
  throw usageError('lag --report is not built yet');
}
