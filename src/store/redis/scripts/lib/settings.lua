-- settings: this store's settings, decoded from ARGV[1] (encoded by settingsArgument in
-- src/store/redis/script-settings.ts; per store, not compiled in, since stores with different settings
-- may share one Redis): F.GPU_CAP, F.ENC_CAP (ppm under headroom), F.VRAM_HEADROOM,
-- F.TEMPERATURE_MARGIN, F.REQUIRE_TELEMETRY, F.STALE_AFTER_MS, F.RETAIN_ENDED_MS,
-- F.LATENCY_SCHEDULE (the latency policies as text, read by lib/latency.lua), F.ALLOW_UNREPORTED_REGIONS
-- and F.CLASSES (the priority classes, highest first).
-- KEYS: none.
-- ARGV (every script): [1] the settings; script arguments start at ARGV[2].

-- emit: settings
