/** The walship version (kept equal to packages/cli/package.json's; checked by a test). */
export const VERSION = '0.1.0';
