"""Pure numpy statistics: arrays in, arrays and small dataclasses out; no I/O, no printing."""
