// Preloaded by the benchmark with `node --import`: at exit, writes this process's peak resident set
// size (getrusage ru_maxrss, in KiB) to the file named by $BENCH_MAXRSS_FILE. Portable stand-in for
// GNU time's %M that needs nothing installed; node-prep runs no child process in what is measured.
import { writeFileSync } from 'node:fs';

const out = process.env.BENCH_MAXRSS_FILE;
if (out) process.on('exit', () => writeFileSync(out, `${process.resourceUsage().maxRSS}\n`));
