"""Controller: the only owner of cluster state (REST API, services)."""
