"""Online serving: registry, queue, state, service."""
