import { runCli } from './program.js';

// The `waymark` command line. bin/waymark.js loads it through tsx's CommonJS hook: no top-level await.
void runCli(process.argv).then((code) => (process.exitCode = code));
