"""The data error type (its own module so every reader can raise it without import cycles)."""


class DataError(ValueError):
    """Data that cannot be used: the message names the file, row, column or value at fault."""
