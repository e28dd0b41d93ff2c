"""Pure numpy statistics: arrays in, arrays and small dataclasses out; no I/O, no printing."""

CHUNK_ROWS = 32_768  # rows of scores per chunk: memory is bounded by a few chunks (measured)
