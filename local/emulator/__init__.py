"""Local, Novita-compatible cleanup API emulator (`POST /v3/cleanup`) for the integration tests, the
local stack and the benchmarks.

Modules: `server` (HTTP server, `CleanupEmulator`, CLI), `endpoint` (`CleanupEndpoint`: the transport-free
answer to one cleanup request), `inpainting` (image decoding, `ProviderLimits`, OpenCV inpainting),
`admin` (`/_emulator/*` routes), `state` (`EmulatorState`) and `models` (faults, recorded calls, stats).

CLI: ``python -m local.emulator --port 8787 --api-key KEY [--requests-per-minute N] [--bench]``
"""

from local.emulator.server import CleanupEmulator, EmulatorStats, Fault, RecordedCall, main

__all__ = ["CleanupEmulator", "EmulatorStats", "Fault", "RecordedCall", "main"]
