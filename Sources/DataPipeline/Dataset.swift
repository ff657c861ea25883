// Placeholder replaced by the data pipeline.
