"""A chat assistant over a news corpus: ingestion, hybrid retrieval and cited answers."""
