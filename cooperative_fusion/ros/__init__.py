"""Message <-> numpy adapters, QoS profiles and parameter helpers: the only place messages meet arrays."""
