"""genlab's version, in one place (config.json records it; ``genlab.__version__`` re-exports it)."""
__version__ = "0.1.0"
