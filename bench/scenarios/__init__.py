"""One module per scenario; each ``run(sdk, params)`` executes inside a fresh worker process."""
