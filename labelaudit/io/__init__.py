"""Reading inputs with polars and writing outputs atomically: the only layer that touches files."""
