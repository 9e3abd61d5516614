"""medisync-topology: topology-as-code for NATS JetStream."""

__version__ = "0.1.0"
