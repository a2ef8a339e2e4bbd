"""Historical stays at scale: the streaming, resumable multi-process runner, its HTML report, and the same core
inside Spark."""
