"""Fault tests on the deployment of issue 14: a three-node JetStream cluster, two instances of every service, a private
PostgreSQL; nodes, services and the database are killed or restarted while complaints flow (docs/resilience.md)."""
