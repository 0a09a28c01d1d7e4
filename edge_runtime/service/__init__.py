"""Running as a cart service: sd_notify and watchdog, signals, the HTTP server, /metrics and the service hooks."""
