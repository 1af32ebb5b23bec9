"""Activity logs: declaration, reading, SQL aggregation, features as of a course day, horizons, scoring."""
