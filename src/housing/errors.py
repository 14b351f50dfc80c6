"""Errors a user can act on: bad data, too little traffic, a wrong parameter."""


class HousingError(ValueError):
    """A problem the user can fix. Its message says what, where and what to do, and the
    CLI shows just that message, without a traceback (see ``hooks.CleanErrors``)."""
