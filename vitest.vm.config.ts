import { defineConfig } from 'vitest/config';

// The VM tests (test/vm/*.vm.ts): booted guests under qemu, run by `npm run test:vm`, one file at a
// time (each boots its own guest and the machine has few cores).
export default defineConfig({
  test: {
    include: process.env.NODE_PREP_VM_TESTS ? process.env.NODE_PREP_VM_TESTS.split(',') : ['test/vm/**/*.vm.ts'],
    globalSetup: ['test/support/global-setup.ts'],
    testTimeout: 60_000,
    hookTimeout: 30 * 60_000,
    fileParallelism: false,
    retry: 0,
  },
});
