"""Entry point of ``python -m local.emulator``: see `local.emulator.server.main`."""

from local.emulator.server import main

if __name__ == "__main__":
    raise SystemExit(main())
