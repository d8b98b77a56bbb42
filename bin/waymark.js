#!/usr/bin/env node
// The `waymark` command line from a checkout, no build step: tsx compiles src/cli/*.ts as it is loaded.
// Through tsx's require hook, which runs in this thread: half the start-up of its ESM loader, whose hooks
// run on a second thread (Node 20). So src/cli has no top-level await.
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);
require('tsx/cjs/api').register();
require('../src/cli/main.ts');
