"""The c2d job domain: specs, bundles, states, the store and the service (every state change)."""
