"""Where the passes run: this process (the default), or a distributed engine (Ray)."""
