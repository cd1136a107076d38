"""The rule engine: routes.toml bytes -> validated, compiled, immutable RuleSet. No network, no server."""
