"""The HTTP face: a FastAPI app over the champion model and the prediction log."""
