"""Training configs: the Flash 1.3.28 schema, validation, resolution and comment-preserving edits."""
