"""The package version, in a module of its own so any part can read it without importing the package face."""
__version__ = "0.2.0"
