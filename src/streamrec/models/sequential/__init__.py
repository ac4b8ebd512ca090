"""Session and sequence models: next-item prediction from what the user is doing now."""
