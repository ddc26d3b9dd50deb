"""Exceptions with messages that say what is wrong and how to fix it."""

from __future__ import annotations


class TSimCNEError(Exception):
    """Base class of every error this package raises on purpose."""


class DataError(TSimCNEError, ValueError):
    """Input data has the wrong shape, dtype, values or layout."""


class DatasetNotFoundError(TSimCNEError, FileNotFoundError):
    """Files of a dataset are missing; the message says where to get them and where to put them."""


class DownloadError(TSimCNEError, OSError):
    """A download failed; the message names the file, the URL and where to put it by hand."""


class ConfigError(TSimCNEError, ValueError):
    """An unknown option or an invalid parameter value."""


class ModelFileError(DataError):
    """A model or checkpoint file is not one, is damaged, or is an old pickle that needs converting."""
