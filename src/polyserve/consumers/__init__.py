"""Long-running consumers that feed an app's handlers from a broker, on any host."""
