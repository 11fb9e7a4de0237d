"""Errors a user can act on. The CLI prints them as one line and exits with code 2."""


class GenlabError(Exception):
    """Base class for problems caused by user input (files, options, configs), not by bugs."""


class DataError(GenlabError, ValueError):
    """A dataset name, file or folder is missing, malformed or inconsistent."""


class ConfigError(GenlabError, ValueError):
    """An option or config value is invalid."""


class CheckpointError(GenlabError, ValueError):
    """A run directory or checkpoint file is missing or malformed."""


class OutputError(GenlabError, OSError):
    """A file could not be written (permission denied, no space left, a read-only file system, ...).
    Also an OSError, so code that catches OSError around a write still catches it."""
