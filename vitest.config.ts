import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    // Temp files on tmpfs and one migrated template database for all files: see the file.
    globalSetup: ["test/global-setup.ts"],
    testTimeout: 60_000,
    hookTimeout: 120_000,
    // PGlite takes ~750 MB per instance and the machine has 2 cores: a few files at a time.
    maxWorkers: 3,
    pool: "forks",
  },
});
