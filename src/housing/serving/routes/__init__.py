"""One module per tag: predict, monitor, operate."""
