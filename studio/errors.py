"""User-facing errors: their message names the file, row or field and says what to do."""


class StudioError(Exception):
    """An error a person can act on; the CLI prints it without a traceback, the GUI shows it in a dialog."""


class DatasetError(StudioError):
    """A dataset spec or folder that cannot be read as an attributed dataset."""


class CheckpointError(StudioError):
    """A checkpoint that is missing, incomplete or made for something else."""
