"""One module per command: read through io/, run core/ statistics, build the report."""
