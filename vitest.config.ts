import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    testTimeout: 60_000,
    hookTimeout: 120_000,
    // PGlite takes ~750 MB per instance and the machine has 2 cores: a few files at a time.
    maxWorkers: 3,
    pool: "forks",
  },
});
