"""The entry, on top of every layer: the CLI, the runtime wiring (agent + store, later the API) and the demo.

Nothing below imports it (the layers contract in pyproject.toml says so)."""
