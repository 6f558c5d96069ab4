/**
 * Imported before msgpackr (codec.ts), which reads this variable when it loads: its JavaScript
 * decoder, not the native string extractor. msgpackr-extract's prebuilt binary comes with
 * msgpackr as an optional dependency (its install script stays denied in allowScripts, and the
 * binary loads all the same), and msgpackr calls it for every message of 140 bytes or more that
 * holds strings: a write request, not a commit's reply. Measured on this project's machine,
 * decoding and checking a 177-byte write request took 2.4 us with it and 1.45 us without; WAL
 * frames of 268 bytes to 64 kB about 1 us either way. A value the user set is left alone.
 */
process.env.MSGPACKR_NATIVE_ACCELERATION_DISABLED ??= 'true';

export {};
