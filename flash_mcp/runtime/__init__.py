"""Loading an environment as Flash loads it and rendering its prompts and completions (public API)."""
