"""Warning classes raised by mnnkit, so users can filter them precisely."""


class MnnkitWarning(UserWarning):
    """Base class of every warning mnnkit raises."""


class InputDataWarning(MnnkitWarning):
    """The input data look unlike what a function expects (e.g. raw counts where log data are expected)."""


class ParameterWarning(MnnkitWarning):
    """A parameter was adjusted to fit the data (e.g. ``k`` capped at a batch's size)."""
