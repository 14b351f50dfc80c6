"""housing: California house prices, from raw census data to a registered champion."""

__version__ = "0.1.0"
